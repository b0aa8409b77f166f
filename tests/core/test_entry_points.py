"""Entry points given the wrong kind of client, async logging callbacks on sync paths, and the
default client of async streams built off the event loop."""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from typing import Any

import pytest
from core_support import CANARY_KEY
from pydantic import BaseModel

import openai_structured._clients as clients_module
from openai_structured import (
    AsyncStructuredClient,
    StructuredClient,
    async_openai_structured_call,
    async_openai_structured_events,
    async_openai_structured_stream,
    openai_structured_call,
    openai_structured_events,
    openai_structured_stream,
)
from openai_structured._logging import LogEvent
from openai_structured.testing import FakeOpenAIServer, Reply


class Person(BaseModel):
    name: str
    age: int


ADA = {"name": "Ada", "age": 36}
ARGS: dict[str, Any] = {"model": "gpt-4o", "output_schema": Person, "user_prompt": "Ada, 36"}


# --- the wrong kind of client ----------------------------------------------------------------


def test_a_sync_client_given_to_async_entry_points_is_a_type_error_naming_the_fix(
    server: FakeOpenAIServer,
) -> None:
    client = server.client(api_key=CANARY_KEY)

    async def run() -> None:
        with pytest.raises(TypeError, match="pass an AsyncOpenAI"):
            await async_openai_structured_call(client=client, **ARGS)
        with pytest.raises(TypeError, match="pass an AsyncOpenAI"):
            async_openai_structured_stream(client=client, **ARGS)
        with pytest.raises(TypeError, match="pass an AsyncOpenAI"):
            async_openai_structured_events(client=client, **ARGS)
        with pytest.raises(TypeError, match="pass an AsyncOpenAI"):
            AsyncStructuredClient(client)

    asyncio.run(run())
    assert server.requests == []


def test_an_async_client_given_to_sync_entry_points_is_a_type_error_naming_the_fix(
    server: FakeOpenAIServer,
) -> None:
    client = server.async_client(api_key=CANARY_KEY)
    for start in (
        lambda: openai_structured_call(client=client, **ARGS),
        lambda: openai_structured_stream(client=client, **ARGS),
        lambda: openai_structured_events(client=client, **ARGS),
        lambda: StructuredClient(client),
    ):
        with pytest.raises(TypeError, match="pass an OpenAI \\(or AzureOpenAI\\) client"):
            start()
    assert server.requests == []


@pytest.mark.parametrize("thing", ["sk-a-key-by-mistake", object(), {"api_key": "x"}])
def test_something_that_is_not_an_openai_client_is_a_type_error(
    server: FakeOpenAIServer, thing: Any
) -> None:
    with pytest.raises(TypeError, match=r"client= must be an openai\.OpenAI client") as info:
        openai_structured_call(client=thing, **ARGS)
    assert "sk-a-key-by-mistake" not in str(info.value)
    with pytest.raises(TypeError, match=r"client= must be an openai\.AsyncOpenAI client"):
        asyncio.run(async_openai_structured_call(client=thing, **ARGS))
    assert server.requests == []


# --- async on_log on sync paths ----------------------------------------------------------------


class AsyncRecorder:
    def __init__(self) -> None:
        self.types: list[str] = []

    async def __call__(self, event: LogEvent, level: str) -> None:
        await asyncio.sleep(0)
        self.types.append(event.type)


def test_a_sync_call_with_an_async_on_log_delivers_every_event_and_leaks_no_loop(
    server: FakeOpenAIServer,
) -> None:
    recorder = AsyncRecorder()
    gc.collect()  # what earlier tests left behind is theirs, not this test's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(3):
            server.queue(Reply.json(ADA))
            client = server.client(api_key=CANARY_KEY)
            assert openai_structured_call(client=client, on_log=recorder, **ARGS) == Person(**ADA)
            client.close()
        server.queue(Reply.json(ADA))
        client = server.client(api_key=CANARY_KEY)
        assert list(openai_structured_stream(client=client, on_log=recorder, **ARGS)) == [
            Person(**ADA)
        ]
        client.close()
        gc.collect()
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == [], [str(w.message) for w in leaks]
    assert recorder.types.count("request.start") == 4
    assert recorder.types.count("request.end") == 3
    assert recorder.types.count("stream.end") == 1


def test_a_sync_call_inside_a_running_loop_with_an_async_on_log_works(
    server: FakeOpenAIServer,
) -> None:
    recorder = AsyncRecorder()
    server.queue(Reply.json(ADA))

    async def inside() -> Person:
        # A notebook cell or an async handler calling the sync API.
        client = server.client(api_key=CANARY_KEY)
        person = openai_structured_call(client=client, on_log=recorder, **ARGS)
        for _ in range(10):  # give the loop the chance to run the scheduled callbacks
            await asyncio.sleep(0)
        return person

    assert asyncio.run(inside()) == Person(**ADA)
    assert recorder.types[0] == "request.start"
    assert "request.end" in recorder.types


# --- async streams start the default client off the event loop ---------------------------------


@pytest.mark.parametrize("kind", ["stream", "events"])
def test_async_streams_build_the_embedded_default_client_off_the_event_loop(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    built_on: list[threading.Thread] = []

    def slow_local_client(*, asynchronous: bool) -> Any:
        # Stands in for the embedded model's server start (seconds, blocking).
        built_on.append(threading.current_thread())
        return server.async_client(api_key=CANARY_KEY)

    monkeypatch.setattr(clients_module, "provider_from_env", lambda *a, **k: "local")
    monkeypatch.setattr(clients_module, "default_client", slow_local_client)
    server.queue(Reply.json(ADA))

    async def run() -> list[Any]:
        loop_thread = threading.current_thread()
        if kind == "stream":
            stream = async_openai_structured_stream(**ARGS)
            assert built_on == []  # nothing started yet: the request was only checked
            values = [v async for v in stream]
        else:
            async with async_openai_structured_events(**ARGS) as events:
                assert built_on == []
                values = [e.value async for e in events if type(e).__name__ == "ValueCompleted"]
        assert built_on and built_on[0] is not loop_thread
        return values

    assert asyncio.run(run()) == [Person(**ADA)]
    # The embedded model's profile (llama.cpp) shaped the request before the client existed.
    assert server.last_request.json["response_format"]["type"] == "json_object"
