"""Review of the rows change (62afdb2..HEAD): lists written one item per line, windows of a
CopySource, ranges, counts, journeys, numbers in words, dates, and the drafted batches.

The first part holds the bugs the review found, each fixed since (the comment above a test
says what was wrong); the rest check odd inputs that behave. Pure tests, and grammar tests on
the bundled model's vocabulary only (no weights, no server).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from local_support import grammar_admits, grammar_parses

from openai_structured.local._bounds import (
    _distinct_values,
    _holding,
    caps_for,
    grammar_schema,
)
from openai_structured.local._copying import (
    CopySource,
    _word_number,
    copy_kind,
    rule_name,
    sentinel_kind,
)
from openai_structured.local._drafting import KeyDraft, _forced, _items
from openai_structured.local._naming import label_words, range_qualifier
from openai_structured.local._rows import marker_number, row_blocks

# --- helpers ---------------------------------------------------------------------------------


def _object(required: bool = True, **properties: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        node["required"] = list(properties)
    return node


def _list_of(item: dict[str, Any], key: str = "items", **bounds: Any) -> dict[str, Any]:
    return _object(**{key: {"type": "array", "items": item, **bounds}})


def _bounded(schema: dict[str, Any], text: str, **options: Any) -> dict[str, Any]:
    return grammar_schema(schema, caps_for(text), copy_from=CopySource(text, **options))


def _gbnf(schema: dict[str, Any], text: str) -> str:
    from openai_structured.local._decoding import to_gbnf

    caps = caps_for(text)
    source = CopySource(text)
    return to_gbnf(grammar_schema(schema, caps, copy_from=source), caps, source)


def _answer(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _rows_text(text: str) -> list[list[str]]:
    return [[text[s:e] for s, e in rows] for rows, _ in row_blocks(text)]


def _kinds(node: dict[str, Any]) -> dict[str, str]:
    return {
        name: sentinel_kind(sub["const"])
        for name, sub in node["properties"].items()
        if isinstance(sub.get("const"), str) and sub["const"].startswith("@@")
    }


_RULE_LINE = re.compile(r"^([^\s:]+) ::= ", re.MULTILINE)


def _rule_names(gbnf: str) -> list[str]:
    return _RULE_LINE.findall(gbnf)


def _admits_count(items_len: int, array: dict[str, Any]) -> bool:
    """Whether a grammar schema's array admits ``items_len`` items."""
    if "prefixItems" in array:
        return len(array["prefixItems"]) == items_len == array.get("maxItems", items_len)
    return array.get("minItems", 0) <= items_len <= array.get("maxItems", 10**9)


# === BUGS FOUND IN REVIEW (fixed) ===============================================================

# --- _bounds._holding: a row without a typed value in the middle cuts the list ----------------

