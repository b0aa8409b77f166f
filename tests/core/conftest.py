"""Fixtures for driving the library through the loopback server, sync and async, both APIs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from core_support import CANARY_KEY, Call, Recorder

from openai_structured import async_openai_structured_call, openai_structured_call
from openai_structured.testing import FakeOpenAIServer


@pytest.fixture(scope="module")
def _server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def server(_server: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    _server.reset()
    yield _server
    assert not _server.errors, _server.errors


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["chat", "responses"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def call(server: FakeOpenAIServer, mode: str, api: str) -> Call:
    """``call(**kwargs)``: one structured call through the loopback server, in this mode/API."""

    def sync_call(**kwargs: Any) -> Any:
        kwargs.setdefault("api", api)
        kwargs.setdefault("model", "gpt-4o")
        client = server.client(api_key=CANARY_KEY)
        return openai_structured_call(client=client, **kwargs)

    def async_call(**kwargs: Any) -> Any:
        kwargs.setdefault("api", api)
        kwargs.setdefault("model", "gpt-4o")

        async def run() -> Any:
            async with server.async_client(api_key=CANARY_KEY) as client:
                return await async_openai_structured_call(client=client, **kwargs)

        return asyncio.run(run())

    return sync_call if mode == "sync" else async_call
