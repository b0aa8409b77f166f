"""The stream core's states (h11-style): every transition of StreamDecoder's state table."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_decoder import ORDER, Order, chat_body, responses_body

from openai_structured.errors import (
    BufferOverflowError,
    OpenAIClientError,
    RefusalError,
    StreamInterruptedError,
    StreamParseError,
    StreamProtocolError,
    StreamServerError,
    ValidationError,
)
from openai_structured.streaming import (
    Finished,
    StreamConfig,
    StreamDecoder,
    StreamEvent,
    StreamState,
    StreamStateError,
    ValueCompleted,
)

BODIES = {"chat": chat_body, "responses": responses_body}


def feed_all(decoder: StreamDecoder, body: bytes, chunk: int = 64) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    for start in range(0, len(body), chunk):
        events += decoder.feed(body[start : start + chunk])
    return events


def test_a_new_decoder_is_receiving() -> None:
    decoder = StreamDecoder()
    assert decoder.state is StreamState.RECEIVING
    assert decoder.error is None
    assert not decoder.done


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_the_servers_end_moves_to_done_and_close_to_closed_with_finished(api: str) -> None:
    decoder = StreamDecoder(api=api, output_type=Order)
    body = BODIES[api](json.dumps(ORDER))
    feed_all(decoder, body[:-40])
    assert decoder.state is StreamState.RECEIVING  # the end event is not complete yet
    feed_all(decoder, body[-40:])
    assert decoder.state is StreamState.DONE and decoder.done
    events = decoder.close()
    assert decoder.state is StreamState.CLOSED
    assert isinstance(events[-1], Finished) and events[-1].result == Order.model_validate(ORDER)


def test_responses_incomplete_is_an_end_too() -> None:
    decoder = StreamDecoder(api="responses")
    feed_all(decoder, responses_body('{"a": 1', status="incomplete", reason="max_output_tokens"))
    assert decoder.state is StreamState.DONE
    with pytest.raises(OpenAIClientError):  # the cut-off's TokenLimitError, an outcome
        decoder.close()
    assert decoder.state is StreamState.CLOSED


def test_done_ignores_what_is_fed_after_it() -> None:
    decoder = StreamDecoder()
    feed_all(decoder, chat_body('{"a": 1}'))
    assert decoder.state is StreamState.DONE
    # Even a malformed event or a server error after the end is not looked at.
    assert decoder.feed(b"data: {garbage\n\n") == []
    assert decoder.feed(b'data: {"error": {"message": "late"}}\n\n') == []
    assert decoder.state is StreamState.DONE
    (finished,) = decoder.close()
    assert isinstance(finished, Finished) and finished.results == ({"a": 1},)


def test_close_without_an_end_is_closed_with_the_dropped_streams_error() -> None:
    decoder = StreamDecoder()
    feed_all(decoder, chat_body('{"a": 1} {"b"', finish=None))
    assert decoder.state is StreamState.RECEIVING
    with pytest.raises(StreamInterruptedError) as info:
        decoder.close()
    assert info.value.results == [{"a": 1}]
    assert decoder.state is StreamState.CLOSED  # an outcome, not a protocol error
    assert decoder.error is None


def test_an_outcome_error_leaves_the_decoder_closed() -> None:
    decoder = StreamDecoder(output_type=Order)
    feed_all(decoder, chat_body("", refusal="No."))
    with pytest.raises(RefusalError):
        decoder.close()
    assert decoder.state is StreamState.CLOSED


def test_closed_refuses_feed_and_a_second_close() -> None:
    decoder = StreamDecoder()
    feed_all(decoder, chat_body("[1]"))
    decoder.close()
    with pytest.raises(StreamStateError, match=r"feed\(\) after close\(\)") as info:
        decoder.feed(b"data: {}\n\n")
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, OpenAIClientError)
    assert info.value.state is StreamState.CLOSED
    with pytest.raises(StreamStateError, match="called twice"):
        decoder.close()
    assert decoder.state is StreamState.CLOSED


CHAT_START = chat_body('{"a": 1} ', finish=None)
RESPONSES_START = responses_body('{"a": 1} ').rsplit(b"event: response.completed", 1)[0]

# What to feed first (a value completes in it), then what makes the stream fail.
ERROR_CASES: dict[str, tuple[dict[str, Any], bytes, bytes, type[Exception]]] = {
    "malformed event": (
        {},
        CHAT_START,
        chat_body("[2", finish=None) + b"data: {garbage\n\n",
        StreamProtocolError,
    ),
    "server error event": (
        {},
        CHAT_START,
        chat_body("[2", finish=None) + b'data: {"error": {"message": "boom"}}\n\n',
        StreamServerError,
    ),
    "responses failed": (
        {"api": "responses"},
        RESPONSES_START,
        b'data: {"type": "response.failed", "response": {"id": "r", '
        b'"error": {"message": "nope"}}}\n\n',
        StreamServerError,
    ),
    "parser gave up": (
        {"config": StreamConfig(max_parse_errors=2)},
        CHAT_START,
        chat_body("{x} {y} {z}"),
        StreamParseError,
    ),
    "overflow": (
        {"config": StreamConfig(max_buffer_size=100)},
        CHAT_START,
        chat_body(json.dumps({"s": "x" * 200})),
        BufferOverflowError,
    ),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
@pytest.mark.parametrize("chunk", [0, 7, 1 << 20])
def test_a_protocol_error_enters_error_which_refuses_data_and_never_finishes(
    case: str, chunk: int
) -> None:
    kwargs, start, rest, kind = ERROR_CASES[case]
    decoder = StreamDecoder(**kwargs)
    events = decoder.feed(start)
    assert decoder.results == [{"a": 1}]
    reads = (
        [event + b"\n\n" for event in rest.split(b"\n\n") if event]
        if chunk == 0
        else [rest[i : i + chunk] for i in range(0, len(rest), chunk)]
    )
    with pytest.raises(kind) as info:
        for read in reads:
            events += decoder.feed(read)
    first = info.value
    assert decoder.state is StreamState.ERROR
    assert decoder.error is first
    assert decoder.results == [{"a": 1}]  # what completed before the error is kept
    assert not [e for e in events if isinstance(e, Finished)]
    # feed() refuses, naming the first error (and chaining it)
    with pytest.raises(StreamStateError, match="failed") as refused:
        decoder.feed(b'data: {"choices": [{"delta": {"content": "x"}}]}\n\n')
    assert type(first).__name__ in str(refused.value)
    assert str(first) in str(refused.value)
    assert refused.value.error is first and refused.value.__cause__ is first
    assert refused.value.state is StreamState.ERROR
    # close() raises the same first error, every time: no Finished, ever
    for _ in range(2):
        with pytest.raises(kind) as again:
            decoder.close()
        assert again.value is first
    assert decoder.state is StreamState.ERROR


def test_a_malformed_last_event_found_at_close_enters_error() -> None:
    decoder = StreamDecoder()
    # The last event lacks its blank line: close() dispatches it, and it is garbage.
    feed_all(decoder, chat_body('{"a": 1}', finish=None) + b"data: {garbage\n")
    assert decoder.state is StreamState.RECEIVING
    with pytest.raises(StreamProtocolError) as info:
        decoder.close()
    assert decoder.state is StreamState.ERROR and decoder.error is info.value
    with pytest.raises(StreamProtocolError):
        decoder.close()
    with pytest.raises(StreamStateError):
        decoder.feed(b"data: [DONE]\n\n")


def test_a_last_event_without_blank_line_still_completes_at_close() -> None:
    decoder = StreamDecoder()
    body = chat_body('{"a": 1}')[: -len(b"\n")]  # "data: [DONE]\n": lacks only the blank line
    feed_all(decoder, body)
    assert decoder.state is StreamState.RECEIVING
    (finished,) = decoder.close()
    assert isinstance(finished, Finished) and finished.result == {"a": 1}
    assert decoder.state is StreamState.CLOSED


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_a_value_that_fails_validation_is_an_outcome_not_a_protocol_error(api: str) -> None:
    bad = {**ORDER, "status": "lost"}
    decoder = StreamDecoder(api=api, output_type=Order)
    events = feed_all(decoder, BODIES[api](json.dumps(bad) + ' {"more": 1}'))
    # The rest of the answer was read (for the usage and id), not parsed.
    assert decoder.state is StreamState.DONE
    assert not [e for e in events if isinstance(e, ValueCompleted)]
    with pytest.raises(ValidationError) as info:
        decoder.close()
    assert info.value.usage is not None
    assert info.value.response_id == ("chatcmpl-9" if api == "chat" else "resp_9")
    assert decoder.state is StreamState.CLOSED
    assert decoder.error is None