JOBS = (
    "Garden jobs 2025:\n"
    "- Paint fence, due 3 May\n"
    "- Fix gate, due 5 May\n"
    "- Clean gutters\n"
    "- Mow lawn, due 9 May\n"
)
JOB = _object(
    task={"type": "string"},
    due={"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
)


# Was a bug (found in review, now fixed): _holding splits a block at a row holding no typed value:
# 4 jobs, grammar forces 2
def test_a_row_without_a_date_in_the_middle_does_not_cut_the_list() -> None:
    out = _bounded(_list_of(JOB), JOBS)["properties"]["items"]
    assert _admits_count(4, out)


def test_holding_drops_a_heading_row_at_the_start() -> None:
    rows = [(0, 5), (6, 10), (11, 20)]
    for marked in (True, False):
        assert _holding(rows, [0, 1, 2], marked) == [([(6, 10), (11, 20)], [1, 2])]
        assert _holding(rows, [0, 0, 0], marked) == []
        assert _holding([], [], marked) == []
    # A marked row in the middle that holds nothing is an item; an unmarked one ends a run.
    assert _holding(rows, [1, 0, 2], True) == [(rows, [1, 0, 2])]
    assert _holding(rows, [1, 0, 2], False) == [([(0, 5)], [1]), ([(11, 20)], [2])]


# --- _rows._records: numbered groups under headings read as 2 multi-line records --------------

RUNNERS = (
    "Results\n"
    "\n"
    "Women\n"
    "1. Amara Wanjiku 2:31:07 bib 101\n"
    "2. Ilse van Dorp 2:33:45\n"
    "\n"
    "Men\n"
    "1. Yonas Hailu 2:14:39 bib 7\n"
    "2. Tom Berg 2:15:00\n"
)
RUNNER = _object(
    name={"type": "string"},
    finish={"type": "string", "format": "time"},
    bib={"type": "integer"},
)


# Was a bug (found in review, now fixed): _records makes each heading+numbered group one 'row' and
# it outscores the real rows (the
def test_numbered_rows_under_headings_are_not_taken_two_at_a_time() -> None:
    out = _bounded(_list_of(RUNNER), RUNNERS)["properties"]["items"]
    assert _admits_count(4, out)


def test_the_marked_rows_of_the_groups_are_found_too() -> None:
    assert [
        "Amara Wanjiku 2:31:07 bib 101",
        "Ilse van Dorp 2:33:45",
        "Yonas Hailu 2:14:39 bib 7",
        "Tom Berg 2:15:00",
    ] in _rows_text(RUNNERS)


# --- _naming.string_qualifier: "departure"/"arrival"/"from"/"to" before everything else -------

LEGS = (
    "Leg 1: Train IC 2207, Koeln Hbf -> Frankfurt, dep 06:12, arr 07:20\n"
    "Leg 2: Flight NV 418, Frankfurt (FRA) -> New York (JFK), dep 10:05, arr 13:20\n"
)


# Was a bug (found in review, now fixed): string_qualifier makes a plain-string departure_time an
# 'origin': the grammar then only
def test_a_departure_time_string_is_not_a_place(vocab_model: Any) -> None:
    schema = _object(departure_time={"type": "string"})
    text = "Train IC 2207, Koeln Hbf -> Frankfurt, dep 06:12, arr 07:20"
    gbnf = _gbnf(schema, text)
    assert grammar_admits(vocab_model, gbnf, _answer({"departure_time": "06:12"}), ends=True)


# Was a bug (found in review, now fixed): string_qualifier checks origin/destination before
# identifier: a departure_airport_code m
def test_a_departure_airport_code_is_still_a_code(vocab_model: Any) -> None:
    schema = _object(departure_airport_code={"type": "string"})
    text = "Flight NV 418, Frankfurt (FRA) -> New York (JFK), 2025-03-18"
    gbnf = _gbnf(schema, text)
    assert grammar_admits(vocab_model, gbnf, _answer({"departure_airport_code": "FRA"}), ends=True)


def test_a_named_origin_and_destination_are_the_arrow_s_ends() -> None:
    source = CopySource(LEGS)
    assert source.values("string/origin") == ['"Koeln Hbf"', '"Frankfurt"']
    assert source.values("string/destination") == ['"Frankfurt"', '"New York"']
    assert CopySource("Translate: Norwegian > English").values("string/origin") == ['"Norwegian"']
    assert CopySource("no arrow here").values("string/origin") == []


# Was a bug (found in review, now fixed): _JOURNEY needs a delimiter after the destination: in
# 'Berlin -> Munich -> Vienna' the or
def test_a_journey_of_several_legs_starts_at_its_first_place() -> None:
    source = CopySource("Route: Berlin -> Munich -> Vienna")
    assert '"Berlin"' in source.values("string/origin")


# --- _drafting: the draft of every row is the first row's ---------------------------------------

LOANS = (
    "- Salt Roads (book), due 2 October 2024\n"
    "- Northern Coast (DVD with booklet), due 9 October 2024\n"
)
LOAN = _object(
    title={"type": "string"},
    format={"enum": ["book", "dvd", "magazine"]},
    due={"type": "string", "format": "date"},
)
LOAN_SO_FAR = (
    '{"items": [{"title": "Salt Roads", "format": "book", "due": "2024-10-02"}, '
    '{"title": "Northern Coast",'
)


def test_each_row_has_its_own_enum_and_the_second_row_allows_both(vocab_model: Any) -> None:
    out = _bounded(_list_of(LOAN), LOANS)["properties"]["items"]
    assert [row["properties"]["format"] for row in out["prefixItems"]] == [
        {"enum": ["book"]},
        {"enum": ["book", "dvd"]},
    ]
    gbnf = _gbnf(_list_of(LOAN), LOANS)
    for value in ("book", "dvd"):
        assert grammar_admits(vocab_model, gbnf, f' "format": "{value}"', prefix=LOAN_SO_FAR)


# Was a bug (found in review, now fixed): KeyDraft reads every row through prefixItems[0]: row 1's
# forced enum 'book' is drafted (
def test_the_draft_of_the_second_row_does_not_force_the_first_row_s_value() -> None:
    draft = KeyDraft(_bounded(_list_of(LOAN), LOANS))
    draft.feed(LOAN_SO_FAR)
    assert "book" not in draft.next_text()


def test_forced_values_and_items_of_rows() -> None:
    assert _forced({"const": False}) == "false"
    assert _forced({"const": 3}) == "3"
    assert _forced({"enum": ["only"]}) == '"only"'
    assert _forced({"enum": ["a", "b"]}) is None
    assert _forced({"const": "@@openai-structured:copy-string@@"}) is None
    assert _forced("junk") is None
    assert _items({"prefixItems": [{"a": 1}, {"b": 2}]}) == {"a": 1}
    assert _items({"prefixItems": [], "items": {"c": 3}}) == {"c": 3}
    assert _items({"prefixItems": []}) is None


# --- _bounds._typed_kind / _ordinals: a junk anyOf crashes the grammar ------------------------


# Was a bug (found in review, now fixed): _typed_kind iterates a non-list anyOf (true, 5):
# TypeError for any list of objects with
def test_a_junk_any_of_in_a_list_item_does_not_crash() -> None:
    item = _object(name={"type": "string"}, n={"anyOf": True})
    _bounded(_list_of(item), "1. Milk 2 litres\n2. Eggs 12 pieces\n")


# Was a bug (found in review, now fixed): _ordinals iterates a non-list anyOf of a field named
# like a position: TypeError
def test_a_junk_any_of_of_a_position_does_not_crash() -> None:
    item = _object(name={"type": "string"}, position={"anyOf": 5})
    _bounded(_list_of(item), "1. Milk 2 litres\n2. Eggs 12 pieces\n")


def test_a_junk_one_of_mapping_in_a_list_item_is_tolerated() -> None:
    item = _object(name={"type": "string"}, n={"oneOf": {"type": "integer"}})
    out = _bounded(_list_of(item), "1. Milk 2 litres\n2. Eggs 12 pieces\n")
    assert len(out["properties"]["items"]["prefixItems"]) == 2


# --- _bounds._rows_array: the row's number overrides the position's own bounds ----------------

GROCERIES = "1. Milk 2 litres\n2. Eggs 12 pieces\n3. Bread 1 loaf\n"


@pytest.mark.parametrize(
    "position",
    [{"type": "integer", "maximum": 2}, {"type": "integer", "enum": [1, 2]}],
)
# Was a bug (found in review, now fixed): _rows_array sets a position to {'const': row number}
# ignoring the field's maximum/enum:
def test_a_row_number_does_not_break_the_position_s_bounds(position: dict[str, Any]) -> None:
    item = _object(position=position, n={"type": "integer"})
    out = _bounded(_list_of(item), GROCERIES)["properties"]["items"]
    for row in out.get("prefixItems", []):
        const = row["properties"]["position"].get("const")
        assert const is None or const in (1, 2)


def test_a_numbered_row_s_position_is_its_number_when_it_may_be() -> None:
    item = _object(position={"type": "integer"}, n={"type": "integer"})
    out = _bounded(_list_of(item), GROCERIES)["properties"]["items"]
    assert [row["properties"]["position"] for row in out["prefixItems"]] == [
        {"const": 1},
        {"const": 2},
        {"const": 3},
    ]


# --- _range_ends: the two readings of an ambiguous numeric date --------------------------------


# Was a bug (found in review, now fixed): _range_ends pairs readings, not dates: of 03/04/2024
# (order unknown) a start field keeps
def test_a_range_of_ambiguous_dates_keeps_both_readings_of_its_start() -> None:
    source = CopySource("Valid 03/04/2024 - 05/04/2024")
    assert {'"2024-03-04"', '"2024-04-03"'} <= set(source.values("date/start"))


def test_range_ends_of_times_dates_and_words() -> None:
    source = CopySource("Open 10:00-16:00 daily, tours between 18:00 and 19:00.")
    assert source.values("time/start") == ['"10:00"', '"18:00"']
    assert source.values("time/end") == ['"16:00"', '"19:00"']
    dated = CopySource("Season: 12 April - 31 August 2025")
    assert dated.values("date/start") == ['"2025-04-12"']
    assert dated.values("date/end") == ['"2025-08-31"']
    assert CopySource("Meet at 10:00.").values("time/start") == []  # then the base kind
    assert CopySource("Meet at 10:00.").kind_for("time/start") == "time"
    assert range_qualifier("valid_from") == "start"
    assert range_qualifier("access_until") == "end"
    assert range_qualifier("") is None


# --- counts: "x2" narrows every quantity of the text ---------------------------------------------


# Was a bug (found in review, now fixed): a 'quantity' integer is narrowed to x-counts once the
# text has one ('2x milk'): the 3 of
def test_a_count_written_without_x_is_still_a_quantity(vocab_model: Any) -> None:
    text = "Order: 2x milk, 3 eggs and 1 loaf."
    item = _object(name={"type": "string"}, quantity={"type": "integer"})
    gbnf = _gbnf(_list_of(item), text)
    answer = {"items": [{"name": "milk", "quantity": 2}, {"name": "eggs", "quantity": 3}]}
    assert grammar_admits(vocab_model, gbnf, _answer(answer), ends=True)


def test_counts_written_with_x() -> None:
    text = "Scarf x2, 3x books, 4 \u00d7 mugs, box of 10"
    row = CopySource(text).within(0, len(text))  # (a row's: in prose, every number may be one)
    assert row.values(row.scoped("integer/count")) == ["2", "3", "4"]
    assert CopySource("SX-110 and IP-300").values("integer") == []  # codes, not numbers
    assert CopySource("").values("integer/count") == []


# --- _month_first: a dollar that is not the US's ------------------------------------------------


# Was a bug (found in review, now fixed): _month_first takes any '$' for US order: an Australian
# bill (A$, AUD) is read month firs
def test_an_australian_dollar_bill_is_not_read_month_first() -> None:
    source = CopySource("Invoice date 03/04/2024. Total A$120.00 (AUD)")
    assert "2024-04-03" in source.dates()


def test_numeric_dates_are_read_in_the_text_s_order() -> None:
    assert CopySource("Paid 09/10/2024, total $45.").dates() == ["2024-09-10"]
    assert CopySource("Paid 09/10/2024, total \u00a345.").dates() == ["2024-10-09"]
    assert CopySource("Paid 09/10/2024, seen 27/09/2024, $45").dates() == [
        "2024-10-09",
        "2024-09-27",
    ]  # one date says the order, over the currency
    assert CopySource("Paid 09/10/2024.").dates() == ["2024-10-09", "2024-09-10"]
    assert CopySource("Paid 09/10/2024, $45 or \u20ac40").dates() == ["2024-10-09", "2024-09-10"]


def test_an_airline_date() -> None:
    assert CopySource("LH 400 21NOV24 FRA-JFK").dates() == ["2024-11-21"]
    assert CopySource("21NOV2024").dates() == []  # not that form
    assert CopySource("31FEB24").dates() == []  # no such day: no crash


# Was a bug (found in review, now fixed): a two-digit year is always 20yy: a date of birth
# '12MAR85' becomes 2085-03-12
def test_a_two_digit_year_in_the_past() -> None:
    assert CopySource("DOB 12MAR85").dates() == ["1985-03-12"]


# --- numbers in words -------------------------------------------------------------------------


def test_numbers_in_words() -> None:
    found = CopySource("forty-two chairs, Ninety nine bottles, a dozen eggs, seventeen").values(
        "integer"
    )
    assert found == ["42", "99", "12", "17"]
    assert CopySource("twenty").values("integer") == ["20"]


# Was a bug (found in review, now fixed): _NUMBER_WORD joins tens and a unit over a space: 'twenty
# one-way tickets' is 21 only, th
def test_twenty_one_way_tickets_are_twenty() -> None:
    assert "20" in CopySource("We need twenty one-way tickets.").values("integer")


def test_word_number_of_a_match() -> None:
    from openai_structured.local._copying import _NUMBER_WORD

    match = _NUMBER_WORD.search("Sixty-Three")
    assert match is not None and _word_number(match) == 63


# --- a row of one number: its string copy is only "" -------------------------------------------


# Was a bug (found in review, now fixed): has('string') counts a lone number as a copy start but
# span_rules makes no copy15\\ ()
def test_a_row_of_a_lone_number_does_not_force_an_empty_string(vocab_model: Any) -> None:
    text = "Scores:\n- 15\n- 20\n"
    item = _object(label={"type": "string"}, score={"type": "integer"})
    gbnf = _gbnf(_list_of(item), text)
    assert grammar_parses(vocab_model, gbnf)
    answer = {"items": [{"label": "", "score": 15}, {"label": "", "score": 20}]}
    assert grammar_admits(vocab_model, gbnf, _answer(answer), ends=True)  # only this
    other = {"items": [{"label": "Scores", "score": 15}, {"label": "Scores", "score": 20}]}
    assert grammar_admits(vocab_model, gbnf, _answer(other), ends=True)


# === EDGE CASES THAT BEHAVE ===================================================================

# --- row_blocks on odd texts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "\n", "\n\n\n", "   \n\t\n", "one line", "1. Solo item\n", "- \n- \n\n", "\r\n\r\n"],
)
def test_no_rows_in_texts_without_two_lines(text: str) -> None:
    blocks = row_blocks(text)
    assert all(len(rows) >= 2 for rows, _ in blocks)
    for rows, _ in blocks:
        for start, end in rows:
            assert 0 <= start <= end <= len(text)


