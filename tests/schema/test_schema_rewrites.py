"""Every lossless rewrite of issue 12 through the loopback server (real HTTP, the real SDK).

For each rewrite the scripted answer is written in the shape *sent* (the request is checked to
carry the rewritten schema) and the result must come back as the *declared* Python type: on a
call, a value stream and an event stream, with the Chat Completions and the Responses API (sync;
one async case per path). Event streams report ``ItemCompleted`` paths in the declared shape and
``PartialUpdate.snapshot()`` in the declared shape too. Answers the declared shape cannot take
(a map key given twice, a JSON-encoded string that is not JSON, a constraint that strict mode
does not send) are a ``ValidationError`` naming the place.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, ConfigDict, RootModel

from openai_structured import (
    Finished,
    ItemCompleted,
    PartialUpdate,
    ValidationError,
    ValueCompleted,
    async_openai_structured_call,
    async_openai_structured_events,
    async_openai_structured_stream,
    openai_structured_call,
    openai_structured_events,
    openai_structured_stream,
)
from openai_structured.schema import compile_schema
from openai_structured.testing import FakeOpenAIServer, Fault, Reply

# --- declared types ----------------------------------------------------------------------------


class Item(BaseModel):
    name: str
    qty: int = 1


class Basket(BaseModel):
    owner: str
    items: list[Item]


class Open(BaseModel):
    """An open object with declared properties: the other keys are ints."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, int]
    name: str
    tags: list[str] = []


class Closed(BaseModel):
    """``extra="allow"`` without a type for the other keys: closed (only ``name`` is produced)."""

    model_config = ConfigDict(extra="allow")
    name: str


class Loose(BaseModel):
    data: Any


def entry(value: dict[str, Any], key: dict[str, Any] | None = None) -> dict[str, Any]:
    """One ``{key, value}`` entry object of a map, as sent."""
    return {
        "type": "object",
        "properties": {"key": key or {"type": "string"}, "value": value},
        "required": ["key", "value"],
        "additionalProperties": False,
    }


PATTERN_DOC = {
    "type": "object",
    "properties": {"id": {"type": "integer"}},
    "required": ["id"],
    "patternProperties": {"^x-": {"type": "array", "items": {"type": "string"}}},
}
EXTRA_DOC = {
    "type": "object",
    "properties": {"title": {"type": "string"}},
    "required": ["title"],
    "additionalProperties": {"type": "integer"},
}
TUPLE_DOC = {
    "type": "object",
    "properties": {
        "t": {
            "type": "array",
            "prefixItems": [{"type": "array", "items": {"type": "integer"}}, {"type": "string"}],
        }
    },
    "required": ["t"],
}
ANY_DOC = {
    "type": "object",
    "properties": {"meta": {}, "list": {"type": "array", "items": {}}},
    "required": ["meta", "list"],
}
ENUM_DOC = {
    "type": "object",
    "properties": {"choice": {"enum": [{"k": 1}, {"k": 2}]}},
    "required": ["choice"],
}
CHECKED_DOC = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "not": {"enum": ["forbidden"]}},
        "n": {"type": "integer", "if": {"minimum": 10}, "then": {"multipleOf": 5}},
    },
    "required": ["code", "n"],
}
MAP_DOC = {"type": "object", "additionalProperties": {"type": "integer"}}


@dataclass(frozen=True)
class Case:
    """One rewrite: the declared output, an answer in the shape sent, what comes back."""

    id: str
    output: dict[str, Any]  # output_schema=... or schema=...
    answer: Any  # as the model writes it, under the schema sent
    sent: dict[str, Any]  # pointer into the schema sent -> the node there (annotations aside)
    result: Any  # the declared Python value
    declared: Any  # the restored JSON value (what the last snapshot() shows)
    items: list[tuple[tuple[Any, ...], Any]] = field(default_factory=list)


