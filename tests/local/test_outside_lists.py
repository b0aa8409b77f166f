"""Where a plain string is copied from: not from rows a list takes, not across a line that
does not wrap, and after its label word when no ``Label:`` names it.

The pure parts (``outside_lists``, ``CopySource.named_starts``, the span rules), then the
grammar in llama.cpp (a vocabulary-only model).
"""

from __future__ import annotations

import json
from typing import Any

from local_support import grammar_admits, grammar_parses

from openai_structured.local._bounds import caps_for, grammar_schema, outside_lists
from openai_structured.local._copying import CopySource, rule_name

TOUR = (
    "THE LANTERN SOCIETY - European Tour 2025\n"
    "\n"
    "Thu 8 May - Salle Merode, Brussels, BE\n"
    "Sat 10 May - Halle Kessel, Hamburg, DE\n"
    "Wed 14 May - Sala Ferrum, Madrid, ES\n"
    "\n"
    "Support on all dates: Milo & the Ferns. Standing tickets from EUR 32.\n"
)

TOUR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "headliner": {"type": "string"},
        "shows": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "date": {"type": "string", "format": "date"},
                    "venue": {"type": "string"},
                    "city": {"type": "string"},
                },
                "required": ["date", "venue", "city"],
            },
        },
        "support_act": {"type": "string"},
    },
    "required": ["headliner", "shows", "support_act"],
}

RESULTS = (
    "Harlow Bay Sailing Club - Wednesday Evening Series, Race 6\n"
    "Sailed 21 August 2024. Wind SW 12-15 knots.\n"
    "\n"
    "Pos  Boat           Helm              Corrected\n"
    "1    Marram Grass   Priya Okonjo      0:52:18\n"
    "2    Second Wind    Dai Pritchard     0:53:02\n"
    "\n"
    "Curated by Dr Ines Calloway. Thanks to tonight's race officer, Jenny Ashdown.\n"
)


def _words(source: CopySource, starts: list[int]) -> list[str]:
    return [source.words[i][0] for i in starts]


def test_the_rows_a_list_takes_are_no_place_for_the_other_strings(vocab_model: Any) -> None:
    from openai_structured.local._decoding import to_gbnf

    caps = caps_for(TOUR)
    plain = CopySource(TOUR)
    source = outside_lists(TOUR_SCHEMA, caps, plain)
    assert plain.taken == ()
    assert [TOUR[a:b] for a, b in source.taken] == [
        "Thu 8 May - Salle Merode, Brussels, BE\n"
        "Sat 10 May - Halle Kessel, Hamburg, DE\n"
        "Wed 14 May - Sala Ferrum, Madrid, ES"
    ]
    gbnf = to_gbnf(grammar_schema(TOUR_SCHEMA, caps, copy_from=source), caps, source)
    assert grammar_parses(vocab_model, gbnf)
    shows = [
        {"date": "2025-05-08", "venue": "Salle Merode", "city": "Brussels"},
        {"date": "2025-05-10", "venue": "Halle Kessel", "city": "Hamburg"},
        {"date": "2025-05-14", "venue": "Sala Ferrum", "city": "Madrid"},
    ]

    def admits(support_act: str, headliner: str = "THE LANTERN SOCIETY") -> bool:
        answer = {"headliner": headliner, "shows": shows, "support_act": support_act}
        text = json.dumps(answer, separators=(",", ":"))
        return grammar_admits(vocab_model, gbnf, text, ends=True)

    assert admits("Milo & the Ferns")
    # The rows stay the items' own: no other field copies from them (the rows themselves
    # still do: the shows above are admitted).
    assert not admits("Halle Kessel")
    assert not admits("Milo & the Ferns", headliner="Sala Ferrum")
    # Without the lists' rows known, the headliner could be a venue.
    loose = to_gbnf(grammar_schema(TOUR_SCHEMA, caps, copy_from=plain), caps, plain)
    text = json.dumps(
        {"headliner": "Sala Ferrum", "shows": shows, "support_act": "Milo & the Ferns"},
        separators=(",", ":"),
    )
    assert grammar_admits(vocab_model, loose, text, ends=True)