def test_crlf_rows_lose_their_carriage_return() -> None:
    text = "1. Milk 2\r\n2. Eggs 12\r\n"
    assert _rows_text(text)[0] == ["Milk 2", "Eggs 12"]
    assert [marker_number(text, row) for row in row_blocks(text)[0][0]] == [1, 2]


def test_tabbed_and_unicode_rows() -> None:
    assert _rows_text("\t- Milk 2\n\t- Eggs 12") == [["Milk 2", "Eggs 12"]]
    assert _rows_text("- Cr\u00e8me br\u00fbl\u00e9e 2\n- \u00c4pfel 12\n") == [
        ["Cr\u00e8me br\u00fbl\u00e9e 2", "\u00c4pfel 12"]
    ]
    assert _rows_text("Anna\tkitchen\nTom\tdesk\n") == [["Anna\tkitchen", "Tom\tdesk"]]


def test_rows_far_apart_are_not_one_block() -> None:
    text = "1. A 1\n" + "\n" * 6 + "2. B 2\n"
    assert row_blocks(text) == []


def test_rows_of_every_block_are_inside_the_text_and_ordered() -> None:
    for text in (RUNNERS, JOBS, LEGS, LOANS, "Mon 3 Feb\r\n08:00 work\r\n\r\nTue 4 Feb\r\n09:00"):
        for rows, _ in row_blocks(text):
            assert rows == sorted(rows)
            assert all(0 <= s < e <= len(text) for s, e in rows)


