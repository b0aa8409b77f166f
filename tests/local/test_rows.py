"""A list of objects the text writes one item per line: one item per row, each from its row.

The pure parts (:mod:`openai_structured.local._rows`, ``CopySource.within``, the grammar
schema), then the grammar in llama.cpp, then the embedded model on a three-row list.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from local_support import grammar_admits, grammar_parses
from pydantic import BaseModel

from openai_structured import openai_structured_call
from openai_structured.local import LocalModelServer
from openai_structured.local._bounds import caps_for, grammar_schema
from openai_structured.local._copying import CopySource, sentinel_kind
from openai_structured.local._rows import marker_number, row_blocks

PARCEL = (
    "CN22 customs declaration\n"
    "From: Sunita Rao, Pune, India\n"
    "To: Arjun Rao, Calgary, Canada\n"
    "\n"
    "Contents:\n"
    "1. Handwoven cotton scarf x2 - value INR 2,400 - weight 0.30 kg\n"
    "2. Assorted spice packets x6 - value INR 1,150 - weight 0.65 kg\n"
    "3. Paperback books x3 - value INR 900 - weight 1.10 kg\n"
    "Gross weight: 2.05 kg\n"
    "\n"
    "Total declared value: INR 4,450. Date: 09 Dec 2024.\n"
)

INVOICE = (
    "Qty 4   Ergonomic desk chair     @ 189.00   = 756.00\n"
    "Qty 10  A4 copier paper, box     @ 24.50    = 245.00\n"
    "\n"
    "Subtotal 1,001.00\n"
    "VAT 20% 200.20\n"
    "Total due: 1,201.20\n"
)

RESULTS = (
    "City Marathon - results, Sunday 13 October 2024\n"
    "Conditions: 9C at the start. 2,184 finishers.\n"
    "\n"
    "Women\n"
    "1. Amara Wanjiku (KEN) 2:31:07\n"
    "2. Ilse van Dorp (NED) 2:33:45\n"
    "\n"
    "Men\n"
    "1. Yonas Hailu (ETH) 2:14:39\n"
)

TOUR = (
    "'Low Tide' European Tour 2025\n"
    "\n"
    "Thu 8 May - Salle Merode, Brussels, BE\n"
    "Mon 12 May - Vinterhaven, Copenhagen, DK (SOLD OUT)\n"
    "Wed 14 May - Sala Ferrum, Madrid, ES\n"
)


def _rows_text(text: str) -> list[list[str]]:
    return [[text[s:e] for s, e in rows] for rows, _ in row_blocks(text)]


def _object(required: bool = True, **properties: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        node["required"] = list(properties)
    return node


def _list_of(item: dict[str, Any], **bounds: Any) -> dict[str, Any]:
    return _object(items={"type": "array", "items": item, **bounds})


ITEM = _object(
    description={"type": "string"},
    quantity={"type": "integer"},
    value={"type": "number"},
    weight_kg={"type": "number"},
)


def _bounded(schema: dict[str, Any], text: str, **options: Any) -> dict[str, Any]:
    return grammar_schema(schema, caps_for(text), copy_from=CopySource(text, **options))


def _kinds(node: dict[str, Any]) -> dict[str, str]:
    return {
        name: sentinel_kind(sub["const"])
        for name, sub in node["properties"].items()
        if isinstance(sub.get("const"), str)
    }


# --- the rows of a text ----------------------------------------------------------------------


def test_numbered_rows_lose_their_marker_and_their_heading_and_end_where_the_marks_do() -> None:
    assert _rows_text(PARCEL) == [
        [
            "Handwoven cotton scarf x2 - value INR 2,400 - weight 0.30 kg",
            "Assorted spice packets x6 - value INR 1,150 - weight 0.65 kg",
            "Paperback books x3 - value INR 900 - weight 1.10 kg",
        ]
    ]  # the From:/To: lines are a form (a field a line), "Gross weight" no item


def test_a_paragraph_wrapped_over_lines_is_no_rows() -> None:
    text = (
        "Plan: start salbutamol inhaler 100 micrograms, two puffs as needed, and a second\n"
        "inhaler 200 micrograms twice daily. Review in 6 weeks.\n"
    )
    assert row_blocks(text) == []
    text = "Full service history with\nVW dealers, new tyres.\n"  # ends in a small word
    assert row_blocks(text) == []


def test_rows_under_headings_are_a_block_each_and_one_together() -> None:
    blocks = _rows_text(RESULTS)
    assert [
        "Amara Wanjiku (KEN) 2:31:07",
        "Ilse van Dorp (NED) 2:33:45",
        "Yonas Hailu (ETH) 2:14:39",
    ] in blocks
    assert ["Amara Wanjiku (KEN) 2:31:07", "Ilse van Dorp (NED) 2:33:45"] in blocks
    marked = {
        tuple(text for text in map(lambda r: RESULTS[r[0] : r[1]], rows)): m
        for rows, m in row_blocks(RESULTS)
    }
    assert marked[("Amara Wanjiku (KEN) 2:31:07", "Ilse van Dorp (NED) 2:33:45")] is True


def test_a_shared_label_is_the_rows_marker_and_what_follows_them_is_no_row() -> None:
    text = (
        "Leg 1: Train IC 2207, Koeln Hbf -> Frankfurt, dep 06:12\n"
        "Leg 2: Flight NV 418, Frankfurt -> New York, dep 10:05\n"
        "All times are local.\n"
    )
    blocks = row_blocks(text)
    assert [[text[s:e] for s, e in rows] for rows, _ in blocks] == [
        [
            "Train IC 2207, Koeln Hbf -> Frankfurt, dep 06:12",
            "Flight NV 418, Frankfurt -> New York, dep 10:05",
        ]
    ]
    assert [marker_number(text, row) for row in blocks[0][0]] == [1, 2]
    assert blocks[0][1] is True


def test_an_unmarked_run_is_rows_too_and_its_first_line_loses_its_label() -> None:
    text = (
        "Actions: Luis Ferreira to get a quote by 19 February 2025.\n"
        "Mei Tanaka to write the checklist by 26 February 2025.\n"
    )
    (rows, marked), *_ = row_blocks(text)
    assert [text[s:e] for s, e in rows] == [
        "Luis Ferreira to get a quote by 19 February 2025.",
        "Mei Tanaka to write the checklist by 26 February 2025.",
    ]
    assert marked is False
    assert [marker_number(text, row) for row in rows] == [None, None]


# --- a row's values ----------------------------------------------------------------------------


def test_a_row_holds_only_its_own_values_read_in_the_whole_text() -> None:
    source = CopySource(TOUR)
    (rows, _), *_ = row_blocks(TOUR)
    second = source.within(*rows[1])
    # "12 May" takes the year the text writes in its title, outside the row.
    assert second.values(second.scoped("date")) == ['"2025-05-12"']
    assert source.values(second.scoped("date")) == ['"2025-05-12"']  # the kind says the row
    assert source.values("date") == ['"2025-05-08"', '"2025-05-12"', '"2025-05-14"']
    # A flag one row writes ("SOLD OUT") and another does not: false there.
    assert second.truth("sold_out") is True
    assert source.within(*rows[0]).truth("sold_out") is False
    assert source.truth("sold_out") is True


def test_a_rows_labels_find_its_values_and_a_count_is_written_x2() -> None:
    out = _bounded(_list_of(ITEM), PARCEL)["properties"]["items"]
    assert out["minItems"] == out["maxItems"] == len(out["prefixItems"]) == 3
    source = CopySource(PARCEL)
    first = _kinds(out["prefixItems"][0])
    assert source.values(first["quantity"]) == ["2"]
    assert source.values(first["weight_kg"]) == ["0.30"]
    assert source.values(first["value"]) == ["2400"]
    third = _kinds(out["prefixItems"][2])
    assert [source.values(third[k]) for k in ("quantity", "value", "weight_kg")] == [
        ["3"],
        ["900"],
        ["1.10"],
    ]


def test_a_block_of_other_values_is_not_taken_for_the_rows() -> None:
    item = _object(
        description={"type": "string"}, quantity={"type": "integer"}, unit_price={"type": "number"}
    )
    out = _bounded(_list_of(item), INVOICE)["properties"]["items"]
    # The totals hold one number a line: a quantity or a price, not both.
    assert len(out["prefixItems"]) == 2
    source = CopySource(INVOICE)
    assert source.values(_kinds(out["prefixItems"][1])["quantity"]) == ["10"]  # "Qty 10"


def test_a_numbered_rows_position_is_its_number() -> None:
    item = _object(
        position={"type": "integer"},
        name={"type": "string"},
        division={"type": "string", "enum": ["women", "men"]},
    )
    out = _bounded(_list_of(item), RESULTS)["properties"]["items"]
    positions = [row["properties"]["position"] for row in out["prefixItems"]]
    assert positions == [{"const": 1}, {"const": 2}, {"const": 1}]


def test_an_enum_is_narrowed_to_what_its_row_mentions() -> None:
    text = "- Salt Roads (book), due 2 October 2024\n- Northern Coast (DVD), due 9 October 2024\n"
    item = _object(
        title={"type": "string"},
        format={"enum": ["book", "dvd", "magazine"]},
        due={"type": "string", "format": "date"},
    )
    out = _bounded(_list_of(item), text)["properties"]["items"]
    assert [row["properties"]["format"] for row in out["prefixItems"]] == [
        {"enum": ["book"]},
        {"enum": ["dvd"]},
    ]


@pytest.mark.parametrize(
    ("schema", "options"),
    [
        (_list_of(ITEM), {"rows": False}),  # turned off (--style rows=false)
        (_list_of(ITEM, maxItems=2), {}),  # more rows than the list may hold
        (_list_of(_object(description={"type": "string"})), {}),  # plain words: marks only
        (_object(items={"type": "array", "items": {"type": "number"}}), {}),  # no objects
    ],
)
def test_no_rows_where_they_are_off_or_do_not_fit(
    schema: dict[str, Any], options: dict[str, Any]
) -> None:
    text = PARCEL.replace("1. ", "").replace("2. ", "").replace("3. ", "")  # unmarked rows
    out = _bounded(schema, text, **options)["properties"]["items"]
    assert "prefixItems" not in out


def test_two_lists_do_not_take_the_same_rows_and_a_rows_own_lists_have_none() -> None:
    nested = _object(
        description={"type": "string"},
        weight_kg={"type": "number"},
        parts=_list_of(_object(name={"type": "string"}, quantity={"type": "integer"})),
    )
    schema = _object(
        items={"type": "array", "items": nested},
        again={"type": "array", "items": nested},
    )
    out = _bounded(schema, PARCEL)["properties"]
    assert len(out["items"]["prefixItems"]) == 3
    assert "prefixItems" not in out["again"]
    inner = out["items"]["prefixItems"][0]["properties"]["parts"]["properties"]["items"]
    assert "prefixItems" not in inner


# --- in llama.cpp ------------------------------------------------------------------------------


def test_the_grammar_admits_one_item_per_row_from_its_row_only(vocab_model: Any) -> None:
    from openai_structured.local._decoding import to_gbnf

    schema = _list_of(_object(description={"type": "string"}, quantity={"type": "integer"}))
    caps = caps_for(PARCEL)
    source = CopySource(PARCEL)
    gbnf = to_gbnf(grammar_schema(schema, caps, copy_from=source), caps, source)
    assert grammar_parses(vocab_model, gbnf)
    rows = [
        {"description": "Handwoven cotton scarf", "quantity": 2},
        {"description": "Assorted spice packets", "quantity": 6},
        {"description": "Paperback books", "quantity": 3},
    ]

    def admits(items: list[dict[str, Any]]) -> bool:
        answer = json.dumps({"items": items}, separators=(",", ":"))
        return grammar_admits(vocab_model, gbnf, answer, ends=True)

    assert admits(rows)
    assert not admits(rows[:2])  # a row left out
    assert not admits([rows[1], rows[0], rows[2]])  # another row's values
    assert not admits([{**rows[0], "quantity": 6}, *rows[1:]])
    # A copy ends in its row: not the first row's words running into the second's.
    spill = {"description": "Handwoven cotton scarf x2 - value INR 2,400 - weight 0.30 kg Assorted"}
    assert not admits([{**rows[0], **spill}, *rows[1:]])


# --- the embedded model --------------------------------------------------------------------------


class Show(BaseModel):
    date: datetime.date
    city: str
    sold_out: bool


class Tour(BaseModel):
    shows: list[Show]


@pytest.mark.local
def test_the_model_writes_one_show_per_row_each_with_its_rows_values(
    local_server: LocalModelServer,
) -> None:
    tour = openai_structured_call(
        client=local_server.client(),
        model=local_server.model_name,
        output_schema=Tour,
        system_prompt="Extract the requested information from the text.",
        user_prompt=TOUR,
    )
    assert [show.date for show in tour.shows] == [
        datetime.date(2025, 5, 8),
        datetime.date(2025, 5, 12),
        datetime.date(2025, 5, 14),
    ]
    assert [show.sold_out for show in tour.shows] == [False, True, False]
    for show, row in zip(tour.shows, TOUR.strip().splitlines()[2:], strict=True):
        assert show.city in row


def test_a_tables_heading_line_is_no_item() -> None:
    text = (
        "Shift roster\n"
        "Date        Start  Volunteer\n"
        "Sat 3 May   09:00  Anna Berg\n"
        "Sun 4 May   13:30  Tom Li\n"
    )
    item = _object(
        date={"type": "string", "format": "date"},
        start={"type": "string", "format": "time"},
        volunteer={"type": "string"},
    )
    out = _bounded(_list_of(item), text + "Season 2025.")["properties"]["items"]
    rows = out["prefixItems"]
    assert len(rows) == 2
    source = CopySource(text + "Season 2025.")
    assert [source.values(_kinds(row)["date"]) for row in rows] == [
        ['"2025-05-03"'],
        ['"2025-05-04"'],
    ]


def test_plain_rows_alike_by_their_separator_are_rows_for_items_of_plain_words() -> None:
    text = "Volunteers:\nAnna Berg - kitchen\nTom Li - front desk\n\nThanks, see you.\nDana, Acme\n"
    item = _object(name={"type": "string"}, station={"type": "string"})
    out = _bounded(_list_of(item), text)["properties"]["items"]
    assert len(out["prefixItems"]) == 2
    (first, _), *_ = row_blocks(text)
    assert [text[s:e] for s, e in first] == ["Anna Berg - kitchen", "Tom Li - front desk"]


def test_a_long_list_reads_the_text_once_for_all_its_rows() -> None:
    rows = "\n".join(
        f"{i}. Item {i} x{i % 5 + 1} - value GBP {i * 3}.50 - weight {i / 10:.2f} kg"
        for i in range(1, 74)
    )
    text = "Contents:\n" + rows + "\n"
    source = CopySource(text)
    out = grammar_schema(_list_of(ITEM), caps_for(text), copy_from=source)
    assert len(out["properties"]["items"]["prefixItems"]) == 73
    window = source.within(0, 10)
    assert window.memo is source.memo and window.words is source.words
    # Each finder ran once for the whole text (one entry per finder and its arguments), not
    # once per row and field: 73 rows x 4 fields would be hundreds.
    finders = [key[0] for key in source.memo if isinstance(key, tuple)]
    assert "_numbers" in finders
    assert len(finders) < 12
