"""The limits behind the memory bound (issue 10, item 3), in process: the SSE event limit, the
refusal limit, one decode per Responses final event, and bounded ``decoder.results``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_decoder import chat_body, responses_body

from openai_structured.errors import BufferOverflowError
from openai_structured.streaming import (
    Finished,
    StreamConfig,
    StreamDecoder,
    StreamState,
    ValueCompleted,
)
from openai_structured.streaming import protocol as protocol_module
from openai_structured.streaming.sse import DEFAULT_MAX_EVENT_SIZE, SSEDecoder, event_limit

KiB = 1024
MiB = 1024 * KiB


def test_the_event_limit_is_four_times_the_buffer_plus_64_kib() -> None:
    assert event_limit(1000) == 4000 + 64 * KiB
    assert StreamConfig(max_buffer_size=1000).max_event_size == 4000 + 64 * KiB
    assert DEFAULT_MAX_EVENT_SIZE == StreamConfig().max_event_size == 4 * MiB + 64 * KiB
    assert StreamDecoder(config=StreamConfig(max_buffer_size=1000))._sse.max_event_size == (
        4000 + 64 * KiB
    )


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "9"])
def test_the_sse_limit_must_be_a_positive_int(bad: Any) -> None:
    with pytest.raises(ValueError):
        SSEDecoder(bad)


def test_no_limit_is_allowed_explicitly() -> None:
    sse = SSEDecoder(None)
    assert sse.feed_data(b"data: " + b"x" * 100_000 + b"\n\n") == [b"x" * 100_000]


@pytest.mark.parametrize("step", [1, 7, 64, 10_000])
def test_a_line_that_never_ends_overflows_as_soon_as_it_passes_the_limit(step: int) -> None:
    sse = SSEDecoder(100)
    data = b"data: " + b"x" * 300
    with pytest.raises(BufferOverflowError) as info:
        for i in range(0, len(data), step):
            sse.feed_data(data[i : i + step])
    assert info.value.limit == 100
    assert info.value.size is not None and info.value.size > 100
    assert sse._pending == [] and sse._size == 0  # what was held is released


@pytest.mark.parametrize("step", [1, 5, 64])
def test_an_event_of_many_lines_that_never_ends_overflows(step: int) -> None:
    sse = SSEDecoder(100)
    data = b"".join(b"data: %d\n" % i for i in range(40))
    with pytest.raises(BufferOverflowError):
        for i in range(0, len(data), step):
            sse.feed_data(data[i : i + step])


@pytest.mark.parametrize(
    "event",
    [
        b"data: " + b"x" * 95 + b"\n\n",  # one data line (the one-event fast path)
        b"event: e\ndata: " + b"x" * 86 + b"\n\n",  # event + data (the second fast path)
        b"data: a\n\ndata: " + b"x" * 95 + b"\n\n",  # several events, one too big
        b"data: " + b"x" * 95 + b"\r\n\r\n",  # other line ends
        b"id: 1\ndata: " + b"x" * 90 + b"\n\n",  # the general path
    ],
)
def test_a_complete_event_past_the_limit_overflows_whatever_the_chunking(event: bytes) -> None:
    for step in (len(event), 1, 13):
        sse = SSEDecoder(100)
        with pytest.raises(BufferOverflowError):
            for i in range(0, len(event), step):
                sse.feed_data(event[i : i + step])
        sse = SSEDecoder(100)
        with pytest.raises(BufferOverflowError):
            for i in range(0, len(event), step):
                sse.feed(event[i : i + step])


def test_an_event_at_the_limit_is_fine() -> None:
    event = b"data: " + b"x" * 94 + b"\n\n"  # 100 bytes without the blank line
    for step in (len(event), 1, 7):
        sse = SSEDecoder(100)
        out: list[bytes] = []
        for i in range(0, len(event), step):
            out += sse.feed_data(event[i : i + step])
        assert out == [b"x" * 94]


def test_the_decoder_enters_error_on_an_endless_event() -> None:
    decoder = StreamDecoder(config=StreamConfig(max_buffer_size=1000))
    limit = decoder.config.max_event_size
    with pytest.raises(BufferOverflowError) as info:
        decoder.feed(b"data: " + b"x" * limit)
    assert info.value.limit == limit
    assert decoder.state is StreamState.ERROR
    assert decoder.error is info.value


def chat_refusal_body(refusal: str, step: int) -> bytes:
    out = []
    for i in range(0, len(refusal), step):
        data = {"choices": [{"index": 0, "delta": {"refusal": refusal[i : i + step]}}]}
        out.append(f"data: {json.dumps(data)}\n\n".encode())
    return b"".join(out)


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_a_refusal_past_max_buffer_size_overflows_in_utf8_bytes(api: str) -> None:
    refusal = "é" * 600  # 1200 bytes in 600 characters
    body = (
        chat_refusal_body(refusal, 50)
        if api == "chat"
        else responses_body("", refusal=refusal, step=50)
    )
    decoder = StreamDecoder(api=api, config=StreamConfig(max_buffer_size=1000))
    with pytest.raises(BufferOverflowError) as info:
        for i in range(0, len(body), 100):
            decoder.feed(body[i : i + 100])
    assert info.value.limit == 1000
    assert info.value.size is not None and 1000 < info.value.size <= 1200
    assert decoder.state is StreamState.ERROR
    assert decoder.refusal == ""  # released


def test_a_refusal_within_the_limit_is_reported_as_before() -> None:
    decoder = StreamDecoder(config=StreamConfig(max_buffer_size=1000))
    body = chat_body("", refusal="é" * 500)  # exactly 1000 bytes
    decoder.feed(body)
    assert decoder.refusal == "é" * 500


def test_a_responses_final_event_is_decoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    text = json.dumps({"a": "x" * 1000})
    body = responses_body(text, step=200)
    # The final events that repeat the whole text, before the terminal one (as the API sends).
    message = {"type": "message", "id": "msg", "role": "assistant", "status": "completed"}
    part = {"type": "output_text", "text": text, "annotations": []}
    finals = [
        {"type": "response.output_text.done", "item_id": "msg", "content_index": 0, "text": text},
        {"type": "response.content_part.done", "item_id": "msg", "part": part},
        {"type": "response.output_item.done", "item": {**message, "content": [part]}},
    ]
    k = body.index(b"event: response.completed")
    body = (
        body[:k]
        + b"".join(f"event: {f['type']}\ndata: {json.dumps(f)}\n\n".encode() for f in finals)
        + body[k:]
    )
    calls: list[bytes] = []
    real = protocol_module._from_json

    def counting(data: bytes) -> Any:
        calls.append(data)
        return real(data)

    monkeypatch.setattr(protocol_module, "_from_json", counting)
    decoder = StreamDecoder(api="responses", config=StreamConfig(max_buffer_size=2000))
    decoder.feed(body)
    events = decoder.close()
    assert isinstance(events[-1], Finished)
    assert len(calls) == body.count(b"\ndata: ")  # one decode per event, final ones included
    for kind in ("output_text.done", "content_part.done", "output_item.done", "completed"):
        assert sum(b'"response.%s"' % kind.encode() in c for c in calls) == 1, kind
    assert events[-1].result == json.loads(text)


def test_completed_values_are_all_delivered_but_results_keep_only_a_bounded_tail() -> None:
    config = StreamConfig(max_buffer_size=1000)
    value = {"k": "v" * 100}
    n = 2000  # ~230 KB of values: well past max_buffer_size + 64 KiB of kept values
    text = " ".join([json.dumps(value)] * n)
    decoder = StreamDecoder(config=config)
    events = decoder.feed(chat_body(text, step=500)) + decoder.close()
    completed = [e for e in events if isinstance(e, ValueCompleted)]
    assert [e.index for e in completed] == list(range(n))  # every value delivered, counted
    assert decoder.values_completed == n
    kept = len(decoder.results)
    assert 1 <= kept < n
    assert decoder.results_dropped == n - kept
    cost = len(json.dumps(value)) + 64
    assert kept * cost <= config.max_buffer_size + 64 * KiB
    (finished,) = [e for e in events if isinstance(e, Finished)]
    assert finished.result == value
    assert len(finished.results) == kept


def test_results_keep_every_value_while_they_fit() -> None:
    decoder = StreamDecoder(config=StreamConfig(max_buffer_size=1000))
    events = decoder.feed(chat_body("[1] [2] [3]")) + decoder.close()
    assert decoder.results == [[1], [2], [3]]
    assert decoder.results_dropped == 0
    assert isinstance(events[-1], Finished) and events[-1].results == ([1], [2], [3])


def test_the_last_value_is_kept_even_when_it_alone_passes_the_results_budget() -> None:
    config = StreamConfig(max_buffer_size=100 * KiB)
    big = [0] * 30_000  # 90,000 characters: under the value limit, over half the budget
    text = json.dumps([1]) + " " + json.dumps(big) + " " + json.dumps(big)
    decoder = StreamDecoder(config=config)
    events = decoder.feed(chat_body(text, step=4000)) + decoder.close()
    assert decoder.values_completed == 3
    assert decoder.results[-1] == big
    assert isinstance(events[-1], Finished) and events[-1].result == big