# --- windows: within / scoped / _scope / _word_range ------------------------------------------


def test_a_window_at_the_text_s_end_and_an_empty_one() -> None:
    text = "Invoice 2025: Qty 4 chairs"
    source = CopySource(text)
    tail = source.within(len(text) - 8, len(text))  # "4 chairs"
    assert [source.words[i][0] for i in tail._word_range()] == ["4", "chairs"]
    assert tail.values(tail.scoped("integer")) == ["4"]
    empty = source.within(len(text), len(text))
    assert list(empty._word_range()) == []
    assert not empty.has(empty.scoped("string"))
    assert empty.values(empty.scoped("integer")) == []
    beyond = source.within(0, 10**6)
    assert list(beyond._word_range()) == list(range(len(source.words)))
    reversed_window = source.within(10, 3)
    assert list(reversed_window._word_range()) == []


def test_scoped_kinds_round_trip_and_make_valid_rule_names() -> None:
    source = CopySource("Anna 4\nTom 5\n")
    row = source.within(7, 12)
    for kind in ("string", "integer//qty-quantity", "date/start", "date-time", "time//dep"):
        scoped = row.scoped(kind)
        assert scoped.split("/")[4] == "at7-12"
        back, unscoped = source._scope(scoped)
        assert back.window == (7, 12)
        assert unscoped == kind
        assert re.fullmatch(r"[a-z0-9-]+", rule_name(scoped))
    assert source.scoped("string") == "string"  # no window: as it was
    assert source._scope("string//a-b") == (source, "string//a-b")