def test_a_tables_heading_line_goes_with_its_rows() -> None:
    schema = {
        "type": "object",
        "properties": {
            "club": {"type": "string"},
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "boat": {"type": "string"},
                        "corrected": {"type": "string", "format": "time"},
                    },
                    "required": ["boat", "corrected"],
                },
            },
        },
        "required": ["club", "results"],
    }
    source = outside_lists(schema, caps_for(RESULTS), CopySource(RESULTS))
    [(start, end)] = source.taken
    assert RESULTS[start:end].startswith("Pos  Boat")
    assert RESULTS[start:end].endswith("0:53:02")
    # No list takes rows: nothing is set aside.
    flat = {"type": "object", "properties": {"club": {"type": "string"}}}
    assert outside_lists(flat, caps_for(RESULTS), CopySource(RESULTS)).taken == ()


def test_a_copy_crosses_a_line_break_only_where_a_paragraph_wraps(vocab_model: Any) -> None:
    from openai_structured.local._decoding import to_gbnf

    text = (
        "On the night of 9 January a pipe burst and the neighbours Per Andersson and Lina\n"
        "Berg saw the water coming from the ceiling.\n"
        "\n"
        "Venue: Halle Kessel\n"
        "Hamburg, DE\n"
    )
    schema = {"type": "object", "properties": {"who": {"type": "string"}}, "required": ["who"]}
    caps = caps_for(text)
    source = CopySource(text)
    gbnf = to_gbnf(grammar_schema(schema, caps, copy_from=source), caps, source)

    def admits(value: str) -> bool:
        answer = json.dumps({"who": value}, separators=(",", ":"))
        return grammar_admits(vocab_model, gbnf, answer, ends=True)

    assert admits("Lina Berg")  # a long line, wrapped
    assert admits("Halle Kessel")
    assert not admits("Halle Kessel Hamburg")  # a short line: the next is another line
    assert not admits("ceiling. Venue")  # a blank line between


def test_a_label_word_without_a_colon_finds_the_name_it_ends_begins_or_labels() -> None:
    source = CopySource(RESULTS)
    words = source.words
    series = source.named_starts(("series",))
    assert _words(source, series) == ["Wednesday"]
    assert _words(source, source.named_starts(("club",))) == ["Harlow"]
    assert _words(source, source.named_starts(("curator",))) == ["Dr"]
    assert _words(source, source.named_starts(("officer",))) == ["Jenny"]
    # At a sentence's start the label word is no name's first word: "Wind SW", not "Wind".
    # (And "Second Wind", a name it ends: a boat of the table, which its list takes.)
    assert _words(source, source.named_starts(("wind",))) == ["SW", "Second"]
    hotel = CopySource("thank you for choosing Hotel Alpenblick in Innsbruck.")
    assert _words(hotel, hotel.named_starts(("hotel",))) == ["Hotel"]  # (not inside the name)
    # A label word followed by no name gives nothing: "The gallery is step-free".
    plain = CopySource("The gallery is step-free with lift access.")
    assert plain.named_starts(("gallery",)) == []
    assert series and all(words[i][0][0].isupper() for i in series)


def test_a_named_start_narrows_the_field_and_a_label_still_comes_first() -> None:
    schema = {
        "type": "object",
        "properties": {"series": {"type": "string"}, "race_officer": {"type": "string"}},
        "required": ["series", "race_officer"],
    }
    source = CopySource(RESULTS)
    bounded = grammar_schema(schema, caps_for(RESULTS), copy_from=source)
    kinds = {name: node["const"] for name, node in bounded["properties"].items()}
    assert kinds["series"].endswith("copy-string//series@@")
    rules = source.rules(["string//series", "string//officer"])
    wednesday = source.words.index(("Wednesday", " "))
    assert rules[rule_name("string//series")] == f'"\\"" (copy-w{wednesday}) "\\""'
    # "Support on all dates: Milo": a label of four words before its colon is a label.
    tour = CopySource(TOUR)
    assert _words(tour, tour.labelled_starts(("support",))) == ["Milo", "Ferns"]


