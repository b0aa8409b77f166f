"""The answer's keys drafted (:mod:`openai_structured.local._drafting`): what
:class:`KeyDraft` drafts as an answer is written, that no draft changes an answer the grammar
admits, the draft hook (``KeyTokens``) with no request active, and the embedded model's
answers with drafting on and off (two server starts, marked ``local``).

A replay writes an answer as the server would with a draft: the draft's text when the answer
goes on with it (the sampler takes a drafted token the grammar admits), else the answer's next
character. Each draft offered is listed with the last six characters written before it.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, Optional, Union

import pytest
from local_support import grammar_admits, require_local_extra
from pydantic import BaseModel, Field

from openai_structured import openai_structured_call
from openai_structured.local import LocalModelServer
from openai_structured.local._bounds import caps_for, grammar_schema
from openai_structured.local._choosing import ITEM, ValuePath
from openai_structured.local._copying import CopySource, sentinel
from openai_structured.local._drafting import KeyDraft

# --- schemas and answers ------------------------------------------------------------------


class Item(BaseModel):
    name: str
    qty: int
    note: Optional[str] = None  # noqa: UP045 (the form users write)


class Order(BaseModel):
    comment: Optional[str] = None  # noqa: UP045 (optional and first: the grammar puts it last)
    customer: str
    total: float
    items: list[Item]
    tags: list[str] = Field(default_factory=list)
    paid: bool


ORDER_TEXT = "Order from Ana Lima: 2 apples, 3 pears. Total 4.50 EUR. Paid."

ISSUE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "labels": {"type": "array", "items": {"type": "string"}},
        "status": {"enum": ["open", "closed"]},
        "score": {"type": ["number", "null"]},
        "owner": {"$ref": "#/$defs/Person"},
        "due": {"type": "string", "format": "date"},
        "watchers": {"type": "array", "items": {"$ref": "#/$defs/Person"}},
        "priority": {"type": "integer"},
    },
    "required": ["title", "status", "score", "owner", "watchers", "priority"],
    "$defs": {
        "Person": {
            "type": "object",
            "properties": {
                "login": {"type": "string"},
                "id": {"type": "integer"},
                "email": {"type": ["string", "null"]},
            },
            "required": ["login", "id"],
        }
    },
}

ISSUE_TEXT = (
    "Issue: Login fails on Safari. Status: open. Owner: mia (id 42). "
    "Watchers: tom (id 7), ann (id 9). Priority 2."
)


def _bounded(schema: Any, text: str, *, copying: bool = True) -> dict[str, Any]:
    """The grammar's schema as the server makes it (copying: values from the text only)."""
    return grammar_schema(schema, caps_for(text), copy_from=CopySource(text) if copying else None)


def _gbnf(schema: Any, text: str, *, copying: bool = True) -> str:
    from openai_structured.local._decoding import to_gbnf

    copy_from = CopySource(text) if copying else None
    return to_gbnf(_bounded(schema, text, copying=copying), caps_for(text), copy_from)


ORDER = _bounded(Order.model_json_schema(), ORDER_TEXT)
ISSUE_COPIED = _bounded(ISSUE, ISSUE_TEXT)  # a required list of objects: minItems 1
ISSUE_PLAIN = _bounded(ISSUE, ISSUE_TEXT, copying=False)  # no copying: minItems 0

ORDER_SPACED = (
    '{"customer": "Ana Lima", "total": 4.50, "items": [{"name": "apples", "qty": 2}, '
    '{"name": "pears", "qty": 3, "note": null}], "paid": true, "comment": null, "tags": []}'
)
ORDER_COMPACT = (
    '{"customer":"Ana Lima","total":4.50,"items":[{"name":"apples","qty":2},'
    '{"name":"pears","qty":3}],"paid":true}'
)
ISSUE_SPACED = (
    '{"title": "Login fails on Safari", "status": "open", "score": null, '
    '"owner": {"login": "mia", "id": 42}, "watchers": [{"login": "tom", "id": 7}, '
    '{"login": "ann", "id": 9, "email": null}], "priority": 2, "labels": ["Safari"]}'
)
ISSUE_COMPACT = ISSUE_SPACED.replace(": ", ":").replace(", ", ",")


def _replay(schema: dict[str, Any], answer: str) -> list[tuple[str, str]]:
    """Every draft offered while ``answer`` is written (see the module docstring)."""
    draft = KeyDraft(schema)
    offered: list[tuple[str, str]] = []
    at = 0
    while at < len(answer):
        text = draft.next_text()
        if text:
            offered.append((answer[max(0, at - 6) : at], text))
        step = text if text and answer.startswith(text, at) else answer[at]
        draft.feed(step)
        at += len(step)
    assert draft.next_text() == ""  # the answer is complete
    return offered