def test_empty_text_source() -> None:
    source = CopySource("")
    assert not source.usable
    assert source.row_blocks == []
    assert source.within(0, 0).values("integer") == []


def test_distinct_values_count_two_numbers_twice() -> None:
    both = CopySource("Qty 4 @ 189.50")
    assert _distinct_values(both, ["integer//quantity", "number//price"]) == 2
    assert _distinct_values(CopySource("Total 1,001.50"), ["integer", "number"]) == 1
    assert _distinct_values(CopySource("nothing"), ["integer", "date"]) == 0


# Was a bug (found in review, now fixed): _distinct_values compares value strings: '45.00' is
# integer '45' and number '45.00', so
def test_distinct_values_count_a_row_s_one_number_once() -> None:
    row = CopySource("Total 45.00")
    assert _distinct_values(row, ["integer//quantity", "number//price"]) == 1


ORDER = (
    "Order 1042\n\nMug 2 @ 12.00\nPlate 4 @ 8.50\n\nSubtotal 58.00\nShipping 5.00\nTotal 63.00\n"
)


# Was a bug (found in review, now fixed): with the .00 totals counted twice, the 3 totals lines
# outscore the 2 item lines: the gra
def test_an_order_s_totals_are_not_its_lines() -> None:
    item = _object(
        description={"type": "string"}, quantity={"type": "integer"}, unit_price={"type": "number"}
    )
    out = _bounded(_list_of(item, key="lines"), ORDER)["properties"]["lines"]
    starts = [
        int(_kinds(row)["description"].split("/at")[1].split("-")[0])
        for row in out.get("prefixItems", [])
    ]
    assert all(not ORDER[start:].startswith(("Subtotal", "Shipping", "Total")) for start in starts)


