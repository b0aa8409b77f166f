"""One outcome table (SPEC §2.2) for every path: a call, a value stream and an event stream give
the same exception, with the same attributes and the same words, for chat and responses, sync
and async. Each row runs all three paths and compares them, so a difference cannot come back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from core_support import CANARY_KEY
from pydantic import BaseModel

from openai_structured import (
    APIResponseError,
    ContentFilterError,
    EmptyResponseError,
    InvalidResponseFormatError,
    RefusalError,
    TokenLimitError,
    ValidationError,
    async_openai_structured_call,
    async_openai_structured_events,
    async_openai_structured_stream,
    openai_structured_call,
    openai_structured_events,
    openai_structured_stream,
)
from openai_structured.testing import FakeOpenAIServer, Reply


class Person(BaseModel):
    name: str
    age: int


PATHS = ("call", "stream", "events")

#: Every attribute an answer error may carry; each must agree across the paths.
ATTRIBUTES = (
    "response_id",
    "content",
    "usage",
    "requested_tokens",
    "model_limit",
    "refusal",
    "position",
    "line",
    "column",
)


def _run(server: FakeOpenAIServer, mode: str, api: str, path: str, **kwargs: Any) -> Any:
    kwargs = {
        "model": "gpt-4o",
        "api": api,
        "output_schema": Person,
        "user_prompt": "Ada Lovelace, 36.",
        **kwargs,
    }
    if mode == "sync":
        client = server.client(api_key=CANARY_KEY)
        if path == "call":
            return openai_structured_call(client=client, **kwargs)
        if path == "stream":
            return list(openai_structured_stream(client=client, **kwargs))
        with openai_structured_events(client=client, **kwargs) as events:
            return list(events)

    async def run() -> Any:
        async with server.async_client(api_key=CANARY_KEY) as client:
            if path == "call":
                return await async_openai_structured_call(client=client, **kwargs)
            if path == "stream":
                return [v async for v in async_openai_structured_stream(client=client, **kwargs)]
            async with async_openai_structured_events(client=client, **kwargs) as events:
                return [e async for e in events]

    return asyncio.run(run())


def _error(
    server: FakeOpenAIServer,
    mode: str,
    api: str,
    path: str,
    reply: Callable[[], Reply],
    expected: type[Exception],
    **kwargs: Any,
) -> Exception:
    server.queue(reply())
    with pytest.raises(expected) as info:
        _run(server, mode, api, path, **kwargs)
    return info.value


def _same_on_every_path(
    server: FakeOpenAIServer,
    mode: str,
    api: str,
    reply: Callable[[], Reply],
    expected: type[Exception],
    **kwargs: Any,
) -> Exception:
    """Raise ``expected`` on each path; assert type, attributes and message agree; return one."""
    errors = {p: _error(server, mode, api, p, reply, expected, **kwargs) for p in PATHS}
    first = errors["call"]
    for path, error in errors.items():
        assert type(error) is type(first), path
        for name in ATTRIBUTES:
            assert getattr(error, name, None) == getattr(first, name, None), (path, name)
        assert str(error) == str(first), path
    return first


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["chat", "responses"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_refusal_is_the_same_refusal_error_everywhere(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    err = _same_on_every_path(
        server,
        mode,
        api,
        lambda: Reply.refusal("I can't help.", id="resp_r").with_usage(10, 3),
        RefusalError,
    )
    assert isinstance(err, RefusalError)
    assert err.refusal == "I can't help."
    assert err.response_id == "resp_r"
    assert str(err) == "The model refused to answer: I can't help."


def test_cut_off_is_the_same_token_limit_error_with_the_limits_everywhere(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    err = _same_on_every_path(
        server,
        mode,
        api,
        lambda: Reply.length('{"name": "Ada", "a', id="resp_l").with_usage(12, 7),
        TokenLimitError,
        max_output_tokens=7,
    )
    assert isinstance(err, TokenLimitError)
    assert err.requested_tokens == 7
    assert err.model_limit == 16384  # gpt-4o's output limit in the registry
    assert err.content == '{"name": "Ada", "a'
    assert err.response_id == "resp_l"
    assert err.usage is not None
    assert 7 in (err.usage.get("completion_tokens"), err.usage.get("output_tokens"))
    assert "after 7 output tokens" in str(err)
    assert "max_output_tokens" in str(err)


def test_cut_off_without_a_limit_names_the_models_limit(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    err = _same_on_every_path(
        server,
        mode,
        api,
        lambda: Reply.length('{"name": ', id="resp_l").with_usage(10, 3),
        TokenLimitError,
    )
    assert isinstance(err, TokenLimitError)
    assert err.requested_tokens is None
    assert "the model's output limit (16384 tokens)" in str(err)


def test_content_filter_is_the_same_everywhere(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    err = _same_on_every_path(
        server,
        mode,
        api,
        lambda: Reply.content_filter('{"name": ', id="resp_f").with_usage(10, 3),
        ContentFilterError,
    )
    assert isinstance(err, APIResponseError)
    assert err.content == '{"name": '
    assert err.response_id == "resp_f"


@pytest.mark.parametrize("content", ["", "  \n"])
def test_empty_answer_is_the_same_empty_response_error_with_its_content(
    server: FakeOpenAIServer, mode: str, api: str, content: str
) -> None:
    err = _same_on_every_path(
        server,
        mode,
        api,
        lambda: Reply.text(content, id="resp_e").with_usage(10, 0),
        EmptyResponseError,
    )
    assert isinstance(err, EmptyResponseError)
    assert err.response_id == "resp_e"
    assert (err.content or "") == content


@pytest.mark.parametrize("text", ['{"name": "Ada", "age": 36,}', "Sorry, no.", "[1, 2"])
def test_not_json_is_the_same_error_at_the_same_position(
    server: FakeOpenAIServer, mode: str, api: str, text: str
) -> None:
    err = _same_on_every_path(
        server,
        mode,
        api,
        lambda: Reply.text(text, id="resp_j").with_usage(10, 3),
        InvalidResponseFormatError,
    )
    assert isinstance(err, InvalidResponseFormatError)
    with pytest.raises(json.JSONDecodeError) as decode:
        json.loads(text)
    assert (err.position, err.line, err.column) == (
        decode.value.pos,
        decode.value.lineno,
        decode.value.colno,
    )
    assert err.content == text


def test_schema_mismatch_is_the_same_validation_error(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    err = _same_on_every_path(
        server,
        mode,
        api,
        lambda: Reply.json({"name": "Ada", "age": "old"}, id="resp_v").with_usage(10, 9),
        ValidationError,
    )
    assert isinstance(err, ValidationError)
    assert [e["path"] for e in err.errors()] == ["age"]
    assert err.response_id == "resp_v"
    assert json.loads(err.content or "") == {"name": "Ada", "age": "old"}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"name": "Ada", "age": ' + "7" * 5001 + "}", "number too long"),
        ('{"name": "Ada", "age": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "too deeply"),
    ],
    ids=["5001-digit-integer", "100000-nested-arrays"],
)
def test_hostile_json_is_the_same_invalid_response_format_error_everywhere(
    server: FakeOpenAIServer, mode: str, api: str, text: str, why: str
) -> None:
    err = _same_on_every_path(
        server,
        mode,
        api,
        lambda: Reply.text(text, id="resp_h").with_usage(10, 3),
        InvalidResponseFormatError,
    )
    assert why in str(err)
    assert err.content == text
    assert err.response_id == "resp_h"