def _draft_after(schema: dict[str, Any], written: str) -> str:
    draft = KeyDraft(schema)
    draft.feed(written)
    return draft.next_text()


# --- 1. what is drafted -------------------------------------------------------------------


def test_a_pydantic_schema_spaced() -> None:
    assert _replay(ORDER, ORDER_SPACED) == [
        ("{", '"customer":'),  # required first (comment is optional); colon spacing unknown
        # None after the first comma (its spacing not known yet); then, its space written, the
        # key without another.
        ('ima", ', '"total": '),
        (" 4.50,", ' "items": '),  # a number: no quote; the commas' spacing known
        ('ms": [', '{"name": "'),  # a required list of objects (minItems 1): its first item
        ('ples",', ' "qty": '),
        ('": 2},', ' {"name": "'),  # the next item
        ('ears",', ' "qty": '),
        # none after "qty": 3, (note is optional)
        ("ull}],", ' "paid": true'),  # a boolean the text decides: the one value drafted
        # none after "paid": true, (comment and tags are optional)
    ]


def test_a_pydantic_schema_compact() -> None:
    assert _replay(ORDER, ORDER_COMPACT) == [
        ("{", '"customer":'),
        # none right after the first comma (its spacing unknown), then the key's quote:
        ('ima","', 'total":'),
        (":4.50,", '"items":'),
        ('ems":[', '{"name":"'),
        ('ples",', '"qty":'),
        ('y":2},', '{"name":"'),
        ('ears",', '"qty":'),
        ('":3}],', '"paid":true'),
    ]


def test_a_hand_written_schema_spaced() -> None:
    assert _replay(ISSUE_COPIED, ISSUE_SPACED) == [
        ("{", '"title":'),
        # the first comma's space written: not drafted again; the enum narrowed to one value
        ('ari", ', '"status": "open"'),
        ('open",', ' "score": '),  # a nullable number: no quote
        (" null,", ' "owner": '),  # an object: its "{" is not drafted
        ('er": {', '"login": "'),  # in the nested object (a $ref)
        ('"mia",', ' "id": '),
        (": 42},", ' "watchers": '),
        ('rs": [', '{"login": "'),  # required list of objects: minItems 1 when copying
        ('"tom",', ' "id": '),
        ('": 7},', ' {"login": "'),
        ('"ann",', ' "id": '),
        # none after "id": 9, (email is optional)
        ("ull}],", ' "priority": '),
        # none after "priority": 2, (labels and due are optional)
    ]


def test_a_hand_written_schema_compact() -> None:
    assert _replay(ISSUE_COPIED, ISSUE_COMPACT) == [
        ("{", '"title":'),
        ('ari","', 'status":"open"'),  # a string enum narrowed to "open": drafted whole
        ('open",', '"score":'),
        (":null,", '"owner":'),
        ('ner":{', '"login":"'),
        ('"mia",', '"id":'),
        ('":42},', '"watchers":'),
        ('ers":[', '{"login":"'),
        ('"tom",', '"id":'),
        ('d":7},', '{"login":"'),
        ('"ann",', '"id":'),
        ("ull}],", '"priority":'),
    ]


#: Two lists of one kind of object after a list of strings (its "[" the answer's first): one
#: that may not be empty (minItems 1) and one that may (no minItems).
TABLE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tags": {"type": "array", "items": {"type": "string"}},
        "rows": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/Row"}},
        "more": {"type": "array", "items": {"$ref": "#/$defs/Row"}},
    },
    "required": ["tags", "rows", "more"],
    "$defs": {
        "Row": {"type": "object", "properties": {"k": {"type": "string"}}, "required": ["k"]}
    },
}