def test_label_words_take_abbreviations() -> None:
    assert label_words("quantity") == ("quantity", "qty")
    assert label_words("departure_time") == ("departure", "dep")  # "time" is no label


# --- grammars of rows in llama.cpp --------------------------------------------------------------


def _check(vocab_model: Any, gbnf: str) -> None:
    assert grammar_parses(vocab_model, gbnf)
    names = _rule_names(gbnf)
    assert len(names) == len(set(names)), "a rule defined twice"
    assert all(re.fullmatch(r"[a-zA-Z0-9-]+", name) for name in names)


def test_rows_with_quotes_and_backslashes(vocab_model: Any) -> None:
    text = '- Poster "Blue Hour" 2\n- Cable C:\\tmp\\x 3\n'
    item = _object(name={"type": "string"}, quantity={"type": "integer"})
    schema = _list_of(item)
    out = _bounded(schema, text)["properties"]["items"]
    assert len(out["prefixItems"]) == 2
    gbnf = _gbnf(schema, text)
    _check(vocab_model, gbnf)
    answer = {
        "items": [
            {"name": 'Poster "Blue Hour"', "quantity": 2},
            {"name": "Cable C:\\tmp\\x", "quantity": 3},
        ]
    }
    assert grammar_admits(vocab_model, gbnf, _answer(answer), ends=True)


def test_unicode_rows_and_crlf(vocab_model: Any) -> None:
    text = "1. Cr\u00e8me br\u00fbl\u00e9e x2\r\n2. \u00c4pfel x12\r\n"
    item = _object(name={"type": "string"}, quantity={"type": "integer"})
    gbnf = _gbnf(_list_of(item), text)
    _check(vocab_model, gbnf)
    answer = {
        "items": [
            {"name": "Cr\u00e8me br\u00fbl\u00e9e", "quantity": 2},
            {"name": "\u00c4pfel", "quantity": 12},
        ]
    }
    assert grammar_admits(vocab_model, gbnf, _answer(answer), ends=True)
    swapped = {"items": [{**answer["items"][0], "quantity": 12}, answer["items"][1]]}
    assert not grammar_admits(vocab_model, gbnf, _answer(swapped), ends=True)


def test_a_tab_ends_a_row_s_copy(vocab_model: Any) -> None:
    text = "Anna Berg\tkitchen\t3\nTom Li\tfront desk\t5\n"
    item = _object(name={"type": "string"}, station={"type": "string"}, hours={"type": "integer"})
    gbnf = _gbnf(_list_of(item), text)
    _check(vocab_model, gbnf)
    good = {
        "items": [
            {"name": "Anna Berg", "station": "kitchen", "hours": 3},
            {"name": "Tom Li", "station": "front desk", "hours": 5},
        ]
    }
    assert grammar_admits(vocab_model, gbnf, _answer(good), ends=True)
    spill = {"items": [{**good["items"][0], "name": "Anna Berg kitchen"}, good["items"][1]]}
    assert not grammar_admits(vocab_model, gbnf, _answer(spill), ends=True)


