"""Errors the library builds never show a key: a server that echoes one back inside a stream
(an ``error`` event, ``response.failed``, an HTTP 401 before the stream), an answer that holds
one, and the reprs of clients and streams."""

from __future__ import annotations

import asyncio
import traceback
from typing import Any

import openai
import pytest
from pydantic import BaseModel
from security_support import (
    AWS_ACCESS_KEY_ID,
    CANARY_KEY,
    GOOGLE_KEY,
    OPAQUE,
    OPENAI_PROJECT_KEY,
    Call,
    Recorder,
    leaks,
)

from openai_structured import (
    AsyncStructuredClient,
    OpenAIClientError,
    StreamInterruptedError,
    StructuredClient,
    ValidationError,
    async_openai_structured_events,
    openai_structured_events,
)
from openai_structured.streaming import StreamProtocolError, StreamServerError
from openai_structured.testing import FakeOpenAIServer, Fault, Reply


class Person(BaseModel):
    name: str
    age: int


ECHO = f"Incorrect API key provided: {OPENAI_PROJECT_KEY}; also tried {GOOGLE_KEY}"
ECHOED = (OPENAI_PROJECT_KEY, GOOGLE_KEY)


def _shown(exc: BaseException) -> str:
    """Everything of ``exc`` a user's handler would print or log."""
    parts = [str(exc), repr(exc), repr(exc.args)]
    for name in ("message", "body", "data"):
        parts.append(repr(getattr(exc, name, None)))
    parts.append("".join(traceback.format_exception_only(type(exc), exc)))
    return "\n".join(parts)


def _stream_failure(server: FakeOpenAIServer, mode: str, api: str, recorder: Recorder) -> Any:
    def sync() -> Any:
        client = server.client(api_key=CANARY_KEY)
        events = openai_structured_events(
            client=client, model="gpt-4o", api=api, output_schema=Person, user_prompt="Ada",
            on_log=recorder,
        )  # fmt: skip
        with pytest.raises(StreamInterruptedError) as info, events:
            list(events)
        return info.value

    async def asynchronous() -> Any:
        async with server.async_client(api_key=CANARY_KEY) as client:
            with pytest.raises(StreamInterruptedError) as info:
                async with async_openai_structured_events(
                    client=client, model="gpt-4o", api=api, output_schema=Person,
                    user_prompt="Ada", on_log=recorder,
                ) as events:  # fmt: skip
                    [e async for e in events]
            return info.value

    return sync() if mode == "sync" else asyncio.run(asynchronous())


def test_a_key_echoed_in_a_stream_error_event_is_masked(
    server: FakeOpenAIServer, mode: str, api: str, recorder: Recorder
) -> None:
    server.queue(Fault.stream_error(ECHO, after_deltas=1))
    exc = _stream_failure(server, mode, api, recorder)
    assert isinstance(exc, openai.APIError)
    assert "Incorrect API key provided: [REDACTED]" in str(exc)
    assert leaks(_shown(exc), *ECHOED) == []
    # The whole chain a traceback prints was built here: it is clean too.
    chain = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    assert leaks(chain, *ECHOED) == []
    assert leaks(recorder.text(), *ECHOED) == []


def test_a_key_echoed_by_an_http_error_before_the_stream_is_masked(
    server: FakeOpenAIServer, mode: str, api: str, recorder: Recorder
) -> None:
    server.queue(Fault.status(401, message=ECHO))
    exc = _stream_failure(server, mode, api, recorder)
    assert isinstance(exc, openai.AuthenticationError)
    assert leaks(_shown(exc), *ECHOED) == []
    assert exc.status_code == 401  # the SDK's state is kept
    assert leaks(recorder.text(), *ECHOED) == []


def test_an_error_event_for_a_failed_request_masks_keys_of_any_shape(
    server: FakeOpenAIServer, call: Call, recorder: Recorder
) -> None:
    server.queue(Fault.status(401, message=ECHO))
    with pytest.raises(openai.AuthenticationError):
        call(output_schema=Person, user_prompt="Ada", on_log=recorder)
    assert "error" in recorder.types()
    assert leaks(recorder.text(), *ECHOED) == []


def test_a_validation_error_does_not_quote_a_key_from_the_answer(
    server: FakeOpenAIServer, call: Call, recorder: Recorder
) -> None:
    server.queue(Reply.json({"name": "Ada", "age": GOOGLE_KEY}))
    with pytest.raises(ValidationError) as info:
        call(output_schema=Person, user_prompt="Ada", on_log=recorder)
    assert "age" in str(info.value)
    assert GOOGLE_KEY not in str(info.value)
    assert leaks(recorder.text(), GOOGLE_KEY) == []
    # The answer itself is data, kept as received.
    assert GOOGLE_KEY in (info.value.content or "")


def test_library_error_messages_are_redacted_when_built() -> None:
    assert str(OpenAIClientError(f"bad {AWS_ACCESS_KEY_ID}")) == "bad [REDACTED]"
    error = StreamServerError(
        f"The server reported an error: {ECHO}",
        body={"message": ECHO, "code": "invalid_api_key", "param": None},
    )
    assert leaks(_shown(error), *ECHOED) == []
    assert (error.code, error.body["code"], error.param) == ("invalid_api_key",) * 2 + (None,)
    protocol = StreamProtocolError(
        f"Malformed stream event: {b'key=' + OPAQUE.encode()!r}", data=b"api_key=" + OPAQUE.encode()
    )
    assert leaks(_shown(protocol), OPAQUE) == []
    assert protocol.data == b"api_key=[REDACTED]"


def test_client_reprs_hide_a_password_or_key_in_the_base_url() -> None:
    url = f"http://ada:{OPAQUE}@127.0.0.1:9/v1?key={GOOGLE_KEY}"
    sync = StructuredClient(openai.OpenAI(base_url=url, api_key=CANARY_KEY))
    asynchronous = AsyncStructuredClient(openai.AsyncOpenAI(base_url=url, api_key=CANARY_KEY))
    for client in (sync, asynchronous):
        shown = repr(client)
        assert shown.startswith(f"{type(client).__name__}(base_url='http://ada:[REDACTED]@")
        assert leaks(shown, OPAQUE, GOOGLE_KEY, CANARY_KEY) == []


def test_stream_reprs_name_the_model_and_api_and_nothing_secret(
    server: FakeOpenAIServer,
) -> None:
    server.queue(Reply.json({"name": "Ada", "age": 36}))
    client = server.client(api_key=CANARY_KEY)
    with openai_structured_events(
        client=client, model="gpt-4o", output_schema=Person, user_prompt="Ada",
        extra_headers={"X-Api-Key": OPAQUE},
    ) as events:  # fmt: skip
        assert repr(events) == "EventStream(model='gpt-4o', api='chat')"
        list(events)

    async def run() -> str:
        server.queue(Reply.json({"name": "Ada", "age": 36}))
        async with server.async_client(api_key=CANARY_KEY) as aclient:
            stream = async_openai_structured_events(
                client=aclient, model="gpt-4o", api="responses", output_schema=Person,
                user_prompt="Ada",
            )  # fmt: skip
            async with stream:
                shown = repr(stream)
                [e async for e in stream]
            return shown

    assert asyncio.run(run()) == "AsyncEventStream(model='gpt-4o', api='responses')"