def test_no_draft_after_the_bracket_of_a_list_that_may_be_empty() -> None:
    assert ISSUE_PLAIN["properties"]["watchers"]["minItems"] == 0
    assert ISSUE_COPIED["properties"]["watchers"]["minItems"] == 1
    offered = _replay(ISSUE_PLAIN, ISSUE_SPACED)
    # As with copying, except at "watchers": [ (no draft: "]" is the model's to choose); the
    # item's first key once its "{" is written.
    assert ('rs": [', '{"login": "') not in offered
    assert ('s": [{', '"login": "') in offered
    copied = _replay(ISSUE_COPIED, ISSUE_SPACED)
    # (copying narrows the status enum to "open", which is then drafted whole)
    copied[copied.index(('ari", ', '"status": "open"'))] = ('ari", ', '"status": "')
    at = copied.index(('rs": [', '{"login": "'))
    assert offered == [*copied[:at], ('s": [{', '"login": "'), *copied[at + 1 :]]
    assert ('": 7},', ' {"login": "') in offered  # after a comma an item follows: drafted
    # Its space written: the same.
    watchers = ISSUE_SPACED[: ISSUE_SPACED.index('rs": [') + 6] + " "
    assert _draft_after(ISSUE_COPIED, watchers) == '{"login": "'
    assert _draft_after(ISSUE_PLAIN, watchers) == ""
    # A schema's own lists (TABLE).
    assert _draft_after(TABLE, '{"tags": [], "rows": [') == '{"k": "'  # minItems 1
    assert _draft_after(TABLE, '{"tags": [], "rows": [{"k": "a"}], "more": [') == ""
    assert _draft_after(TABLE, '{"tags": [ ], "rows": [{"k": "a"}], "more": [ ') == ""
    assert _draft_after(TABLE, '{"tags": [], "rows": [{"k": "a"}], "more": [{"') == 'k": "'
    # A list of strings: never (its items are not objects), neither after "[" nor ",".
    assert _draft_after(TABLE, '{"tags": [') == ""
    assert _draft_after(TABLE, '{"tags": ["a", "b",') == ""  # the commas' spacing known
    assert _draft_after(ORDER, ORDER_SPACED[: ORDER_SPACED.index("[]") + 1]) == ""
    assert _draft_after(ISSUE_COPIED, ISSUE_SPACED[: ISSUE_SPACED.index('["') + 1]) == ""
    two_labels = ISSUE_SPACED.replace('["Safari"]', '["Safari", "Login"]')
    assert _draft_after(ISSUE_COPIED, two_labels[: two_labels.index('i",') + 3]) == ""
    # Past the first item, after a comma: spaced as the answer's first comma (the key's).
    assert _draft_after(TABLE, '{"tags": [], "rows": [{"k": "a"},') == ' {"k": "'
    assert _draft_after(TABLE, '{"tags":[],"rows":[{"k":"a"},') == '{"k":"'
    assert _draft_after(TABLE, '{"tags":[],"rows":[{"k":"a"}, ') == '{"k":"'  # not twice
    # In a list that may be empty too: after a comma an item must come.
    more = '{"tags": [], "rows": [{"k": "a"}], "more": [{"k": "b"},'
    assert _draft_after(TABLE, more) == ' {"k": "'


def test_an_optional_key_is_not_drafted() -> None:
    first_item = '{"customer": "Ana Lima", "total": 4.50, "items": [{"name": "apples", "qty": 2'
    assert _draft_after(ORDER, first_item + ",") == ""  # note: optional
    assert _draft_after(ORDER, first_item + ', "') == ""  # its key's quote written: still none
    assert _draft_after(ORDER, first_item + '}], "') == 'paid": true'  # the text: "Paid."
    assert _draft_after(ORDER, first_item + '}], "paid": true,') == ""  # comment, tags
    assert _draft_after(ORDER, first_item + '}], "paid": true, "') == ""
    assert _draft_after(ORDER, first_item + '}], "paid": true, "comment": null,') == ""
    optional_only = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert _draft_after(optional_only, "{") == ""
    assert _draft_after(optional_only, "{ ") == ""
    assert _draft_after(optional_only, '{"') == ""
    # An optional key between required ones in the schema: the grammar writes it last.
    middle = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {"type": "integer"}},
        "required": ["a", "c"],
    }
    assert _draft_after(middle, '{"a": 1, "') == 'c": '
    assert _draft_after(middle, '{"a": 1, "c": 2,') == ""


@pytest.mark.parametrize(
    ("value", "drafted"),
    [
        ({"type": "string"}, 'b": "'),
        ({"type": "string", "format": "date"}, 'b": "'),
        ({"enum": ["x", "y"]}, 'b": "'),
        ({"const": "fixed"}, 'b": "fixed"'),  # the one value: drafted whole
        ({"$ref": "#/$defs/Word"}, 'b": "'),
        ({"const": sentinel("string")}, 'b": "'),
        ({"const": sentinel("string/phone")}, 'b": "'),
        ({"const": sentinel("date")}, 'b": "'),
        ({"const": sentinel("time")}, 'b": "'),
        ({"const": sentinel("date-time")}, 'b": "'),
        ({"const": sentinel("integer")}, 'b": '),
        ({"const": sentinel("integer/year")}, 'b": '),
        ({"const": sentinel("number//total")}, 'b": '),
        ({"const": sentinel("unsigned-integer")}, 'b": '),
        ({"const": sentinel("unsigned-number")}, 'b": '),
        ({"type": "number"}, 'b": '),
        ({"type": "integer"}, 'b": '),
        ({"type": "boolean"}, 'b": '),
        ({"const": True}, 'b": true'),
        ({"enum": ["x"]}, 'b": "x"'),
        # A string or null: the colon only, for the model to write ' "' or ' null' itself.
        ({"enum": ["x", None]}, 'b":'),
        ({"enum": [None]}, 'b": null'),
        ({"enum": ["x", 1]}, 'b": '),
        ({"anyOf": [{"type": "string"}, {"type": "null"}]}, 'b":'),
        ({"type": ["string", "null"]}, 'b":'),
        ({"type": ["integer", "null"]}, 'b": '),  # digits follow a space token
        ({"anyOf": [{"const": sentinel("string")}, {"type": "null"}]}, 'b":'),
        ({"anyOf": [{"const": sentinel("date")}, {"type": "null"}]}, 'b":'),
        ({"anyOf": [{"$ref": "#/$defs/Word"}, {"type": "null"}]}, 'b":'),
        ({"anyOf": [{"const": sentinel("integer")}, {"type": "null"}]}, 'b": '),
        ({"anyOf": [{"type": "string"}, {"type": "integer"}]}, 'b": '),
        ({"type": "object", "properties": {"c": {"type": "string"}}}, 'b": '),
        ({"type": "array", "items": {"type": "string"}}, 'b": '),
    ],
)
def test_a_string_value_s_quote_is_drafted_a_number_s_or_a_nullable_s_not(
    value: dict[str, Any], drafted: str
) -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": value},
        "required": ["a", "b"],
        "$defs": {"Word": {"type": "string"}},
    }
    assert _draft_after(schema, '{"a": 1, "') == drafted
    assert _draft_after(schema, '{"a":1,"') == drafted.replace(": ", ":")


