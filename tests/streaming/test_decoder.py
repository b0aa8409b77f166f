"""StreamDecoder: bytes of a real-shaped SSE body in, typed events and outcomes out."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from openai_structured._logging import LogEvent
from openai_structured.errors import (
    BufferOverflowError,
    ContentFilterError,
    EmptyResponseError,
    InvalidResponseFormatError,
    RefusalError,
    StreamInterruptedError,
    StreamParseError,
    TokenLimitError,
    ValidationError,
)
from openai_structured.streaming import (
    Finished,
    ItemCompleted,
    PartialUpdate,
    Refusal,
    RefusalDelta,
    StalePartialError,
    StreamConfig,
    StreamDecoder,
    StreamEvent,
    StreamProtocolError,
    StreamServerError,
    ValueCompleted,
)


class Line(BaseModel):
    sku: str
    price: float
    tags: list[str] = []


class Order(BaseModel):
    id: int
    status: Literal["pending", "shipped"]
    lines: list[Line]
    notes: str | None = None


ORDER = {
    "id": 7,
    "status": "shipped",
    "notes": "fragile",
    "lines": [
        {"sku": "a-1", "price": 2.5, "tags": ["x", "y"]},
        {"sku": "b-2", "price": 10.0, "tags": []},
    ],
}
USAGE = {"prompt_tokens": 11, "completion_tokens": 22, "total_tokens": 33}


def chat_body(
    text: str,
    *,
    finish: str | None = "stop",
    refusal: str = "",
    step: int = 4,
    usage: bool = True,
    done: bool = True,
) -> bytes:
    head = {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-2024-08-06",
    }

    def event(delta: dict[str, Any], reason: str | None = None) -> bytes:
        body = {
            **head,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}],
        }
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    out = [event({"role": "assistant", "content": "", "refusal": None})]
    out += [event({"content": text[i : i + step]}) for i in range(0, len(text), step)]
    out += [event({"refusal": refusal[i : i + step]}) for i in range(0, len(refusal), step)]
    if finish is not None:
        out.append(event({}, finish))
        if usage:
            out.append(
                b"data: " + json.dumps({**head, "choices": [], "usage": USAGE}).encode() + b"\n\n"
            )
        if done:
            out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def responses_body(
    text: str,
    *,
    status: str = "completed",
    reason: str | None = None,
    refusal: str = "",
    step: int = 4,
) -> bytes:
    def event(kind: str, **fields: Any) -> bytes:
        data = json.dumps({"type": kind, "sequence_number": 0, **fields})
        return f"event: {kind}\ndata: {data}\n\n".encode()

    response = {"id": "resp_9", "object": "response", "status": "in_progress", "output": []}
    out = [event("response.created", response=response)]
    out += [
        event(
            "response.output_text.delta",
            item_id="msg",
            output_index=0,
            content_index=0,
            delta=text[i : i + step],
            logprobs=[],
        )
        for i in range(0, len(text), step)
    ]
    out += [
        event(
            "response.refusal.delta",
            item_id="msg",
            output_index=0,
            content_index=0,
            delta=refusal[i : i + step],
        )
        for i in range(0, len(refusal), step)
    ]
    if refusal:
        out.append(
            event(
                "response.refusal.done",
                item_id="msg",
                output_index=0,
                content_index=0,
                refusal=refusal,
            )
        )
    final = {
        **response,
        "status": status,
        "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
    }
    if reason:
        final["incomplete_details"] = {"reason": reason}
    kind = {"completed": "response.completed", "incomplete": "response.incomplete"}[status]
    out.append(event(kind, response=final))
    return b"".join(out)


def run(body: bytes, chunk: int = 97, **kwargs: Any) -> list[StreamEvent]:
    """Feed ``body`` in ``chunk``-byte reads (0: one SSE event per read) and close."""
    decoder = StreamDecoder(**kwargs)
    events: list[StreamEvent] = []
    if chunk == 0:
        reads = [event + b"\n\n" for event in body.split(b"\n\n") if event]
    else:
        reads = [body[start : start + chunk] for start in range(0, len(body), chunk)]
    for read in reads:
        events += decoder.feed(read)
    return events + decoder.close()


API_BODIES = {"chat": chat_body, "responses": responses_body}


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("chunk", [0, 1, 13, 97, 4096, 1 << 20])
def test_valid_stream_yields_value_and_finished(api: str, chunk: int) -> None:
    body = API_BODIES[api](json.dumps(ORDER))
    events = run(body, chunk, api=api, output_type=Order)
    values = [e for e in events if isinstance(e, ValueCompleted)]
    assert [v.value for v in values] == [Order.model_validate(ORDER)]
    assert values[0].raw == ORDER
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert finished.result == Order.model_validate(ORDER)
    assert finished.finish_reason == "stop"
    assert finished.response_id == ("chatcmpl-9" if api == "chat" else "resp_9")
    assert finished.usage == (
        USAGE if api == "chat" else {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    )


@pytest.mark.parametrize("chunk", [0, 1, 50, 1 << 20])
def test_item_events_at_nested_depths_are_validated(chunk: int) -> None:
    events = run(chat_body(json.dumps(ORDER)), chunk, output_type=Order, items=True)
    items = [(e.path, e.item) for e in events if isinstance(e, ItemCompleted)]
    assert items == [
        (("lines", 0, "tags", 0), "x"),
        (("lines", 0, "tags", 1), "y"),
        (("lines", 0), Line(sku="a-1", price=2.5, tags=["x", "y"])),
        (("lines", 1), Line(sku="b-2", price=10.0)),
    ]
    # items come before the value they belong to
    kinds = [type(e).__name__ for e in events if not isinstance(e, PartialUpdate)]
    assert kinds[-2:] == ["ValueCompleted", "Finished"]


def test_item_events_with_a_json_schema_dict() -> None:
    schema = {
        "type": "object",
        "$defs": {
            "line": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "price": {"type": "number"}},
                "required": ["sku", "price"],
            }
        },
        "properties": {"lines": {"type": "array", "items": {"$ref": "#/$defs/line"}}},
    }
    body = chat_body(json.dumps({"lines": [{"sku": "a", "price": 1}, {"sku": "b", "price": "x"}]}))
    with pytest.raises(ValidationError):
        run(body, output_type=schema, items=True)
    decoder = StreamDecoder(output_type=schema, items=True, validate=lambda v: v)
    events = decoder.feed(body) + decoder.close()
    items = [e for e in events if isinstance(e, ItemCompleted)]
    assert items[0].error is None and items[0].item == {"sku": "a", "price": 1}
    assert items[1].error is not None
    assert items[1].error.errors()[0]["path"] == "lines.1.price"


def test_invalid_item_is_reported_on_the_event_and_the_value_raises_with_paths() -> None:
    bad = {**ORDER, "lines": [{"sku": "a-1", "price": "cheap"}]}
    decoder = StreamDecoder(output_type=Order, items=True)
    body = chat_body(json.dumps(bad), step=1)
    events: list[StreamEvent] = []
    for start in range(0, len(body), 64):
        events += decoder.feed(body[start : start + 64])
    # The rest of the answer is read (for its usage and id); close() raises.
    assert not any(isinstance(e, ValueCompleted) for e in events)
    with pytest.raises(ValidationError) as info:
        decoder.close()
    (item,) = [e for e in events if isinstance(e, ItemCompleted)]
    assert item.error is not None and item.item == {"sku": "a-1", "price": "cheap"}
    assert item.error.errors()[0]["path"] == "lines.0.price"
    error = info.value.errors()[0]
    assert error["loc"] == ("lines", 0, "price") and error["path"] == "lines.0.price"
    assert info.value.content == json.dumps(bad)
    assert info.value.response_id == "chatcmpl-9"


def test_partial_updates_once_per_feed_with_typed_view() -> None:
    text = json.dumps(ORDER)
    body = chat_body(text, step=3)
    decoder = StreamDecoder(output_type=Order, partials=True)
    snapshots = []
    models = []
    for start in range(0, len(body), 300):
        events = decoder.feed(body[start : start + 300])
        partials = [e for e in events if isinstance(e, PartialUpdate)]
        assert len(partials) <= 1
        for partial in partials:
            snapshots.append(partial.snapshot())
            models.append(partial.as_model())
    decoder.close()
    assert len(snapshots) > 5
    assert all(isinstance(s, dict) for s in snapshots)
    # snapshots grow towards the final value and are copies
    assert snapshots[-1].items() <= ORDER.items() or snapshots[-1] != ORDER
    last = models[-1]
    assert type(last).__name__ == "PartialOrder"
    assert last.id == 7  # type: ignore[attr-defined]
    status_seen = {m.status for m in models}  # type: ignore[attr-defined]
    assert status_seen <= {None, "shipped"}  # a partial "ship" is not a valid status yet


def test_partial_update_goes_stale_when_the_stream_moves_on() -> None:
    decoder = StreamDecoder(output_type=Order, partials=True)
    body = chat_body(json.dumps(ORDER))
    (partial,) = [e for e in decoder.feed(body[:600]) if isinstance(e, PartialUpdate)]
    partial.snapshot()
    decoder.feed(body[600:1200])
    with pytest.raises(StalePartialError):
        partial.snapshot()


def test_no_partials_or_items_unless_asked() -> None:
    events = run(chat_body(json.dumps(ORDER)), output_type=Order)
    assert not [e for e in events if isinstance(e, (PartialUpdate, ItemCompleted))]


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_refusal_events_then_refusal_error(api: str) -> None:
    body = API_BODIES[api]("", refusal="I can't help with that.")
    decoder = StreamDecoder(api=api, output_type=Order)
    events: list[StreamEvent] = []
    for start in range(0, len(body), 120):
        events += decoder.feed(body[start : start + 120])
    deltas = "".join(e.text for e in events if isinstance(e, RefusalDelta))
    assert deltas == "I can't help with that."
    assert [e.text for e in events if isinstance(e, Refusal)] == ["I can't help with that."]
    with pytest.raises(RefusalError) as info:
        decoder.close()
    assert info.value.refusal == "I can't help with that."


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_length_cutoff_raises_token_limit_error_with_partial_content(api: str) -> None:
    text = json.dumps(ORDER)[:40]
    body = (
        chat_body(text, finish="length")
        if api == "chat"
        else responses_body(text, status="incomplete", reason="max_output_tokens")
    )
    with pytest.raises(TokenLimitError) as info:
        run(body, api=api, output_type=Order)
    assert info.value.content == text
    assert info.value.usage is not None


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_content_filter_raises(api: str) -> None:
    body = (
        chat_body('{"id": 1', finish="content_filter")
        if api == "chat"
        else responses_body('{"id": 1', status="incomplete", reason="content_filter")
    )
    with pytest.raises(ContentFilterError):
        run(body, api=api, output_type=Order)


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_empty_content_raises_empty_response(api: str) -> None:
    with pytest.raises(EmptyResponseError):
        run(API_BODIES[api](""), api=api, output_type=Order)


@pytest.mark.parametrize("text", ['Sorry, here is {"id": nope}', '{"id": nope}', "just words"])
def test_not_json_raises_invalid_response_format_with_the_calls_position(text: str) -> None:
    # The same description as a non-streaming call gives (one outcome table for both).
    with pytest.raises(InvalidResponseFormatError) as info:
        run(chat_body(text), output_type=Order)
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    err = info.value
    assert (err.position, err.line, err.column) == (
        expected.value.pos,
        expected.value.lineno,
        expected.value.colno,
    )
    assert err.content == text


def test_dropped_connection_is_a_distinct_state_with_content_and_results() -> None:
    text = json.dumps([1]) + json.dumps(ORDER)
    body = chat_body(text, finish=None)
    decoder = StreamDecoder()
    events = decoder.feed(body[: len(body) // 2 + 300])
    assert not decoder.finished and not decoder.done
    with pytest.raises(StreamInterruptedError) as info:
        decoder.close()
    assert info.value.results == [[1]]
    assert info.value.content is not None and info.value.content.startswith("[1]{")
    assert [e.value for e in events if isinstance(e, ValueCompleted)] == [[1]]


def test_done_without_usage_or_blank_line_still_finishes() -> None:
    body = chat_body('{"a": 1}', usage=False)[:-1]  # server forgot the last blank line
    events = run(body)
    assert isinstance(events[-1], Finished) and events[-1].result == {"a": 1}


def test_several_top_level_values_each_validated() -> None:
    events = run(chat_body('{"a": 1}\n{"a": 2}'), validate=lambda v: v["a"])
    assert [e.value for e in events if isinstance(e, ValueCompleted)] == [1, 2]
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert finished.results == (1, 2) and finished.result == 2


def test_malformed_sse_data_is_a_protocol_error_with_what_came_before() -> None:
    body = chat_body('{"a": 1} {"b"', finish=None) + b"data: {garbage\n\n"
    decoder = StreamDecoder()
    with pytest.raises(StreamProtocolError) as info:
        decoder.feed(body)
    assert info.value.results == [{"a": 1}]
    assert info.value.content == '{"a": 1} {"b"'


def test_server_error_in_stream() -> None:
    body = chat_body('{"a"', finish=None) + b'data: {"error": {"message": "boom"}}\n\n'
    with pytest.raises(StreamServerError) as info:
        run(body)
    assert info.value.content == '{"a"'


def test_too_many_parse_errors() -> None:
    config = StreamConfig(max_parse_errors=2)
    with pytest.raises(StreamParseError) as info:
        run(chat_body("{x} {y} {z}"), config=config)
    assert info.value.attempts == 2


def test_a_value_larger_than_the_buffer_limit_overflows() -> None:
    config = StreamConfig(max_buffer_size=2048, cleanup_threshold=1024, chunk_size=512)
    with pytest.raises(BufferOverflowError):
        run(chat_body(json.dumps({"s": "x" * 5000})), config=config)
    # completed values are dropped from memory, so many small ones are fine
    events = run(chat_body(" ".join(json.dumps({"i": i}) for i in range(500))), config=config)
    assert len([e for e in events if isinstance(e, ValueCompleted)]) == 500


def test_log_events() -> None:
    logged: list[LogEvent] = []
    run(
        chat_body(json.dumps(ORDER)),
        output_type=Order,
        log=lambda event, level: logged.append(event),
    )
    kinds = {e.type for e in logged}
    assert {"stream.chunk", "validation"} <= kinds


def test_feed_after_close_is_an_error() -> None:
    decoder = StreamDecoder()
    decoder.feed(chat_body("[1]"))
    decoder.close()
    with pytest.raises(RuntimeError):
        decoder.feed(b"data: {}\n\n")
