"""Drafts inside values (_drafting.py): the rest of a value its place admits alone, and the
rest of a word of a copy. Both must be what the grammar would have the model write anyway:
a draft is taken without the model's logits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from local_support import grammar_admits

from openai_structured.local._bounds import caps_for, grammar_schema
from openai_structured.local._choosing import ITEM, ValuePath, closed_places, spanned_places
from openai_structured.local._copying import CopySource
from openai_structured.local._drafting import CopiedWords, KeyDraft

pytestmark = pytest.mark.local

TEXT = (
    "Booking for Tomasz Wielgosz and Tom Hale at 14 Harbour Road, Leeds.\n"
    "Arrive 2024-10-12, leave 2024-11-02. Call 07700 900412. Room type: suite. Total 1250.\n"
    "Tomasz pays."
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "guest": {"type": "string"},
        "address": {"type": "string"},
        "arrival_date": {"type": "string", "format": "date"},
        "departure_date": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
        "phone": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "room": {"enum": ["single", "double", "suite"]},
        "total": {"type": "number"},
        "others": {"type": "array", "items": {"type": "string"}},
        "stay_dates": {"type": "array", "items": {"type": "string", "format": "date"}},
    },
    "required": [
        "guest",
        "address",
        "arrival_date",
        "departure_date",
        "phone",
        "room",
        "total",
        "others",
        "stay_dates",
    ],
    "additionalProperties": False,
}

ANSWER = (
    '{"guest": "Tomasz Wielgosz", "address": "14 Harbour Road, Leeds", '
    '"arrival_date": "2024-10-12", "departure_date": "2024-11-02", "phone": "07700 900412", '
    '"room": "suite", "total": 1250, "others": ["Tom Hale"], '
    '"stay_dates": ["2024-10-12", "2024-11-02"]}'
)


def _source() -> CopySource:
    return CopySource(TEXT)


def _bounded() -> dict[str, Any]:
    return grammar_schema(SCHEMA, caps_for(TEXT), copy_from=_source())


def _draft() -> KeyDraft:
    bounded = _bounded()
    source = _source()
    copied = CopiedWords(spanned_places(bounded), source.words)
    return KeyDraft(bounded, closed_places(bounded, source), copied)


# --- where a value is being written ---------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ('{"a": "20', (("a",), '"20')),
        ('{"a": "x\\"y', (("a",), '"x\\"y')),  # an escaped quote does not end it
        ('{"a": "x"', None),  # the closing quote: written
        ('{"a": [1', (("a", ITEM), "1")),
        ('{"a": [12, -3.5', (("a", ITEM), "-3.5")),
        ('{"a": [12, ', None),
        ('{"a": 12}', None),
        ('{"a": true', None),
        ('{"a": null', None),
        ('{"a', None),  # a key is no value
        ('{"a": {"b": "Le', (("a", "b"), '"Le')),
    ],
)
def test_the_value_path_tells_the_value_being_written(
    written: str, expected: tuple[tuple[str, ...], str] | None
) -> None:
    path = ValuePath()
    path.feed(written)
    assert path.writing() == expected


# --- the rest of a word ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "rest"),
    [
        ("Toma", "sz"),
        ("Tomasz W", "ielgosz"),
        ("Harb", "our"),
        ("14 Harb", "our"),
        ("Harbour Road, Le", "eds"),
        ("1250. Tom", "asz"),  # a line break may be written as a space
        ("Tom", ""),  # "Tom" is a word ("Tom Hale"): what follows is the model's choice
        ("Tomasz", ""),  # a whole word
        ("To", ""),  # "Tomasz" or "Tom": two ways on
        ("Harbour  Ro", ""),  # not how the text goes on
        ("X", ""),
        ("", ""),
        ('Tom\\"', ""),  # an escape: not compared
    ],
)
def test_the_rest_of_a_begun_word_only_where_every_copy_goes_on_so(written: str, rest: str) -> None:
    assert CopiedWords(words=_source().words).rest_of_word(written) == rest


# --- the places ---------------------------------------------------------------------------


def test_closed_and_spanned_places_of_a_grammar_schema() -> None:
    bounded = _bounded()
    places = closed_places(bounded, _source())
    assert places[("arrival_date",)] == ['"2024-10-12"']  # the date after "Arrive"
    assert places[("stay_dates", ITEM)] == ['"2024-10-12"', '"2024-11-02"']
    assert places[("room",)] == ['"suite"']  # the enum, narrowed to what the text mentions
    assert "1250" in places[("total",)]
    assert ("guest",) not in places  # runs of words: no list of values
    assert spanned_places(bounded) >= {("guest",), ("address",), ("others", ITEM)}
    assert ("arrival_date",) not in spanned_places(bounded)


@pytest.mark.parametrize(
    ("written", "draft"),
    [
        ('"arrival_date": "', "2024-10-12"),  # its one date, up to its closing quote
        ('"stay_dates": ["2024-10', "-12"),  # one of the two goes on so
        ('"stay_dates": ["2024-1', ""),  # both do
        ('"stay_dates": ["2024-10-12", "2024-11', "-02"),
        ('"phone": "07', "700 900412"),
        ('"total": 12', "50"),
        ('"guest": "Tomasz Wiel', "gosz"),
        ('"guest": "Tomasz', ""),
        ('"others": ["Tom H', "ale"),
    ],
)
def test_a_value_s_rest_is_drafted_where_only_one_way_on_is_admitted(
    written: str, draft: str
) -> None:
    keys = _draft()
    keys.feed("{" + written)
    assert keys.next_text() == draft


def test_every_value_draft_is_what_the_answer_writes_next_and_all_the_grammar_admits(
    vocab_model: Any,
) -> None:
    from openai_structured.local._decoding import to_gbnf

    source = _source()
    gbnf = to_gbnf(_bounded(), caps_for(TEXT), source)
    assert grammar_admits(vocab_model, gbnf, ANSWER, ends=True)
    keys = _draft()
    inside = 0
    for at, char in enumerate(ANSWER):
        keys.feed(char)
        written, draft = ANSWER[: at + 1], keys.next_text()
        assert ANSWER[at + 1 :].startswith(draft), written
        if not draft or keys._path.writing() is None:
            continue
        inside += 1
        # The grammar admits the draft, and no other character where the draft begins.
        assert grammar_admits(vocab_model, gbnf, draft, prefix=written)
        for other in "aeiousz019 -.,'\"":
            if other != draft[0]:
                assert not grammar_admits(vocab_model, gbnf, other, prefix=written), (
                    written,
                    other,
                )
    assert inside >= 10


def test_without_places_or_words_nothing_inside_a_value_is_drafted() -> None:
    keys = KeyDraft(_bounded())
    keys.feed('{"guest": "Tomasz Wiel')
    assert keys.next_text() == ""
    keys = KeyDraft(_bounded())
    keys.feed('{"guest": "Tomasz Wielgosz", "address": "14 Harbour Road, Leeds", '
              '"arrival_date": "2024-1')  # fmt: skip
    assert keys.next_text() == ""


def test_the_schema_places_are_json_texts_the_grammar_writes() -> None:
    for values in closed_places(_bounded(), _source()).values():
        for value in values:
            json.loads(value)
