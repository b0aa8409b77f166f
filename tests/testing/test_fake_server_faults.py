"""Every scripted fault produces what the real SDK raises or yields (SPEC §7)."""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import pytest
from fake_server_calls import Api, call_async, call_sync, request_kwargs

from openai_structured.testing import FakeOpenAIServer, Fault, Reply

APIS: list[Api] = ["chat", "responses"]
LONG = Reply.json({"name": "Ada Lovelace", "born": 1815, "fields": ["math", "poetry"]})


def create_sync(client: openai.OpenAI, api: Api, stream: bool, **extra: Any) -> Any:
    kwargs = request_kwargs(api, stream, **extra)
    if api == "chat":
        return client.chat.completions.create(**kwargs)
    return client.responses.create(**kwargs)


async def create_async(client: openai.AsyncOpenAI, api: Api, stream: bool, **extra: Any) -> Any:
    kwargs = request_kwargs(api, stream, **extra)
    if api == "chat":
        return await client.chat.completions.create(**kwargs)
    return await client.responses.create(**kwargs)


def drain_sync(client: openai.OpenAI, api: Api, **extra: Any) -> list[Any]:
    """Iterate a stream, keeping what arrived before any error (on the error's `.got`)."""
    got: list[Any] = []
    try:
        for item in create_sync(client, api, True, **extra):
            got.append(item)
    except Exception as exc:
        exc.got = got  # type: ignore[attr-defined]
        raise
    return got


async def drain_async(client: openai.AsyncOpenAI, api: Api, **extra: Any) -> list[Any]:
    got: list[Any] = []
    try:
        async for item in await create_async(client, api, True, **extra):
            got.append(item)
    except Exception as exc:
        exc.got = got  # type: ignore[attr-defined]
        raise
    return got