INVOICE = (
    "Qty 4   Ergonomic desk chair     @ 189.00   = 756.00\n"
    "Qty 10  A4 copier paper, box     @ 24.50    = 245.00\n"
    "\n"
    "Total due: 1,001.00\n"
)


def _line_items(text_field: str, *others: str) -> dict[str, Any]:
    fields: dict[str, Any] = {text_field: {"type": "string"}, "quantity": {"type": "integer"}}
    fields.update({name: {"type": "string"} for name in others})
    fields["unit_price"] = {"type": "number"}
    item = {"type": "object", "properties": fields, "required": list(fields)}
    return {
        "type": "object",
        "properties": {"items": {"type": "array", "items": item}},
        "required": ["items"],
    }


def test_a_rows_one_text_field_is_its_whole_cell(vocab_model: Any) -> None:
    from openai_structured.local._decoding import to_gbnf

    def admitted(schema: dict[str, Any], text: str, items: list[dict[str, Any]]) -> bool:
        caps = caps_for(text)
        source = outside_lists(schema, caps, CopySource(text))
        gbnf = to_gbnf(grammar_schema(schema, caps, copy_from=source), caps, source)
        answer = json.dumps({"items": items}, separators=(",", ":"))
        answer = answer.replace(":189.0", ":189.00").replace(":24.5", ":24.50")  # as written
        return grammar_admits(vocab_model, gbnf, answer, ends=True)

    chair = {"description": "Ergonomic desk chair", "quantity": 4, "unit_price": 189.00}
    paper = {"description": "A4 copier paper, box", "quantity": 10, "unit_price": 24.50}
    schema = _line_items("description")
    assert admitted(schema, INVOICE, [chair, paper])
    # Not cut at the comma inside the cell, nor run on past the cell into the price.
    assert not admitted(schema, INVOICE, [chair, {**paper, "description": "A4 copier paper"}])
    assert not admitted(schema, INVOICE, [{**chair, "description": "Ergonomic desk"}, paper])
    # An item of two text fields: each may end at a comma ("Salle Merode, Brussels").
    two = _line_items("description", "unit")
    short = [
        {"description": "Ergonomic desk chair", "quantity": 4, "unit": "chair"},
        {"description": "A4 copier paper", "quantity": 10, "unit": "box"},
    ]
    prices = (189.0, 24.5)
    short = [{**item, "unit_price": price} for item, price in zip(short, prices, strict=True)]
    assert admitted(two, INVOICE, short)
    # Rows that are sentences, not columns: a name ends where the model ends it.
    actions = (
        "Actions:\n"
        "Luis Ferreira to get a revised quote for 2 servers by 19 February 2025.\n"
        "Mei Tanaka to write the migration checklist for 3 sites by 26 February 2025.\n"
    )
    owners = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "owner": {"type": "string"},
                        "due": {"type": "string", "format": "date"},
                    },
                    "required": ["owner", "due"],
                },
            }
        },
        "required": ["items"],
    }
    rows = [
        {"owner": "Luis Ferreira", "due": "2025-02-19"},
        {"owner": "Mei Tanaka", "due": "2025-02-26"},
    ]
    assert admitted(owners, actions, rows)


def test_a_year_field_beside_an_amount_of_four_characters() -> None:
    # "0.00" is four characters and no year: the grammar was built on it and failed (500).
    text = "Tax year: 2024. Advantage received: $0.00. Eligible amount: $1,200.00."
    schema = {
        "type": "object",
        "properties": {"tax_year": {"type": "integer"}, "advantage": {"type": "number"}},
        "required": ["tax_year", "advantage"],
    }
    source = CopySource(text)
    bounded = grammar_schema(schema, caps_for(text), copy_from=source)
    year = bounded["properties"]["tax_year"]["const"]
    assert source.values(year.removeprefix("@@openai-structured:copy-").removesuffix("@@")) == [
        "2024"
    ]


HIRE = (
    "Qty  Equipment                              Rate/day\n"
    "1    Mini digger 1.5t (Kubota KX015)          95.00\n"
    "     incl. 3 buckets, self-drive, no operator\n"
    "2    Petrol plate compactor                   28.00\n"
    "1    Diamond floor saw 450mm                  62.00\n"
)


