"""``StreamConfig``, ``StreamBuffer`` (SPEC §2.4) and :class:`RetainedText`, the one accounting
of held text that ``StreamBuffer`` and the stream decoder share.

``StreamBuffer`` holds only the text it still needs: the value in progress plus text written
but not yet parsed. Text of completed values and junk between values is discarded by
:meth:`StreamBuffer.cleanup`, which runs by itself when the buffer passes
``cleanup_threshold``. Memory is therefore bounded by ``max_buffer_size``; a single value larger
than that raises :class:`~openai_structured.errors.BufferOverflowError`.

Sizes are UTF-8 bytes, as the names say, in ``StreamBuffer`` and in the value and event streams
alike: both count with :class:`RetainedText`, so one config overflows at the same byte in both.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from .._logging import NULL_SINK, LogSink, OnLog
from ..errors import BufferOverflowError, StreamParseError, ValidationError
from .json_parser import JSONStreamParser, ParsedValue
from .sse import event_limit
from .validation import OutputType, Validator, value_validator

__all__ = ["RetainedText", "StreamBuffer", "StreamConfig", "as_sink", "utf8_len"]

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class StreamConfig:
    """Limits of one stream. All sizes are in UTF-8 bytes.

    ``max_buffer_size``: most text held at once (the value in progress) before
    ``BufferOverflowError``. ``cleanup_threshold``: size at which consumed text is discarded.
    ``chunk_size``: read size hint for transports. ``max_cleanup_attempts``: consecutive
    automatic cleanups that free nothing before they pause (until a value completes).
    ``max_parse_errors``: JSON syntax errors tolerated before ``StreamParseError``.
    ``log_size_threshold``: buffer size that triggers a ``buffer.size`` log event.

    ``cleanup_threshold`` and ``chunk_size`` larger than ``max_buffer_size`` are clamped to it
    (cleanup has to start before the buffer overflows, and no read needs to be larger than the
    buffer), so ``StreamConfig(max_buffer_size=1000)`` is a valid small buffer.
    """

    max_buffer_size: int = 1 * MiB
    cleanup_threshold: int = 512 * KiB
    chunk_size: int = 8 * KiB
    max_cleanup_attempts: int = 3
    max_parse_errors: int = 5
    log_size_threshold: int = 100 * KiB

    @property
    def max_event_size(self) -> int:
        """The most bytes of one server-sent event: ``4 * max_buffer_size + 64 KiB`` (an
        event's data is the text JSON-escaped plus its envelope; see :mod:`.sse`)."""
        return event_limit(self.max_buffer_size)

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
        # Frozen: the clamped values are set the way dataclasses set fields.
        if self.cleanup_threshold > self.max_buffer_size:
            object.__setattr__(self, "cleanup_threshold", self.max_buffer_size)
        if self.chunk_size > self.max_buffer_size:
            object.__setattr__(self, "chunk_size", self.max_buffer_size)


def as_sink(on_log: LogSink | OnLog | None) -> LogSink:
    """A :class:`LogSink` for ``on_log`` (a sink, a raw callback, or None)."""
    if on_log is None:
        return NULL_SINK
    if isinstance(on_log, LogSink):
        return on_log
    return LogSink(on_log)


def utf8_len(text: str) -> int:
    """Length of ``text`` in UTF-8 bytes (``isascii`` first: ASCII text costs no encoding)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def overflow_error(size: int, limit: int) -> BufferOverflowError:
    """The error for ``size`` bytes of one value (or of unparsed text) past ``limit``."""
    return BufferOverflowError(
        f"Stream buffer overflow: one JSON value needs {size} bytes (UTF-8), more than "
        f"StreamConfig.max_buffer_size ({limit} bytes). Raise the limit if answers this large "
        "are expected.",
        size=size,
        limit=limit,
    )


class RetainedText:
    """The text a :class:`JSONStreamParser` still needs, counted in UTF-8 bytes.

    The one implementation of retention, cleanup, overflow and the ``buffer.size`` /
    ``cleanup.stats`` log events, used by :class:`StreamBuffer` and the stream decoder. Text is
    :meth:`add`-ed as it arrives (parsed or not); :meth:`cleanup` drops what lies before the
    value in progress (or before the parser's position: unparsed text is kept). Offsets
    (``base``, value ``start``/``end``) are the parser's, in characters; sizes are bytes.

    Callers run :meth:`settle` when ``size >= watch``: ``watch`` is the next size at which
    something is due (a cleanup, a log event, an overflow check), so the hot path is one
    comparison per chunk.
    """

    __slots__ = (
        "_fruitless",
        "_logged",
        "_parser",
        "_pieces",
        "_sink",
        "attempts",
        "base",
        "config",
        "size",
        "stats",
        "total_bytes",
        "watch",
    )

    def __init__(self, config: StreamConfig, parser: JSONStreamParser, sink: LogSink) -> None:
        self.config = config
        self._parser = parser
        self._sink = sink
        self._pieces: list[str] = []  # held text, oldest first
        self.base = 0  # absolute character offset of the first held character
        self.size = 0  # UTF-8 bytes held
        self.total_bytes = 0  # UTF-8 bytes ever added
        self.attempts = 0  # cleanups run
        self.stats: dict[str, int] = {
            "attempts": 0,
            "successful": 0,
            "bytes_freed": 0,
            "last_freed": 0,
            "fruitless_in_a_row": 0,
        }
        self._fruitless = 0  # cleanups in a row that freed nothing
        self._logged = False  # buffer.size was logged and the size has not dropped below since
        self.watch = 0
        self._rearm()

    def add(self, text: str) -> None:
        """Hold ``text`` (the next characters after what is held)."""
        nbytes = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        self._pieces.append(text)
        self.size += nbytes
        self.total_bytes += nbytes

    @property
    def text(self) -> str:
        """Everything held (joined once, then kept joined)."""
        pieces = self._pieces
        if len(pieces) > 1:
            self._pieces = pieces = ["".join(pieces)]
        return pieces[0] if pieces else ""

    def slice(self, start: int, end: int) -> str | None:
        """The held text between two parser offsets; None when part of it was dropped."""
        if start < self.base:
            return None
        return self.text[start - self.base : end - self.base]

    def _rearm(self) -> None:
        config = self.config
        watch = config.max_buffer_size + 1
        if self._fruitless < config.max_cleanup_attempts:
            watch = min(watch, config.cleanup_threshold)
        if not self._logged:
            watch = min(watch, config.log_size_threshold)
        self.watch = watch

    def cleanup(self) -> int:
        """Drop the text before the value in progress (or before the parser's position);
        return the bytes freed. Counted in ``stats`` and logged as ``cleanup.stats``."""
        parser = self._parser
        keep_from = parser.value_start if parser.value_start is not None else parser.position
        stats = self.stats
        self.attempts += 1
        stats["attempts"] += 1
        freed = 0
        if keep_from > self.base:
            kept = self.text[keep_from - self.base :]
            size = utf8_len(kept)
            freed = self.size - size
            self._pieces = [kept] if kept else []
            self.base = keep_from
            self.size = size
        stats["last_freed"] = freed
        if freed:
            stats["successful"] += 1
            stats["bytes_freed"] += freed
            self._fruitless = 0
        else:
            self._fruitless += 1
        stats["fruitless_in_a_row"] = self._fruitless
        if self._logged and self.size < self.config.log_size_threshold:
            self._logged = False  # log again the next time it crosses
        self._rearm()
        if self._sink:
            self._sink.emit("cleanup.stats", "debug", freed=freed, size=self.size, **stats)
        return freed

    def settle(self) -> None:
        """What is due at this size: the automatic cleanup past ``cleanup_threshold`` (paused
        after ``max_cleanup_attempts`` fruitless ones in a row, until a value completes), then
        ``BufferOverflowError`` if more than ``max_buffer_size`` is still held, then the
        ``buffer.size`` event when the size first reaches ``log_size_threshold``."""
        config = self.config
        cleaned = False
        if self.size >= config.cleanup_threshold and self._fruitless < config.max_cleanup_attempts:
            self.cleanup()
            cleaned = True
        if self.size > config.max_buffer_size:
            if not cleaned:
                self.cleanup()
            if self.size > config.max_buffer_size:
                raise overflow_error(self.size, config.max_buffer_size)
        if not self._logged and self.size >= config.log_size_threshold:
            self._logged = True
            if self._sink:
                self._sink.emit(
                    "buffer.size",
                    "info",
                    size=self.size,
                    threshold=config.log_size_threshold,
                    total_bytes=self.total_bytes,
                )
        self._rearm()

    def value_completed(self, start: int, end: int) -> None:
        """A value spanning ``[start, end)`` completed: overflow if it alone is larger than
        ``max_buffer_size`` (the same verdict whatever the chunking: a value that arrived in
        one read is as much too big as one that grew over many); resume paused cleanups."""
        limit = self.config.max_buffer_size
        if 4 * (end - start) > limit:  # a character is at most 4 bytes: else it fits for sure
            text = self.slice(start, end)
            size = utf8_len(text) if text is not None else end - start
            if size > limit:
                raise overflow_error(size, limit)
        if self._fruitless:
            self._fruitless = 0
            self._rearm()


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
        self._held = RetainedText(self.config, self._parser, self._sink)
        self._unparsed: list[str] = []
        self._ready: deque[Any] = deque()  # completed values not returned yet
        self.truncated = False

    @property
    def size(self) -> int:
        """Bytes currently held."""
        return self._held.size

    @property
    def total_bytes(self) -> int:
        """Bytes written since the last :meth:`reset`."""
        return self._held.total_bytes

    @property
    def cleanup_attempts(self) -> int:
        """Cleanups run (automatic and explicit) since the last :meth:`reset`."""
        return self._held.attempts

    @property
    def _cleanup_stats(self) -> dict[str, int]:
        """The seed's cleanup counters: attempts, successful, bytes_freed, last_freed,
        fruitless_in_a_row."""
        return self._held.stats

    @property
    def parse_errors(self) -> int:
        """JSON syntax errors seen so far (each discarded one value)."""
        return self._parser.parse_errors

    @property
    def content(self) -> str:
        """The text currently held (the value in progress and anything not parsed yet)."""
        return self._held.text

    # --- API -------------------------------------------------------------------------------

    def write(self, content: str) -> None:
        """Append text without parsing it yet; cleans up, then raises ``BufferOverflowError``
        if the buffer would still exceed ``max_buffer_size``."""
        self._add(content)
        if self._held.size >= self._held.watch:
            self._settle()

    def _add(self, content: str) -> None:
        if not isinstance(content, str):
            raise TypeError(f"StreamBuffer.write() takes str, not {type(content).__name__}")
        if content:
            self._held.add(content)
            self._unparsed.append(content)

    def _settle(self) -> None:
        try:
            self._held.settle()
        except BufferOverflowError as exc:
            self._overflowed(exc)
            raise

    def _overflowed(self, exc: BufferOverflowError) -> None:
        if self._sink:
            self._sink.emit(
                "error", "error", kind="buffer.overflow", size=exc.size, limit=exc.limit
            )

    def process_stream_chunk(self, content: str, on_log: LogSink | OnLog | None = None) -> Any:
        """Write ``content`` and parse; return a completed (validated) value, else None.

        When one chunk completes several values they are returned one per call, in order
        (later calls, even with empty content, and :meth:`close` return the rest). The size
        limit applies after parsing, as in the streams: a chunk holding several small values
        is fine, one value (or text held for it) past ``max_buffer_size`` overflows.
        """
        sink = as_sink(on_log) if on_log is not None else self._sink
        self._add(content)
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
                    buffer_size=self._held.size,
                )
            for event in values:
                try:
                    self._held.value_completed(event.start, event.end)
                except BufferOverflowError as exc:
                    self._overflowed(exc)
                    raise
                self._ready.append(self._checked(event, sink))
        if self._held.size >= self._held.watch:
            self._settle()
        return self._ready.popleft() if self._ready else None

    def _checked(self, event: ParsedValue, sink: LogSink) -> Any:
        if self._validate is None:
            return event.value
        try:
            result = self._validate(event.value)
        except ValidationError as exc:
            if exc.content is None:
                exc.content = self._held.slice(event.start, event.end)
            if sink:
                sink.emit("validation", "error", ok=False, errors=exc.errors())
            raise
        if sink:
            sink.emit("validation", "debug", ok=True)
        return result

    def cleanup(self) -> int:
        """Discard text no longer needed (completed values, skipped junk); return bytes freed."""
        return self._held.cleanup()

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
                    "parse.attempt", "warning", outcome="truncated", buffer_size=self._held.size
                )
        return self._ready.popleft() if self._ready else None