# -- HTTP status errors ---------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("stream", [False, True])
async def test_rate_limit_raises_rate_limit_error_with_retry_after(
    server: FakeOpenAIServer, api: Api, stream: bool
) -> None:
    server.queue(Fault.rate_limit(retry_after=7), Fault.rate_limit(retry_after=7))
    with pytest.raises(openai.RateLimitError) as sync_err:
        create_sync(server.client(), api, stream)
    async with server.async_client() as aclient:
        with pytest.raises(openai.RateLimitError) as async_err:
            await create_async(aclient, api, stream)
    for err in (sync_err.value, async_err.value):
        assert err.status_code == 429
        assert err.response.headers["retry-after"] == "7"
        assert err.code == "rate_limit_exceeded"
        assert err.request_id is not None and err.request_id.startswith("req_")


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
        (404, openai.NotFoundError),
        (422, openai.UnprocessableEntityError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_status_fault_maps_to_sdk_exception(
    server: FakeOpenAIServer, status: int, exc_type: type[openai.APIStatusError]
) -> None:
    server.queue(Fault.status(status, message="scripted", error_code="my_code", retry_after=0.5))
    with pytest.raises(exc_type) as err:
        create_sync(server.client(), "chat", False)
    assert err.value.status_code == status
    assert err.value.message.endswith("scripted")
    assert err.value.code == "my_code"
    assert err.value.response.headers["Retry-After"] == "0.5"
    assert err.value.response.headers["content-type"] == "application/json"


def test_extra_headers_on_status_fault(server: FakeOpenAIServer) -> None:
    server.queue(Fault.status(503, headers={"retry-after-ms": "250", "x-custom": "1"}))
    with pytest.raises(openai.InternalServerError) as err:
        create_sync(server.client(), "responses", False)
    assert err.value.response.headers["retry-after-ms"] == "250"
    assert err.value.response.headers["x-custom"] == "1"


def test_sdk_retries_after_429_when_allowed(server: FakeOpenAIServer) -> None:
    server.queue(Fault.rate_limit(retry_after=0), Reply.json({"ok": True}))
    out = call_sync(server.client(max_retries=1), "chat", False)
    assert out.content == '{"ok":true}'
    assert len(server.requests) == 2
    assert server.requests[1].headers["x-stainless-retry-count"] == "1"


# -- disconnects ----------------------------------------------------------------------------

DISCONNECTS = {
    "after_deltas": Fault.disconnect(after_deltas=2, reply=LONG),
    "after_events": Fault.disconnect(after_events=3, reply=LONG),
    "after_bytes_mid_event": Fault.disconnect(after_bytes=700, reply=LONG),
    "reset": Fault.disconnect(after_deltas=2, reset=True, reply=LONG),
    "before_response": Fault.disconnect(reply=LONG),
}


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("case", list(DISCONNECTS))
async def test_disconnect_mid_stream_raises_connection_error(
    server: FakeOpenAIServer, api: Api, case: str
) -> None:
    server.queue(DISCONNECTS[case], DISCONNECTS[case])
    with pytest.raises(openai.APIConnectionError) as sync_err:
        drain_sync(server.client(), api)
    async with server.async_client() as aclient:
        with pytest.raises(openai.APIConnectionError) as async_err:
            await drain_async(aclient, api)
    assert not isinstance(sync_err.value, openai.APITimeoutError)
    assert len(getattr(sync_err.value, "got", [])) == len(getattr(async_err.value, "got", []))


@pytest.mark.parametrize("api", APIS)
def test_disconnect_after_deltas_delivers_exactly_those_deltas(
    server: FakeOpenAIServer, api: Api
) -> None:
    server.queue(Fault.disconnect(after_deltas=2, reply=Reply.text("abcdefghijkl")))
    with pytest.raises(openai.APIConnectionError) as err:
        drain_sync(server.client(), api)
    got = err.value.got  # type: ignore[attr-defined]
    if api == "chat":
        deltas = [c.choices[0].delta.content for c in got[1:]]
    else:
        deltas = [e.delta for e in got if e.type == "response.output_text.delta"]
    assert deltas == ["abcd", "efgh"]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("fault", [Fault.disconnect(), Fault.disconnect(after_bytes=20)])
def test_disconnect_on_whole_response_raises_connection_error(
    server: FakeOpenAIServer, api: Api, fault: Fault
) -> None:
    server.queue(fault)
    with pytest.raises(openai.APIConnectionError):
        create_sync(server.client(), api, False)


# -- delays and timeouts --------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("stream", [False, True])
async def test_delay_beyond_client_timeout_raises_timeout(
    server: FakeOpenAIServer, api: Api, stream: bool
) -> None:
    server.queue(Fault.delay(5), Fault.delay(5))
    with pytest.raises(openai.APITimeoutError):
        create_sync(server.client(timeout=0.15), api, stream)
    async with server.async_client(timeout=0.15) as aclient:
        with pytest.raises(openai.APITimeoutError):
            await create_async(aclient, api, stream)


@pytest.mark.parametrize("api", APIS)
async def test_pause_between_events_times_out_while_iterating(
    server: FakeOpenAIServer, api: Api
) -> None:
    server.queue(Fault.delay(between_events=5), Fault.delay(between_events=5))
    with pytest.raises(openai.APITimeoutError) as sync_err:
        drain_sync(server.client(timeout=0.15), api)
    async with server.async_client(timeout=0.15) as aclient:
        with pytest.raises(openai.APITimeoutError) as async_err:
            await drain_async(aclient, api)
    assert len(sync_err.value.got) == len(async_err.value.got) == 1  # type: ignore[attr-defined]


def test_short_delays_only_slow_the_answer(server: FakeOpenAIServer) -> None:
    server.queue(Fault.delay(0.1, between_events=0.01, reply=Reply.text("abcdefgh")))
    start = time.perf_counter()
    out = call_sync(server.client(), "chat", True)
    assert out.content == "abcdefgh"
    assert time.perf_counter() - start >= 0.1


def test_stop_interrupts_a_pending_delay() -> None:
    server = FakeOpenAIServer(Fault.delay(30)).start()
    client = server.client(timeout=0.1)
    with pytest.raises(openai.APITimeoutError):
        create_sync(client, "chat", False)
    start = time.perf_counter()
    server.stop()
    assert time.perf_counter() - start < 2


# -- malformed streams and in-stream errors -------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_garbage_line_is_ignored_by_sse_decoders(server: FakeOpenAIServer, api: Api) -> None:
    server.queue(Fault.malformed_sse("garbage", reply=LONG), Fault.malformed_sse("garbage"))
    out = call_sync(server.client(_strict_response_validation=True), api, True)
    assert out.content == LONG.content
    async with server.async_client() as aclient:
        out = await call_async(aclient, api, True)
    assert out.finish == "stop"


@pytest.mark.parametrize("api", APIS)
async def test_event_with_invalid_json_data_fails_sdk_decoding(
    server: FakeOpenAIServer, api: Api
) -> None:
    server.queue(
        Fault.malformed_sse("invalid_json", after_deltas=2), Fault.malformed_sse("invalid_json")
    )
    with pytest.raises(json.JSONDecodeError) as err:
        drain_sync(server.client(), api)
    assert len(err.value.got) >= 3  # type: ignore[attr-defined]
    async with server.async_client() as aclient:
        with pytest.raises(json.JSONDecodeError):
            await drain_async(aclient, api)


@pytest.mark.parametrize("api", APIS)
def test_truncated_event_ends_stream_without_finish(server: FakeOpenAIServer, api: Api) -> None:
    server.queue(Fault.malformed_sse("truncated", after_deltas=2, reply=Reply.text("abcdefghijkl")))
    got = drain_sync(server.client(), api)
    if api == "chat":
        assert all(c.choices[0].finish_reason is None for c in got)
        assert "".join(c.choices[0].delta.content or "" for c in got) == "abcdefgh"
    else:
        types = [e.type for e in got]
        assert types[-1] == "response.output_text.delta"
        assert "response.completed" not in types


async def test_chat_stream_error_raises_api_error(server: FakeOpenAIServer) -> None:
    server.queue(Fault.stream_error("model overloaded", after_deltas=1), Fault.stream_error("x"))
    with pytest.raises(openai.APIError) as err:
        drain_sync(server.client(), "chat")
    assert err.value.message == "model overloaded"
    assert not isinstance(err.value, openai.APIStatusError)
    async with server.async_client() as aclient:
        with pytest.raises(openai.APIError):
            await drain_async(aclient, "chat")


def test_responses_stream_error_yields_response_failed(server: FakeOpenAIServer) -> None:
    server.queue(Fault.stream_error("model overloaded", after_deltas=1))
    events = drain_sync(server.client(_strict_response_validation=True), "responses")
    assert events[-1].type == "response.failed"
    assert events[-1].response.status == "failed"
    assert events[-1].response.error.message == "model overloaded"
    assert events[-1].sequence_number == len(events) - 1


@pytest.mark.parametrize("api", APIS)
def test_stream_error_on_whole_response_is_http_500(server: FakeOpenAIServer, api: Api) -> None:
    server.queue(Fault.stream_error("boom"))
    with pytest.raises(openai.InternalServerError, match="boom"):
        create_sync(server.client(), api, False)


# -- content-level faults are replies --------------------------------------------------------


def test_content_faults_are_replies() -> None:
    assert Fault.refusal("no") == Reply.refusal("no")
    assert Fault.length("{") == Reply.length("{")
    assert Fault.content_filter() == Reply.content_filter()
    assert Fault.invalid_json("{x").content == "{x"