CASES = [
    Case(
        "dict[str,int]",
        {"output_schema": dict[str, int]},
        {"value": [{"key": "a", "value": 1}, {"key": "b", "value": 2}]},
        {"#/required": ["value"], "#/properties/value/items": entry({"type": "integer"})},
        {"a": 1, "b": 2},
        {"a": 1, "b": 2},
        [(("a",), 1), (("b",), 2)],
    ),
    Case(
        "dict[str,Model]",
        {"output_schema": dict[str, Item]},
        {
            "value": [
                {"key": "pen", "value": {"name": "pen", "qty": None}},
                {"key": "ink", "value": {"name": "ink", "qty": 3}},
            ]
        },
        {"#/properties/value/items": entry({"$ref": "#/$defs/Item"})},
        {"pen": Item(name="pen"), "ink": Item(name="ink", qty=3)},
        {"pen": {"name": "pen"}, "ink": {"name": "ink", "qty": 3}},
        [(("pen",), Item(name="pen")), (("ink",), Item(name="ink", qty=3))],
    ),
    Case(
        "list[Model]",
        {"output_schema": list[Item]},
        {"value": [{"name": "a", "qty": None}, {"name": "b", "qty": 2}]},
        {"#/properties/value": {"type": "array", "items": {"$ref": "#/$defs/Item"}}},
        [Item(name="a"), Item(name="b", qty=2)],
        [{"name": "a"}, {"name": "b", "qty": 2}],
        [((0,), Item(name="a")), ((1,), Item(name="b", qty=2))],
    ),
    Case(
        "RootModel[list[int]]",
        {"output_schema": RootModel[list[int]]},
        {"value": [3, 1]},
        {"#/properties/value": {"type": "array", "items": {"type": "integer"}}},
        RootModel[list[int]]([3, 1]),
        [3, 1],
        [((0,), 3), ((1,), 1)],
    ),
    Case(
        "tuple[int,str]",
        {"output_schema": tuple[int, str]},
        {"0": 7, "1": "x"},
        {"#/properties": {"0": {"type": "integer"}, "1": {"type": "string"}}},
        (7, "x"),
        [7, "x"],
    ),
    Case(
        "tuple[list[int],str]",
        {"output_schema": tuple[list[int], str]},
        {"0": [1, 2], "1": "x"},
        {"#/properties/0": {"type": "array", "items": {"type": "integer"}}},
        ([1, 2], "x"),
        [[1, 2], "x"],
        [((0, 0), 1), ((0, 1), 2)],
    ),
    Case(
        "Any",
        {"output_schema": Any},
        {"value": '{"a": [1, null]}'},
        {"#/properties/value": {"type": "string"}},
        {"a": [1, None]},
        {"a": [1, None]},
    ),
    Case(
        "Model|None",
        {"output_schema": Basket | None},
        {"value": {"owner": "o", "items": [{"name": "a", "qty": None}]}},
        {"#/properties/value": {"anyOf": [{"$ref": "#/$defs/Basket"}, {"type": "null"}]}},
        Basket(owner="o", items=[Item(name="a")]),
        {"owner": "o", "items": [{"name": "a"}]},
        [(("items", 0), Item(name="a"))],
    ),
    Case(
        "Model|None-null",
        {"output_schema": Basket | None},
        {"value": None},
        {"#/required": ["value"]},
        None,
        None,
    ),
    Case(
        "extra-allow-typed",
        {"output_schema": Open},
        {
            "name": "n",
            "tags": ["t"],
            "additional_properties": [{"key": "x", "value": 3}, {"key": "y", "value": 4}],
        },
        {
            "#/required": ["name", "tags", "additional_properties"],
            "#/properties/additional_properties/items": entry({"type": "integer"}),
        },
        Open(name="n", tags=["t"], x=3, y=4),
        {"name": "n", "tags": ["t"], "x": 3, "y": 4},
        [(("tags", 0), "t"), (("x",), 3), (("y",), 4)],
    ),
    Case(
        "extra-allow-closed",
        {"output_schema": Closed},
        {"name": "n"},
        {"#/properties": {"name": {"type": "string"}}, "#/additionalProperties": False},
        Closed(name="n"),
        {"name": "n"},
    ),
    Case(
        "patternProperties",
        {"schema": PATTERN_DOC},
        {"id": 1, "additional_properties": [{"key": "x-tags", "value": ["a", "b"]}]},
        {
            "#/properties/id": {"type": "integer"},
            "#/properties/additional_properties/items": entry(
                {"type": "array", "items": {"type": "string"}},
                key={"type": "string", "pattern": "^x-"},
            ),
        },
        {"id": 1, "x-tags": ["a", "b"]},
        {"id": 1, "x-tags": ["a", "b"]},
        [(("x-tags", 0), "a"), (("x-tags", 1), "b"), (("x-tags",), ["a", "b"])],
    ),
    Case(
        "additionalProperties+declared",
        {"schema": EXTRA_DOC},
        {"title": "t", "additional_properties": [{"key": "n", "value": 1}]},
        {"#/properties/additional_properties/items": entry({"type": "integer"})},
        {"title": "t", "n": 1},
        {"title": "t", "n": 1},
        [(("n",), 1)],
    ),
    Case(
        "map-root",
        {"schema": MAP_DOC},
        {"value": [{"key": "a", "value": 1}]},
        {"#/properties/value/items": entry({"type": "integer"})},
        {"a": 1},
        {"a": 1},
        [(("a",), 1)],
    ),
    Case(
        "prefixItems",
        {"schema": TUPLE_DOC},
        {"t": {"0": [1, 2], "1": "s"}},
        {"#/properties/t/required": ["0", "1"]},
        {"t": [[1, 2], "s"]},
        {"t": [[1, 2], "s"]},
        [(("t", 0, 0), 1), (("t", 0, 1), 2)],
    ),
    Case(
        "empty-schema-values",
        {"schema": ANY_DOC},
        {"meta": '{"k": 1}', "list": ["1", "[2]"]},
        {"#/properties/meta": {"type": "string"}, "#/properties/list/items": {"type": "string"}},
        {"meta": {"k": 1}, "list": [1, [2]]},
        {"meta": {"k": 1}, "list": [1, [2]]},
        [(("list", 0), 1), (("list", 1), [2])],
    ),
    Case(
        "enum-of-objects",
        {"schema": ENUM_DOC},
        {"choice": '{"k":2}'},
        {"#/properties/choice": {"type": "string", "enum": ['{"k":1}', '{"k":2}']}},
        {"choice": {"k": 2}},
        {"choice": {"k": 2}},
    ),
    Case(
        "not-if-then-else",
        {"schema": CHECKED_DOC},
        {"code": "ok", "n": 15},
        {"#/properties/code": {"type": "string"}, "#/properties/n": {"type": "integer"}},
        {"code": "ok", "n": 15},
        {"code": "ok", "n": 15},
    ),
]
BY_ID = {c.id: c for c in CASES}
#: Open objects with declared properties: their entries are reported at the wrong paths.
EXTRA_ENTRIES = ["extra-allow-typed", "patternProperties", "additionalProperties+declared"]


