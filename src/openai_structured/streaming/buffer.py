"""``StreamConfig`` and ``StreamBuffer`` (SPEC §2.4): the seed's buffer API on the linear parser.

``StreamBuffer`` holds only the text it still needs: the value in progress plus text written
but not yet parsed. Text of completed values and junk between values is discarded by
:meth:`StreamBuffer.cleanup`, which runs by itself when the buffer passes
``cleanup_threshold``. Memory is therefore bounded by ``max_buffer_size``; a single value larger
than that raises :class:`~openai_structured.errors.BufferOverflowError`.

Sizes are UTF-8 bytes, as the names say.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from ..errors import BufferOverflowError, StreamParseError, ValidationError
from ..events import NULL_SINK, LogSink, OnLog
from .json_parser import JSONStreamParser, ParsedValue
from .validation import OutputType, Validator, value_validator

__all__ = ["StreamBuffer", "StreamConfig", "as_sink"]

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class StreamConfig:
    """Limits of one stream. All sizes are in bytes.

    ``max_buffer_size``: most text held at once (the value in progress) before
    ``BufferOverflowError``. ``cleanup_threshold``: size at which consumed text is discarded.
    ``chunk_size``: read size hint for transports. ``max_cleanup_attempts``: consecutive
    automatic cleanups that free nothing before they pause (until a value completes).
    ``max_parse_errors``: JSON syntax errors tolerated before ``StreamParseError``.
    ``log_size_threshold``: buffer size that triggers a ``buffer.size`` log event.
    """

    max_buffer_size: int = 1 * MiB
    cleanup_threshold: int = 512 * KiB
    chunk_size: int = 8 * KiB
    max_cleanup_attempts: int = 3
    max_parse_errors: int = 5
    log_size_threshold: int = 100 * KiB

    def __post_init__(self) -> None:
        for name in (
            "max_buffer_size",
            "cleanup_threshold",
            "chunk_size",
            "max_cleanup_attempts",
            "max_parse_errors",
            "log_size_threshold",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"StreamConfig.{name} must be an int, got {value!r}")
            if value < 1:
                raise ValueError(f"StreamConfig.{name} must be at least 1, got {value}")
        if self.cleanup_threshold > self.max_buffer_size:
            raise ValueError(
                f"StreamConfig.cleanup_threshold ({self.cleanup_threshold}) must not exceed "
                f"max_buffer_size ({self.max_buffer_size}): cleanup has to start before the "
                "buffer overflows"
            )
        if self.chunk_size > self.max_buffer_size:
            raise ValueError(
                f"StreamConfig.chunk_size ({self.chunk_size}) must not exceed max_buffer_size "
                f"({self.max_buffer_size})"
            )


def as_sink(on_log: LogSink | OnLog | None) -> LogSink:
    """A :class:`LogSink` for ``on_log`` (a sink, a raw callback, or None)."""
    if on_log is None:
        return NULL_SINK
    if isinstance(on_log, LogSink):
        return on_log
    return LogSink(on_log)


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class StreamBuffer:
    """Accumulates streamed text and returns each JSON value as soon as it completes.

    ``schema`` (a pydantic model class or a JSON Schema dict) makes completed values validated:
    a model instance (or the checked dict) is returned, a mismatch raises
    :class:`~openai_structured.errors.ValidationError`. Without it the parsed value is returned.
    Text outside values is skipped (see :class:`~.json_parser.JSONStreamParser`).
    """

    def __init__(
        self,
        config: StreamConfig | None = None,
        schema: OutputType | None = None,
        *,
        on_log: LogSink | OnLog | None = None,
    ) -> None:
        self.config = config if config is not None else StreamConfig()
        self.schema = schema
        self._validate: Validator | None = value_validator(schema) if schema is not None else None
        self._sink = as_sink(on_log)
        self.reset()

    # --- state ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Empty the buffer and zero every counter (the config and schema are kept)."""
        self._parser = JSONStreamParser(max_parse_errors=self.config.max_parse_errors)
        self._held: list[str] = []  # text held, parsed or not, oldest first
        self._held_base = 0  # absolute character offset of _held[0]
        self._unparsed: list[str] = []
        self._size = 0  # UTF-8 bytes held
        self._ready: deque[Any] = deque()  # completed values not returned yet
        self._fruitless = 0
        self._logged_size = False
        self.total_bytes = 0
        self.cleanup_attempts = 0
        self.truncated = False
        self._cleanup_stats: dict[str, int] = {
            "attempts": 0,
            "successful": 0,
            "bytes_freed": 0,
            "last_freed": 0,
            "fruitless_in_a_row": 0,
        }

    @property
    def size(self) -> int:
        """Bytes currently held."""
        return self._size

    @property
    def parse_errors(self) -> int:
        """JSON syntax errors seen so far (each discarded one value)."""
        return self._parser.parse_errors

    @property
    def content(self) -> str:
        """The text currently held (the value in progress and anything not parsed yet)."""
        return "".join(self._held)

    # --- API -------------------------------------------------------------------------------

    def write(self, content: str) -> None:
        """Append text without parsing it yet; cleans up, then raises ``BufferOverflowError``
        if the buffer would still exceed ``max_buffer_size``."""
        if not isinstance(content, str):
            raise TypeError(f"StreamBuffer.write() takes str, not {type(content).__name__}")
        if not content:
            return
        nbytes = _utf8_len(content)
        config = self.config
        self._held.append(content)
        self._unparsed.append(content)
        self._size += nbytes
        self.total_bytes += nbytes
        if self._size >= config.cleanup_threshold and self._fruitless < config.max_cleanup_attempts:
            self.cleanup()
        if self._size > config.max_buffer_size:
            self.cleanup()
            if self._size > config.max_buffer_size:
                size = self._size
                self._sink.emit(
                    "error",
                    "error",
                    kind="buffer.overflow",
                    size=size,
                    limit=config.max_buffer_size,
                )
                raise BufferOverflowError(
                    f"Stream buffer overflow: {size} bytes held, limit {config.max_buffer_size}"
                    ". One JSON value is larger than StreamConfig.max_buffer_size; raise the "
                    "limit if such large answers are expected.",
                    size=size,
                    limit=config.max_buffer_size,
                )
        if not self._logged_size and self._size >= config.log_size_threshold:
            self._logged_size = True
            if self._sink:
                self._sink.emit(
                    "buffer.size",
                    "info",
                    size=self._size,
                    threshold=config.log_size_threshold,
                    total_bytes=self.total_bytes,
                )
        elif self._logged_size and self._size < config.log_size_threshold:
            self._logged_size = False  # log again the next time it crosses

    def process_stream_chunk(self, content: str, on_log: LogSink | OnLog | None = None) -> Any:
        """Write ``content`` and parse; return a completed (validated) value, else None.

        When one chunk completes several values they are returned one per call, in order
        (later calls, even with empty content, and :meth:`close` return the rest).
        """
        sink = as_sink(on_log) if on_log is not None else self._sink
        self.write(content)
        if self._unparsed:
            text = "".join(self._unparsed) if len(self._unparsed) > 1 else self._unparsed[0]
            self._unparsed.clear()
            errors_before = self._parser.parse_errors
            try:
                events = self._parser.feed(text)
            except StreamParseError as exc:
                exc.content = self.content
                exc.results = list(self._ready)
                if sink:
                    sink.emit(
                        "parse.attempt",
                        "error",
                        outcome="gave_up",
                        errors=exc.attempts,
                        error=str(exc.last_error),
                    )
                raise
            new_errors = self._parser.parse_errors - errors_before
            values = [e for e in events if type(e) is ParsedValue]
            if sink and (values or new_errors):
                sink.emit(
                    "parse.attempt",
                    "warning" if new_errors else "debug",
                    outcome="error" if new_errors else "complete",
                    values=len(values),
                    errors=self._parser.parse_errors,
                    last_error=str(self._parser.last_error) if new_errors else None,
                    buffer_size=self._size,
                )
            for event in values:
                self._ready.append(self._checked(event, sink))
            if values:
                self._fruitless = 0
                if self._size >= self.config.cleanup_threshold:
                    self.cleanup()
        return self._ready.popleft() if self._ready else None

    def _checked(self, event: ParsedValue, sink: LogSink) -> Any:
        if self._validate is None:
            return event.value
        try:
            result = self._validate(event.value)
        except ValidationError as exc:
            if exc.content is None:
                exc.content = self._text(event.start, event.end)
            if sink:
                sink.emit("validation", "error", ok=False, errors=exc.errors())
            raise
        if sink:
            sink.emit("validation", "debug", ok=True)
        return result

    def _text(self, start: int, end: int) -> str | None:
        if start < self._held_base:
            return None
        return "".join(self._held)[start - self._held_base : end - self._held_base]

    def cleanup(self) -> int:
        """Discard text no longer needed (completed values, skipped junk); return bytes freed."""
        parser = self._parser
        keep_from = parser.value_start if parser.value_start is not None else parser.position
        stats = self._cleanup_stats
        self.cleanup_attempts += 1
        stats["attempts"] += 1
        freed = 0
        if keep_from > self._held_base:
            text = "".join(self._held)
            kept = text[keep_from - self._held_base :]
            new_size = _utf8_len(kept)
            freed = self._size - new_size
            self._held = [kept] if kept else []
            self._held_base = keep_from
            self._size = new_size
        stats["last_freed"] = freed
        if freed:
            stats["successful"] += 1
            stats["bytes_freed"] += freed
            self._fruitless = 0
        else:
            self._fruitless += 1
        stats["fruitless_in_a_row"] = self._fruitless
        if self._sink:
            self._sink.emit("cleanup.stats", "debug", freed=freed, size=self._size, **stats)
        return freed

    def close(self) -> Any:
        """End of input: return the next completed value not yet returned, else None.

        A value cut off mid-way is not returned (never a fragment): :attr:`truncated` becomes
        True and a ``parse.attempt`` event (outcome ``truncated``) is logged.
        """
        if self._unparsed:
            value = self.process_stream_chunk("")
            if value is not None:
                self._ready.appendleft(value)
        self._parser.close()
        if self._parser.truncated and not self.truncated:
            self.truncated = True
            if self._sink:
                self._sink.emit(
                    "parse.attempt", "warning", outcome="truncated", buffer_size=self._size
                )
        return self._ready.popleft() if self._ready else None
