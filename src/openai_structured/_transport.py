"""The thin transport: the bytes of one response, through the SDK, within bounds.

The SDK does auth, base URL, retries and HTTP status errors (its raw streaming response); we
read the body ourselves, for calls as for streams, so that two things hold that the SDK's own
``create()`` cannot promise:

* ``timeout=`` is a **total** deadline for reading the answer: a server that trickles bytes
  cannot keep a call or a stream alive past it (the SDK's timeout bounds each read only). It
  is checked after every read; each read is itself bounded by the same value, so a server that
  stalls completely is cut off by the read timeout.
* a non-streamed answer is at most ``max_response_bytes`` (default 16 MiB): the body is never
  held whole past that. Streams are bounded by ``StreamConfig.max_buffer_size`` instead.
"""

from __future__ import annotations

import time
from typing import Any

import openai

from .errors import BufferOverflowError

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "BodyReader", "Deadline", "aread_body", "read_body"]

DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024


class Deadline:
    """When reading must be over (``total`` seconds from now; None: no deadline)."""

    __slots__ = ("at", "total")

    def __init__(self, total: float | None) -> None:
        self.total = total
        self.at = time.monotonic() + total if total else None

    def passed(self) -> bool:
        return self.at is not None and time.monotonic() > self.at

    def error(self, request: Any) -> openai.APITimeoutError:
        err = openai.APITimeoutError(request=request)
        err.message = (
            f"The answer took longer than timeout={self.total} s in total (the server kept "
            "sending, too slowly). Raise timeout= (ostruct: --timeout) if that is expected."
        )
        err.args = (err.message,)
        return err


class BodyReader:
    """The bounds of one body, fed chunk by chunk (sans-I/O: the sync and async loops below
    differ only in how they get the next chunk)."""

    __slots__ = ("_chunks", "_deadline", "_limit", "_request", "_size")

    def __init__(self, deadline: Deadline, limit: int, request: Any) -> None:
        self._deadline = deadline
        self._limit = limit
        self._request = request
        self._chunks: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self._limit:
            raise BufferOverflowError(
                f"The response body passed max_response_bytes={self._limit} bytes before it "
                "ended; reading stopped there. Raise max_response_bytes= if such large answers "
                "are expected.",
                size=self._size,
                limit=self._limit,
            )
        self._chunks.append(chunk)
        if self._deadline.at is not None and self._deadline.passed():
            raise self._deadline.error(self._request)

    def body(self) -> bytes:
        return b"".join(self._chunks)


def read_body(raw: Any, deadline: Deadline, limit: int) -> bytes:
    """The whole body of ``raw`` (the SDK's streaming response), within the bounds."""
    reader = BodyReader(deadline, limit, raw.http_response.request)
    for chunk in raw.iter_bytes():
        reader.feed(chunk)
    return reader.body()


async def aread_body(raw: Any, deadline: Deadline, limit: int) -> bytes:
    """The async twin of :func:`read_body`."""
    reader = BodyReader(deadline, limit, raw.http_response.request)
    async for chunk in raw.iter_bytes():
        reader.feed(chunk)
    return reader.body()
