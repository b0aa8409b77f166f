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

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "Deadline", "aread_body", "read_body"]

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


def _too_big(limit: int) -> BufferOverflowError:
    return BufferOverflowError(
        f"The response body passed max_response_bytes={limit} bytes before it ended; reading "
        "stopped there. Raise max_response_bytes= if such large answers are expected.",
        size=limit + 1,
        limit=limit,
    )


def read_body(raw: Any, deadline: Deadline, limit: int) -> bytes:
    """The whole body of ``raw`` (the SDK's streaming response), within the bounds."""
    chunks: list[bytes] = []
    size = 0
    for chunk in raw.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise _too_big(limit)
        chunks.append(chunk)
        if deadline.at is not None and deadline.passed():
            raise deadline.error(raw.http_response.request)
    return b"".join(chunks)


async def aread_body(raw: Any, deadline: Deadline, limit: int) -> bytes:
    """The async twin of :func:`read_body`."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in raw.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise _too_big(limit)
        chunks.append(chunk)
        if deadline.at is not None and deadline.passed():
            raise deadline.error(raw.http_response.request)
    return b"".join(chunks)
