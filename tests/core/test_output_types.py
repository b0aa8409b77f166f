"""``output_schema`` takes what pydantic's ``TypeAdapter`` takes; the result is of that type, on
calls and streams alike. Non-object roots are sent wrapped in an object and come back unwrapped."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pydantic
import pytest
from core_support import CANARY_KEY, Call
from pydantic import BaseModel, RootModel
from typing_extensions import TypedDict

from openai_structured import (
    ItemCompleted,
    SchemaError,
    ValidationError,
    ValueCompleted,
    async_openai_structured_events,
    openai_structured_events,
    openai_structured_stream,
)
from openai_structured.testing import FakeOpenAIServer, Reply


@dataclasses.dataclass
class Line:
    sku: str
    qty: int


@dataclasses.dataclass
class Invoice:
    number: str
    lines: list[Line]


@pydantic.dataclasses.dataclass
class PydanticInvoice:
    number: str
    lines: list[Line]


class InvoiceDict(TypedDict):
    number: str
    lines: list[Line]


class InvoiceModel(BaseModel):
    number: str
    lines: list[Line]


class InvoiceRoot(RootModel[InvoiceModel]):
    pass


INVOICE = {"number": "A-7", "lines": [{"sku": "tea", "qty": 2}, {"sku": "cake", "qty": 1}]}
LINES = [Line("tea", 2), Line("cake", 1)]


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (Invoice, Invoice("A-7", LINES)),
        (PydanticInvoice, PydanticInvoice("A-7", LINES)),
        (InvoiceDict, {"number": "A-7", "lines": LINES}),
        (InvoiceRoot, InvoiceRoot(InvoiceModel(number="A-7", lines=LINES))),
    ],
    ids=["dataclass", "pydantic-dataclass", "TypedDict", "RootModel"],
)
def test_a_call_returns_an_instance_of_the_declared_type(
    server: FakeOpenAIServer, call: Call, output: Any, expected: Any
) -> None:
    server.queue(Reply.json(INVOICE))
    result = call(output_schema=output, user_prompt="Invoice A-7: 2 tea, 1 cake")
    assert result == expected
    assert type(result) is type(expected)
    sent = server.last_request.json
    schema = (
        sent["response_format"]["json_schema"]["schema"]
        if "response_format" in sent
        else sent["text"]["format"]["schema"]
    )
    assert schema["type"] == "object"
    assert set(schema["required"]) == {"number", "lines"}


def test_a_wrong_answer_for_a_dataclass_names_the_field(
    server: FakeOpenAIServer, call: Call
) -> None:
    server.queue(Reply.json({"number": "A-7", "lines": [{"sku": "tea", "qty": "two"}]}))
    with pytest.raises(ValidationError) as info:
        call(output_schema=Invoice, user_prompt="x")
    assert [e["path"] for e in info.value.errors()] == ["lines.0.qty"]


def test_value_and_event_streams_give_the_declared_type_and_typed_items(
    server: FakeOpenAIServer,
) -> None:
    args: dict[str, Any] = {"model": "gpt-4o", "output_schema": Invoice, "user_prompt": "x"}
    server.queue(Reply.json(INVOICE))
    client = server.client(api_key=CANARY_KEY)
    assert list(openai_structured_stream(client=client, **args)) == [Invoice("A-7", LINES)]

    server.queue(Reply.json(INVOICE))
    with openai_structured_events(client=client, **args) as stream:
        events = list(stream)
    items = [e for e in events if isinstance(e, ItemCompleted)]
    assert [(e.path, e.item) for e in items] == [(("lines", 0), LINES[0]), (("lines", 1), LINES[1])]
    (value,) = [e.value for e in events if isinstance(e, ValueCompleted)]
    assert value == Invoice("A-7", LINES)

    async def run() -> list[Any]:
        async with (
            server.async_client(api_key=CANARY_KEY) as aclient,
            async_openai_structured_events(client=aclient, **args) as astream,
        ):
            return [e.value async for e in astream if isinstance(e, ValueCompleted)]

    server.queue(Reply.json(INVOICE))
    assert asyncio.run(run()) == [Invoice("A-7", LINES)]


def _sent_schema(server: FakeOpenAIServer) -> dict[str, Any]:
    sent = server.last_request.json
    if "response_format" in sent:
        return dict(sent["response_format"]["json_schema"]["schema"])
    return dict(sent["text"]["format"]["schema"])


@pytest.mark.parametrize(
    ("output", "answer", "expected"),
    [
        (
            list[InvoiceModel],
            [INVOICE],
            [InvoiceModel(number="A-7", lines=LINES)],
        ),
        (RootModel[list[int]], [3, 1], RootModel[list[int]]([3, 1])),
        (int, 42, 42),
    ],
    ids=["list", "RootModel-list", "int"],
)
def test_a_root_that_is_not_an_object_is_sent_wrapped_and_returned_unwrapped(
    server: FakeOpenAIServer, call: Call, output: Any, answer: Any, expected: Any
) -> None:
    server.queue(Reply.json({"value": answer}))
    result = call(output_schema=output, user_prompt="x")
    assert result == expected
    assert type(result) is type(expected)
    schema = _sent_schema(server)
    assert (schema["type"], schema["required"]) == ("object", ["value"])
    assert schema["additionalProperties"] is False


def test_a_schema_no_value_can_satisfy_is_a_schema_error_before_sending(
    server: FakeOpenAIServer, call: Call
) -> None:
    with pytest.raises(SchemaError) as info:
        call(
            schema={"type": "object", "properties": {"a": False}, "required": ["a"]},
            user_prompt="x",
        )
    assert info.value.path == "#/properties/a"
    assert server.requests == []


def test_a_root_that_refers_to_itself_is_wrapped_too(server: FakeOpenAIServer, call: Call) -> None:
    server.queue(Reply.json({"value": [[], [[]]]}))
    result = call(schema={"type": "array", "items": {"$ref": "#"}}, user_prompt="x")
    assert result == [[], [[]]]
    schema = _sent_schema(server)
    assert schema["required"] == ["value"]
    assert "$ref" in json.dumps(schema["properties"]["value"])  # the root is a definition now