def test_a_key_s_quote_written_gives_the_rest_of_the_key() -> None:
    assert _draft_after(ORDER, "{") == '"customer":'
    assert _draft_after(ORDER, '{"') == 'customer":'  # '{"' is one token
    assert _draft_after(ORDER, '{ "') == 'customer":'
    assert _draft_after(ORDER, '{"customer": "Ana Lima", "') == 'total": '
    assert _draft_after(ORDER, '{"customer":"Ana Lima","') == 'total":'
    assert _draft_after(ORDER, '{"customer": "Ana Lima", "total": 4.50, "') == 'items": '
    owner = ISSUE_SPACED.index('{"login": "mia"') + 2
    assert _draft_after(ISSUE_COPIED, ISSUE_SPACED[:owner]) == 'login": "'  # a nested object
    watcher = ISSUE_SPACED.index('[{"login": "tom"') + 3
    assert _draft_after(ISSUE_PLAIN, ISSUE_SPACED[:watcher]) == 'login": "'  # a list's item
    # Once a key's first character is written, nothing (a key is drafted whole or not at all).
    assert _draft_after(ORDER, '{"c') == ""
    assert _draft_after(ORDER, '{"customer": "Ana Lima", "t') == ""
    assert _draft_after(ORDER, '{"customer"') == ""
    assert _draft_after(ORDER, '{"customer":') == ""
    # A quote in a list is a string value's, not a key's.
    assert _draft_after(ORDER, ORDER_SPACED[: ORDER_SPACED.index("[]") + 1] + '"') == ""


def test_colons_and_commas_are_spaced_as_the_answer_s_first_ones() -> None:
    assert _draft_after(ORDER, '{"customer":"Ana Lima", "total":4.50,') == ' "items":'
    assert _draft_after(ORDER, '{"customer": "Ana Lima","total": 4.50,') == '"items": '
    # Spaced otherwise later, the first ones still decide (whitespace only: the grammar's space
    # rule admits either, so the sampler takes the draft's).
    assert _draft_after(ORDER, '{"customer":"Ana Lima","total": 4.50, ') == '"items":'
    assert _draft_after(ORDER, '{"customer": "Ana Lima", "total":4.50,"') == 'items": '
    # Not known yet: nothing that needs it (the first comma's, then the first colon's).
    assert _draft_after(ORDER, '{"customer": "Ana Lima",') == ""
    assert _draft_after(ORDER, '{"customer":"Ana Lima","') == 'total":'
    assert _draft_after(ORDER, '{"') == 'customer":'  # up to the colon
    assert _draft_after(ORDER, '{"customer"') == ""
    # A space written (the grammar's space rule is " "?: no other may follow): not drafted
    # again, after a comma, a "{" or a "[".
    assert _draft_after(ORDER, '{"customer": "Ana Lima", ') == '"total": '
    assert _draft_after(ORDER, '{"customer":"Ana Lima", "total":4.50, ') == '"items":'
    assert _draft_after(ORDER, "{ ") == '"customer":'
    items = '{"customer": "Ana Lima", "total": 4.50, "items": ['
    assert _draft_after(ORDER, items + " ") == '{"name": "'
    assert _draft_after(ORDER, items + '{"name": "apples", "qty": 2}, ') == '{"name": "'
    assert _draft_after(ORDER, items + '{"name": "apples", "qty": 2},') == ' {"name": "'
    assert _draft_after(TABLE, '{"tags": [], "rows": [ ') == '{"k": "'
    assert _draft_after(TABLE, '{"tags": [], "rows": [{"k": "a"}, ') == '{"k": "'