# --- the loopback server and the three paths ---------------------------------------------------


@pytest.fixture(scope="module")
def _server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def server(_server: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    _server.reset()
    yield _server
    assert not _server.errors, _server.errors


@pytest.fixture(params=["chat", "responses"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _kwargs(api: str, output: dict[str, Any]) -> dict[str, Any]:
    return {"model": "gpt-4o", "api": api, "user_prompt": "x", **output}


def _sent_schema(server: FakeOpenAIServer) -> dict[str, Any]:
    body = server.last_request.json
    if "response_format" in body:
        return dict(body["response_format"]["json_schema"]["schema"])
    return dict(body["text"]["format"]["schema"])


def _bare(node: Any) -> Any:
    """``node`` without annotations (``title``, ``description``)."""
    if isinstance(node, dict):
        return {k: _bare(v) for k, v in node.items() if k not in ("title", "description")}
    if isinstance(node, list):
        return [_bare(v) for v in node]
    return node


def _at(schema: dict[str, Any], pointer: str) -> Any:
    node: Any = schema
    for part in pointer.lstrip("#").split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _check_sent(server: FakeOpenAIServer, case: Case) -> None:
    schema = _sent_schema(server)
    assert schema == compile_schema(next(iter(case.output.values()))).schema
    for pointer, expected in case.sent.items():
        assert _bare(_at(schema, pointer)) == expected, pointer


def _same(result: Any, expected: Any) -> None:
    assert result == expected
    assert type(result) is type(expected)
    if isinstance(expected, dict):
        assert all(type(result[k]) is type(v) for k, v in expected.items())
    if isinstance(expected, (list, tuple)):
        assert [type(v) for v in result] == [type(v) for v in expected]


def _streamed(case: Case) -> Reply:
    """The answer in small pieces, then whitespace before the last brace: the events arrive
    in several reads, and the last partial holds the whole value (the root still open)."""
    text = json.dumps(case.answer, separators=(",", ":"))
    body = text[:-1]
    pieces = [body[i : i + 5] for i in range(0, len(body), 5)] + [" "] * 4 + [text[-1]]
    return Reply.text(body + "    " + text[-1], chunks=pieces)


def _delayed(reply: Reply) -> Fault:
    return Fault.delay(between_events=0.0005, reply=reply)


@dataclass
class Seen:
    """What an event stream delivered (partials are read as they arrive: they go stale)."""

    snapshots: list[Any] = field(default_factory=list)
    items: list[tuple[tuple[Any, ...], Any]] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    finished: list[Finished] = field(default_factory=list)
    item_errors: list[Any] = field(default_factory=list)

    def see(self, event: Any) -> None:
        if isinstance(event, PartialUpdate):
            self.snapshots.append(event.snapshot())
        elif isinstance(event, ItemCompleted):
            if event.error is not None:  # (an answer that fails may have failing items too)
                self.item_errors.append(event.error)
            self.items.append((event.path, event.item))
        elif isinstance(event, ValueCompleted):
            self.values.append(event.value)
        elif isinstance(event, Finished):
            self.finished.append(event)


def _events(server: FakeOpenAIServer, api: str, output: dict[str, Any]) -> Seen:
    seen = Seen()
    with openai_structured_events(client=server.client(), **_kwargs(api, output)) as stream:
        for event in stream:
            seen.see(event)
    return seen


def _check_events(seen: Seen, case: Case, *, items: bool = True) -> None:
    assert seen.item_errors == []
    (value,) = seen.values
    _same(value, case.result)
    (finished,) = seen.finished
    _same(finished.result, case.result)
    assert len(seen.snapshots) >= 2  # several reads
    assert seen.snapshots[-1] == case.declared
    # every partial is in the declared shape (None: nothing of it yet, or a JSON-encoded
    # string not complete yet)
    kind = type(case.declared)
    assert all(s is None or type(s) is kind for s in seen.snapshots), seen.snapshots
    if items:
        assert seen.items == case.items


# --- one test per path -------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_call_returns_the_declared_type(server: FakeOpenAIServer, api: str, case: Case) -> None:
    server.queue(Reply.json(case.answer))
    result = openai_structured_call(client=server.client(), **_kwargs(api, case.output))
    _same(result, case.result)
    _check_sent(server, case)
    compiled = compile_schema(next(iter(case.output.values())))
    assert compiled.restore(case.answer) == case.declared
    assert compiled.changes and not all(c.lossy for c in compiled.changes)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_value_stream_yields_the_declared_type(
    server: FakeOpenAIServer, api: str, case: Case
) -> None:
    server.queue(Reply.json(case.answer, chunk_size=7))
    values = list(openai_structured_stream(client=server.client(), **_kwargs(api, case.output)))
    assert len(values) == 1
    _same(values[0], case.result)
    _check_sent(server, case)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_an_event_stream_reports_items_and_partials_in_the_declared_shape(
    server: FakeOpenAIServer, api: str, case: Case
) -> None:
    server.queue(_delayed(_streamed(case)))
    seen = _events(server, api, case.output)
    # the entries of open objects: see the xfail test below
    _check_events(seen, case, items=case.id not in EXTRA_ENTRIES)
    _check_sent(server, case)


@pytest.mark.parametrize("case_id", EXTRA_ENTRIES)
def test_an_event_stream_reports_the_other_keys_of_an_open_object_under_their_keys(
    server: FakeOpenAIServer, case_id: str
) -> None:
    case = BY_ID[case_id]
    server.queue(_delayed(_streamed(case)))
    seen = _events(server, "chat", case.output)
    assert seen.items == case.items


@pytest.mark.parametrize("case_id", ["dict[str,int]", "dict[str,Model]", "map-root"])
def test_map_entries_are_reported_when_the_whole_answer_arrives_in_one_read(
    server: FakeOpenAIServer, case_id: str
) -> None:
    case = BY_ID[case_id]
    text = json.dumps(case.answer)
    server.queue(Reply.text(text, chunks=[text]))  # one delta: parsed in one go
    seen = _events(server, "chat", case.output)
    _same(seen.values[0], case.result)
    assert seen.items == case.items


@pytest.mark.parametrize(
    "extra",
    [{"maxItems": 1}, {"minItems": 3, "items": {"type": "boolean"}}, {"uniqueItems": True}],
    ids=["maxItems", "minItems", "uniqueItems"],
)
def test_a_tuple_constraint_the_rewrite_does_not_send_is_recorded_as_lossy(
    extra: dict[str, Any],
) -> None:
    node = {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "number"}], **extra}
    compiled = compile_schema({"type": "object", "properties": {"t": node}, "required": ["t"]})
    assert any(c.lossy for c in compiled.changes if c.path == "#/properties/t")


@pytest.mark.parametrize(
    ("node", "answer", "expected"),
    [
        ({"type": ["object", "string"]}, "hello", "hello"),
        ({"type": ["object", "string", "integer"]}, "5", "5"),
        ({"anyOf": [{}, {"type": "string"}]}, "5", "5"),
    ],
    ids=["object-or-string", "string-becomes-int", "any-or-string"],
)
def test_a_plain_string_beside_a_json_string_branch_stays_a_string(
    server: FakeOpenAIServer, node: dict[str, Any], answer: str, expected: str
) -> None:
    doc = {"type": "object", "properties": {"a": node}, "required": ["a"]}
    server.queue(Reply.json({"a": answer}))
    result = openai_structured_call(client=server.client(), **_kwargs("chat", {"schema": doc}))
    assert result == {"a": expected}


# --- async: one case per path --------------------------------------------------------------------


def test_async_call_returns_the_declared_type(server: FakeOpenAIServer) -> None:
    case = BY_ID["dict[str,Model]"]
    server.queue(Reply.json(case.answer))

    async def run() -> Any:
        async with server.async_client() as client:
            return await async_openai_structured_call(
                client=client, **_kwargs("responses", case.output)
            )

    _same(asyncio.run(run()), case.result)
    _check_sent(server, case)


def test_async_value_stream_yields_the_declared_type(server: FakeOpenAIServer) -> None:
    case = BY_ID["tuple[list[int],str]"]
    server.queue(Reply.json(case.answer, chunk_size=3))

    async def run() -> list[Any]:
        async with server.async_client() as client:
            stream = async_openai_structured_stream(client=client, **_kwargs("chat", case.output))
            return [value async for value in stream]

    values = asyncio.run(run())
    assert len(values) == 1
    _same(values[0], case.result)
    _check_sent(server, case)


@pytest.mark.parametrize("api_name", ["chat", "responses"])
def test_async_event_stream_reports_the_declared_shape(
    server: FakeOpenAIServer, api_name: str
) -> None:
    case = BY_ID["list[Model]"]
    server.queue(_delayed(_streamed(case)))

    async def run() -> Seen:
        seen = Seen()
        async with (
            server.async_client() as client,
            async_openai_structured_events(client=client, **_kwargs(api_name, case.output)) as s,
        ):
            async for event in s:
                seen.see(event)
        return seen

    _check_events(asyncio.run(run()), case)
    _check_sent(server, case)


# --- answers the declared shape cannot take ------------------------------------------------------


PATHS = ["call", "stream", "events"]


def _fails(
    server: FakeOpenAIServer, path: str, api: str, output: dict[str, Any], answer: Any
) -> list[dict[str, Any]]:
    reply = Reply.json(answer, chunk_size=6)
    server.queue(_delayed(reply) if path == "events" else reply)
    kwargs = _kwargs(api, output)
    client = server.client()
    with pytest.raises(ValidationError) as info:
        if path == "call":
            openai_structured_call(client=client, **kwargs)
        elif path == "stream":
            list(openai_structured_stream(client=client, **kwargs))
        else:
            _events(server, api, output)
    assert len(server.requests) == 1  # no re-ask by default
    return info.value.errors()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("output", "answer", "key"),
    [
        (
            {"output_schema": dict[str, int]},
            {"value": [{"key": "a", "value": 1}, {"key": "a", "value": 2}]},
            ("a",),
        ),
        (
            {"output_schema": Open},
            {"name": "n", "tags": None, "additional_properties": [{"key": "name", "value": 1}]},
            ("name",),
        ),
        (
            {"schema": PATTERN_DOC},
            {
                "id": 1,
                "additional_properties": [
                    {"key": "x-a", "value": []},
                    {"key": "x-a", "value": ["b"]},
                ],
            },
            ("x-a",),
        ),
        (
            {"schema": {"type": "object", "properties": {"m": MAP_DOC}, "required": ["m"]}},
            {"m": [{"key": "k", "value": 1}, {"key": "k", "value": 1}]},
            ("m", "k"),
        ),
    ],
    ids=["dict[str,int]", "extra-allow-typed", "patternProperties", "nested-map"],
)
def test_a_map_key_given_twice_is_a_validation_error_naming_the_key(
    server: FakeOpenAIServer,
    api: str,
    path: str,
    output: dict[str, Any],
    answer: Any,
    key: tuple[str, ...],
) -> None:
    (error,) = _fails(server, path, api, output, answer)
    assert error["loc"] == key and error["type"] == "restore"
    assert repr(key[-1]) in error["msg"] and "more than once" in error["msg"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("output", "answer", "loc"),
    [
        ({"output_schema": Loose}, {"data": "not json"}, ("data",)),
        ({"output_schema": Any}, {"value": "{'single': 'quotes'}"}, ()),
        ({"schema": ANY_DOC}, {"meta": "null", "list": ["1", "two"]}, ("list", 1)),
    ],
    ids=["Any-field", "Any-root", "empty-schema-item"],
)
def test_a_json_string_that_is_not_json_is_a_validation_error_at_its_path(
    server: FakeOpenAIServer,
    api: str,
    path: str,
    output: dict[str, Any],
    answer: Any,
    loc: tuple[Any, ...],
) -> None:
    (error,) = _fails(server, path, api, output, answer)
    assert (error["loc"], error["type"]) == (loc, "restore")
    assert "JSON-encoded string" in error["msg"]


