"""Streams through the loopback server: values, typed events, and every fault of SPEC §7 with
its documented outcome, for chat and responses, sync and async."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import openai
import pytest
from core_support import CANARY_KEY, Recorder
from pydantic import BaseModel

from openai_structured import (
    BufferOverflowError,
    ContentFilterError,
    EmptyResponseError,
    Finished,
    InvalidResponseFormatError,
    ItemCompleted,
    OpenAIClientError,
    PartialUpdate,
    Refusal,
    RefusalError,
    StreamConfig,
    StreamInterruptedError,
    TokenLimitError,
    ValidationError,
    ValueCompleted,
    async_openai_structured_events,
    async_openai_structured_stream,
    openai_structured_events,
    openai_structured_stream,
)
from openai_structured.testing import FakeOpenAIServer, Fault, Reply


class Item(BaseModel):
    name: str
    price: float
    note: str = "-"


class Order(BaseModel):
    customer: str
    items: list[Item]
    tags: list[list[str]] = []


ORDER = {
    "customer": "Ada",
    "items": [{"name": "tea", "price": 2.5, "note": None}, {"name": "cake", "price": 4.0}],
    "tags": [["a", "b"], ["c"]],
}
ORDER_JSON = json.dumps(ORDER)

Run = Callable[..., list[Any]]


@pytest.fixture
def events(server: FakeOpenAIServer, mode: str, api: str) -> Run:
    """``events(**kwargs)``: every event of one event stream, in this mode and API."""

    def sync_run(**kwargs: Any) -> list[Any]:
        kwargs.setdefault("api", api)
        kwargs.setdefault("model", "gpt-4o")
        kwargs.setdefault("user_prompt", "Take the order.")
        client = server.client(api_key=CANARY_KEY)
        with openai_structured_events(client=client, **kwargs) as stream:
            return list(stream)

    def async_run(**kwargs: Any) -> list[Any]:
        kwargs.setdefault("api", api)
        kwargs.setdefault("model", "gpt-4o")
        kwargs.setdefault("user_prompt", "Take the order.")

        async def run() -> list[Any]:
            async with (
                server.async_client(api_key=CANARY_KEY) as client,
                async_openai_structured_events(client=client, **kwargs) as stream,
            ):
                return [event async for event in stream]

        return asyncio.run(run())

    return sync_run if mode == "sync" else async_run


@pytest.fixture
def stream(server: FakeOpenAIServer, mode: str, api: str) -> Run:
    """``stream(**kwargs)``: the validated values of one value stream."""

    def sync_run(**kwargs: Any) -> list[Any]:
        kwargs.setdefault("api", api)
        kwargs.setdefault("model", "gpt-4o")
        kwargs.setdefault("user_prompt", "Take the order.")
        return list(openai_structured_stream(client=server.client(api_key=CANARY_KEY), **kwargs))

    def async_run(**kwargs: Any) -> list[Any]:
        kwargs.setdefault("api", api)
        kwargs.setdefault("model", "gpt-4o")
        kwargs.setdefault("user_prompt", "Take the order.")

        async def run() -> list[Any]:
            async with server.async_client(api_key=CANARY_KEY) as client:
                gen = async_openai_structured_stream(client=client, **kwargs)
                return [value async for value in gen]

        return asyncio.run(run())

    return sync_run if mode == "sync" else async_run


# --- values ---------------------------------------------------------------------------------


def test_a_stream_yields_the_validated_value(server: FakeOpenAIServer, stream: Run) -> None:
    server.queue(Reply.json(ORDER))
    assert stream(output_schema=Order) == [Order.model_validate({**ORDER, "items": [
        {"name": "tea", "price": 2.5}, {"name": "cake", "price": 4.0}]})]  # fmt: skip


def test_several_values_are_yielded_one_by_one(server: FakeOpenAIServer, stream: Run) -> None:
    server.queue(Reply.json_values({"customer": "A", "items": []}, {"customer": "B", "items": []}))
    assert [o.customer for o in stream(output_schema=Order)] == ["A", "B"]


def test_a_dict_schema_stream_yields_dicts(server: FakeOpenAIServer, stream: Run) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
        "additionalProperties": False,
    }
    server.queue(Reply.json({"name": "Ada"}))
    assert stream(schema=schema) == [{"name": "Ada"}]


# --- events ---------------------------------------------------------------------------------


def test_event_stream_gives_partials_items_value_and_finish(
    server: FakeOpenAIServer, events: Run
) -> None:
    # A pause between SSE events makes the client read them in separate chunks.
    server.queue(Fault.delay(between_events=0.002, reply=Reply.json(ORDER, chunk_size=7)))
    seen = events(output_schema=Order)
    partials = [e for e in seen if isinstance(e, PartialUpdate)]
    assert len(partials) > 3
    items = [(e.path, e.item) for e in seen if isinstance(e, ItemCompleted)]
    assert items == [
        (("items", 0), Item(name="tea", price=2.5)),
        (("items", 1), Item(name="cake", price=4.0)),
        (("tags", 0, 0), "a"),
        (("tags", 0, 1), "b"),
        (("tags", 0), ["a", "b"]),
        (("tags", 1, 0), "c"),
        (("tags", 1), ["c"]),
    ]
    assert isinstance(seen[-2], ValueCompleted) and isinstance(seen[-1], Finished)
    final = seen[-1]
    assert final.result == seen[-2].value
    assert final.usage is not None and final.finish_reason == "stop"


def test_a_partial_snapshot_is_the_object_so_far(server: FakeOpenAIServer, mode: str) -> None:
    server.queue(Fault.delay(between_events=0.002, reply=Reply.json(ORDER, chunk_size=5)))
    snapshots = []
    with openai_structured_events(
        client=server.client(), model="gpt-4o", output_schema=Order, user_prompt="x"
    ) as stream:
        for event in stream:
            if isinstance(event, PartialUpdate):
                snapshots.append(event.snapshot())
                view = event.as_model()
                assert view.customer in (None, "", "A", "Ad", "Ada")
    assert snapshots[0] != snapshots[-1]
    assert any(s.get("customer") == "Ada" and not s.get("items") for s in snapshots)


def test_a_refusal_gives_refusal_events_then_refusal_error(
    server: FakeOpenAIServer, events: Run
) -> None:
    server.queue(Reply.refusal("I can't help with that."))
    with pytest.raises(RefusalError) as info:
        events(output_schema=Order)
    assert info.value.refusal == "I can't help with that."


def test_refusal_events_arrive_before_the_error(server: FakeOpenAIServer) -> None:
    server.queue(Reply.refusal("No."))
    seen: list[Any] = []
    with (
        pytest.raises(RefusalError),
        openai_structured_events(
            client=server.client(), model="gpt-4o", output_schema=Order, user_prompt="x"
        ) as stream,
    ):
        seen.extend(stream)
    assert [e.text for e in seen if isinstance(e, Refusal)] == ["No."]


# --- outcomes -------------------------------------------------------------------------------


def test_length_cutoff_raises_token_limit_error_with_partial_content(
    server: FakeOpenAIServer, stream: Run
) -> None:
    server.queue(Reply.length(ORDER_JSON[:30]))
    with pytest.raises(TokenLimitError) as info:
        stream(output_schema=Order)
    assert info.value.content == ORDER_JSON[:30]
    assert info.value.usage is not None


def test_content_filter_raises_content_filter_error(server: FakeOpenAIServer, stream: Run) -> None:
    server.queue(Reply.content_filter(ORDER_JSON[:10]))
    with pytest.raises(ContentFilterError):
        stream(output_schema=Order)


def test_empty_stream_raises_empty_response_error(server: FakeOpenAIServer, stream: Run) -> None:
    server.queue(Reply.empty())
    with pytest.raises(EmptyResponseError):
        stream(output_schema=Order)


def test_text_that_is_not_json_raises_invalid_response_format_error(
    server: FakeOpenAIServer, stream: Run
) -> None:
    server.queue(Reply.text("Sorry, here is no JSON"))
    with pytest.raises(InvalidResponseFormatError) as info:
        stream(output_schema=Order)
    assert info.value.content == "Sorry, here is no JSON"


def test_a_value_that_does_not_match_raises_validation_error_with_the_path(
    server: FakeOpenAIServer, stream: Run
) -> None:
    server.queue(Reply.json({"customer": "Ada", "items": [{"name": "tea", "price": "x"}]}))
    with pytest.raises(ValidationError) as info:
        stream(output_schema=Order)
    assert [e["path"] for e in info.value.errors()] == ["items.0.price"]


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "sdk_error"),
    [
        (Fault.rate_limit(retry_after=3), openai.RateLimitError),
        (Fault.status(401), openai.AuthenticationError),
        (Fault.status(500), openai.InternalServerError),
    ],
)
def test_http_errors_are_both_stream_interrupted_and_the_sdk_class(
    server: FakeOpenAIServer, stream: Run, fault: Fault, sdk_error: type[Exception]
) -> None:
    server.queue(fault)
    with pytest.raises(StreamInterruptedError) as info:
        stream(output_schema=Order)
    err = info.value
    assert isinstance(err, sdk_error)
    assert isinstance(err.__cause__, sdk_error)
    assert err.status_code == err.__cause__.status_code  # type: ignore[attr-defined]
    if sdk_error is openai.RateLimitError:
        assert err.response.headers["retry-after"] == "3"  # type: ignore[attr-defined]


def test_rate_limit_during_a_stream_is_catchable_as_the_sdk_class(
    server: FakeOpenAIServer, stream: Run
) -> None:
    server.queue(Fault.rate_limit())
    with pytest.raises(openai.RateLimitError):
        stream(output_schema=Order)


def test_a_dropped_connection_keeps_what_was_received(
    server: FakeOpenAIServer, stream: Run
) -> None:
    reply = Reply.json_values({"customer": "A", "items": []}, ORDER, separator="\n")
    server.queue(Fault.disconnect(after_deltas=12, reply=reply))
    with pytest.raises(StreamInterruptedError) as info:
        stream(output_schema=Order)
    err = info.value
    assert isinstance(err, openai.APIConnectionError)
    assert err.content == (reply.content or "")[:48]
    assert [o.customer for o in err.results] == ["A"]


def test_a_stall_past_the_timeout_is_both_timeout_and_interrupted(
    server: FakeOpenAIServer, stream: Run
) -> None:
    server.queue(Fault.delay(between_events=1.0, reply=Reply.json(ORDER)))
    with pytest.raises(StreamInterruptedError) as info:
        stream(output_schema=Order, timeout=0.2)
    assert isinstance(info.value, openai.APITimeoutError)


def test_an_error_event_is_both_api_error_and_interrupted(
    server: FakeOpenAIServer, stream: Run
) -> None:
    server.queue(Fault.stream_error("overloaded", after_deltas=3, reply=Reply.json(ORDER)))
    with pytest.raises(StreamInterruptedError) as info:
        stream(output_schema=Order)
    assert isinstance(info.value, openai.APIError)
    assert "overloaded" in str(info.value)
    assert info.value.content == ORDER_JSON[:12]


def test_garbage_lines_in_the_sse_stream_are_ignored(server: FakeOpenAIServer, stream: Run) -> None:
    server.queue(Fault.malformed_sse("garbage", after_deltas=2, reply=Reply.json(ORDER)))
    assert len(stream(output_schema=Order)) == 1


def test_an_event_that_is_not_json_interrupts_the_stream(
    server: FakeOpenAIServer, stream: Run
) -> None:
    server.queue(Fault.malformed_sse("invalid_json", after_deltas=2, reply=Reply.json(ORDER)))
    with pytest.raises(StreamInterruptedError) as info:
        stream(output_schema=Order)
    assert info.value.content == ORDER_JSON[:8]


def test_a_truncated_stream_is_interrupted(server: FakeOpenAIServer, stream: Run) -> None:
    server.queue(Fault.malformed_sse("truncated", after_deltas=2, reply=Reply.json(ORDER)))
    with pytest.raises(StreamInterruptedError) as info:
        stream(output_schema=Order)
    assert info.value.content == ORDER_JSON[:8]


def test_a_value_larger_than_the_buffer_overflows(server: FakeOpenAIServer, stream: Run) -> None:
    big = {"customer": "x" * 5000, "items": []}
    server.queue(Reply.json(big, chunk_size=500))
    config = StreamConfig(max_buffer_size=2048, cleanup_threshold=1024, chunk_size=512)
    with pytest.raises(BufferOverflowError):
        stream(output_schema=Order, stream_config=config)


# --- pre-flight and logging -----------------------------------------------------------------


def test_models_that_cannot_stream_are_refused_before_any_request(
    server: FakeOpenAIServer, stream: Run
) -> None:
    with pytest.raises(OpenAIClientError, match="does not support streaming"):
        stream(output_schema=Order, model="o1", server="openai")
    assert server.requests == []


def test_the_request_asks_for_a_stream_with_usage(server: FakeOpenAIServer, api: str) -> None:
    server.queue(Reply.json(ORDER))
    list(
        openai_structured_stream(
            client=server.client(), model="gpt-4o", output_schema=Order, user_prompt="x", api=api
        )
    )
    body = server.last_request.json
    assert body["stream"] is True
    if api == "chat":
        assert body["stream_options"] == {"include_usage": True}


def test_a_stream_logs_start_chunks_and_end(
    server: FakeOpenAIServer, stream: Run, recorder: Recorder
) -> None:
    server.queue(Reply.json(ORDER).with_usage(20, 30))
    stream(output_schema=Order, on_log=recorder)
    types = recorder.types()
    assert types[:2] == ["request.start", "stream.start"]
    assert "stream.chunk" in types and "validation" in types
    assert types[-1] == "stream.end"
    end = recorder.events[-1][0].data
    assert end["values"] == 1 and end["usage"]
    assert CANARY_KEY not in repr(recorder.events)