def test_a_line_indented_under_a_row_is_part_of_it_and_a_cell_starts_after_the_number(
    vocab_model: Any,
) -> None:
    from openai_structured.local._decoding import to_gbnf
    from openai_structured.local._rows import row_blocks

    [(rows, _)] = row_blocks(HIRE)
    # (The heading line is a row here; the list's scoring leaves it out: it holds no values.)
    assert [HIRE[a:b].split()[0] for a, b in rows] == ["Qty", "1", "2", "1"]
    assert HIRE[rows[1][0] : rows[1][1]].endswith("incl. 3 buckets, self-drive, no operator")
    fields = {
        "quantity": {"type": "integer"},
        "description": {"type": "string"},
        "rate_per_day": {"type": "number"},
    }
    item = {"type": "object", "properties": fields, "required": list(fields)}
    schema = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": item}},
        "required": ["items"],
    }
    caps = caps_for(HIRE)
    source = outside_lists(schema, caps, CopySource(HIRE))
    gbnf = to_gbnf(grammar_schema(schema, caps, copy_from=source), caps, source)

    def admits(first: str) -> bool:
        items = [
            f'{{"quantity":1,"description":"{first}","rate_per_day":95.00}}',
            '{"quantity":2,"description":"Petrol plate compactor","rate_per_day":28.00}',
            '{"quantity":1,"description":"Diamond floor saw 450mm","rate_per_day":62.00}',
        ]
        return grammar_admits(vocab_model, gbnf, '{"items":[' + ",".join(items) + "]}", ends=True)

    assert admits("Mini digger 1.5t")
    assert not admits("1 Mini digger 1.5t")  # the quantity's column is not the description's


def test_rows_of_plain_words_are_a_list_when_a_named_kind_finds_nothing() -> None:
    # "from_station" would be an origin, of "A -> B"; the text writes "A dep 07:12 - B".
    text = (
        "Journey as travelled\n"
        "Leg 1: Cardiff Central dep 07:12 - Bristol Temple Meads, due 07:53\n"
        "Leg 2: Bristol Temple Meads dep 08:10 - Reading, due 09:15\n"
    )
    leg = {
        "type": "object",
        "properties": {"from_station": {"type": "string"}, "to_station": {"type": "string"}},
        "required": ["from_station", "to_station"],
    }
    schema = {
        "type": "object",
        "properties": {"legs": {"type": "array", "items": leg}},
        "required": ["legs"],
    }
    bounded = grammar_schema(schema, caps_for(text), copy_from=CopySource(text))
    assert len(bounded["properties"]["legs"]["prefixItems"]) == 2


def test_a_plain_number_is_no_part_of_a_date_but_a_year_field_keeps_the_years() -> None:
    text = "Tue 14 Jan 2025, 09:00-17:30, hot desk, Level 2. Meeting room seats 6."
    source = CopySource(text)
    assert source.values("integer") == ["2", "6"]
    assert source.values("integer/year") == ["2025"]


def test_a_list_of_strings_a_label_enumerates_is_its_items_as_written() -> None:
    text = (
        "Languages: English (native), Yoruba (fluent) and French.\n"
        "Version: Quillbase Desktop 4.12.1\n"
        "\n"
        "Please bring:\n"
        "- Photo ID\n"
        "- Current medication list\n"
        "\n"
        "Add-ons: none\n"
    )
    source = CopySource(text)
    assert source.enumerated(("languages",)) == ["English", "Yoruba", "French"]
    assert source.enumerated(("bring",)) == ["Photo ID", "Current medication list"]
    assert source.enumerated(("versions",)) == []  # one alone is no list
    assert source.enumerated(("ons",)) == []  # "none"
    assert source.enumerated(("hobbies",)) == []
    assert CopySource("Present: Ann, Bob, Ann, Bob.").enumerated(("present",)) == ["Ann", "Bob"]
    strings = {"type": "array", "items": {"type": "string"}}
    schema = {
        "type": "object",
        "properties": {"languages": strings, "items_to_bring": strings},
        "required": ["languages", "items_to_bring"],
    }
    bounded = grammar_schema(schema, caps_for(text), copy_from=source)
    assert bounded["properties"]["languages"] == {
        "type": "array",
        "prefixItems": [{"const": "English"}, {"const": "Yoruba"}, {"const": "French"}],
    }
    # An enum's list, or a list with bounds the items do not keep to, is the model's.
    bounded = grammar_schema(
        {"type": "object", "properties": {"languages": {**strings, "maxItems": 2}}},
        caps_for(text),
        copy_from=source,
    )
    assert "prefixItems" not in bounded["properties"]["languages"]


