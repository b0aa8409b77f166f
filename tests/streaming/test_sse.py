"""The SSE decoder gives the same events whatever the chunking and line endings."""

from __future__ import annotations

import pytest

from openai_structured.streaming.sse import SSEDecoder, SSEEvent

STREAM = (
    b": keep-alive comment\n"
    b'data: {"a": 1}\n\n'
    b"event: response.output_text.delta\n"
    b'data: {"b": 2}\n\n'
    b"id: 7\n"
    b"retry: 1500\n"
    b"data: line one\n"
    b"data: line two\n\n"
    b"data:no-space\n\n"
    b"data: \n\n"
    b"event: ping\n\n"
    b"\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    SSEEvent(b'{"a": 1}'),
    SSEEvent(b'{"b": 2}', "response.output_text.delta"),
    SSEEvent(b"line one\nline two", None, "7", 1500),
    SSEEvent(b"no-space", None, "7", 1500),
    SSEEvent(b"[DONE]", None, "7", 1500),
]


def decode_all(data: bytes, size: int, *, raw: bool = False) -> list[object]:
    decoder = SSEDecoder()
    out: list[object] = []
    for start in range(0, len(data), size):
        piece = data[start : start + size]
        out += decoder.feed_data(piece) if raw else decoder.feed(piece)
    out += [e.data for e in decoder.close()] if raw else decoder.close()
    return out


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_chunking_and_line_ending_gives_the_same_events(newline: bytes) -> None:
    data = STREAM.replace(b"\n", newline)
    for size in range(1, len(data) + 1):
        assert decode_all(data, size) == EXPECTED, size
        assert decode_all(data, size, raw=True) == [e.data for e in EXPECTED], size


def test_fast_path_for_plain_data_events_and_fallback_for_mixed_blocks() -> None:
    decoder = SSEDecoder()
    assert decoder.feed_data(b"data: 1\n\ndata: 2\n\ndata: 3\n") == [b"1", b"2"]
    assert decoder.feed_data(b"\ndata: 4\nid: x\n\n") == [b"3", b"4"]


def test_split_inside_crlf_is_not_a_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r\n") == []
    assert decoder.feed(b"\r\n") == [SSEEvent(b"a\nb")]


def test_last_event_without_blank_line_is_dispatched_at_close_unless_cut() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: whole\n")
    assert decoder.close() == [SSEEvent(b"whole")]
    decoder = SSEDecoder()
    decoder.feed(b"data: cu")
    assert decoder.close() == []


def test_one_event_in_many_tiny_chunks() -> None:
    payload = b"x" * 5000
    decoder = SSEDecoder()
    out = []
    for byte in b"data: " + payload + b"\n\n":
        out += decoder.feed_data(bytes([byte]))
    assert out == [payload]


@pytest.mark.parametrize(
    ("reads", "expected"),
    [
        ([b"data: {}\n\n"], [b"{}"]),  # one whole event per read: the fast path
        ([b"event: response.output_text.delta\ndata: {}\n\n"], [b"{}"]),
        ([b"data: \n\n", b"event: x\ndata: \n\n"], []),  # empty data dispatches nothing
        ([b"data: a\rb\n\n"], [b"a"]),  # '\r' ends a line: "b" is a field without value
        ([b"data: {", b"}\n\n"], [b"{}"]),  # carried over: the general path joins it
        ([b"data: x\r", b"\ndata: y\n\n"], [b"x\ny"]),  # '\r' then '\n' is one line end
        ([b"data: x\r", b"data: y\n\n"], [b"x\ny"]),
        ([b"data: x\r\r", b"\ndata: y\n\n"], [b"x", b"y"]),
        ([b"data: a\n", b"\n", b"data: b\n\n"], [b"a", b"b"]),
        ([b"data: a\n\ndata: b\n\n"], [b"a", b"b"]),
        ([b"id: 1\ndata: a\n\n"], [b"a"]),
    ],
)
def test_feed_data_recognises_one_event_per_read_and_only_that(
    reads: list[bytes], expected: list[bytes]
) -> None:
    decoder = SSEDecoder()
    out: list[bytes] = []
    for read in reads:
        out += decoder.feed_data(read)
    assert out == expected
    # the same events as the general decoder gives
    general = SSEDecoder()
    assert [e.data for read in reads for e in general.feed(read)] == expected


def test_the_stream_decoder_reads_no_private_state_of_the_sse_decoder() -> None:
    from pathlib import Path

    import openai_structured.streaming.decoder as decoder_module

    source = Path(decoder_module.__file__).read_text()
    assert "_sse._" not in source and "sse._" not in source.replace("self._sse.", "")
