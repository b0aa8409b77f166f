"""Closed choices (issue 15): which places of an answer hold a value from a short list, and
where the answer being written is (pure: :mod:`openai_structured.local._choosing`)."""

from __future__ import annotations

from typing import Any

import pytest

from openai_structured.local._bounds import caps_for, grammar_schema
from openai_structured.local._choosing import ITEM, MAX_CHOICES, ValuePath, closed_choices
from openai_structured.local._copying import CopySource

TEXT = "The 2018 car has done 86,500 km; asking EUR 14,900. Sold on 3 May 2024, or not."

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "year": {"type": "integer"},
        "price": {"type": ["number", "null"]},
        "sold_on": {"type": "string", "format": "date"},
        "fuel": {"enum": ["petrol", "diesel"]},
        "used": {"type": "boolean"},
        "name": {"type": "string"},
        "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}},
        "owner": {"$ref": "#/$defs/Owner"},
    },
    "$defs": {
        "Owner": {"type": "object", "properties": {"count": {"type": "integer"}}},
    },
}


def _choices(schema: dict[str, Any], text: str = TEXT) -> dict[tuple[str, ...], list[str]]:
    source = CopySource(text)
    return closed_choices(grammar_schema(schema, caps_for(text), copy_from=source), source)


def test_the_text_s_numbers_and_null_are_closed_choices() -> None:
    choices = _choices(SCHEMA)
    # A year field takes the text's years only (its name says what it holds: _naming).
    assert choices[("year",)] == ["2018", "2024"]
    assert choices[("price",)][-1] == "null"  # null where the schema allows it
    assert "14900" in choices[("price",)]
    assert ("owner", "count") in choices  # through a $ref
    # Dates, enums, booleans and copied strings are written token by token.
    for path in [("sold_on",), ("fuel",), ("used",), ("tags", ITEM), ("name",)]:
        assert path not in choices


def test_a_place_with_one_value_or_too_many_is_left_to_the_tokens() -> None:
    one = _choices({"type": "object", "properties": {"n": {"type": "integer"}}}, "Room 12.")
    assert ("n",) not in one  # one number in the text: nothing to choose
    many_text = " ".join(str(n) for n in range(100, 100 + MAX_CHOICES + 1))
    many = _choices({"type": "object", "properties": {"n": {"type": "integer"}}}, many_text)
    assert ("n",) not in many


def test_without_copying_there_are_no_choices() -> None:
    assert closed_choices(grammar_schema(SCHEMA, caps_for(TEXT)), None) == {}


@pytest.mark.parametrize(
    ("text", "path", "last"),
    [
        ('{"year":', ("year",), ":"),
        ('{"year": ', ("year",), ":"),
        ('{"a": "x, \\"y\\"", "owner": {"count":', ("owner", "count"), ":"),
        ('{"tags": [', ("tags", ITEM), "["),
        ('{"tags": ["a",', ("tags", ITEM), ","),
        ('{"rows": [[1, 2], [', ("rows", ITEM, ITEM), "["),
    ],
)
def test_the_path_of_the_value_about_to_begin(text: str, path: tuple[str, ...], last: str) -> None:
    where = ValuePath()
    where.feed(text)
    assert where.at_value() == path
    assert where.last == last


@pytest.mark.parametrize(
    "text",
    [
        '{"year": 2',  # inside a number
        '{"name": "Ad',  # inside a string
        '{"name": "Ada"',  # after a value
        '{"year": 2018, ',  # a key is next
        '{"na',  # inside a key
        '{"tags": ["a"]',  # after a list
        "",
    ],
)
def test_no_value_begins_inside_or_after_one(text: str) -> None:
    where = ValuePath()
    where.feed(text)
    assert where.at_value() is None
