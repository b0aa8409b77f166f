"""A sans-I/O Server-Sent Events decoder: bytes in (any chunking), events out.

It follows the WHATWG event-stream rules that matter for API streams: ``\\n``, ``\\r\\n`` and
``\\r`` line ends (also split across chunks), multi-line ``data``, ``event``/``id``/``retry``
fields, comment lines (``:``), one optional space after the colon, and no dispatch of an event
without data.

Speed: the byte stream is cut at blank lines with ``bytes.rfind``/``split`` (C), and the usual
one-line event (``data: {...}`` or ``event: x`` + ``data: {...}``) is recognised without a
per-line loop. Text is only split into lines for unusual events. An unfinished event at the end
of a chunk is kept as a list of pieces and joined once, so one event split into many tiny chunks
still costs linear time.

Memory: an event is held until its blank line arrives, so the decoder takes a limit,
``max_event_size`` (bytes of one event's field lines, line ends normalised, the blank line not
counted; an unfinished one may also hold its last line's end). An unfinished event past it (a
line that never ends is one) raises :class:`~openai_structured.errors.BufferOverflowError` as
soon as the bytes held pass it, and so does a complete event larger than it, whatever the
chunking; the held bytes are released first.
The stream decoder derives the limit from ``StreamConfig.max_buffer_size`` with
:func:`event_limit`: ``4 * max_buffer_size + 64 KiB``. An event's data is the answer text
JSON-escaped inside an event envelope (quotes and backslashes double, control and non-ASCII
characters may become ``\\uXXXX``), so a delta or final event (Responses ``*.done``,
``response.completed``) repeating a value that fits ``max_buffer_size`` fits this limit unless
most of its characters need escaping; 64 KiB is room for the envelope (ids, usage, metadata).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from ..errors import BufferOverflowError

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "DONE", "SSEDecoder", "SSEEvent", "event_limit"]

_ENVELOPE = 64 * 1024  # bytes of event envelope allowed around the escaped text


def event_limit(max_buffer_size: int) -> int:
    """The most bytes of one SSE event for a stream holding at most ``max_buffer_size`` bytes of
    answer text: ``4 * max_buffer_size + 64 KiB`` (see the module docstring)."""
    return 4 * max_buffer_size + _ENVELOPE


DEFAULT_MAX_EVENT_SIZE = event_limit(1024 * 1024)
"""The limit for the default ``StreamConfig`` (``max_buffer_size`` 1 MiB): 4 MiB + 64 KiB."""

DONE = b"[DONE]"
"""The data of the OpenAI end-of-stream sentinel event."""


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: ``event`` is None when the stream gave no ``event:`` field."""

    data: bytes
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    def text(self) -> str:
        """The data as text (UTF-8)."""
        return self.data.decode("utf-8", "replace")