@pytest.mark.parametrize("path", PATHS)
def test_constraints_not_sent_are_checked_against_the_original_schema(
    server: FakeOpenAIServer, api: str, path: str
) -> None:
    errors = _fails(server, path, api, {"schema": CHECKED_DOC}, {"code": "forbidden", "n": 12})
    assert sorted((e["path"], e["type"]) for e in errors) == [("code", "not"), ("n", "multipleOf")]
    # n below 10: the `then` does not apply
    server.queue(Reply.json({"code": "fine", "n": 7}))
    result = openai_structured_call(client=server.client(), **_kwargs(api, {"schema": CHECKED_DOC}))
    assert result == {"code": "fine", "n": 7} and isinstance(result, dict)


# ECMAScript Unicode property classes: Python's `re` cannot read them, `regex` can.
UNICODE_DOC: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string", "pattern": "^\\p{L}+$"}},
    "patternProperties": {"^\\p{Lu}\\p{Ll}*$": {"type": "integer"}},
    "additionalProperties": False,
    "required": ["name"],
}


def test_a_unicode_property_pattern_is_not_sent_and_is_checked_after_the_answer() -> None:
    compiled = compile_schema(UNICODE_DOC)
    patterns, stack = [], [compiled.schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            patterns += [v for k, v in node.items() if k == "pattern"]
            stack += node.values()
        elif isinstance(node, list):
            stack += node
    assert patterns == []  # neither the property's nor the map key's is sent
    assert "^\\p{L}+$" in compiled.schema["properties"]["name"]["description"]
    lossy = [c for c in compiled.changes if c.lossy]
    assert {c.path for c in lossy} >= {"#/properties/name"}
    assert all("checked after the answer" in c.action for c in lossy)


@pytest.mark.parametrize("path", PATHS)
def test_an_answer_breaking_a_unicode_property_pattern_is_a_validation_error(
    server: FakeOpenAIServer, api: str, path: str
) -> None:
    answer = {"name": "Zoë2", "additional_properties": [{"key": "lower", "value": 1}]}
    errors = _fails(server, path, api, {"schema": UNICODE_DOC}, answer)
    assert sorted((e["path"], e["type"]) for e in errors) == [
        ("<root>", "additionalProperties"),
        ("name", "pattern"),
    ]
    good = {"name": "Zoë", "additional_properties": [{"key": "Été", "value": 3}]}
    server.queue(Reply.json(good))
    result = openai_structured_call(client=server.client(), **_kwargs(api, {"schema": UNICODE_DOC}))
    assert result == {"name": "Zoë", "Été": 3}


# A recursive schema whose recursion passes through allOf (the AsyncAPI and OpenAPI meta-schema
# pattern: "a schema is the base schema and these extra keywords, recursively").
RECURSIVE_ALLOF_DOC: dict[str, Any] = {
    "$defs": {
        "base": {
            "type": "object",
            "properties": {"title": {"type": "string"}},
            "required": ["title"],
        },
        "node": {
            "allOf": [
                {"$ref": "#/$defs/base"},
                {
                    "type": "object",
                    "properties": {
                        "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                        "extra": {"allOf": [{"$ref": "#/$defs/node"}, {"minProperties": 1}]},
                    },
                    "required": ["children"],
                },
            ]
        },
    },
    "$ref": "#/$defs/node",
}


@pytest.mark.parametrize("path", PATHS)
def test_a_recursion_through_allof_compiles_to_a_reference_and_round_trips(
    server: FakeOpenAIServer, api: str, path: str
) -> None:
    compiled = compile_schema(RECURSIVE_ALLOF_DOC)
    sent = compiled.schema
    assert "allOf" not in json.dumps(sent)
    assert any("recursive" in c.action for c in compiled.changes)
    leaf = {"title": "leaf", "children": [], "extra": None}
    answer = {"title": "root", "children": [leaf], "extra": {**leaf, "title": "x"}}
    reply = Reply.json(answer, chunk_size=7)
    server.queue(_delayed(reply) if path == "events" else reply)
    kwargs = _kwargs(api, {"schema": RECURSIVE_ALLOF_DOC})
    client = server.client()
    if path == "call":
        result = openai_structured_call(client=client, **kwargs)
    elif path == "stream":
        (result,) = list(openai_structured_stream(client=client, **kwargs))
    else:
        (result,) = _events(server, api, {"schema": RECURSIVE_ALLOF_DOC}).values
    expected = {
        "title": "root",
        "children": [{"title": "leaf", "children": []}],
        "extra": {"title": "x", "children": []},
    }
    assert result == expected
    # strict mode holds the model to `base` at every level of the recursion
    nested = {"title": "root", "children": [{"children": [], "extra": None}], "extra": None}
    assert not jsonschema.Draft202012Validator(sent).is_valid(nested)
    assert jsonschema.Draft202012Validator(sent).is_valid(answer)


def _deep_model(levels: int) -> Any:
    """A pydantic model nested ``levels`` objects deep (each level a model of its own)."""
    from pydantic import create_model

    model: Any = create_model("Level0", leaf=(str, ...))
    for i in range(1, levels):
        model = create_model(f"Level{i}", name=(str, ...), inner=(model, ...))
    return model


def _deep_value(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": "bottom"}
    for i in range(1, levels):
        value = {"name": f"n{i}", "inner": value}
    return value


@pytest.mark.parametrize("path", PATHS)
def test_objects_nested_deeper_than_the_limit_travel_as_json_and_come_back_typed(
    server: FakeOpenAIServer, api: str, path: str
) -> None:
    from schema_checker import assert_openai_strict

    model = _deep_model(13)
    compiled = compile_schema(model)
    assert_openai_strict(compiled.schema)  # within OpenAI's 10 levels
    cuts = [c for c in compiled.changes if "nested beyond" in c.action]
    assert cuts and all(c.lossy for c in cuts)
    value = _deep_value(13)
    # the answer as sent: the part past the cut is a JSON-encoded string
    sent_answer = json.loads(json.dumps(value))
    node, schema = sent_answer, compiled.schema
    while True:
        inner = schema["properties"].get("inner")
        if inner is None:
            break
        target = schema["$defs"] if "$defs" in schema else compiled.schema["$defs"]
        if inner.get("type") == "string":
            node["inner"] = json.dumps(node["inner"])
            break
        schema = {**target[inner["$ref"].rsplit("/", 1)[-1]], "$defs": compiled.schema["$defs"]}
        node = node["inner"]
    reply = Reply.json(sent_answer, chunk_size=9)
    server.queue(_delayed(reply) if path == "events" else reply)
    kwargs = _kwargs(api, {"output_schema": model})
    client = server.client()
    if path == "call":
        result = openai_structured_call(client=client, **kwargs)
    elif path == "stream":
        (result,) = list(openai_structured_stream(client=client, **kwargs))
    else:
        (result,) = _events(server, api, {"output_schema": model}).values
    assert isinstance(result, model)
    assert result.model_dump() == value