_SPACED_ORDER = '{ "customer": "Ana Lima", "total": 4.50, "items": ['
_SPACED_OWNER = '{ "title": "Login fails on Safari", "status": "open", "score": null, "owner": {'


@pytest.mark.parametrize(
    ("schema", "written", "drafted"),
    [
        pytest.param(ORDER, _SPACED_ORDER + " ", '{"name": "', id="item"),
        pytest.param(ORDER, _SPACED_ORDER + "{", '"name": "', id="in-item"),
        pytest.param(
            ORDER, _SPACED_ORDER + '{ "name": "apples", "qty": 2},', ' {"name": "', id="next-item"
        ),
        pytest.param(ISSUE_COPIED, _SPACED_OWNER, '"login": "', id="nested"),
        pytest.param(TABLE, '{"tags": [ "a"], "rows": [', '{"k": "', id="bracket"),
    ],
)
def test_after_braces_and_brackets_the_draft_writes_no_space(
    schema: dict[str, Any], written: str, drafted: str
) -> None:
    # By design (measured on the tuning half: more fields right than following the
    # answer's own first "{" / "["): a colon's and a comma's spacing is learned from the
    # answer, but after "{" and "[" the draft leads with no space, and an item's "{" is
    # followed straight by its key. The grammar admits both, so the answer's spacing there
    # may change.
    assert _draft_after(schema, written) == drafted


def test_never_a_draft_inside_a_string_value() -> None:
    value = 'a, {"qty": [1], \\ "name": "x"}, ["'
    tricky = json.dumps(value)[1:-1]  # the JSON text of a string holding keys, commas, [ {
    answer = '{"customer":"' + tricky + '","total":4.50,"items":[{"name":"' + tricky + '"'
    assert json.loads(answer + ',"qty":2}],"paid":true}')["items"][0]["name"] == value
    draft = KeyDraft(ORDER)
    inside: list[str] = []
    offered: list[tuple[str, str]] = []
    for at, char in enumerate(answer):
        draft.feed(char)
        text = draft.next_text()
        if text:
            offered.append((answer[max(0, at - 5) : at + 1], text))
        for start in (answer.index(tricky), answer.rindex(tricky)):
            if start - 1 <= at < start + len(tricky):  # the opening quote written, to the end
                inside.append(text)
    assert len(inside) == 2 * (len(tricky) + 1)
    assert set(inside) == {""}
    # Fed one character at a time, drafts taken or not: only where a key or an item begins.
    assert offered == [
        ("{", '"customer":'),
        ('{"', 'customer":'),
        ('[\\"","', 'total":'),  # the string's end, then the comma (spacing unknown), the quote
        (":4.50,", '"items":'),
        ('4.50,"', 'items":'),
        ('ems":[', '{"name":"'),
        ('ms":[{', '"name":"'),
        ('s":[{"', 'name":"'),
    ]


def test_value_path_tells_where_a_key_or_an_item_begins() -> None:
    written = '{"a": [{"b": "x,{"}, {"c": 1}], "d'
    path = ValuePath()
    positions = {}
    inside = []
    for at, char in enumerate(written):
        path.feed(char)
        if path.position() is not None:
            positions[at] = path.position()
        if path.in_string:
            inside.append(at)
    assert positions == {
        0: ((), False, "", "{"),
        1: ((), False, "", '"'),  # the key's quote: open, nothing of the key yet
        6: (("a",), True, "", "["),
        7: (("a", ITEM), False, "", "{"),
        8: (("a", ITEM), False, "", '"'),
        19: (("a",), True, "", ","),  # the comma of a list
        20: (("a",), True, "", ","),  # a space after it: still there
        21: (("a", ITEM), False, "", "{"),
        22: (("a", ITEM), False, "", '"'),
        30: ((), False, "a", ","),  # the last key written in the object
        31: ((), False, "a", ","),
        32: ((), False, "a", '"'),
    }
    assert inside == [1, 2, 8, 9, 13, 14, 15, 16, 22, 23, 32, 33]


# --- 2. a draft never changes the answer --------------------------------------------------

ANSWERS = [
    (Order.model_json_schema(), ORDER_TEXT, True, ORDER_SPACED),
    (Order.model_json_schema(), ORDER_TEXT, True, ORDER_COMPACT),
    (
        Order.model_json_schema(),
        ORDER_TEXT,
        True,
        '{"customer": "Ana Lima", "total": 4.50, "items": [{"name": "pears", "qty": 3, '
        '"note": "Paid"}], "paid": true, "tags": ["apples", "pears"]}',
    ),
    (ISSUE, ISSUE_TEXT, True, ISSUE_SPACED),
    (ISSUE, ISSUE_TEXT, True, ISSUE_COMPACT),
    (ISSUE, ISSUE_TEXT, False, ISSUE_SPACED),
    (ISSUE, ISSUE_TEXT, False, ISSUE_COMPACT),
    (
        ISSUE,
        ISSUE_TEXT,
        False,
        '{"title": "x","status": "closed","score": 1.5,"owner": {"login": "a","id": 1},'
        '"watchers": [ ],"priority": -3,"labels": [ ],"due": "2024-01-02" }',
    ),
]