class SSEDecoder:
    """Feed raw bytes with :meth:`feed`; get the events completed so far.

    :meth:`feed_data` is the hot path used by the stream decoder: it returns only the ``data`` of
    each event (the OpenAI APIs repeat the event type inside the JSON), without building objects.

    ``max_event_size``: the most bytes of one event, held or dispatched (module docstring);
    None for no limit.
    """

    __slots__ = ("_cr", "_limit", "_pending", "_size", "last_event_id", "max_event_size", "retry")

    def __init__(self, max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE) -> None:
        if max_event_size is not None and (
            isinstance(max_event_size, bool)
            or not isinstance(max_event_size, int)
            or max_event_size < 1
        ):
            raise ValueError(
                f"max_event_size must be a positive int or None, not {max_event_size!r}"
            )
        self.max_event_size = max_event_size
        self._limit = max_event_size if max_event_size is not None else sys.maxsize
        self._pending: list[bytes] = []  # bytes of an unfinished event (line ends normalised)
        self._size = 0  # bytes in _pending
        self._cr = False  # the last chunk ended with '\r' (maybe the first half of '\r\n')
        self.last_event_id: str | None = None
        self.retry: int | None = None

    def _region(self, data: bytes) -> bytes | None:
        """Normalise line ends; return the bytes of the complete events in ``data`` (without
        the final blank line), keeping the unfinished rest for the next call."""
        if not self._pending and not self._cr and data[-2:] == b"\n\n" and b"\r" not in data:
            if len(data) > self._limit:
                self._check(data[:-2])
            return data[:-2]  # the usual read: whole events, nothing carried over
        if self._cr:
            self._cr = False
            if data[:1] == b"\n":
                data = data[1:]
        if b"\r" in data:
            if data[-1:] == b"\r":
                self._cr = True
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not data:
            return None
        pending = self._pending
        if pending:
            if b"\n\n" not in data and not (data[:1] == b"\n" and pending[-1][-1:] == b"\n"):
                pending.append(data)
                self._size += len(data)
                if self._size > self._limit + 1:  # (+1: the end of its last line)
                    raise self._overflow(self._size)
                return None
            pending.append(data)
            data = b"".join(pending)
            pending.clear()
            self._size = 0
        k = data.rfind(b"\n\n")
        if k < 0:
            if len(data) > self._limit + 1:
                raise self._overflow(len(data))
            pending.append(data)
            self._size = len(data)
            return None
        if k + 2 < len(data):
            rest = data[k + 2 :]
            if len(rest) > self._limit + 1:
                raise self._overflow(len(rest))
            pending.append(rest)
            self._size = len(rest)
        if k > self._limit:
            self._check(data[:k])
        return data[:k]

    def _check(self, region: bytes) -> None:
        """Overflow if one of the complete events in ``region`` is larger than the limit."""
        for block in region.split(b"\n\n"):
            if len(block) > self._limit:
                raise self._overflow(len(block))

    def _overflow(self, size: int) -> BufferOverflowError:
        """Release what is held; the error for an event of ``size`` bytes past the limit."""
        self._pending.clear()
        self._size = 0
        self._cr = False
        return BufferOverflowError(
            f"Stream buffer overflow: one server-sent event needs more than {self._limit} bytes "
            f"(at least {size}), the limit for an event (4 x StreamConfig.max_buffer_size + "
            "64 KiB for a stream). An event that never ends, or a value far larger than the "
            "buffer, was sent; raise max_buffer_size if answers this large are expected.",
            size=size,
            limit=self._limit,
        )

    def _blocks(self, data: bytes) -> list[bytes]:
        region = self._region(data)
        return region.split(b"\n\n") if region is not None else []

    def feed_data(self, data: bytes) -> list[bytes]:
        """Consume ``data``; return the data of each event completed by it, in order.

        One whole event per read (what HTTP clients hand over when they keep up with the
        server: ``data: {...}`` or ``event: x`` + ``data: {...}``, then the blank line, nothing
        carried over) is recognised first, in a few C calls.
        """
        n = len(data) - 2
        if (
            data.find(b"\n") == n  # one line, then the blank line: one whole event
            and data[-1] == 10
            and data.startswith(b"data: ")
            and not self._pending
            and not self._cr
            and data.find(b"\r") < 0
            and n <= self._limit
        ):
            return [data[6:n]] if n > 6 else []  # (an empty data field dispatches nothing)
        if not self._pending and not self._cr and data[-2:] == b"\n\n" and b"\r" not in data:
            if n > self._limit:
                self._check(data[:-2])
            if data[:7] == b"event: " and data.count(b"\n") == 3:
                k = data.find(b"\ndata: ")
                if k > 0:
                    return [data[k + 7 : -2]] if len(data) > k + 9 else []
            region = data[:-2]  # whole events, nothing carried over
        else:
            complete = self._region(data)
            if complete is None:
                return []
            region = complete
        # The usual shape, events of one ``data: `` line each, is cut in one C call: it holds
        # when every newline belongs to a blank line followed by ``data: ``.
        if region.startswith(b"data: "):
            if b"\n" not in region:
                return [region[6:]] if len(region) > 6 else []
            payloads = region[6:].split(b"\n\ndata: ")
            if region.count(b"\n") == 2 * (len(payloads) - 1):
                if b"" in payloads:  # an empty data field dispatches nothing
                    payloads = [p for p in payloads if p]
                return payloads
        out: list[bytes] = []
        append = out.append
        for block in region.split(b"\n\n"):
            # The two shapes the OpenAI APIs send, recognised without splitting into lines.
            if block.startswith(b"data: "):
                if b"\n" not in block:
                    if len(block) > 6:
                        append(block[6:])
                    continue
            elif block.startswith(b"event: "):
                k = block.find(b"\ndata: ")
                if k > 0 and block.count(b"\n") == 1:
                    append(block[k + 7 :])
                    continue
            event = self._parse_block(block)
            if event is not None:
                append(event.data)
        return out

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Consume ``data``; return the events completed by it, in order."""
        out: list[SSEEvent] = []
        for block in self._blocks(data):
            event = self._parse_block(block)
            if event is not None:
                out.append(event)
        return out

    def close(self) -> list[SSEEvent]:
        """End of stream: dispatch a last event that lacks only its blank line, if its lines
        are complete; an unfinished last line is dropped (it may be cut)."""
        self._cr = False
        if not self._pending:
            return []
        data = b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        k = data.rfind(b"\n")
        if k < 0:
            return []
        event = self._parse_block(data[:k])
        return [event] if event is not None else []

    def _parse_block(self, block: bytes) -> SSEEvent | None:
        data: list[bytes] = []
        name: str | None = None
        for line in block.split(b"\n"):
            if not line or line[:1] == b":":
                continue
            field, sep, value = line.partition(b":")
            if sep and value[:1] == b" ":
                value = value[1:]
            if field == b"data":
                data.append(value)
            elif field == b"event":
                name = value.decode("utf-8", "replace")
            elif field == b"id" and b"\0" not in value:
                self.last_event_id = value.decode("utf-8", "replace")
            elif field == b"retry" and value.isdigit():
                self.retry = int(value)
        if not data or data == [b""]:
            return None  # an empty data buffer is not dispatched (WHATWG)
        return SSEEvent(b"\n".join(data), name or None, self.last_event_id, self.retry)
