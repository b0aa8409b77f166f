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

States (:class:`StreamState`, read ``decoder.state``), h11-style:

=========  ============================  ============================  ========================
state      ``feed(data)``                ``close()``                   entered when
=========  ============================  ============================  ========================
RECEIVING  decodes; returns the events   the last events and           the start
           completed                     ``Finished``, or the
                                         outcome's typed error;
                                         -> CLOSED
DONE       ignores the bytes (nothing    as in RECEIVING; -> CLOSED    the server said the end:
           after the end counts);                                      ``[DONE]``,
           returns ``[]``                                              ``response.completed``
                                                                       or ``.incomplete``
CLOSED     ``StreamStateError``          ``StreamStateError``          ``close()`` returned or
           (feed after close)            (close called twice)          raised an outcome error
ERROR      ``StreamStateError`` naming   raises the first error        any error while decoding
           the first error               again                         (in ``feed``, or in
                                                                       ``close`` for the last
                                                                       event)
=========  ============================  ============================  ========================

ERROR is terminal and never produces ``Finished``. It is entered on a malformed event
(``StreamProtocolError``), a server error event or ``response.failed``
(``StreamServerError``), the parser giving up (``StreamParseError``), a buffer overflow
(``BufferOverflowError``), and anything unexpected raised while decoding; ``decoder.error`` is
that first error. A value that fails validation is *not* a protocol error: the stream is intact
and the answer is simply wrong, like a refusal or a cut-off. The decoder stays in RECEIVING (then
DONE), reads the rest of the answer for its usage and id without parsing it, and ``close()``
raises the ``ValidationError`` carrying them (as a non-streaming call's error does).

Per fed chunk: SSE framing (C bytes methods), one ``jiter`` decode per event (of the content
token alone once the chat envelope is learnt, see :class:`~.protocol.ChatProtocol`), the text
deltas joined once, and one incremental-parser call over that text. So the
JSON work is per chunk, not per delta, and total work is linear in the response. Held text is
counted in UTF-8 bytes by :class:`~.buffer.RetainedText`, the same accounting as ``StreamBuffer``.

Memory, bounded by ``StreamConfig.max_buffer_size`` (call it M) end to end; past each bound
:class:`~openai_structured.errors.BufferOverflowError` and the decoder enters ERROR:

* SSE: one event, held until its blank line or dispatched, at most ``StreamConfig.max_event_size`` =
  ``4 * M + 64 KiB`` bytes (an event's data is the text JSON-escaped plus its envelope); an
  event or a line that never ends overflows as soon as it passes that, whatever the chunking
  (:mod:`.sse`).
* The answer text held: the value in progress, at most M bytes (:class:`~.buffer.RetainedText`).
* The refusal: at most M bytes of refusal text in all.
* Responses final events (``response.output_text.done``, ``response.content_part.done``,
  ``response.output_item.done``, ``response.completed``/``.incomplete``), which repeat the whole
  text: one bounded ``jiter`` decode each, nothing of their text kept
  (:class:`~.protocol.ResponsesProtocol`).
* Completed values: every value is delivered once as ``ValueCompleted`` (its ``index`` counts
  all of them); ``results`` (hence ``Finished.results`` and the errors' ``.results``) keeps the
  latest ones while their cost, text length + 64 bytes each, stays within M + 64 KiB. Past it
  the oldest are let go (down to half that), never the last value, which is ``Finished.result``;
  ``values_completed`` counts all values and ``results_dropped`` those let go.
* Function calls: their arguments' text, ids and names, plus 1 KiB per call, at most M in all.

So a hostile answer costs at most a small multiple of M (the SSE event bound and one decode of
it, plus M of text, M of refusal, M of tool calls and M + 64 KiB of values), never its own
size.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import BaseModel

from .._logging import NULL_SINK, LogSink, OnLog
from .._outcome import (
    NO_LIMIT,
    Answer,
    OutputLimit,
    RawToolCall,
    check_answer,
    invalid_json_error,
    no_tool_call_error,
)
from .._tools import FunctionTool, ToolCall, ToolSet
from ..errors import (
    APIResponseError,
    BufferOverflowError,
    StreamInterruptedError,
    StreamParseError,
    StreamStateError,
    ValidationError,
)
from .buffer import RetainedText, StreamConfig, as_sink, utf8_len
from .events import (
    Finished,
    ItemCompleted,
    PartialUpdate,
    Refusal,
    RefusalDelta,
    StreamEvent,
    ToolCallCompleted,
    ToolCallPartial,
    ValueCompleted,
)
from .json_parser import JSONStreamParser, ParsedItem, ParsedValue, PathItem
from .protocol import Protocol as StreamProtocol
from .protocol import make_protocol
from .sse import SSEDecoder
from .validation import ItemValidators, OutputType, value_validator

__all__ = ["ItemValidator", "StreamDecoder", "StreamState", "StreamStateError"]

_VALUE_OVERHEAD = 64
"""Bytes counted per kept value on top of its text length (the Python objects' overhead)."""
_RESULTS_ALLOWANCE = 64 * 1024
"""Cost of kept values allowed on top of ``max_buffer_size`` (small configs keep a few)."""

_CALL_OVERHEAD = 1024
"""Bytes counted per function call on top of its text (its parser and bookkeeping), so that a
stream announcing calls without end overflows like one that sends text without end."""


class DeclaredShape(Protocol):
    """How the shape sent maps back to the declared one (a ``CompiledSchema`` provides it)."""

    def declared_item(
        self, path: tuple[PathItem, ...], raw: Any, root: Any
    ) -> tuple[tuple[PathItem, ...], Any] | None: ...

    def restore_partial(self, value: Any) -> Any: ...


ItemValidator = Callable[[tuple[PathItem, ...], Any], tuple[Any, ValidationError | None]]
"""``(path, raw) -> (item, error_or_None)``: validates one array element."""


class StreamState(enum.Enum):
    """Where a :class:`StreamDecoder` is (the table in this module's docstring)."""

    RECEIVING = "receiving"
    """Reading the answer."""
    DONE = "done"
    """The server said the stream is over; anything fed after that is ignored."""
    CLOSED = "closed"
    """``close()`` ran: the outcome was delivered (``Finished`` or its typed error)."""
    ERROR = "error"
    """The stream failed (``decoder.error``); terminal, no ``Finished``."""


# Module constants: the per-feed state check is one attribute read and an identity test.
_RECEIVING = StreamState.RECEIVING
_DONE = StreamState.DONE
_CLOSED = StreamState.CLOSED
_ERROR = StreamState.ERROR


def _by_index(call: ToolCall) -> int:
    return call.index


class _Call:
    """One streamed function call: its arguments so far, parsed as they arrive."""

    __slots__ = ("call", "id", "index", "name", "parser", "pieces", "tool")

    def __init__(self, index: int) -> None:
        self.index = index
        self.id: str | None = None
        self.name = ""
        self.pieces: list[str] = []
        self.parser = JSONStreamParser(max_parse_errors=None)
        self.tool: FunctionTool | None = None
        self.call: ToolCall | None = None  # set when the arguments closed and validated

    def raw(self) -> RawToolCall:
        return RawToolCall(self.index, self.id, self.name, "".join(self.pieces))


class StreamDecoder:
    """Decode one streamed answer: :meth:`feed` raw SSE bytes, then :meth:`close`.

    ``api``: ``"chat"`` or ``"responses"``. ``validate``: called with each whole top-level value,
    returns the typed result or raises :class:`~openai_structured.errors.ValidationError`
    (default: built from ``output_type``, else values are returned as parsed).
    ``output_type`` (pydantic model class or JSON Schema dict): types array items and
    ``PartialUpdate.as_model()``. ``item_validator`` replaces the path-based item validation.
    ``partials``/``items`` switch those events on (both off cost nothing). ``tools``: the
    request's function tools; their calls are decoded as they stream (``ToolCallPartial``,
    ``ToolCallCompleted``) and ``parse_content=False`` (a tools-only request) holds any text
    without parsing it, for the error that says a tool call was expected.

    :meth:`feed` and :meth:`close` raise the library's typed errors; ``content`` and ``results``
    are attached to every :class:`~openai_structured.errors.StreamInterruptedError`. ``state``
    is a :class:`StreamState`; ``error`` the first error once it is ``ERROR``.
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
        protocol: StreamProtocol | None = None,
        limit: OutputLimit = NO_LIMIT,
        tools: ToolSet | None = None,
        parse_content: bool = True,
        declared: DeclaredShape | None = None,
    ) -> None:
        self.config = config if config is not None else StreamConfig()
        self._proto = protocol if protocol is not None else make_protocol(api)
        self.api = self._proto.api
        self._limit = limit
        self._sse = SSEDecoder(self.config.max_event_size)
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
        # The schema sent differs from the declared one (maps as entries, a wrapped root...):
        # items and partial snapshots are given in the declared shape.
        self._declared_item = declared.declared_item if declared is not None else None
        self._view = declared.restore_partial if declared is not None else None
        self.partials = partials
        self.items = items
        self._log: LogSink = as_sink(log) if log is not None else NULL_SINK
        self._logging = bool(self._log)  # checked per chunk: a plain bool is cheapest
        self.state = _RECEIVING
        self.error: BaseException | None = None
        self.results: list[Any] = []  # the completed values still kept (see "Memory")
        self.values_completed = 0  # every value completed, kept or not
        self.results_dropped = 0  # the oldest values let go to bound memory
        self._results_cost = 0  # the kept values' cost: text length + _VALUE_OVERHEAD each
        self._results_costs: list[int] = []  # cost of each kept value
        self._refusal_bytes = 0  # UTF-8 bytes of refusal text held
        self._held = RetainedText(self.config, self._parser, self._log)  # the answer text
        self._refusal_pieces = 0  # refusal deltas already sent as RefusalDelta
        self._refusal_sent = False  # the whole Refusal was sent
        # A value (or tool call) that failed validation: the rest of the answer is read for its
        # usage and id only, and close() raises this (the error of a call carries them too).
        self._failed: APIResponseError | None = None
        # Content deltas are not parsed: after a failure, or in a tools-only stream.
        self._skip = not parse_content
        self._tools = tools
        self._calls: dict[int, _Call] = {}  # function calls by index, in order of arrival
        self._call_bytes = 0  # UTF-8 bytes of argument text held, all calls together
        self.tool_calls: list[ToolCall] = []  # calls whose arguments closed and validated
        self._bad_call: _Call | None = None  # the call whose arguments were not one JSON value
        #: The answer as decided by close() (for a re-ask of a failed one).
        self.answer: Answer | None = None
        # Bound once: the hot path runs per transport read.
        self._feed_sse = self._sse.feed_data
        self._feed_protocol = self._proto.process
        self._feed_parser = self._parser.feed
        self._hold = self._held.add
        self._deltas = self._proto.content

    # --- what the stream said so far ---------------------------------------------------------

    @property
    def content(self) -> str:
        """The answer text received and still held (all of it unless cleanup dropped the text
        of completed values past ``cleanup_threshold``)."""
        return self._held.text

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
    def cleanup_attempts(self) -> int:
        """Cleanups of the held text so far (see :class:`~.buffer.RetainedText`)."""
        return self._held.attempts

    @property
    def parser(self) -> JSONStreamParser:
        """The incremental parser (its live ``value``, ``snapshot()``, counters)."""
        return self._parser

    # --- feeding -------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[StreamEvent]:
        """Consume raw bytes of the response body; return the events they completed."""
        # The hot path, one call per transport read: kept flat on purpose (per-call overhead
        # counts when the transport hands over one small SSE event at a time).
        if self.state is not _RECEIVING:
            return self._refused()
        try:
            payloads = self._feed_sse(data)
            if not payloads:
                return []
            content = self._deltas
            try:
                other = self._feed_protocol(payloads)
            except StreamInterruptedError as exc:
                raise self._protocol_failed(exc) from None
            events: list[StreamEvent] = []
            if other:
                self._other(events)
            if not content:
                text = ""
            elif self._skip:
                text = self._skipped(content)
            else:
                text = content[0] if len(content) == 1 else "".join(content)
                content.clear()
                self._hold(text)
                parser = self._parser
                errors = parser.parse_errors
                try:
                    parsed = self._feed_parser(text)
                except StreamParseError as exc:
                    raise self._gave_up(exc) from None
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
                    events.append(PartialUpdate(parser.position, parser, self._model, self._view))
                held = self._held
                if held.size >= held.watch:
                    held.settle()
            if self._logging:
                self._log.emit(
                    "stream.chunk",
                    "debug",
                    bytes=len(data),
                    events=len(payloads),
                    chars=len(text),
                    emitted=len(events),
                )
            return events
        except Exception as exc:
            self._fail(exc)
            raise

    def _skipped(self, content: list[str]) -> str:
        """Deltas not parsed: after a failure only the usage and id still matter; in a
        tools-only stream the text is kept for the error (a tool call was expected)."""
        if self._failed is None:
            self._hold("".join(content))
        content.clear()
        return ""

    def _failure(self, exc: APIResponseError, call: int | None = None) -> None:
        """The answer is wrong (not the stream): stop parsing, read on for usage and id.
        ``call``: the index of the tool call that failed."""
        if call is not None:
            exc.tool_call_index = call
        if self._failed is None:
            self._failed = exc
            self._skip = True

    def _refused(self) -> list[StreamEvent]:
        state = self.state
        if state is _DONE:
            return []  # the server already said the end: what follows does not count
        if state is _CLOSED:
            raise StreamStateError(
                "StreamDecoder.feed() after close(): this stream is over; decode another "
                "response with a new StreamDecoder.",
                state=state,
            )
        error = self.error
        raise StreamStateError(
            f"StreamDecoder.feed() after the stream failed with {type(error).__name__}: "
            f"{error}. A failed stream accepts no more data.",
            state=state,
            error=error,
        ) from error

    def _sse_tail(self, data: bytes) -> list[bytes]:
        """The SSE step of :meth:`feed` once :meth:`close` began: the last event, if any."""
        return [event.data for event in self._sse.close()]

    def _fail(self, exc: BaseException) -> None:
        """Enter ERROR; the first error is the one kept."""
        if self.state is not _ERROR:
            self.state = _ERROR
            self.error = exc

    def _protocol_failed(self, exc: StreamInterruptedError) -> StreamInterruptedError:
        """A bad event: parse what arrived before it, so the error carries those results."""
        text = self._take(self._deltas)
        if text:
            with contextlib.suppress(Exception):  # the protocol error is the one to report
                parsed = self._feed_parser(text)
                if parsed:
                    self._completed(parsed, [])
        return self._enrich(exc)

    def _gave_up(self, exc: StreamParseError) -> StreamParseError:
        if self._logging:
            self._log.emit(
                "parse.attempt",
                "error",
                outcome="gave_up",
                errors=exc.attempts,
                error=str(exc.last_error),
            )
        self._enrich(exc)
        return exc

    def _other(self, events: list[StreamEvent]) -> None:
        """The protocol saw more than text deltas: refusal events, the end of the stream."""
        proto = self._proto
        refusal = proto.refusal
        sent = self._refusal_pieces
        if len(refusal) > sent:
            new = "".join(refusal[sent:])
            self._refusal_bytes += utf8_len(new)
            limit = self.config.max_buffer_size
            if self._refusal_bytes > limit:
                size = self._refusal_bytes
                refusal.clear()  # release it: the stream is over (ERROR)
                raise BufferOverflowError(
                    f"Stream buffer overflow: the refusal needs {size} bytes (UTF-8), more "
                    f"than StreamConfig.max_buffer_size ({limit} bytes).",
                    size=size,
                    limit=limit,
                )
            events.append(RefusalDelta(new))
            self._refusal_pieces = len(refusal)
        if proto.refusal_done and not self._refusal_sent:
            self._refusal_sent = True
            events.append(Refusal("".join(refusal)))
        if proto.tool_deltas:
            self._tool_deltas(events)
        if proto.done:
            self.state = _DONE

    def _tool_deltas(self, events: list[StreamEvent]) -> None:
        """Pieces of function calls: each call's arguments go through its own incremental
        parser; a call is validated and delivered as soon as its arguments close."""
        deltas = self._proto.tool_deltas
        limit = self.config.max_buffer_size
        touched: dict[int, _Call] = {}
        for index, ident, name, text in deltas:
            state = self._calls.get(index)
            if state is None:
                state = self._calls[index] = _Call(index)
                self._call_bytes += _CALL_OVERHEAD
            if ident and not state.id:
                state.id = ident
                self._call_bytes += len(ident)
            if name and name != state.name:
                state.name += name
                self._call_bytes += len(name)
            self._call_bytes += utf8_len(text)
            if self._call_bytes > limit:
                raise BufferOverflowError(
                    f"Stream buffer overflow: the tool calls need more than {limit} bytes "
                    "(arguments in UTF-8, plus 1 KiB per call), StreamConfig.max_buffer_size.",
                    size=self._call_bytes,
                    limit=limit,
                )
            if not text:
                continue
            state.pieces.append(text)
            if self._failed is not None or state.call is not None:
                continue
            if state.tool is None and self._tools is not None:
                try:
                    state.tool = self._tools.tool(state.name, response_id=self.response_id)
                except APIResponseError as exc:
                    self._failure(exc, index)
                    continue
            parsed = state.parser.feed(text)
            if parsed:
                self._call_closed(state, parsed[0], events)
            elif self.partials:
                touched[index] = state
        deltas.clear()
        # One partial per call per fed chunk, after all of the chunk's deltas (so it is fresh).
        for state in touched.values():
            parser = state.parser
            if state.call is None and state.tool is not None and self._failed is None:
                compiled = state.tool.compiled
                events.append(
                    ToolCallPartial(
                        parser.position, parser, state.tool.model, state.index, state.id,
                        state.name, compiled.restore_partial if compiled.needs_restore else None,
                    )
                )  # fmt: skip

    def _call_closed(self, state: _Call, parsed: Any, events: list[StreamEvent]) -> None:
        """A call's arguments closed: the whole text must be that one JSON value."""
        raw = state.raw()
        text = raw.arguments
        if state.parser.parse_errors or text[: parsed.start].strip() or text[parsed.end :].strip():
            if self._failed is None:
                self._bad_call = state  # its error is made at close, with all of its text
            self._failure(self._bad_arguments(raw), raw.index)
            return
        tool = state.tool
        assert tool is not None
        try:
            arguments = tool.validate_value(parsed.value, raw, response_id=self.response_id)
        except APIResponseError as exc:
            if self._logging:
                self._log.emit("validation", "error", ok=False, tool=raw.name, errors=str(exc))
            self._failure(exc, raw.index)
            return
        state.call = ToolCall(raw.index, raw.id, raw.name, arguments, text)
        self.tool_calls.append(state.call)
        events.append(ToolCallCompleted(state.call))

    def _bad_arguments(self, raw: RawToolCall) -> APIResponseError:
        return invalid_json_error(
            raw.arguments,
            response_id=self.response_id,
            what=f"The arguments of the call to tool {raw.name!r} (call {raw.index})",
        )

    def _take(self, content: list[str]) -> str:
        """Move the new deltas into the held text; return them joined."""
        if not content:
            return ""
        text = "".join(content)
        content.clear()
        self._held.add(text)
        return text

    def _completed(self, parsed: list[ParsedValue | ParsedItem], events: list[StreamEvent]) -> None:
        """Turn the parser's completed values and items into validated events."""
        item_validator = self._item_validator
        root: Any = None
        for n, ev in enumerate(parsed):
            if isinstance(ev, ParsedItem):
                path, raw = ev.path, ev.value
                if self._declared_item is not None:
                    if root is None:  # the value being built, or the one this read closed
                        root = self._parser.value
                        if root is None:
                            root = next(
                                (p.value for p in parsed[n:] if isinstance(p, ParsedValue)), None
                            )
                    found = self._declared_item(path, raw, root)
                    if found is None:
                        continue  # not a value of the declared shape
                    path, raw = found
                if item_validator is not None:
                    item, error = item_validator(path, raw)
                    events.append(ItemCompleted(path, item, raw, error))
                else:
                    events.append(ItemCompleted(path, raw, raw))
                continue
            root = None  # the next item belongs to the next value
            raw = ev.value
            self._held.value_completed(ev.start, ev.end)  # overflows if it alone is too big
            if self._validate is not None:
                try:
                    value = self._validate(raw)
                except ValidationError as exc:
                    if exc.content is None:
                        exc.content = self._held.slice(ev.start, ev.end)
                    if self._logging:
                        self._log.emit("validation", "error", ok=False, errors=exc.errors())
                    self._failure(exc)
                    return
                if self._logging:
                    self._log.emit("validation", "debug", ok=True, index=self.values_completed)
            else:
                value = raw
            events.append(ValueCompleted(value, raw, self.values_completed))
            self.values_completed += 1
            self._keep(value, ev.end - ev.start)

    def _keep(self, value: Any, length: int) -> None:
        """Keep ``value`` in :attr:`results`; past ``max_buffer_size + 64 KiB`` of kept values,
        let the oldest go (down to half that, so dropping is amortised O(1)), never the last."""
        cost = length + _VALUE_OVERHEAD
        self.results.append(value)
        self._results_costs.append(cost)
        self._results_cost += cost
        limit = self.config.max_buffer_size + _RESULTS_ALLOWANCE
        if self._results_cost > limit and len(self.results) > 1:
            costs = self._results_costs
            total = self._results_cost
            k = 0
            while k < len(costs) - 1 and total > limit // 2:
                total -= costs[k]
                k += 1
            del self.results[:k]
            del costs[:k]
            self._results_cost = total
            self.results_dropped += k

    def _enrich(self, exc: StreamInterruptedError) -> StreamInterruptedError:
        exc.content = self.content
        exc.results = list(self.results)
        return exc

    # --- the end -----------------------------------------------------------------------------

    def close(self) -> list[StreamEvent]:
        """End of the response body: return the last events and :class:`Finished`, or raise
        the outcome's typed error (refusal, cut-off, content filter, empty, not JSON, dropped).
        In state ERROR it raises the stream's first error again."""
        state = self.state
        if state is _ERROR:
            assert self.error is not None
            raise self.error
        if state is _CLOSED:
            raise StreamStateError("StreamDecoder.close() called twice", state=state)
        events: list[StreamEvent] = []
        parser = self._parser
        if state is _RECEIVING:
            # The SSE decoder's last event (one that lacks only its blank line) goes through
            # feed's path like any other; feed enters ERROR itself if it fails.
            self._feed_sse = self._sse_tail
            events = self.feed(b"")
        self.state = _CLOSED
        try:
            parsed = parser.close()
            if parsed:
                self._completed(parsed, events)
        except Exception as exc:
            self._fail(exc)
            raise
        proto = self._proto
        content = self.content
        calls = [state.raw() for state in self._calls.values()]
        answer = self.answer = Answer(
            proto.response_id,
            content,
            "".join(proto.refusal) or None,
            proto.finish_reason,
            proto.usage,
            incomplete_reason=proto.incomplete_reason,
            finished=proto.finished,
            content_complete=not self._held.base,
            tool_calls=tuple(calls),
        )
        failed = self._failed
        if failed is not None and self._bad_call is not None:
            failed = self._bad_arguments(self._bad_call.raw())
            failed.tool_call_index = self._bad_call.index
        if failed is not None:
            failed.response_id = failed.response_id or proto.response_id
            failed.usage = failed.usage or proto.usage
            raise failed
        try:
            check_answer(answer, self._limit)
        except StreamInterruptedError as exc:
            raise self._enrich(exc) from None
        rid = proto.response_id
        if calls:  # the model called tools: the calls are the result (as for a call)
            events += self._finish_calls()
            return [*events, self._finished(sorted(self.tool_calls, key=_by_index))]
        if not self.values_completed:
            if self._skip:  # a tools-only stream that answered with text
                raise no_tool_call_error(answer, self._tools)
            raise invalid_json_error(content, response_id=rid, usage=proto.usage)
        if parser.truncated and self._log:
            self._log.emit(
                "parse.attempt", "warning", outcome="truncated", errors=parser.parse_errors
            )
        events += self._finish_calls()
        events.append(self._finished(self.results[-1]))
        return events

    def _finished(self, result: Any) -> Finished:
        proto = self._proto
        return Finished(
            result,
            proto.usage,
            proto.finish_reason,
            proto.response_id,
            tuple(self.results),
            tuple(sorted(self.tool_calls, key=_by_index)),
        )

    def _finish_calls(self) -> list[StreamEvent]:
        """At the end: every call's arguments must have closed, with nothing after them."""
        events: list[StreamEvent] = []
        proto = self._proto
        for state in self._calls.values():
            if state.call is None:
                # A top-level scalar closes only at the end of its text.
                parsed = [p for p in state.parser.close() if isinstance(p, ParsedValue)]
                if parsed and state.tool is not None:
                    self._call_closed(state, parsed[0], events)
                if self._tools is None:
                    try:
                        ToolSet((), {}).tool(state.name, response_id=proto.response_id)
                    except APIResponseError as exc:
                        self._failure(exc, state.index)
                elif state.call is None and self._failed is None:
                    self._failure(self._bad_arguments(state.raw()), state.index)
            elif "".join(state.pieces)[len(state.call.raw_arguments) :].strip():
                self._failure(self._bad_arguments(state.raw()), state.index)
            if self._failed is not None:
                failed = self._failed
                failed.usage = failed.usage or proto.usage
                failed.response_id = failed.response_id or proto.response_id
                raise failed
        return events
