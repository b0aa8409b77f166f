"""Every row of SPEC §2.2, through the loopback server, for chat and responses, sync and async."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from core_support import Call
from pydantic import BaseModel

from openai_structured import (
    APIResponseError,
    ContentFilterError,
    EmptyResponseError,
    InvalidResponseFormatError,
    OpenAIClientError,
    RefusalError,
    TokenLimitError,
    ValidationError,
)
from openai_structured.testing import FakeOpenAIServer, Fault, Reply


class Person(BaseModel):
    name: str
    age: int


class Item(BaseModel):
    name: str
    price: float


class Order(BaseModel):
    customer: str
    items: list[Item]


PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def ask(call: Call, **kwargs: Any) -> Any:
    kwargs.setdefault("system_prompt", "Extract the person.")
    kwargs.setdefault("user_prompt", "Ada Lovelace, 36.")
    if "schema" not in kwargs:
        kwargs.setdefault("output_schema", Person)
    return call(**kwargs)


def test_valid_json_gives_a_model_instance(server: FakeOpenAIServer, call: Call) -> None:
    server.queue(Reply.json({"name": "Ada", "age": 36}))
    assert ask(call) == Person(name="Ada", age=36)


def test_valid_json_with_a_dict_schema_gives_a_dict(server: FakeOpenAIServer, call: Call) -> None:
    server.queue(Reply.json({"name": "Ada", "age": 36}))
    assert ask(call, schema=PERSON_SCHEMA) == {"name": "Ada", "age": 36}


def test_refusal_raises_refusal_error_with_the_text(server: FakeOpenAIServer, call: Call) -> None:
    server.queue(Reply.refusal("I can't help with that.", id="resp_refused"))
    with pytest.raises(RefusalError) as info:
        ask(call)
    assert isinstance(info.value, APIResponseError)
    assert info.value.refusal == "I can't help with that."
    assert info.value.response_id == "resp_refused"
    assert "I can't help with that." in str(info.value)


def test_length_cutoff_raises_token_limit_error_with_partial_content_and_usage(
    server: FakeOpenAIServer, call: Call
) -> None:
    server.queue(Reply.length('{"name": "Ada", "a').with_usage(12, 7))
    with pytest.raises(TokenLimitError) as info:
        ask(call, max_output_tokens=7)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.content == '{"name": "Ada", "a'
    assert err.usage is not None
    assert 7 in (err.usage.get("completion_tokens"), err.usage.get("output_tokens"))
    assert "max_output_tokens" in str(err)


def test_content_filter_raises_content_filter_error(server: FakeOpenAIServer, call: Call) -> None:
    server.queue(Reply.content_filter('{"name": '))
    with pytest.raises(ContentFilterError) as info:
        ask(call)
    assert isinstance(info.value, APIResponseError)
    assert info.value.content == '{"name": '


@pytest.mark.parametrize("content", ["", "   \n"])
def test_empty_content_raises_empty_response_error(
    server: FakeOpenAIServer, call: Call, content: str
) -> None:
    server.queue(Reply.text(content, id="resp_empty"))
    with pytest.raises(EmptyResponseError) as info:
        ask(call)
    assert info.value.response_id == "resp_empty"


@pytest.mark.parametrize("use_dict", [False, True])
def test_not_json_raises_invalid_response_format_error_with_position(
    server: FakeOpenAIServer, call: Call, use_dict: bool
) -> None:
    text = '{"name": "Ada", "age": 36,}'
    server.queue(Reply.text(text))
    kwargs: dict[str, Any] = {"schema": PERSON_SCHEMA} if use_dict else {}
    with pytest.raises(InvalidResponseFormatError) as info:
        ask(call, **kwargs)
    err = info.value
    with pytest.raises(json.JSONDecodeError) as decode:
        json.loads(text)
    expected = decode.value
    assert err.content == text
    assert (err.position, err.line, err.column) == (expected.pos, expected.lineno, expected.colno)
    assert f"column {expected.colno}" in str(err)


def test_schema_mismatch_raises_validation_error_naming_the_field(
    server: FakeOpenAIServer, call: Call
) -> None:
    bad = {
        "customer": "Ada",
        "items": [{"name": "tea", "price": 2}, {"name": "cake", "price": "x"}],
    }
    server.queue(Reply.json(bad))
    with pytest.raises(ValidationError) as info:
        ask(call, output_schema=Order)
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, APIResponseError)
    assert [e["path"] for e in err.errors()] == ["items.1.price"]
    assert err.errors()[0]["loc"] == ("items", 1, "price")
    assert "items.1.price" in str(err)
    assert json.loads(err.content or "") == bad


def test_dict_schema_mismatch_lists_every_failing_field(
    server: FakeOpenAIServer, call: Call
) -> None:
    server.queue(Reply.json({"name": 5, "age": -1}))
    with pytest.raises(ValidationError) as info:
        ask(call, schema=PERSON_SCHEMA)
    assert sorted(e["path"] for e in info.value.errors()) == ["age", "name"]


def test_dict_schema_validation_can_be_turned_off(server: FakeOpenAIServer, call: Call) -> None:
    server.queue(Reply.json({"name": 5, "age": -1}))
    assert ask(call, schema=PERSON_SCHEMA, validate_schema=False) == {"name": 5, "age": -1}


@pytest.mark.parametrize(
    ("status", "sdk_error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_http_errors_are_the_sdks_own_exceptions_unchanged(
    server: FakeOpenAIServer, call: Call, status: int, sdk_error: type[Exception]
) -> None:
    server.queue(Fault.status(status, retry_after=2 if status == 429 else None))
    with pytest.raises(sdk_error) as info:
        ask(call)
    assert type(info.value) is sdk_error
    assert not isinstance(info.value, OpenAIClientError)
    assert isinstance(info.value, openai.APIStatusError)
    assert info.value.status_code == status
    if status == 429:
        assert info.value.response.headers["retry-after"] == "2"


def test_connection_failure_is_the_sdks_own_exception(server: FakeOpenAIServer, call: Call) -> None:
    server.queue(Fault.disconnect())
    with pytest.raises(openai.APIConnectionError):
        ask(call)


def test_timeout_is_the_sdks_own_exception(server: FakeOpenAIServer, call: Call) -> None:
    server.queue(Fault.delay(2.0))
    with pytest.raises(openai.APITimeoutError):
        ask(call, timeout=0.2)
