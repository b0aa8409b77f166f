"""Values copied from the text (issue 15): what :mod:`openai_structured.local._copying` finds in
a text, and the grammar rules it makes of them, checked by llama.cpp's own grammar parser and
sampler (the bundled model's vocabulary only, no weights, no server).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from local_support import grammar_admits, grammar_parses

from openai_structured.local._bounds import caps_for, grammar_schema
from openai_structured.local._copying import (
    KINDS,
    MAX_WORDS,
    CopySource,
    copy_kind,
    sentinel,
)

# --- what a text holds (pure) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("node", "kind"),
    [
        ({"type": "string"}, "string"),
        ({"type": "string", "maxLength": 40}, None),  # a copied run would not keep to it
        ({"type": "integer", "minimum": 0}, "unsigned-integer"),
        ({"type": "number", "minimum": 0.0}, "unsigned-number"),
        ({"type": "number", "exclusiveMinimum": 0}, None),  # 0 is not allowed: the text's may be
        ({"type": "integer", "minimum": 1, "maximum": 5}, None),
        ({"type": "number", "minimum": -5}, "number"),
        ({"type": "string", "format": "date"}, "date"),
        ({"type": "string", "format": "time"}, "time"),
        ({"type": "string", "format": "date-time"}, "date-time"),
        ({"type": "string", "description": "Start, as HH:MM"}, "time"),
        ({"type": "string", "description": "The 24-hour clock time"}, "string"),
        ({"type": "string", "description": "HH:MM:SS"}, "string"),
        ({"type": "integer"}, "integer"),
        ({"type": "number"}, "number"),
        ({"type": "string", "format": "email"}, None),
        ({"type": "string", "pattern": "^[A-Z]+$"}, None),
        ({"type": "string", "enum": ["a", "b"]}, None),
        ({"type": "string", "const": "a"}, None),
        ({"type": "integer", "enum": [1, 2]}, None),
        ({"type": "boolean"}, None),
        ({"type": "object"}, None),
        ({}, None),
    ],
)
def test_copy_kind_follows_what_the_schema_says_a_value_is(
    node: dict[str, Any], kind: str | None
) -> None:
    assert copy_kind(node) == kind


def test_each_kind_has_its_own_placeholder() -> None:
    placeholders = {sentinel(kind) for kind in KINDS}
    assert len(placeholders) == len(KINDS)
    # No placeholder is a prefix of another's quoted form (date / date-time are replaced apart).
    quoted = [f'"{p}"' for p in placeholders]
    assert not any(a != b and a in b for a in quoted for b in quoted)


@pytest.mark.parametrize(
    ("text", "dates"),
    [
        ("Signed on 7 June 2024.", ["2024-06-07"]),
        ("Signed on 7th of June, 2024.", ["2024-06-07"]),
        ("Signed June 7, 2024.", ["2024-06-07"]),
        ("Signed Jun 7 2024.", ["2024-06-07"]),
        ("Signed Sept. 4 2023.", ["2023-09-04"]),
        ("Signed 2024-06-07.", ["2024-06-07"]),
        ("Signed 2024-6-7.", ["2024-06-07"]),
        ("Signed 25/12/2023.", ["2023-12-25"]),  # only one reading is a date
        ("Signed 12/25/2023.", ["2023-12-25"]),
        ("Signed 25.12.2023.", ["2023-12-25"]),
        ("Signed 31 February 2024.", []),  # not a date
        ("No date here, only 2024 and June.", []),
        (
            "Opened 1 March 2024, closed 2024-03-05, reopened March 9, 2024.",
            ["2024-03-01", "2024-03-05", "2024-03-09"],
        ),  # in order of appearance
        ("7 June 2024, again 7 June 2024 and 2024-06-07.", ["2024-06-07"]),  # once each
    ],
)
def test_dates_written_any_common_way_come_back_in_iso_form(text: str, dates: list[str]) -> None:
    assert CopySource(text).dates() == dates


def test_an_ambiguous_numeric_date_gives_both_readings_day_first() -> None:
    assert CopySource("Due 03/04/2024.").dates() == ["2024-04-03", "2024-03-04"]
    assert CopySource("Due 03.04.2024.").dates() == ["2024-04-03", "2024-03-04"]
    assert CopySource("Due 04/04/2024.").dates() == ["2024-04-04"]


def test_a_day_and_month_without_year_take_the_year_of_the_nearest_full_date() -> None:
    filler = " ".join(["word"] * 40)
    text = f"Invoice of 2 January 2019. {filler} Delivered 19 February, paid 3 March 2021."
    source = CopySource(text)
    # "19 February" is nearer to "3 March 2021" than to "2 January 2019".
    assert source.dates() == ["2019-01-02", "2021-02-19", "2021-03-03"]
    before = CopySource(f"Delivered 19 February. {filler} Invoice of 2 January 2019.")
    assert before.dates() == ["2019-02-19", "2019-01-02"]
    # Without any full date there is no year to give it: no date at all.
    assert CopySource("Delivered 19 February.").dates() == []


@pytest.mark.parametrize(
    ("text", "times"),
    [
        ("Doors at 8 pm.", ["20:00"]),
        ("Doors at 8pm.", ["20:00"]),
        ("Doors at 8 p.m. sharp.", ["20:00"]),
        ("Doors at 10.30am.", ["10:30"]),
        ("Doors at 10:30.", ["10:30"]),
        ("Doors at 20:00:15.", ["20:00"]),
        ("Doors at 9:05 AM.", ["09:05"]),
        ("Doors at noon.", ["12:00"]),
        ("Doors at midday.", ["12:00"]),
        ("Doors at midnight.", ["00:00"]),
        ("Doors at 12 am.", ["00:00"]),
        ("Doors at 12 pm.", ["12:00"]),
        ("Doors at 13 pm or 25:00 or 10:75.", []),  # not times
        ("Doors at 10:30, last entry 8 pm, bar until 10:30.", ["10:30", "20:00"]),
    ],
)
def test_times_come_back_as_hh_mm(text: str, times: list[str]) -> None:
    assert CopySource(text).times() == times


def test_a_date_time_is_each_date_at_each_time_or_at_midnight() -> None:
    both = CopySource("On 7 June 2024 or 2024-06-08, at 8 pm or 10:30.")
    assert both.values("date-time") == [
        json.dumps(v)
        for v in (
            "2024-06-07T20:00:00",
            "2024-06-07T10:30:00",
            "2024-06-08T20:00:00",
            "2024-06-08T10:30:00",
        )
    ]
    assert CopySource("On 7 June 2024.").values("date-time") == ['"2024-06-07T00:00:00"']
    assert CopySource("At 8 pm.").values("date-time") == []
    assert not CopySource("At 8 pm.").has("date-time")


@pytest.mark.parametrize(
    ("text", "integers", "numbers"),
    [
        ("Total 1,234.50 EUR.", [], ["1234.50"]),
        ("Total 1,234 EUR.", ["1234"], ["1234"]),
        ("Total 12,345,678.", ["12345678"], ["12345678"]),
        ("Total 3.0 kg.", ["3"], ["3.0"]),
        ("Total 0.25 kg.", [], ["0.25"]),
        ("Room 007.", ["7"], ["7"]),
        ("The 70th time.", ["70"], ["70"]),
        ("Six adults and twelve children, one dog.", ["6", "12", "1"], ["6", "12", "1"]),
        ("It fell to -3 degrees.", ["3"], ["3"]),  # the sign is the rule's, not the value's
        ("Version v2 of A4.", [], []),  # digits inside a word are not numbers
        ("Nothing to count.", [], []),
    ],
)
def test_numbers_are_the_ones_the_text_writes_without_separators(
    text: str, integers: list[str], numbers: list[str]
) -> None:
    source = CopySource(text)
    assert source.values("integer") == integers
    assert source.values("number") == numbers
    assert source.has("number") == bool(numbers)
    for value in numbers:
        json.loads(value)  # each one is a JSON number as it stands


def test_words_keep_whether_whitespace_followed_them() -> None:
    source = CopySource("Dr. Ada  Okafor,\nLagos")
    assert source.words == (
        ("Dr", ""),
        (".", " "),
        ("Ada", " "),
        ("Okafor", ""),
        (",", "\n"),  # a line break is kept: it may be written as a space or as one
        ("Lagos", ""),
    )


def test_strings_are_copied_only_from_a_text_of_usable_length() -> None:
    assert CopySource("a b c").usable
    assert not CopySource("").usable
    assert not CopySource("   \n ").has("string")
    assert CopySource(" ".join(["w"] * MAX_WORDS)).usable
    assert not CopySource(" ".join(["w"] * (MAX_WORDS + 1))).usable


def test_the_rules_text_for_each_kind() -> None:
    source = CopySource("Ann paid 1,234.50 and 42 on 7 June 2024 at 8 pm.")
    rules = source.rules(["integer", "number", "date", "time", "date-time"])
    assert rules == {  # (not the date's 7 nor its 2024: a plain number is no part of a date)
        "copy-integer": '"-"? ("42" | "8")',
        "copy-number": '"-"? ("1234.50" | "42" | "8")',
        "copy-date": '"\\"2024-06-07\\""',
        "copy-time": '"\\"20:00\\""',
        "copy-date-time": '"\\"2024-06-07T20:00:00\\""',
    }
    # A span may start at a word or a sign such as "#", never at a comma or a full stop, nor
    # at a number that would stand alone ("12,": a number is not a text).
    spans = CopySource("Call #12, now.").span_rules()
    assert spans["copy-string"] == '"\\"" (copy-w0 | copy-w1 | copy-w4) "\\""'
    assert spans["copy-w1"] == '"#" (copy-w2)?'
    assert spans["copy-w5"] == '"."'  # the last word ends every span that reaches it


# --- the rules in llama.cpp ------------------------------------------------------------------


def _check_parses(model: Any, gbnf: str) -> None:
    """Both parsers accept ``gbnf``: llama-cpp-python's and llama.cpp's (the server's)."""
    from llama_cpp.llama_grammar import LlamaGrammar

    LlamaGrammar.from_string(gbnf, verbose=False)
    assert grammar_parses(model, gbnf), f"llama.cpp rejects the grammar:\n{gbnf}"


def _admits(model: Any, gbnf: str, text: str) -> bool:
    """Does the grammar admit the whole of ``text`` and then its end?"""
    return grammar_admits(model, gbnf, text, ends=True)


def _grammar(schema: dict[str, Any], text: str) -> str:
    from openai_structured.local._decoding import to_gbnf

    caps = caps_for(text)
    source = CopySource(text)
    return to_gbnf(grammar_schema(schema, caps, copy_from=source), caps, source)


def _one(field: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"v": field}, "required": ["v"]}


