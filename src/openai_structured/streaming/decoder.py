"""``StreamDecoder``: the sans-I/O core of a structured stream (bytes in, typed events out).

Like h11's ``Connection`` it never touches a socket. The sync and async client loops read raw
bytes from the SDK's streaming response and do::

    for chunk in response.iter_bytes():
        yield from decoder.feed(chunk)
        if decoder.done:
            break
    yield from decoder.close()

and wrap a transport exception with ``errors.interrupted(exc, content=decoder.content,
results=decoder.results)``.

Per fed chunk: SSE framing (C bytes methods), one ``jiter`` decode per event (the same as a bare
SDK loop), the text deltas joined once, and one incremental-parser call over that text. So the
JSON work is per chunk, not per delta, and total work is linear in the response.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from ..errors import (
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
from ..events import NULL_SINK, LogSink, OnLog
from .buffer import StreamConfig, as_sink
from .events import (
    Finished,
    ItemCompleted,
    PartialUpdate,
    Refusal,
    RefusalDelta,
    StreamEvent,
    ValueCompleted,
)
from .json_parser import JSONStreamParser, ParsedItem, ParsedValue, PathItem
from .protocol import make_protocol
from .sse import SSEDecoder
from .validation import ItemValidators, OutputType, value_validator

__all__ = ["ItemValidator", "StreamDecoder"]

ItemValidator = Callable[[tuple[PathItem, ...], Any], tuple[Any, ValidationError | None]]
"""``(path, raw) -> (item, error_or_None)``: validates one array element."""


def _location(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


class StreamDecoder:
    """Decode one streamed answer: :meth:`feed` raw SSE bytes, then :meth:`close`.

    ``api``: ``"chat"`` or ``"responses"``. ``validate``: called with each whole top-level value,
    returns the typed result or raises :class:`~openai_structured.errors.ValidationError`
    (default: built from ``output_type``, else values are returned as parsed).
    ``output_type`` (pydantic model class or JSON Schema dict): types array items and
    ``PartialUpdate.as_model()``. ``item_validator`` replaces the path-based item validation.
    ``partials``/``items`` switch those events on (both off cost nothing).

    :meth:`feed` and :meth:`close` raise the library's typed errors; ``content`` and ``results``
    are attached to every :class:`~openai_structured.errors.StreamInterruptedError`.
    """

    def __init__(
        self,
        *,
        api: str = "chat",
        validate: Callable[[Any], Any] | None = None,
        output_type: OutputType | None = None,
        partials: bool = False,
        items: bool = False,
        config: StreamConfig | None = None,
        log: LogSink | OnLog | None = None,
        item_validator: ItemValidator | None = None,
    ) -> None:
        self.config = config if config is not None else StreamConfig()
        self.api = api
        self._proto = make_protocol(api)
        self._sse = SSEDecoder()
        self._parser = JSONStreamParser(items=items, max_parse_errors=self.config.max_parse_errors)
        if validate is None and output_type is not None:
            validate = value_validator(output_type)
        self._validate = validate
        self._model = (
            output_type
            if isinstance(output_type, type) and issubclass(output_type, BaseModel)
            else None
        )
        if items and item_validator is None:
            item_validator = ItemValidators(output_type).validate
        self._item_validator = item_validator
        self.partials = partials
        self.items = items
        self._log: LogSink = as_sink(log) if log is not None else NULL_SINK
        self._logging = bool(self._log)  # checked per chunk: a plain bool is cheapest
        self.results: list[Any] = []
        self._pieces: list[str] = []  # answer text retained (see _retain)
        self._base = 0  # absolute offset of _pieces[0]
        self._retained = 0  # characters in _pieces
        self._refusal_sent = False
        self._closed = False
        self._logged_size = False
        self.cleanup_attempts = 0
        self._cleanup_threshold = self.config.cleanup_threshold

    # --- what the stream said so far ---------------------------------------------------------

    @property
    def content(self) -> str:
        """The answer text received and still held (all of it unless cleanup dropped the text
        of completed values past ``cleanup_threshold``)."""
        if len(self._pieces) > 1:
            self._pieces = ["".join(self._pieces)]
        return self._pieces[0] if self._pieces else ""

    @property
    def refusal(self) -> str:
        return "".join(self._proto.refusal)

    @property
    def usage(self) -> dict[str, Any] | None:
        return self._proto.usage

    @property
    def finish_reason(self) -> str | None:
        return self._proto.finish_reason

    @property
    def response_id(self) -> str | None:
        return self._proto.response_id

    @property
    def done(self) -> bool:
        """The server signalled the end ([DONE] or a terminal event): stop reading."""
        return self._proto.done

    @property
    def finished(self) -> bool:
        """The model finished. False at :meth:`close` means the connection dropped mid-answer
        (``close`` then raises ``StreamInterruptedError``)."""
        return self._proto.finished

    @property
    def parse_errors(self) -> int:
        return self._parser.parse_errors

    @property
    def parser(self) -> JSONStreamParser:
        """The incremental parser (its live ``value``, ``snapshot()``, counters)."""
        return self._parser

    # --- feeding -------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[StreamEvent]:
        """Consume raw bytes of the response body; return the events they completed."""
        if self._closed:
            raise RuntimeError("StreamDecoder.feed() after close()")
        sse = self._sse
        if (
            data[-2:] == b"\n\n"
            and data[:6] == b"data: "
            and data.count(b"\n") == 2
            and not sse._pending
            and not sse._cr
            and b"\r" not in data
        ):
            # One whole ``data:`` event per read: what HTTP clients hand over when they keep
            # up with the server, so it skips the general SSE path.
            return self._process([data[6:-2]], len(data))
        payloads = sse.feed_data(data)
        if not payloads:
            return []
        return self._process(payloads, len(data))

    def _process(self, payloads: list[bytes], nbytes: int) -> list[StreamEvent]:
        # The hot path: one call per fed chunk, kept flat on purpose (per-call overhead counts
        # when the transport hands over one small SSE event at a time).
        proto = self._proto
        content = proto.content
        refusal_count = len(proto.refusal)
        try:
            proto.process(payloads)
        except StreamInterruptedError as exc:
            # Parse what arrived before the bad event, so the error carries those results.
            text = self._take(content)
            if text:
                with contextlib.suppress(Exception):  # the protocol error is the one to report
                    self._parse(text, [])
            raise self._enrich(exc) from None
        events: list[StreamEvent] = []
        if len(proto.refusal) != refusal_count or (proto.refusal_done and not self._refusal_sent):
            self._refusal_events(refusal_count, events)
        if content:
            text = content[0] if len(content) == 1 else "".join(content)
            content.clear()
            self._pieces.append(text)
            self._retained += len(text)
            self._parse(text, events)
        else:
            text = ""
        if self._logging:
            self._log.emit(
                "stream.chunk",
                "debug",
                bytes=nbytes,
                events=len(payloads),
                chars=len(text),
                emitted=len(events),
            )
        return events

    def _refusal_events(self, refusal_count: int, events: list[StreamEvent]) -> None:
        proto = self._proto
        if len(proto.refusal) > refusal_count:
            events.append(RefusalDelta("".join(proto.refusal[refusal_count:])))
        if proto.refusal_done and not self._refusal_sent:
            self._refusal_sent = True
            events.append(Refusal("".join(proto.refusal)))

    def _take(self, content: list[str]) -> str:
        """Move the new deltas into the retained text; return them joined."""
        if not content:
            return ""
        text = "".join(content)
        content.clear()
        self._pieces.append(text)
        self._retained += len(text)
        return text

    def _parse(self, text: str, events: list[StreamEvent]) -> None:
        parser = self._parser
        errors = parser.parse_errors
        try:
            parsed = parser.feed(text)
        except StreamParseError as exc:
            if self._logging:
                self._log.emit(
                    "parse.attempt",
                    "error",
                    outcome="gave_up",
                    errors=exc.attempts,
                    error=str(exc.last_error),
                )
            raise self._enrich(exc) from None
        if parsed:
            self._completed(parsed, events)
        if parser.parse_errors != errors and self._logging:
            self._log.emit(
                "parse.attempt",
                "warning",
                outcome="error",
                errors=parser.parse_errors,
                error=str(parser.last_error),
            )
        if self.partials and parser.value_start is not None:
            events.append(PartialUpdate(parser.position, parser, self._model))
        if self._retained > self._cleanup_threshold:
            self._retain()

    def _completed(self, parsed: list[ParsedValue | ParsedItem], events: list[StreamEvent]) -> None:
        """Turn the parser's completed values and items into validated events."""
        item_validator = self._item_validator
        for ev in parsed:
            if isinstance(ev, ParsedItem):
                if item_validator is not None:
                    item, error = item_validator(ev.path, ev.value)
                    events.append(ItemCompleted(ev.path, item, ev.value, error))
                else:
                    events.append(ItemCompleted(ev.path, ev.value, ev.value))
                continue
            raw = ev.value
            if ev.end - ev.start > self.config.max_buffer_size:
                # Same verdict whatever the chunking: a value that arrived within one read is
                # as much too big as one that grew over many.
                raise self._overflow(ev.end - ev.start)
            if self._validate is not None:
                try:
                    value = self._validate(raw)
                except ValidationError as exc:
                    if exc.content is None:
                        exc.content = self._text(ev.start, ev.end)
                    if exc.response_id is None:
                        exc.response_id = self.response_id
                    if self._logging:
                        self._log.emit("validation", "error", ok=False, errors=exc.errors())
                    raise
                if self._logging:
                    self._log.emit("validation", "debug", ok=True, index=len(self.results))
            else:
                value = raw
            events.append(ValueCompleted(value, raw, len(self.results)))
            self.results.append(value)

    def _retain(self) -> None:
        """Bound memory: drop the text of completed values; overflow if one value is too big."""
        parser = self._parser
        config = self.config
        keep_from = parser.value_start if parser.value_start is not None else parser.position
        if keep_from > self._base:
            self.cleanup_attempts += 1
            kept = "".join(self._pieces)[keep_from - self._base :]
            freed = self._retained - len(kept)
            self._pieces = [kept] if kept else []
            self._base = keep_from
            self._retained = len(kept)
            if self._logging:
                self._log.emit("cleanup.stats", "debug", freed=freed, size=self._retained)
        if self._retained >= config.log_size_threshold and not self._logged_size:
            self._logged_size = True
            if self._logging:
                self._log.emit(
                    "buffer.size", "info", size=self._retained, threshold=config.log_size_threshold
                )
        if self._retained > config.max_buffer_size:
            raise self._overflow(self._retained)

    def _overflow(self, size: int) -> BufferOverflowError:
        limit = self.config.max_buffer_size
        return BufferOverflowError(
            f"Stream buffer overflow: one JSON value passed {limit} characters "
            "(StreamConfig.max_buffer_size). Raise the limit if such large answers are expected.",
            size=size,
            limit=limit,
        )

    def _text(self, start: int, end: int) -> str | None:
        if start < self._base:
            return None
        return self.content[start - self._base : end - self._base]

    def _enrich(self, exc: StreamInterruptedError) -> StreamInterruptedError:
        exc.content = self.content
        exc.results = list(self.results)
        return exc

    # --- the end -----------------------------------------------------------------------------

    def close(self) -> list[StreamEvent]:
        """End of the response body: return the last events and :class:`Finished`, or raise
        the outcome's typed error (refusal, cut-off, content filter, empty, not JSON, dropped)."""
        if self._closed:
            raise RuntimeError("StreamDecoder.close() called twice")
        self._closed = True
        events: list[StreamEvent] = []
        tail = [event.data for event in self._sse.close()]
        if tail:
            events = self._process(tail, 0)
        parser = self._parser
        parser.close()
        proto = self._proto
        content = self.content
        rid = proto.response_id
        if not proto.finished:
            raise self._enrich(
                StreamInterruptedError(
                    "The stream ended before the model finished (the connection closed without "
                    "a finish reason or end event). The text received is in .content and the "
                    "values completed so far in .results."
                )
            )
        if proto.refusal:
            refusal = "".join(proto.refusal)
            raise RefusalError(
                f"The model refused: {refusal}",
                refusal=refusal,
                response_id=rid,
                content=content or None,
            )
        finish = proto.finish_reason
        if finish == "length":
            reason = proto.incomplete_reason or "length"
            raise TokenLimitError(
                f"The answer was cut off at the output token limit ({reason}) after "
                f"{len(content)} characters. Raise max_output_tokens or ask for less; the "
                "partial text is in .content.",
                content=content,
                usage=proto.usage,
                response_id=rid,
            )
        if finish == "content_filter":
            raise ContentFilterError(
                "The provider's content filter stopped the answer.",
                response_id=rid,
                content=content or None,
            )
        if not self.results:
            if not content.strip():
                raise EmptyResponseError("The model returned no content.", response_id=rid)
            raise self._not_json(content)
        if parser.truncated and self._log:
            self._log.emit(
                "parse.attempt", "warning", outcome="truncated", errors=parser.parse_errors
            )
        events.append(Finished(self.results[-1], proto.usage, finish, rid, tuple(self.results)))
        return events

    def _not_json(self, content: str) -> InvalidResponseFormatError:
        parser = self._parser
        error = parser.first_error
        rid = self._proto.response_id
        if error is not None:
            pos = error.pos - self._base
            why = f"{error.msg}"
        elif parser.truncated:
            pos = len(content)
            why = "the answer ends inside a JSON value"
        else:
            pos = 0
            why = "no JSON object or array found"
        line, column = _location(content, max(pos, 0))
        excerpt = content[max(0, pos - 20) : pos + 20]
        return InvalidResponseFormatError(
            f"The model's answer is not valid JSON: {why} at line {line} column {column} "
            f"(char {pos}), near {excerpt!r}. The raw text is in .content.",
            response_id=rid,
            content=content,
            position=pos,
            line=line,
            column=column,
        )