def test_one_word_rows(vocab_model: Any) -> None:
    text = "Colours:\n- Red 1\n- Blue 2\n"
    item = _object(colour={"type": "string"}, rank={"type": "integer"})
    gbnf = _gbnf(_list_of(item), text)
    _check(vocab_model, gbnf)
    answer = {"items": [{"colour": "Red", "rank": 1}, {"colour": "Blue", "rank": 2}]}
    assert grammar_admits(vocab_model, gbnf, _answer(answer), ends=True)


def test_a_very_long_row(vocab_model: Any) -> None:
    long_words = " ".join(f"word{i}" for i in range(300))
    text = f"- Alpha {long_words} 7\n- Beta 8\n"
    item = _object(name={"type": "string"}, n={"type": "integer"})
    gbnf = _gbnf(_list_of(item), text)
    _check(vocab_model, gbnf)
    answer = {"items": [{"name": "Alpha word0 word1", "n": 7}, {"name": "Beta", "n": 8}]}
    assert grammar_admits(vocab_model, gbnf, _answer(answer), ends=True)


def test_items_by_reference_with_a_nullable_field(vocab_model: Any) -> None:
    text = "1. Milk 2 litres\n2. Eggs 12 pieces\n"
    schema = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/Line"}}},
        "required": ["items"],
        "$defs": {
            "Line": _object(
                name={"type": "string"},
                quantity={"anyOf": [{"type": "integer"}, {"type": "null"}]},
            )
        },
    }
    out = _bounded(schema, text)["properties"]["items"]
    assert len(out["prefixItems"]) == 2
    gbnf = _gbnf(schema, text)
    _check(vocab_model, gbnf)
    answer = {"items": [{"name": "Milk", "quantity": 2}, {"name": "Eggs", "quantity": 12}]}
    assert grammar_admits(vocab_model, gbnf, _answer(answer), ends=True)
    wrong = {"items": [{"name": "Milk", "quantity": 12}, {"name": "Eggs", "quantity": 12}]}
    assert not grammar_admits(vocab_model, gbnf, _answer(wrong), ends=True)


def test_items_with_a_nested_list_and_two_lists(vocab_model: Any) -> None:
    text = "1. Milk 2 litres\n2. Eggs 12 pieces\n\nTotal 3.50 EUR\n"
    inner = _list_of(_object(part={"type": "string"}, n={"type": "integer"}), key="parts")
    item = _object(name={"type": "string"}, quantity={"type": "integer"}, detail=inner)
    schema = _object(
        lines={"type": "array", "items": item},
        again={"type": "array", "items": item},
    )
    out = _bounded(schema, text)["properties"]
    assert len(out["lines"]["prefixItems"]) == 2
    assert "prefixItems" not in out["again"]
    gbnf = _gbnf(schema, text)
    _check(vocab_model, gbnf)


def test_more_rows_than_max_items_is_an_ordinary_list(vocab_model: Any) -> None:
    item = _object(name={"type": "string"}, quantity={"type": "integer"})
    schema = _list_of(item, maxItems=2)
    out = _bounded(schema, GROCERIES)["properties"]["items"]
    assert "prefixItems" not in out and out["maxItems"] == 2
    _check(vocab_model, _gbnf(schema, GROCERIES))


def test_the_windows_rules_are_unique_across_blocks(vocab_model: Any) -> None:
    # The runners' blocks overlap (each group, both together, the records): one list takes
    # one of them, another list another; every rule name is defined once.
    schema = _object(
        women={"type": "array", "items": RUNNER},
        men={"type": "array", "items": RUNNER},
    )
    _check(vocab_model, _gbnf(schema, RUNNERS))


# --- the given -> required logic ----------------------------------------------------------------