AWKWARD = (
    'She wrote "C:\\temp\\new" twice; \\ alone. Zoë Müller — café ☕ | (a) ::= b* c+ [d] {e} '
    "x\x07y 'quoted' #7 £5, on 7 June 2024 at 8 pm: 1,234.50."
)


def test_rules_from_an_awkward_text_parse_in_both_llama_cpp_parsers(vocab_model: Any) -> None:
    schema = {
        "type": "object",
        "properties": {kind: {"type": "string"} for kind in ("a", "b")}
        | {
            "n": {"type": "number"},
            "i": {"type": ["integer", "null"]},
            "un": {"type": "number", "minimum": 0},
            "ui": {"type": "integer", "minimum": 0},
            "d": {"type": "string", "format": "date"},
            "t": {"type": "string", "format": "time"},
            "dt": {"type": "string", "format": "date-time"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["a", "n", "d", "t", "dt"],
    }
    gbnf = _grammar(schema, AWKWARD)
    for kind in KINDS:  # a field's rule is named by its kind, then its name's label words
        assert re.search(rf"^copy-{kind}(-[a-z0-9-]*)? ::=", gbnf, re.MULTILINE), kind
    assert "@@" not in gbnf  # every placeholder was replaced
    _check_parses(vocab_model, gbnf)


@pytest.mark.parametrize(
    ("copied", "admitted"),
    [
        ('"C:\\temp\\new"', True),
        ("C:\\temp", True),
        ('"C:', True),
        ("twice; \\ alone.", True),
        ("\\ alone.", False),  # a span starts at a word or a sign, not a backslash
        ("Zoë Müller — café ☕ |", True),
        ("(a) ::= b* c+ [d] {e}", True),
        ("x\x07y", True),
        ("'quoted' #7 £5", True),
        ('C:\\temp\\new"', True),
        ("C:/temp", False),
        ("Zoe Muller", False),
        ("\x07y", False),  # starts at a control character, not a word or a sign
    ],
)
def test_quotes_backslashes_and_symbols_are_copied_json_escaped(
    vocab_model: Any, copied: str, admitted: bool
) -> None:
    gbnf = _grammar(_one({"type": "string"}), AWKWARD)
    answer = json.dumps({"v": copied}, ensure_ascii=False)
    assert _admits(vocab_model, gbnf, answer) is admitted


@pytest.mark.parametrize(
    ("value", "admitted"),
    [
        ("Dr. Ada Okafor, Lagos", True),
        ("Ada Okafor", True),
        ("Okafor, Lagos", True),  # across the line break, written with one space
        ("Ada", True),
        ("Lagos", True),
        ("Dr", True),
        ("Ada  Okafor", False),  # the text's two spaces are written as one
        ("Okafor,\nLagos", True),  # or with the text's line break
        ("Okafor Lagos", False),  # a run of words, none skipped
        ("Lagos Ada", False),
        (", Lagos", False),  # not from a comma
        ("Ad", False),  # whole words
        ("Bola Okafor", False),
        ("", False),
    ],
)
def test_a_plain_string_admits_runs_of_the_text_s_words_only(
    vocab_model: Any, value: str, admitted: bool
) -> None:
    gbnf = _grammar(_one({"type": "string"}), "Dr. Ada  Okafor,\nLagos")
    assert _admits(vocab_model, gbnf, json.dumps({"v": value})) is admitted


def test_a_list_of_strings_copies_each_item(vocab_model: Any) -> None:
    gbnf = _grammar(_one({"type": "array", "items": {"type": "string"}}), "Present: Ann, Bob.")
    assert _admits(vocab_model, gbnf, '{"v": ["Ann", "Bob"]}')
    assert _admits(vocab_model, gbnf, '{"v": []}')
    assert not _admits(vocab_model, gbnf, '{"v": ["Ann", "Chen"]}')


@pytest.mark.parametrize(
    ("field", "text", "value", "admitted"),
    [
        ({"type": "number"}, "Total 1,234.50 EUR.", "1234.50", True),
        ({"type": "number"}, "Total 1,234.50 EUR.", "-1234.50", True),
        ({"type": "number"}, "Total 1,234.50 EUR.", "1,234.50", False),
        ({"type": "number"}, "Total 1,234.50 EUR.", "1234.5", False),  # as the text writes it
        ({"type": "number"}, "Total 1,234.50 EUR.", "99", False),
        ({"type": "integer"}, "Three adults, 42 kg.", "3", True),
        ({"type": "integer"}, "Three adults, 42 kg.", "42", True),
        ({"type": "integer"}, "Three adults, 42 kg.", "4", False),
        ({"type": "integer"}, "No count here.", "97", True),  # nothing to copy: any integer
        ({"type": ["integer", "null"]}, "Three adults.", "null", True),
        ({"type": "integer"}, "Three adults.", "null", False),
        ({"type": "string", "format": "date"}, "On 7 June 2024.", '"2024-06-07"', True),
        ({"type": "string", "format": "date"}, "On 7 June 2024.", '"2024-06-08"', False),
        ({"type": "string", "format": "date"}, "On 7 June 2024.", '"7 June 2024"', False),
        ({"type": "string", "format": "date"}, "On 03/04/2024.", '"2024-04-03"', True),
        ({"type": "string", "format": "date"}, "On 03/04/2024.", '"2024-03-04"', True),
        ({"type": "string", "format": "date"}, "Some day.", '"1999-12-31"', True),
        (
            {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
            "On 7 June 2024.",
            "null",
            True,
        ),
        ({"type": "string", "format": "time"}, "Doors 8 pm.", '"20:00"', True),
        ({"type": "string", "format": "time"}, "Doors 8 pm.", '"21:00"', False),
        ({"type": "string", "description": "HH:MM"}, "Doors 8 pm.", '"20:00"', True),
        ({"type": "string", "description": "HH:MM"}, "Doors 8 pm.", '"Doors"', False),
        (
            {"type": "string", "format": "date-time"},
            "On 7 June 2024, 8 pm.",
            '"2024-06-07T20:00:00"',
            True,
        ),
        (
            {"type": "string", "format": "date-time"},
            "On 7 June 2024, 8 pm.",
            '"2024-06-07T00:00:00"',
            False,
        ),
        ({"enum": ["red", "blue"]}, "It was green.", '"blue"', True),  # enums are untouched
        ({"enum": ["red", "blue"]}, "It was green.", '"green"', False),
        ({"type": "boolean"}, "It was green.", "true", True),
    ],
)
def test_a_typed_value_is_one_the_text_holds_or_its_ordinary_grammar_when_none(
    vocab_model: Any, field: dict[str, Any], text: str, value: str, admitted: bool
) -> None:
    gbnf = _grammar(_one(field), text)
    assert _admits(vocab_model, gbnf, '{"v": ' + value + "}") is admitted


def test_only_the_user_messages_are_copied_from(vocab_model: Any) -> None:
    import llama_cpp

    from openai_structured.local._decoding import shape_chat_request

    def parses(gbnf: str) -> bool:
        sampler = llama_cpp.llama_sampler_init_grammar(
            vocab_model._model.vocab, gbnf.encode(), b"root"
        )
        if sampler:
            llama_cpp.llama_sampler_free(sampler)
        return bool(sampler)

    schema = {
        "type": "object",
        "properties": {"who": {"type": "string"}, "day": {"type": "string", "format": "date"}},
    }
    request = {
        "messages": [
            {"role": "system", "content": "Extract the visit. Example: Bo on 1 January 1999."},
            {"role": "user", "content": "Ann visited on 7 June 2024."},
            {"role": "assistant", "content": '{"who": "Zed", "day": "2030-01-01"}'},
        ],
        "response_format": {"type": "json_object", "schema": schema},
    }
    shaped = shape_chat_request(request, count_tokens=len, n_ctx=4096, parses=parses)
    gbnf = shaped["grammar"]._grammar
    assert 'copy-date----day ::= "\\"2024-06-07\\""' in gbnf  # the date, by its label
    assert _admits(vocab_model, gbnf, '{"who": "Ann", "day": "2024-06-07"}')
    for other in ('{"who": "Bo"}', '{"day": "1999-01-01"}', '{"who": "Zed"}'):
        assert not _admits(vocab_model, gbnf, other)
    off = shape_chat_request(request, count_tokens=len, n_ctx=4096, parses=parses, copying=False)
    assert "copy-" not in off["grammar"]._grammar
    assert _admits(vocab_model, off["grammar"]._grammar, '{"who": "Zed"}')
    long = {
        **request,
        "messages": [{"role": "user", "content": " ".join(["Ann"] * (MAX_WORDS + 1))}],
    }
    too_long = shape_chat_request(long, count_tokens=len, n_ctx=100_000, parses=parses)
    assert "copy-string" not in too_long["grammar"]._grammar


# --- found by review, fixed ----------------------------------------------------------------


def test_an_iso_date_time_in_the_text_is_one_a_date_time_field_may_copy() -> None:
    source = CopySource("Created 2024-06-07T09:30:00Z, reviewed 8 June 2024.")
    assert '"2024-06-07T09:30:00"' in source.values("date-time")


def test_a_copied_string_keeps_the_schema_s_max_length(vocab_model: Any) -> None:
    gbnf = _grammar(_one({"type": "string", "maxLength": 3}), "Ada Okafor paid.")
    assert _admits(vocab_model, gbnf, '{"v": "Ada"}')
    assert not _admits(vocab_model, gbnf, '{"v": "Ada Okafor"}')


# --- numbers in words, the order of numeric dates, an airline's date ------------------------


def test_numbers_written_in_words_up_to_ninety_nine() -> None:
    source = CopySource("Episode forty-two: twenty one guests, nineteen hosts, six people.")
    assert source.values("integer") == ["42", "21", "19", "6"]


@pytest.mark.parametrize(
    ("text", "dates"),
    [
        ("Booked in: 09/10/2024. Labour at £40/hr.", ["2024-10-09"]),  # pounds: day first
        ("Signed 09/10/2024, fee $40.", ["2024-09-10"]),  # dollars only: month first
        ("Week 27/09/2024; booked 09/10/2024.", ["2024-09-27", "2024-10-09"]),  # as it says
        ("Paid 04/15/2024; due 05/01/2024 in EUR.", ["2024-04-15", "2024-05-01"]),
        ("On 09/10/2024.", ["2024-10-09", "2024-09-10"]),  # nothing says: both readings
        ("Flight AU 2318   Date: 21NOV24", ["2024-11-21"]),
    ],
)
def test_a_numeric_date_is_read_in_the_order_the_text_uses(text: str, dates: list[str]) -> None:
    assert CopySource(text).dates() == dates


@pytest.mark.parametrize(
    ("text", "kind", "values"),
    [
        # "no" right before what the field counts, "waived"/"none" right after its label: 0
        ("1 cabin bag up to 8 kg, no checked bags included. Seat 23C.", "integer//checked-bags",
         ["0"]),
        ("Monthly fee 24.99\nJoining fee: waived\n", "number//joining-fee", ["24.99", "0"]),
        ("09:00-13:00, no break - leaf clearing", "integer/minutes/break", ["0"]),
        ("Delivery: free of charge. Items 3.", "number//delivery", ["0"]),
        # not a number's abbreviation, not another label's "none", not with no label word near
        ("Frame no.: 12. Room no 5.", "integer//frame", ["12"]),
        ("Other pets: none      Children at home: one, aged 9", "integer//children-household",
         ["1"]),
        ("No refunds. Adults 12.", "integer//adults", ["12"]),
    ],
)  # fmt: skip
def test_a_zero_where_the_text_says_there_is_none(text: str, kind: str, values: list[str]) -> None:
    assert CopySource(text).values(kind) == values