def test_a_rows_text_does_not_start_in_its_date_but_may_be_its_clock_time() -> None:
    text = (
        "Timesheet, week of 17 February 2025\n"
        "\n"
        "Mon 17 Feb\n"
        "08:00-16:30, 30 min break - hedge cutting\n"
        "\n"
        "Tue 18 Feb\n"
        "07:30-15:00, 30 min break - mowing\n"
    )
    source = CopySource(text)
    [rows] = [rows for rows, _ in source.row_blocks if "\n" in text[rows[0][0] : rows[0][1]]]
    first = source.within(*rows[0])
    starts = [first.words[i][0] for i in first._word_range() if first._starts_copy(i)]
    assert "Mon" not in starts and "17" not in starts and "Feb" not in starts
    assert "08" in starts and "hedge" in starts
    # Outside a row a date may begin a name ("12 April - 31 August" stays the model's).
    assert source._starts_copy(source.words.index(("17", " ")))


def test_no_copy_starts_inside_a_capitalised_name() -> None:
    text = (
        "Dear Oliver Whitfield,\n"
        "When: Thursday 10 April 2025, Auditorium B.\n"
        "We read The Salt Roads by Mr Felix Haverkamp.\n"
        "NEW AT THE HALVERSTON MUSEUM\n"
        "Name    Time\n"
        "Hamish Tully      0:55:10\n"
    )
    source = CopySource(text)

    def starts(word: str) -> bool:
        return source._starts_copy(
            source.words.index(next(w for w in source.words if w[0] == word))
        )

    assert starts("Oliver") and not starts("Whitfield")  # "Dear" opens the sentence
    assert starts("Auditorium") and not starts("B")
    assert starts("The") and not starts("Salt")
    assert starts("Felix")  # after a title
    assert starts("HALVERSTON")  # after "THE" of a heading in capitals
    assert starts("0")  # across a table's columns


def test_a_typed_fields_label_is_told_apart_from_its_own_kind_only() -> None:
    text = (
        "Billing period: 1 May 2024 - 31 May 2024\n"
        "Total amount due: $139.81 by 20 June 2024\n"
        "Next meeting: 5 March 2025, 10:00\n"
    )
    schema = {
        "type": "object",
        "properties": {
            "total_amount_due": {"type": "number"},
            "due_date": {"type": "string", "format": "date"},
            "meeting_title": {"type": "string"},
            "next_meeting_date": {"type": "string", "format": "date"},
        },
    }
    source = CopySource(text)
    bounded = grammar_schema(schema, caps_for(text), copy_from=source)
    kinds = {
        name: node["const"].removeprefix("@@openai-structured:copy-").removesuffix("@@")
        for name, node in bounded["properties"].items()
    }
    # "due" is the due date's (the total due is a number), so the date is the one near it.
    assert source.values(kinds["due_date"]) == ['"2024-06-20"']
    # A string does not take "meeting" from the meeting's date: no "Next meeting:" copy.
    assert "meeting" not in kinds["meeting_title"]
    assert "next-meeting" in kinds["next_meeting_date"]


def test_a_long_word_in_capitals_is_no_code() -> None:
    source = CopySource("Flight FI 440 REYKJAVIK (KEF) to MAN. Booking ref QZTMPX. ACCEPTED")
    assert source.values("string/identifier") == ['"FI 440"', '"KEF"', '"MAN"', '"QZTMPX"']