@pytest.mark.parametrize(("schema", "text", "copying", "answer"), ANSWERS)
def test_every_draft_is_what_the_answer_writes_next(
    vocab_model: Any, schema: Any, text: str, copying: bool, answer: str
) -> None:
    # The answer is one the grammar admits (its keys in the grammar's order).
    assert grammar_admits(vocab_model, _gbnf(schema, text, copying=copying), answer, ends=True)
    bounded = _bounded(schema, text, copying=copying)
    # Written as the model's tokens write it (KeyTokens feeds the draft token by token): at
    # every token's end, the draft is what the answer writes next.
    draft = KeyDraft(bounded)
    written = ""
    drafts = 0
    for token in vocab_model.tokenize(answer.encode(), add_bos=False, special=False):
        piece = vocab_model.detokenize([token]).decode()
        draft.feed(piece)
        written += piece
        text_next = draft.next_text()
        assert answer[len(written) :].startswith(text_next), (written, text_next)
        drafts += bool(text_next)
    assert written == answer
    assert drafts >= 3
    # Written char by char: at every character (a space written is not drafted again).
    draft = KeyDraft(bounded)
    for at, char in enumerate(answer):
        draft.feed(char)
        assert answer[at + 1 :].startswith(draft.next_text()), answer[: at + 1]
    # Every draft taken as soon as it is offered, the model writing the answer's next token
    # where there is none: the same answer.
    assert _written_taking_drafts(vocab_model, bounded, answer) == answer


def _written_taking_drafts(vocab: Any, schema: dict[str, Any], answer: str) -> str:
    draft = KeyDraft(schema)
    written = ""
    while len(written) < len(answer) and answer.startswith(written):
        text = draft.next_text()
        if not text:
            rest = answer[len(written) :].encode()
            token = vocab.tokenize(rest, add_bos=False, special=False)[0]
            text = vocab.detokenize([token]).decode()
        draft.feed(text)
        written += text
    return written


def test_the_grammar_order_is_required_keys_first(vocab_model: Any) -> None:
    gbnf = _gbnf(Order.model_json_schema(), ORDER_TEXT)
    in_schema_order = (
        '{"comment": null, "customer": "Ana Lima", "total": 4.50, '
        '"items": [{"name": "apples", "qty": 2}], "paid": true}'
    )
    # The schema's own order is not the grammar's: the drafts follow the grammar's.
    assert not grammar_admits(vocab_model, gbnf, in_schema_order, ends=True)
    assert _draft_after(ORDER, "{") == '"customer":'


# --- bugs and the grammar's alternatives ----------------------------------------------------


class Cat(BaseModel):
    meows: bool


class Dog(BaseModel):
    barks: bool


class Pets(BaseModel):
    pets: list[Union[Cat, Dog]]  # noqa: UP007 (the form users write)


class Maybe(BaseModel):
    items: list[Optional[Item]]  # noqa: UP045


class CatToy(BaseModel):
    squeaks: bool


class DogToy(BaseModel):
    chewed: bool


class Kitten(BaseModel):
    toy: CatToy


class Puppy(BaseModel):
    toy: DogToy


class Pet(BaseModel):
    pet: Union[Kitten, Puppy]  # noqa: UP007 (the form users write)


PETS_TEXT = "Ann has a cat and Bob has a dog; 5 in all."

CAFE = {
    "type": "object",
    "properties": {"café": {"type": "string"}, "n": {"type": "integer"}},
    "required": ["café", "n"],
}

#: A list whose items are one object or null in one schema (``"type"`` a list).
ROWS_OR_NULL = {
    "type": "object",
    "properties": {
        "rows": {
            "type": "array",
            "items": {
                "type": ["object", "null"],
                "properties": {"k": {"type": "string"}},
                "required": ["k"],
            },
        }
    },
    "required": ["rows"],
}

WATCHERS = ISSUE_SPACED[: ISSUE_SPACED.index('rs": [') + 6]


