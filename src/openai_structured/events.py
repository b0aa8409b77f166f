"""Log events, their redaction, and delivery to the user's ``on_log`` callback (SPEC §2.5).

Every event's data is redacted recursively before the callback sees it. When ``on_log`` is
None, :data:`NULL_SINK` is used: it is falsy, so hot paths write ``if log: log.emit(...)`` and
build no event data at all.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NULL_SINK", "LogEvent", "LogSink", "OnLog", "redact", "redact_text"]

OnLog = Callable[["LogEvent", str], "Awaitable[None] | None"]

REDACTED = "[REDACTED]"

# API keys (sk-..., sk-proj-..., sk-svcacct-...) and bearer tokens inside any text.
_SECRET_TEXT = re.compile(
    r"(?:\bsk-[A-Za-z0-9_\-]{6,})|(?:(?<=[Bb]earer )[A-Za-z0-9_\-\.=:+/]{6,})",
)
# Keys whose string values are secrets. Counters such as ``max_tokens`` or ``prompt_tokens``
# (plural, and usually numbers) are deliberately not matched.
_SECRET_KEY = re.compile(
    r"^(authorization|proxy-authorization|cookie|set-cookie|x-api-key|api[-_]?key|"
    r"azure[-_]ad[-_]token|.*(secret|passw(or)?d|credential|private[-_]?key)s?.*|"
    r"(.*[-_])?token)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class LogEvent:
    """One thing that happened: ``type`` such as ``request.start``, and its (redacted) data."""

    type: str
    data: Mapping[str, Any] = field(default_factory=dict)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask API keys, bearer tokens and any of ``secrets`` inside ``text``."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return _SECRET_TEXT.sub(REDACTED, text)


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of ``value`` with secrets masked, at any depth (dicts, lists, tuples, strings)."""
    secrets = tuple(s for s in secrets if s)
    return _redact(value, secrets)


def _redact(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if (
                isinstance(key, str)
                and _SECRET_KEY.match(key)
                and not isinstance(item, (int, float, bool))
                and item is not None
            ):
                out[key] = REDACTED
            else:
                out[key] = _redact(item, secrets)
        return out
    if isinstance(value, (list, tuple)):
        items = [_redact(item, secrets) for item in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}", secrets)
    return value


class LogSink:
    """Delivers redacted events to ``on_log``; sync or async callbacks both work.

    An async callback's coroutine is awaited by the async paths (:meth:`flush`); on sync paths it
    is run to completion on a private loop, so no event is ever dropped.
    """

    __slots__ = ("_loop", "_on_log", "_pending", "_secrets", "async_mode")

    def __init__(
        self, on_log: OnLog | None, *, secrets: Iterable[str] = (), async_mode: bool = False
    ) -> None:
        self._on_log = on_log
        self._secrets = tuple(s for s in secrets if s)
        self._pending: list[Awaitable[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.async_mode = async_mode

    def __bool__(self) -> bool:
        return self._on_log is not None

    def add_secret(self, secret: str | None) -> None:
        if secret and secret not in self._secrets:
            self._secrets = (*self._secrets, secret)

    def emit(self, type: str, level: str = "info", **data: Any) -> None:
        if self._on_log is None:
            return
        event = LogEvent(type, redact(data, self._secrets))
        result = self._on_log(event, level)
        if inspect.isawaitable(result):
            if self.async_mode:
                self._pending.append(result)
            else:
                self._run_sync(result)

    async def flush(self) -> None:
        """Await the async callbacks emitted since the last flush (async paths only)."""
        while self._pending:
            pending, self._pending = self._pending, []
            for awaitable in pending:
                await awaitable

    def _run_sync(self, awaitable: Awaitable[None]) -> None:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()

        async def _await() -> None:
            await awaitable

        self._loop.run_until_complete(_await())

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None


NULL_SINK = LogSink(None)
