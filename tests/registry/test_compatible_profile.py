"""End to end through the loopback server: the ``compatible`` profile checks the names it knows.

The loopback test server is a "compatible" server, as gateways and proxies in front of OpenAI
are (LiteLLM, Azure API Management, corporate proxies). A model name the registry knows gets
the registry's checks there, before anything is sent; a name it does not know passes unchecked;
the local-server profiles (vLLM, Ollama, llama.cpp) check nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from openai_structured import (
    async_openai_structured_call,
    async_openai_structured_stream,
    openai_structured_call,
    openai_structured_stream,
)
from openai_structured.errors import (
    InvalidDateError,
    ModelNotSupportedError,
    OpenAIClientError,
    TokenLimitError,
    VersionTooOldError,
)
from openai_structured.servers import get_profile
from openai_structured.testing import FakeOpenAIServer, Reply

KEY = "sk-test-compatible-profile"


class Person(BaseModel):
    name: str
    age: int


ADA = {"name": "Ada", "age": 36}


@pytest.fixture(scope="module")
def _server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def server(_server: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    _server.reset()
    yield _server
    assert not _server.errors, _server.errors


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["chat", "responses"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def call(fake: FakeOpenAIServer, mode: str, **kwargs: Any) -> Any:
    """One structured call through the loopback server (without ``server=`` its URL decides)."""
    kwargs.setdefault("output_schema", Person)
    kwargs.setdefault("user_prompt", "Ada, 36")
    if mode == "sync":
        client = fake.client(api_key=KEY)
        try:
            return openai_structured_call(client=client, **kwargs)
        finally:
            client.close()

    async def run() -> Any:
        async with fake.async_client(api_key=KEY) as client:
            return await async_openai_structured_call(client=client, **kwargs)

    return asyncio.run(run())


def stream(fake: FakeOpenAIServer, mode: str, **kwargs: Any) -> list[Any]:
    """Every value of one structured stream through the loopback server."""
    kwargs.setdefault("output_schema", Person)
    kwargs.setdefault("user_prompt", "Ada, 36")
    if mode == "sync":
        client = fake.client(api_key=KEY)
        try:
            return list(openai_structured_stream(client=client, **kwargs))
        finally:
            client.close()

    async def run() -> list[Any]:
        async with fake.async_client(api_key=KEY) as client:
            return [v async for v in async_openai_structured_stream(client=client, **kwargs)]

    return asyncio.run(run())


# --- known names are checked before sending -------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"model": "o1", "temperature": 0.5}, OpenAIClientError, "reasoning model"),
        ({"model": "o1-2024-12-17", "top_p": 0.9}, OpenAIClientError, "not supported by model"),
        ({"model": "o3-mini", "reasoning_effort": "extreme"}, OpenAIClientError, "Allowed values"),
        ({"model": "gpt-4o", "temperature": 3.0}, OpenAIClientError, "Allowed range: 0 to 2"),
        ({"model": "gpt-4o-2024-07-01"}, VersionTooOldError, "Minimum supported version"),
        ({"model": "gpt-4o-2024-13-01"}, InvalidDateError, "Month must be between 1 and 12"),
        (
            {"model": "gpt-5.4-mini", "temperature": 0.2, "reasoning_effort": "high"},
            OpenAIClientError,
            "only supported by model 'gpt-5.4-mini' when 'reasoning_effort' is 'none'",
        ),
    ],
)
def test_a_known_name_breaking_a_registry_rule_is_refused_before_sending(
    server: FakeOpenAIServer,
    mode: str,
    api: str,
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        call(server, mode, api=api, **kwargs)
    assert server.requests == []


def test_an_output_limit_above_the_models_is_refused_with_both_figures(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    with pytest.raises(TokenLimitError) as info:
        call(server, mode, api=api, model="gpt-4o", max_output_tokens=20_000)
    assert (info.value.requested_tokens, info.value.model_limit) == (20_000, 16_384)
    assert "16,384" in str(info.value)
    assert server.requests == []


def test_a_prompt_over_the_context_window_is_refused_before_sending(
    server: FakeOpenAIServer, mode: str
) -> None:
    with pytest.raises(TokenLimitError, match="context") as info:
        call(server, mode, model="gpt-4o", user_prompt="word " * 130_000)
    assert info.value.model_limit == 128_000
    assert server.requests == []


def test_streaming_o1_is_refused_before_sending(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    with pytest.raises(OpenAIClientError, match="Model 'o1' does not support streaming"):
        stream(server, mode, api=api, model="o1")
    assert server.requests == []


def test_o1_gets_its_token_parameter(server: FakeOpenAIServer, mode: str, api: str) -> None:
    server.queue(Reply.json(ADA))
    result = call(server, mode, api=api, model="o1", max_output_tokens=500, reasoning_effort="low")
    assert result == Person(**ADA)
    body = server.last_request.json
    if api == "chat":
        assert body["max_completion_tokens"] == 500
        assert body["reasoning_effort"] == "low"
        assert "max_tokens" not in body
    else:
        assert body["max_output_tokens"] == 500
        assert body["reasoning"] == {"effort": "low"}


def test_a_known_chat_model_within_its_rules_is_sent_with_the_registry_token_parameter(
    server: FakeOpenAIServer, mode: str
) -> None:
    server.queue(Reply.json(ADA))
    result = call(server, mode, model="gpt-4o-2024-11-20", temperature=0.3, max_output_tokens=300)
    assert result == Person(**ADA)
    body = server.last_request.json
    assert (body["model"], body["temperature"]) == ("gpt-4o-2024-11-20", 0.3)
    assert body["max_completion_tokens"] == 300
    assert "max_tokens" not in body


def test_a_known_model_that_streams_is_streamed(server: FakeOpenAIServer, mode: str) -> None:
    server.queue(Reply.json(ADA))
    assert stream(server, mode, model="o3-mini", reasoning_effort="high") == [Person(**ADA)]
    assert server.last_request.json["model"] == "o3-mini"


@pytest.mark.parametrize("model", ["o3-pro", "gpt-5-pro-2025-10-06"])
def test_a_responses_only_model_is_refused_on_chat_before_sending(
    server: FakeOpenAIServer, mode: str, model: str
) -> None:
    with pytest.raises(OpenAIClientError, match="not available on the Chat Completions API"):
        call(server, mode, api="chat", model=model)
    assert server.requests == []


def test_a_responses_only_model_is_sent_on_responses(server: FakeOpenAIServer, mode: str) -> None:
    server.queue(Reply.json(ADA))
    result = call(server, mode, api="responses", model="gpt-5-pro", reasoning_effort="high")
    assert result == Person(**ADA)
    body = server.last_request.json
    assert (body["model"], body["reasoning"]) == ("gpt-5-pro", {"effort": "high"})
    assert server.last_request.path.endswith("/responses")


# --- unknown names pass unchecked -----------------------------------------------------------------


@pytest.mark.parametrize("model", ["llama-3.2-local", "unknown-model-2025-01-01", "openai/o1"])
def test_a_name_the_registry_does_not_know_passes_unchecked(
    server: FakeOpenAIServer, mode: str, api: str, model: str
) -> None:
    server.queue(Reply.json(ADA))
    result = call(server, mode, api=api, model=model, temperature=1.9, max_tokens=1_000_000)
    assert result == Person(**ADA)
    body = server.last_request.json
    assert (body["model"], body["temperature"]) == (model, 1.9)
    if api == "chat":
        assert body["max_tokens"] == 1_000_000  # the permissive profile's chat spelling
    else:
        assert body["max_output_tokens"] == 1_000_000


def test_an_unknown_name_may_stream(server: FakeOpenAIServer, mode: str) -> None:
    server.queue(Reply.json(ADA))
    assert stream(server, mode, model="llama-3.2-local") == [Person(**ADA)]


# --- the other profiles -------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["vllm", "ollama", "llama.cpp"])
def test_local_server_profiles_check_nothing_even_for_openai_names(
    server: FakeOpenAIServer, mode: str, profile: str
) -> None:
    server.queue(Reply.json(ADA))
    result = call(server, mode, server=profile, model="o1", temperature=0.5, max_tokens=200_000)
    assert result == Person(**ADA)
    body = server.last_request.json
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("o1", 0.5, 200_000)


def test_local_server_profiles_stream_any_name(server: FakeOpenAIServer, mode: str) -> None:
    server.queue(Reply.json(ADA))
    assert stream(server, mode, server="vllm", model="o1") == [Person(**ADA)]


def test_the_openai_profile_still_refuses_names_the_registry_does_not_know(
    server: FakeOpenAIServer, mode: str
) -> None:
    with pytest.raises(ModelNotSupportedError, match=r"Model 'llama-3\.2-local' is not supported"):
        call(server, mode, server="openai", model="llama-3.2-local")
    assert server.requests == []


def test_a_compatible_profile_with_the_registry_off_sends_anything(
    server: FakeOpenAIServer, mode: str
) -> None:
    # For a gateway that serves a model of its own under an OpenAI name.
    unchecked = dataclasses.replace(get_profile("compatible"), registry="off")
    server.queue(Reply.json(ADA))
    result = call(server, mode, server=unchecked, model="o1", temperature=0.5)
    assert result == Person(**ADA)
    assert server.last_request.json["temperature"] == 0.5
