"""StreamConfig validation and the StreamBuffer API of SPEC §2.4."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from openai_structured._logging import LogEvent, LogSink
from openai_structured.errors import BufferOverflowError, StreamParseError, ValidationError
from openai_structured.streaming import StreamBuffer, StreamConfig


class Item(BaseModel):
    name: str
    price: float


def test_config_defaults() -> None:
    config = StreamConfig()
    assert (config.max_buffer_size, config.cleanup_threshold, config.chunk_size) == (
        1024 * 1024,
        512 * 1024,
        8 * 1024,
    )
    assert (config.max_cleanup_attempts, config.max_parse_errors, config.log_size_threshold) == (
        3,
        5,
        100 * 1024,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_buffer_size": 0},
        {"max_parse_errors": -1},
        {"chunk_size": 1.5},
        {"max_cleanup_attempts": True},
    ],
)
def test_config_rejects_bad_values_with_a_clear_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError), match="StreamConfig"):
        StreamConfig(**kwargs)


def test_config_clamps_cleanup_threshold_and_chunk_size_to_the_buffer() -> None:
    config = StreamConfig(max_buffer_size=1000)  # the seed's small buffer, other defaults
    assert (config.max_buffer_size, config.cleanup_threshold, config.chunk_size) == (
        1000,
        1000,
        1000,
    )
    config = StreamConfig(max_buffer_size=1024, cleanup_threshold=2048, chunk_size=4096)
    assert (config.cleanup_threshold, config.chunk_size) == (1024, 1024)
    # values within the buffer are kept as given
    config = StreamConfig(max_buffer_size=4096, cleanup_threshold=1024, chunk_size=512)
    assert (config.cleanup_threshold, config.chunk_size) == (1024, 512)


def test_config_is_frozen() -> None:
    with pytest.raises(AttributeError):
        StreamConfig().max_buffer_size = 5  # type: ignore[misc]


def test_process_stream_chunk_returns_each_value_when_it_completes() -> None:
    buffer = StreamBuffer()
    assert buffer.process_stream_chunk('Here: {"name": "pen", ') is None
    assert buffer.process_stream_chunk('"price": 1.5}') == {"name": "pen", "price": 1.5}
    assert buffer.process_stream_chunk(" [1] [2]") == [1]
    assert buffer.process_stream_chunk("") == [2]  # values are never dropped
    assert buffer.close() is None
    assert buffer.total_bytes == len('Here: {"name": "pen", "price": 1.5} [1] [2]')


def test_schema_model_and_json_schema_validation() -> None:
    buffer = StreamBuffer(schema=Item)
    result = buffer.process_stream_chunk('{"name": "pen", "price": 2}')
    assert result == Item(name="pen", price=2)
    with pytest.raises(ValidationError) as info:
        buffer.process_stream_chunk('{"name": "pen", "price": "lots"}')
    assert info.value.errors()[0]["path"] == "price"
    assert info.value.content == '{"name": "pen", "price": "lots"}'
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    buffer = StreamBuffer(schema=schema)
    assert buffer.process_stream_chunk('{"n": 3}') == {"n": 3}
    with pytest.raises(ValidationError) as info:
        buffer.process_stream_chunk('{"n": "x"}')
    assert info.value.errors()[0]["loc"] == ("n",)


def test_write_then_process_and_close_returns_the_final_value() -> None:
    buffer = StreamBuffer()
    buffer.write('{"a": ')
    buffer.write("1}")
    assert buffer.close() == {"a": 1}


def test_close_with_a_value_cut_midway_returns_none_and_records_it() -> None:
    events: list[LogEvent] = []
    buffer = StreamBuffer(on_log=lambda e, level: events.append(e))
    buffer.process_stream_chunk('{"a": [1, 2')
    assert buffer.close() is None
    assert buffer.truncated
    assert any(e.type == "parse.attempt" and e.data["outcome"] == "truncated" for e in events)


def test_overflow_raises_after_cleanup_cannot_free_enough() -> None:
    config = StreamConfig(
        max_buffer_size=1024, cleanup_threshold=512, chunk_size=256, log_size_threshold=256
    )
    buffer = StreamBuffer(config)
    buffer.process_stream_chunk('{"done": 1} ' * 60)  # ~700 bytes of completed values
    assert buffer.size < 512  # cleanup dropped them
    buffer.process_stream_chunk('{"big": "' + "x" * 900)
    with pytest.raises(BufferOverflowError) as info:
        buffer.process_stream_chunk("y" * 200)
    assert info.value.limit == 1024 and info.value.size is not None and info.value.size > 1024


def test_cleanup_frees_consumed_text_and_keeps_stats() -> None:
    buffer = StreamBuffer()
    buffer.process_stream_chunk('junk {"a": 1} more junk {"b": ')
    before = buffer.size
    freed = buffer.cleanup()
    assert freed == len('junk {"a": 1} more junk ')
    assert buffer.size == before - freed
    assert buffer.content == '{"b": '
    assert buffer.cleanup_attempts == 1
    assert buffer._cleanup_stats["bytes_freed"] == freed
    assert buffer._cleanup_stats["successful"] == 1
    assert buffer.cleanup() == 0
    assert buffer._cleanup_stats["fruitless_in_a_row"] == 1
    assert buffer.process_stream_chunk("2}") == {"b": 2}


def test_reset_clears_everything() -> None:
    buffer = StreamBuffer()
    buffer.process_stream_chunk('{"x": oops} {"a": ')
    buffer.cleanup()
    buffer.reset()
    assert (buffer.size, buffer.total_bytes, buffer.parse_errors, buffer.cleanup_attempts) == (
        0,
        0,
        0,
        0,
    )
    assert buffer.process_stream_chunk('{"b": 1}') == {"b": 1}


def test_parse_errors_count_and_give_up() -> None:
    buffer = StreamBuffer(StreamConfig(max_parse_errors=2))
    assert buffer.process_stream_chunk("{oops} ") is None
    assert buffer.parse_errors == 1
    with pytest.raises(StreamParseError) as info:
        buffer.process_stream_chunk("[nope]")
    assert info.value.attempts == 2


def test_log_events_size_parse_cleanup_validation() -> None:
    events: list[tuple[str, str]] = []
    config = StreamConfig(
        max_buffer_size=4096, cleanup_threshold=2048, chunk_size=512, log_size_threshold=100
    )
    sink = LogSink(lambda e, level: events.append((e.type, level)))
    buffer = StreamBuffer(config, schema=Item, on_log=sink)
    buffer.process_stream_chunk('{"name": "' + "n" * 120 + '", "price": 1}')
    buffer.process_stream_chunk("{bad}")
    buffer.cleanup()
    kinds = {kind for kind, _ in events}
    assert {"buffer.size", "parse.attempt", "validation", "cleanup.stats"} <= kinds
    # on_log per call overrides the buffer's sink
    extra: list[str] = []
    buffer.process_stream_chunk(
        '{"name": "a", "price": 3}', on_log=lambda e, level: extra.append(e.type)
    )
    assert "validation" in extra


def test_no_callback_costs_no_events() -> None:
    buffer = StreamBuffer()
    assert not buffer._sink
    buffer.process_stream_chunk('{"a": 1}')


def test_write_rejects_bytes() -> None:
    with pytest.raises(TypeError):
        StreamBuffer().write(b"{}")  # type: ignore[arg-type]