@pytest.mark.parametrize(
    ("schema", "text", "written", "continuations"),
    [
        # Where the grammar leaves a space free and the answer's spacing is not known yet:
        # the first "{", "[" and ",", no draft.
        pytest.param(
            Order.model_json_schema(),
            ORDER_TEXT,
            '{"customer": "Ana Lima",',
            ['"total": 4.50', ' "total": 4.50'],
            id="the-first-comma",
        ),
        # The space written: the grammar admits no other (its space rule is " "?).
        pytest.param(
            Order.model_json_schema(),
            ORDER_TEXT,
            "{ ",
            ['"customer": "Ana Lima"'],
            id="a-space-after-a-brace",
        ),
        pytest.param(
            ISSUE, ISSUE_TEXT, WATCHERS + " ", ['{"login": "tom"'], id="a-space-after-a-bracket"
        ),
        pytest.param(
            Order.model_json_schema(),
            ORDER_TEXT,
            '{"customer": "Ana Lima", ',
            ['"total": 4.50'],
            id="a-space-after-a-comma",
        ),
        pytest.param(
            Order.model_json_schema(),
            ORDER_TEXT,
            '{"customer": "Ana Lima", "total": 4.50, "items": [{"name": "apples", "qty": 2}], '
            '"paid": true,',
            [' "comment": null', ' "tags": []', '"comment": null'],
            id="optional-keys-only",
        ),
        pytest.param(
            Pets.model_json_schema(),
            PETS_TEXT,
            '{"pets": [',
            ["]", '{"meows": true}'],
            id="a-list-that-may-be-empty",
        ),
        pytest.param(
            Pets.model_json_schema(),
            PETS_TEXT,
            '{"pets": [{"barks": true}, {"barks": false},',
            [' {"barks": true}', ' {"meows": true}'],
            id="a-list-of-a-union-of-objects",
        ),
        pytest.param(
            Pets.model_json_schema(),
            PETS_TEXT,
            '{"pets": [{"barks": true}, ',
            ['{"barks": true}', '{"meows": true}'],
            id="a-list-of-a-union-of-objects-spaced",
        ),
        pytest.param(
            Maybe.model_json_schema(),
            PETS_TEXT,
            '{"items": [null, null,',
            [" null", ' {"name": "Ann", "qty": 5}'],
            id="a-list-of-nullable-objects",
        ),
        pytest.param(
            Maybe.model_json_schema(),
            PETS_TEXT,
            '{"items": [{"name": "Ann", "qty": 5}, ',
            ["null", '{"name": "Ann", "qty": 5}'],
            id="a-list-of-nullable-objects-spaced",
        ),
        pytest.param(
            ROWS_OR_NULL,
            PETS_TEXT,
            '{"rows": [{"k": "Ann"}, ',
            ["null", '{"k": "Ann"}'],
            id="a-list-of-objects-or-null-by-type",
        ),
        pytest.param(
            Pet.model_json_schema(),
            PETS_TEXT,
            '{"pet": {"toy": {',
            ['"squeaks": true}', '"chewed": true}'],
            id="in-an-object-of-a-union",
        ),
        pytest.param(CAFE, PETS_TEXT, "{ ", ['"caf\\u00e9": "Ann"'], id="a-key-not-in-ascii"),
        pytest.param(
            CAFE, PETS_TEXT, '{"', ['caf\\u00e9": "Ann"'], id="a-key-not-in-ascii-its-quote"
        ),
    ],
)
def test_a_draft_begins_every_continuation_the_grammar_admits(
    vocab_model: Any, schema: Any, text: str, written: str, continuations: list[str]
) -> None:
    gbnf = _gbnf(schema, text)
    for continuation in continuations:
        assert grammar_admits(vocab_model, gbnf, continuation, prefix=written)
    drafted = _draft_after(_bounded(schema, text), written)
    assert all(c.startswith(drafted) for c in continuations), drafted


# --- the draft hook -------------------------------------------------------------------------


class _Vocabulary:
    """A stand-in for a Llama's tokenize/detokenize: one token per character, id = ord."""

    def __init__(self) -> None:
        self.tokenized: list[bytes] = []

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        assert (add_bos, special) == (False, False)
        self.tokenized.append(text)
        return [ord(c) for c in text.decode()]

    def detokenize(
        self, tokens: list[int], prev_tokens: list[int] | None = None, special: bool = False
    ) -> bytes:
        return "".join(chr(t) for t in tokens).encode()


class _Admitting:
    """A sampler whose grammar admits the first ``n`` tokens of any draft."""

    def __init__(self, n: int) -> None:
        self.n = n

    def admitted(self, tokens: Any) -> int:
        return min(self.n, len(tokens))