def test_a_given_nullable_field_is_written_and_not_null() -> None:
    text = "Next meeting: 5 March 2025. Venue to be confirmed."
    schema = _object(
        required=False,
        next_meeting={"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
        venue={"anyOf": [{"type": "string"}, {"type": "null"}]},
    )
    out = _bounded(schema, text)
    assert out["required"] == ["next_meeting"]
    assert {"type": "null"} not in out["properties"]["next_meeting"]["anyOf"]


def test_given_inside_list_items_is_not_required() -> None:
    text = "Call Anna on +44 20 7946 0958 or Tom, no phone."
    item = _object(
        required=False,
        name={"type": "string"},
        phone={"anyOf": [{"type": "string"}, {"type": "null"}]},
    )
    out = _bounded(_list_of(item), text)["properties"]["items"]
    assert "required" not in out["items"]


def test_the_union_s_description_reaches_its_branches() -> None:
    text = "Weekday access 07:30 to 19:00."
    schema = _object(
        access={
            "description": "Start of weekday access, HH:MM",
            "anyOf": [{"type": "string"}, {"type": "null"}],
        }
    )
    out = _bounded(schema, text)["properties"]["access"]
    kinds = [sentinel_kind(b["const"]) for b in out["anyOf"] if "const" in b]
    assert kinds and kinds[0].startswith("time")


def test_a_clock_named_as_a_range_end_is_a_time() -> None:
    # (with the words a text may say a start with: "First lessons in the week of ...")
    start = "start-first-starts-starting-begins-commences"
    assert copy_kind({"type": "string"}, "start_time") == f"time/start/{start}"
    assert copy_kind({"type": "string"}, "finish_time") == "string//finish"  # often a duration
    assert (
        copy_kind({"type": "string", "description": "free text"}, "start_time")
        == f"string//{start}"
    )


# --- the grammar's check of a draft (FirstChoiceGrammarSampler.admitted) -----------------------


def _bare_sampler(vocab_model: Any, gbnf: str) -> Any:
    import ctypes

    import llama_cpp
    import numpy as np

    from openai_structured.local._decoding import FirstChoiceGrammarSampler

    sampler = object.__new__(FirstChoiceGrammarSampler)
    b = llama_cpp.llama_cpp
    dtype = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)
    assert dtype.itemsize == ctypes.sizeof(b.llama_token_data)
    sampler._b = b
    sampler._np = np
    sampler._top_k = sampler._wide_k = sampler._chain = None  # close() frees the grammar only
    sampler._one = np.zeros(1, dtype=dtype)
    sampler._one_arr = sampler._array(sampler._one)
    sampler._grammar = llama_cpp.llama_sampler_init_grammar(
        vocab_model._model.vocab, gbnf.encode(), b"root"
    )
    assert sampler._grammar
    return sampler


def test_admitted_counts_the_admitted_prefix_and_leaves_the_grammar_as_it_was(
    vocab_model: Any,
) -> None:
    import llama_cpp

    gbnf = 'root ::= "{\\"name\\": \\"" [a-z]+ "\\"}"\n'
    sampler = _bare_sampler(vocab_model, gbnf)
    try:

        def tokens(text: str) -> list[int]:
            return list(vocab_model.tokenize(text.encode(), add_bos=False, special=False))

        good = tokens('{"name": "abc"}')
        assert sampler.admitted(good) == len(good)
        bad = tokens('{"name": "abc1"}')
        assert 0 < sampler.admitted(bad) < len(bad)
        assert sampler.admitted([]) == 0
        # The live grammar has not moved: the whole answer is still admitted from the start.
        assert sampler.admitted(good) == len(good)
        assert sampler._admits(good[0])
        llama_cpp.llama_sampler_accept(sampler._grammar, good[0])
        assert sampler.admitted(good[1:]) == len(good) - 1
    finally:
        sampler.close()


def test_key_tokens_draft_nothing_without_the_request_s_sampler() -> None:
    from openai_structured.local._decoding import KeyTokens

    class FakeLlama:
        def detokenize(self, ids: list[int]) -> bytes:
            return b"".join(bytes([i]) for i in ids)

        def tokenize(self, text: bytes, **_: Any) -> list[int]:
            return list(text)

    llama = FakeLlama()
    keys = KeyTokens(llama)
    keys.begin(KeyDraft(_object(name={"type": "string"})))
    assert llama._openai_structured_sampler is None  # type: ignore[attr-defined]
    out = keys(list(b'{"'))
    assert len(out) == 0  # no sampler yet: nothing drafted (llama.cpp's would need logits)


def test_the_drafts_of_rows_match_the_first_row_s_keys() -> None:
    draft = KeyDraft(_bounded(_list_of(LOAN), LOANS))
    draft.feed('{"items": [')
    assert draft.next_text() == '{"title": "'
