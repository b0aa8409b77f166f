"""Nothing after the server's end ([DONE], a terminal Responses event) counts, on any path:
the same read or a later one, every chunking, the fast paths and the careful one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_decoder import chat_body, responses_body

from openai_structured.streaming import Finished, StreamDecoder, StreamEvent, ValueCompleted
from openai_structured.streaming.protocol import ChatProtocol, ResponsesProtocol

TEXT = '{"a": [1, 2]}'
VALUE = {"a": [1, 2]}

CHAT_HEAD = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def chat_event(delta: dict[str, Any], finish: str | None = None) -> bytes:
    # The same envelope as chat_body's chunks, so the learnt-envelope fast path applies.
    body = {
        **CHAT_HEAD,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def responses_event(kind: str, **fields: Any) -> bytes:
    data = json.dumps({"type": kind, "sequence_number": 0, **fields})
    return f"event: {kind}\ndata: {data}\n\n".encode()


# After the end: more text (a second value, and text that would break the first), a refusal,
# another finish, a malformed event and a server error: none of it may show.
CHAT_AFTER = (
    chat_event({"content": ' {"b": 3}'})
    + chat_event({"content": "]]"})
    + chat_event({"refusal": "no"})
    + chat_event({}, "length")
    + b"data: {garbage\n\n"
    + b'data: {"error": {"message": "late"}}\n\n'
    + chat_event({"content": ' {"c": 4}'})
)
RESPONSES_AFTER = (
    responses_event("response.output_text.delta", delta=' {"b": 3}')
    + responses_event("response.output_text.delta", delta="]]")
    + responses_event("response.refusal.delta", delta="no")
    + responses_event("response.incomplete", response={"id": "x", "status": "incomplete"})
    + b"data: {garbage\n\n"
    + responses_event("error", message="late")
    + responses_event("response.output_text.delta", delta=' {"c": 4}')
)
BODIES = {
    "chat": chat_body(TEXT) + CHAT_AFTER,
    "responses": responses_body(TEXT) + RESPONSES_AFTER,
}


def reads(body: bytes, chunk: int) -> list[bytes]:
    if chunk == 0:  # one SSE event per read
        return [event + b"\n\n" for event in body.split(b"\n\n") if event]
    return [body[i : i + chunk] for i in range(0, len(body), chunk)]


def decode(api: str, chunks: list[bytes], **kwargs: Any) -> tuple[StreamDecoder, list[StreamEvent]]:
    decoder = StreamDecoder(api=api, **kwargs)
    events: list[StreamEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return decoder, events + decoder.close()


def check(decoder: StreamDecoder, events: list[StreamEvent]) -> None:
    assert decoder.content == TEXT
    assert decoder.results == [VALUE]
    assert [e.value for e in events if isinstance(e, ValueCompleted)] == [VALUE]
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert finished.results == (VALUE,) and finished.finish_reason == "stop"
    assert decoder.refusal == ""


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_content_after_the_end_is_ignored_in_every_chunking(api: str) -> None:
    body = BODIES[api]
    for chunk in [0, *range(1, len(body) + 1)]:
        decoder, events = decode(api, reads(body, chunk))
        check(decoder, events)


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("chunk", [0, 5, 333, 1 << 20])
def test_content_after_the_end_is_ignored_with_partials_and_items(api: str, chunk: int) -> None:
    decoder, events = decode(api, reads(BODIES[api], chunk), partials=True, items=True)
    check(decoder, events)
    assert [e.path for e in events if type(e).__name__ == "ItemCompleted"] == [("a", 0), ("a", 1)]


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_the_end_and_what_follows_in_one_read(api: str) -> None:
    body = BODIES[api]
    end = body.index(b"data: [DONE]") if api == "chat" else body.index(b"event: response.completed")
    decoder, events = decode(api, [body[:end], body[end:]])  # the end, then more, in one read
    check(decoder, events)


def test_chat_protocol_ignores_events_after_done_in_the_same_and_later_batches() -> None:
    proto = ChatProtocol()
    content = [chat_event({"content": piece})[6:-2] for piece in ('{"a"', ": 1}")]
    late = chat_event({"content": "late"})[6:-2]  # the learnt envelope: the fastest path
    assert proto.process(content) is False  # text only: nothing else to look at
    assert proto.process([chat_event({}, "stop")[6:-2], b"[DONE]", late, b"{bad"]) is True
    assert proto.process([late, b"[DONE]", b"{bad"]) is False
    assert "".join(proto.content) == '{"a": 1}'
    assert proto.done and proto.finish_reason == "stop"


def test_responses_protocol_ignores_events_after_the_terminal_event() -> None:
    proto = ResponsesProtocol()
    delta = responses_event("response.output_text.delta", delta="[1]").split(b"data: ")[1][:-2]
    done = json.dumps(
        {"type": "response.completed", "response": {"id": "r", "status": "completed"}}
    ).encode()
    assert proto.process([delta]) is False
    assert proto.process([done, delta, b"{bad"]) is True
    assert proto.process([delta, b"{bad"]) is False
    assert "".join(proto.content) == "[1]"
    assert proto.done and proto.finish_reason == "stop" and proto.response_id == "r"
