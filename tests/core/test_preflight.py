"""The registry's checks run before any request: nothing reaches the server when one fails."""

from __future__ import annotations

from typing import Any

import pytest
from core_support import Call
from pydantic import BaseModel

from openai_structured import (
    InvalidDateError,
    ModelNotSupportedError,
    OpenAIClientError,
    TokenLimitError,
    VersionTooOldError,
)
from openai_structured.testing import FakeOpenAIServer, Reply


class Person(BaseModel):
    name: str
    age: int


def ask_openai(call: Call, **kwargs: Any) -> Any:
    """A call that the library treats as going to OpenAI (registry checks on)."""
    kwargs.setdefault("user_prompt", "Ada, 36")
    return call(output_schema=Person, server="openai", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"model": "o1", "temperature": 0.5}, OpenAIClientError, "reasoning model"),
        ({"model": "o3-mini", "top_p": 0.5}, OpenAIClientError, "not supported by model"),
        ({"model": "o1", "reasoning_effort": "extreme"}, OpenAIClientError, "Allowed values"),
        ({"model": "gpt-4o", "temperature": 3.0}, OpenAIClientError, "temperature"),
        ({"model": "gpt-4o", "max_output_tokens": 20_000}, TokenLimitError, "16,384"),
        ({"model": "unknown-model"}, ModelNotSupportedError, "gpt-4o-2024-08-06"),
        ({"model": "gpt-4o-2024-07-01"}, VersionTooOldError, "Minimum supported version"),
        ({"model": "gpt-4o-2024-13-01"}, InvalidDateError, "Month must be between 1 and 12"),
        ({"model": "gpt-4o", "user_prompt": "word " * 130_000}, TokenLimitError, "context"),
    ],
)
def test_a_failed_pre_flight_check_sends_nothing(
    server: FakeOpenAIServer,
    call: Call,
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        ask_openai(call, **kwargs)
    assert server.requests == []


def test_a_too_large_output_limit_reports_both_figures(
    server: FakeOpenAIServer, call: Call
) -> None:
    with pytest.raises(TokenLimitError) as info:
        ask_openai(call, model="gpt-4o", max_output_tokens=20_000)
    assert (info.value.requested_tokens, info.value.model_limit) == (20_000, 16_384)


def test_a_newer_dated_version_is_accepted(server: FakeOpenAIServer, call: Call) -> None:
    server.queue(Reply.json({"name": "Ada", "age": 36}))
    assert ask_openai(call, model="gpt-4o-2024-11-20") == Person(name="Ada", age=36)


def test_o_series_chat_calls_send_max_completion_tokens(
    server: FakeOpenAIServer, call: Call, api: str
) -> None:
    server.queue(Reply.json({"name": "Ada", "age": 36}))
    ask_openai(call, model="o3-mini", max_output_tokens=500, reasoning_effort="low")
    body = server.last_request.json
    if api == "chat":
        assert body["max_completion_tokens"] == 500 and body["reasoning_effort"] == "low"
        assert "max_tokens" not in body
    else:
        assert body["max_output_tokens"] == 500 and body["reasoning"] == {"effort": "low"}


def test_a_custom_server_is_not_blocked_by_the_registry(
    server: FakeOpenAIServer, call: Call
) -> None:
    server.queue(Reply.json({"name": "Ada", "age": 36}))
    result = call(output_schema=Person, model="llama-3.2-local", user_prompt="Ada", temperature=1.9)
    assert result == Person(name="Ada", age=36)
    assert server.last_request.json["model"] == "llama-3.2-local"
