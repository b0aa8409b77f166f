"""Sizes are UTF-8 bytes everywhere: StreamBuffer, the value stream and the event stream share
one accounting, so one config overflows (and logs) at the same byte in all three; and the seed's
small ``StreamConfig(max_buffer_size=1000)`` works, overflowing during the stream."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel
from test_decoder import chat_body, responses_body

from openai_structured import openai_structured_events, openai_structured_stream
from openai_structured._logging import LogEvent
from openai_structured.errors import BufferOverflowError
from openai_structured.streaming import (
    Finished,
    PartialUpdate,
    StreamBuffer,
    StreamConfig,
    StreamDecoder,
    StreamEvent,
)
from openai_structured.testing import FakeOpenAIServer, Reply

# 2- and 4-byte characters: 106 characters of text take 145 bytes.
WORDS = ["é😀x", "ça", "😀😀", "naïve", "ß"]
VALUE = {"t": WORDS * 3}
TEXT = json.dumps(VALUE, ensure_ascii=False)
NBYTES = len(TEXT.encode())


def test_the_sample_text_is_much_longer_in_bytes_than_in_characters() -> None:
    assert (len(TEXT), NBYTES) == (106, 145)


def run_buffer(config: StreamConfig, text: str, chunk: int) -> list[Any]:
    buffer = StreamBuffer(config)
    out = []
    for i in range(0, len(text), chunk):
        value = buffer.process_stream_chunk(text[i : i + chunk])
        if value is not None:
            out.append(value)
    while (value := buffer.process_stream_chunk("")) is not None:  # values one per call
        out.append(value)
    value = buffer.close()
    return [*out, value] if value is not None else out


def run_decoder(config: StreamConfig, text: str, chunk: int, **kwargs: Any) -> list[Any]:
    decoder = StreamDecoder(config=config, **kwargs)
    body = chat_body(text, step=3)
    for i in range(0, len(body), chunk):
        decoder.feed(body[i : i + chunk])
    (finished,) = [e for e in decoder.close() if isinstance(e, Finished)]
    return list(finished.results)


STREAMS: dict[str, Callable[[StreamConfig, str, int], list[Any]]] = {
    "StreamBuffer": run_buffer,
    "value stream": run_decoder,
    "event stream": lambda config, text, chunk: run_decoder(
        config, text, chunk, partials=True, items=True
    ),
}


@pytest.mark.parametrize("stream", list(STREAMS))
@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_the_same_text_overflows_at_the_same_byte_in_every_stream(stream: str, chunk: int) -> None:
    run = STREAMS[stream]
    # Exactly the value's size in bytes: it fits.
    assert run(StreamConfig(max_buffer_size=NBYTES), TEXT, chunk) == [VALUE]
    # One byte less: overflow, reporting the value's size in bytes.
    with pytest.raises(BufferOverflowError) as info:
        run(StreamConfig(max_buffer_size=NBYTES - 1), TEXT, chunk)
    assert (info.value.size, info.value.limit) == (NBYTES, NBYTES - 1)
    assert "bytes" in str(info.value)


def test_a_read_with_several_small_values_is_fine_in_every_stream() -> None:
    # The limit is per value (and per text held for one), not per read.
    text = " ".join([TEXT] * 4)
    for run in STREAMS.values():
        assert run(StreamConfig(max_buffer_size=NBYTES), text, 1 << 20) == [VALUE] * 4


def logged(events: list[tuple[str, dict[str, Any]]]) -> Callable[[LogEvent, str], None]:
    return lambda event, level: events.append((event.type, dict(event.data)))


def test_buffer_size_is_logged_at_the_same_byte_threshold_by_buffer_and_decoder() -> None:
    # An unfinished value of NBYTES - 1 bytes (fewer characters): logged when the threshold is
    # reached in bytes.
    config = StreamConfig(
        max_buffer_size=10 * NBYTES, cleanup_threshold=10 * NBYTES, log_size_threshold=NBYTES - 1
    )
    partial = TEXT[:-1]
    from_buffer: list[tuple[str, dict[str, Any]]] = []
    StreamBuffer(config, on_log=logged(from_buffer)).process_stream_chunk(partial)
    from_decoder: list[tuple[str, dict[str, Any]]] = []
    StreamDecoder(config=config, log=logged(from_decoder)).feed(chat_body(partial, finish=None))
    for events in (from_buffer, from_decoder):
        sizes = [data["size"] for kind, data in events if kind == "buffer.size"]
        assert sizes == [NBYTES - 1]
    # One byte higher, neither logs.
    config = StreamConfig(log_size_threshold=NBYTES)
    quiet: list[tuple[str, dict[str, Any]]] = []
    StreamBuffer(config, on_log=logged(quiet)).process_stream_chunk(partial)
    StreamDecoder(config=config, log=logged(quiet)).feed(chat_body(partial, finish=None))
    assert not [kind for kind, _ in quiet if kind == "buffer.size"]


def test_cleanup_frees_and_reports_bytes_in_buffer_and_decoder() -> None:
    text = TEXT + " " + TEXT
    config = StreamConfig(max_buffer_size=10 * NBYTES, cleanup_threshold=NBYTES)
    from_buffer: list[tuple[str, dict[str, Any]]] = []
    buffer = StreamBuffer(config, on_log=logged(from_buffer))
    assert buffer.process_stream_chunk(text) == VALUE
    from_decoder: list[tuple[str, dict[str, Any]]] = []
    decoder = StreamDecoder(config=config, log=logged(from_decoder))
    decoder.feed(chat_body(text, finish=None))
    for events in (from_buffer, from_decoder):
        freed = [data["freed"] for kind, data in events if kind == "cleanup.stats"]
        assert freed == [2 * NBYTES + 1]
    assert buffer.size == 0 and buffer.total_bytes == 2 * NBYTES + 1
    assert buffer._cleanup_stats["bytes_freed"] == 2 * NBYTES + 1
    assert decoder.content == "" and decoder.cleanup_attempts == 1


# --- StreamConfig(max_buffer_size=1000): the seed's small buffer ------------------------------

BIG = {"text": "x" * 2000}  # a 2,000-byte value (2,012 bytes of JSON)
BIG_JSON = json.dumps(BIG)


def test_the_seeds_small_buffer_config_constructs() -> None:
    config = StreamConfig(max_buffer_size=1000)
    assert config.max_buffer_size == 1000
    assert config.cleanup_threshold <= 1000 and config.chunk_size <= 1000


def test_stream_buffer_with_a_1000_byte_limit_overflows_during_the_stream() -> None:
    buffer = StreamBuffer(StreamConfig(max_buffer_size=1000))
    pieces = [BIG_JSON[i : i + 100] for i in range(0, len(BIG_JSON), 100)]
    fed = 0
    with pytest.raises(BufferOverflowError) as info:
        for piece in pieces:
            buffer.process_stream_chunk(piece)
            fed += 1
    assert fed < len(pieces) - 1  # raised mid-stream, long before close()
    assert info.value.limit == 1000 and info.value.size is not None and info.value.size > 1000


@pytest.mark.parametrize("body", [chat_body, responses_body])
def test_stream_decoder_with_a_1000_byte_limit_overflows_in_feed(
    body: Callable[..., bytes],
) -> None:
    api = "chat" if body is chat_body else "responses"
    decoder = StreamDecoder(api=api, config=StreamConfig(max_buffer_size=1000), partials=True)
    raw = body(BIG_JSON, step=50)
    reads = [raw[i : i + 500] for i in range(0, len(raw), 500)]
    events: list[StreamEvent] = []
    with pytest.raises(BufferOverflowError) as info:
        for read in reads:
            events += decoder.feed(read)
    assert info.value.limit == 1000
    assert any(isinstance(e, PartialUpdate) for e in events)  # the stream was under way
    # what was held stayed within the limit plus the text of one read
    assert len(decoder.content.encode()) <= 1000 + 500


class Doc(BaseModel):
    text: str


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_a_small_stream_config_overflows_against_the_loopback_server(api: str) -> None:
    config = StreamConfig(max_buffer_size=1000)
    with FakeOpenAIServer() as server:
        server.queue(Reply.json(BIG, chunk_size=50))
        with pytest.raises(BufferOverflowError):
            list(
                openai_structured_stream(
                    client=server.client(),
                    model="gpt-4o",
                    output_schema=Doc,
                    user_prompt="x",
                    api=api,
                    stream_config=config,
                )
            )
        server.queue(Reply.json(BIG, chunk_size=50))
        seen: list[str] = []
        with (
            pytest.raises(BufferOverflowError),
            openai_structured_events(
                client=server.client(),
                model="gpt-4o",
                output_schema=Doc,
                user_prompt="x",
                api=api,
                stream_config=config,
            ) as stream,
        ):
            for event in stream:
                seen.append(type(event).__name__)
        assert "Finished" not in seen
        # the same config with a value that fits streams normally
        server.queue(Reply.json({"text": "short"}))
        (doc,) = openai_structured_stream(
            client=server.client(),
            model="gpt-4o",
            output_schema=Doc,
            user_prompt="x",
            api=api,
            stream_config=config,
        )
        assert doc == Doc(text="short")


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_an_answer_whose_text_cleanup_dropped_still_finishes(api: str) -> None:
    # The held text is empty at close (the completed value passed cleanup_threshold and was
    # dropped): the answer is not "empty", it finishes with its value.
    config = StreamConfig(max_buffer_size=10 * NBYTES, cleanup_threshold=NBYTES)
    decoder = StreamDecoder(api=api, config=config)
    body = (chat_body if api == "chat" else responses_body)(TEXT)
    events = decoder.feed(body) + decoder.close()
    assert decoder.content == ""
    assert isinstance(events[-1], Finished) and events[-1].result == VALUE


def test_fruitless_cleanups_pause_until_a_value_completes_in_buffer_and_decoder() -> None:
    # One implementation: the same max_cleanup_attempts rule in StreamBuffer and the decoder.
    config = StreamConfig(max_buffer_size=4000, cleanup_threshold=100, max_cleanup_attempts=2)
    growing = '{"s": "' + "y" * 150
    buffer = StreamBuffer(config)
    decoder = StreamDecoder(config=config)
    decoder.feed(chat_body("", finish=None))
    for _ in range(5):  # the value in progress is past the threshold: nothing can be freed
        buffer.process_stream_chunk(growing if not buffer.size else "y" * 50)
        decoder.feed(chat_body(growing if not decoder.content else "y" * 50, finish=None))
    assert buffer.cleanup_attempts == decoder.cleanup_attempts == 2  # then paused
    assert buffer._cleanup_stats["fruitless_in_a_row"] == 2
    buffer.process_stream_chunk('"} [1] ')
    decoder.feed(chat_body('"} [1] ', finish=None))
    # a value completed: cleanups resume and free the finished values
    assert buffer.cleanup_attempts == decoder.cleanup_attempts == 3
    assert buffer.size == 0 and decoder.content == ""