def test_key_tokens_drafts_nothing_without_a_request() -> None:
    require_local_extra()
    import numpy as np

    from openai_structured.local._decoding import KeyTokens

    vocab = _Vocabulary()
    hook = KeyTokens(vocab)
    for ids in ([], [1, 2, 3], [ord("{")]):
        drafted = hook(np.array(ids, dtype=np.intc))
        assert isinstance(drafted, np.ndarray)
        assert drafted.dtype == np.intc
        assert drafted.tolist() == []
    assert vocab.tokenized == []
    assert not hasattr(vocab, "_openai_structured_batch")
    # A request (its grammar's schema), then one without a schema (drafting off).
    hook.begin(KeyDraft(ORDER))
    prompt = [ord(c) for c in "PROMPT"]
    # No sampler of ours for the request yet (llama-cpp-python's would need every row's
    # logits, which a draft's batch does not compute): nothing drafted.
    assert hook(np.array([*prompt, ord("{")], dtype=np.intc)).tolist() == []
    hook.begin(KeyDraft(ORDER))
    vocab._openai_structured_sampler = _Admitting(99)  # type: ignore[attr-defined]
    drafted = hook(np.array([*prompt, ord("{")], dtype=np.intc))
    assert "".join(map(chr, drafted.tolist())) == '"customer":'
    assert vocab._openai_structured_batch == len('"customer":')  # type: ignore[attr-defined]
    # Only the tokens the grammar admits are drafted.
    hook.begin(KeyDraft(ORDER))
    vocab._openai_structured_sampler = _Admitting(4)  # type: ignore[attr-defined]
    drafted = hook(np.array([*prompt, ord("{")], dtype=np.intc))
    assert "".join(map(chr, drafted.tolist())) == '"cus'
    hook.begin(KeyDraft(ORDER))
    vocab._openai_structured_sampler = _Admitting(0)  # type: ignore[attr-defined]
    assert hook(np.array([*prompt, ord("{")], dtype=np.intc)).tolist() == []
    hook.begin(None)
    assert hook(np.array([*prompt, ord("{")], dtype=np.intc)).tolist() == []
    assert vocab.tokenized == [b'"customer":'] * 3  # the three requests that had a sampler


def test_a_drafted_token_is_the_one_after_the_logits_row() -> None:
    require_local_extra()
    import numpy as np

    from openai_structured.local._decoding import _drafted_token

    llama = type("Llama", (), {})()
    llama.input_ids = np.array([10, 11, 12, 13, 14, 0, 0], dtype=np.intc)
    llama.n_tokens = 5
    assert _drafted_token(llama, -1) is None  # the last row: nothing drafted after it
    assert _drafted_token(llama, 0) is None
    assert _drafted_token(llama, -2) == 14
    assert _drafted_token(llama, -5) == 11


# --- 3. the embedded model, drafting on and off ---------------------------------------------

SYSTEM = "Extract the requested information from the text."


class Stop(BaseModel):
    city: str
    nights: int


class Trip(BaseModel):
    adults: Optional[int] = None  # noqa: UP045 (optional and first: the grammar puts it last)
    traveller: str
    start: datetime.date
    stops: list[Stop]
    budget: float


TRIP_TEXT = (
    "Omar Haddad leaves on 3 March 2025. Stops: Lisbon, 2 nights; Porto, 3 nights. "
    "Budget 1,200 EUR."
)


@pytest.mark.local
def test_answers_with_drafted_keys_are_valid_and_in_the_grammar_s_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_local_extra()
    from openai_structured.local._prompting import STYLE_ENV

    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": TRIP_TEXT}]
    answers: dict[str, tuple[Trip, str]] = {}
    for style in ("", "draft_keys=false"):  # the defaults: keys drafted
        monkeypatch.setenv(STYLE_ENV, style)
        with LocalModelServer() as server:
            trip = openai_structured_call(
                client=server.client(),
                model=server.model_name,
                output_schema=Trip,
                system_prompt=SYSTEM,
                user_prompt=TRIP_TEXT,
            )
            response = server.client().chat.completions.create(
                model=server.model_name,
                messages=messages,  # type: ignore[arg-type]
                response_format={"type": "json_object", "schema": Trip.model_json_schema()},  # type: ignore[typeddict-unknown-key]
            )
        content = response.choices[0].message.content
        assert content is not None
        answers[style] = (trip, content)
    for trip, content in answers.values():
        assert isinstance(trip, Trip)
        Trip.model_validate_json(content)  # the answer to the plain request: valid too
        # The grammar admits only the text's date.
        assert trip.start == datetime.date(2025, 3, 3)
        assert trip.traveller in TRIP_TEXT
        # The text as written, drafted or not: the keys in the grammar's order.
        pairs = json.loads(content, object_pairs_hook=lambda kv: kv)
        keys = [key for key, _ in pairs]
        # The grammar's order: the required keys in the schema's order, then the optional one.
        assert keys[:4] == ["traveller", "start", "stops", "budget"]
        assert keys[4:] in ([], ["adults"])
        stops = dict(pairs)["stops"]
        assert len(stops) >= 1
        for stop in stops:
            assert [key for key, _ in stop] == ["city", "nights"]
    # Not asserted: that both answers are equal. They were not in our runs: drafted,
    # '{"traveller": ...' and '"stops": [{"city"', where without drafts the model writes
    # '{ "traveller": ...' and '"stops": [ {"city"' (the xfail a-space-after-a-brace), and from
    # that context on other values: adults 3 with drafts, 2025 without.
