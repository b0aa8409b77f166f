"""Log events, their redaction, and delivery to the user's ``on_log`` callback (SPEC §2.5).

Every event's data is redacted recursively before the callback sees it. When ``on_log`` is
None, :data:`NULL_SINK` is used: it is falsy, so hot paths write ``if log: log.emit(...)`` and
build no event data at all.

Redaction (:func:`redact`, :func:`redact_text`) masks, with ``[REDACTED]``:

* **by name**: the value of any mapping key, dataclass or model field, ``(name, value)`` pair or
  ``NAME=value`` / ``NAME: value`` / ``"NAME": "value"`` in text whose name looks like a
  secret (:func:`is_secret_name`: it contains key, token, secret, password, passwd, pwd, auth,
  credential, signature, subscription, session, cookie or private; token *counters* such as
  ``max_tokens``, ``prompt_tokens_details`` or ``token_count`` are not secrets), or is
  ``sig`` or ``pass``. Everything under such a name is masked except booleans and None. In a
  URL query, ``code=`` is a secret too (elsewhere it is an error code).
* **by shape**, anywhere in text: OpenAI and Anthropic keys (``sk-...``), Google API keys
  (``AIza...``), AWS access key ids (``AKIA...``/``ASIA...``), GitHub tokens (``ghp_`` ``gho_``
  ``ghu_`` ``ghs_`` ``ghr_`` ``github_pat_``), Slack tokens (``xox?-``), JWTs, the credential
  after ``Bearer``/``Basic`` in any case and spacing, and the password in ``scheme://user:pw@``.
* **the known secrets** given (the client's API key): every occurrence, also URL-encoded.

It looks inside every container: dict keys and values, lists, tuples (named ones keep their
type), sets, frozensets, ``bytes``/``bytearray`` (decoded, redacted, same type back), pydantic
models and dataclasses (turned into redacted dicts), exceptions (their text), and any other
object whose ``repr`` would show a secret (replaced by the redacted ``repr``). Nesting deeper
than :data:`MAX_DEPTH` and cycles are replaced by a marker, so the work is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import datetime
import decimal
import enum
import fractions
import functools
import inspect
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel

__all__ = [
    "MAX_DEPTH",
    "NULL_SINK",
    "REDACTED",
    "LogEvent",
    "LogSink",
    "OnLog",
    "is_secret_name",
    "redact",
    "redact_text",
]

OnLog = Callable[["LogEvent", str], "Awaitable[None] | None"]

REDACTED = "[REDACTED]"
_REDACTED_BYTES = REDACTED.encode()
#: Containers nested deeper than this are replaced by a marker: no event is that deep, and the
#: bound caps the work a hostile structure can cost.
MAX_DEPTH = 64
_TOO_DEEP = "[REDACTED: nested too deep]"
_CYCLE = "[REDACTED: cycle]"
#: Known secrets shorter than this are not searched for: masking them would garble the text.
_MIN_KNOWN = 4

# --- names -------------------------------------------------------------------------------------

# Matched against the name lowercased with everything but letters and digits removed, so
# ``Ocp-Apim-Subscription-Key``, ``x_api_key``, ``accessToken`` and ``apikey`` are alike.
# ``token`` followed by ``s``/``count``/``limit``/... is a counter (``max_tokens``,
# ``prompt_tokens_details``, ``token_count``), and ``tokenizer`` is not a secret; ``author`` is
# not ``auth``; ``keyword``/``keyboard`` are not keys.
_SECRET_NAME = re.compile(
    r"key(?!word|board|stroke|note)|secret|passw(?:or)?d|passphrase|pwd|auth(?!or(?!i[sz]))"
    r"|credential|signature|subscription|session|cookie|privat"
    r"|token(?!s|i[sz]|count|limit|budget|usage)|(?:access|refresh|bearer|api)tokens"
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
#: Secret names too short to look for inside other names (``signal``, ``passage``).
_EXACT_NAMES = frozenset({"sig", "pass"})
#: Secrets only as URL query parameters (elsewhere ``code`` is an error code, for one).
_QUERY_NAMES = frozenset({"code"})


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether a value named ``name`` (a key, header, field or parameter) is a secret."""
    normal = _NOT_ALNUM.sub("", name.lower())
    return normal in _EXACT_NAMES or _SECRET_NAME.search(normal) is not None


# --- text --------------------------------------------------------------------------------------

_VALUE_END = r"\s\"'&;,#<>(){}\[\]"
_UNQUOTED_VALUE = re.compile(rf"[^{_VALUE_END}]+")
# Values that stand for a value in a message (``expected 'key: value'``, ``export MY_KEY=...``,
# ``api_key=$OPENAI_API_KEY``): not secrets, and masking them would garble the help.
_PLACEHOLDER = re.compile(
    r"\.{2,}|\u2026|\*+|x{3,}|\$\{?\w*\}?|value|values|none|null|true|false"
    r"|your[-_]?(?:api[-_]?)?(?:key|token|secret|password)(?:[-_]?here)?",
    re.IGNORECASE,
)
# After ``NAME: word``, more words: a sentence (``items.3.password: Input should be ...``), not
# a header or a YAML line, so ``word`` is not a value.
_PROSE = re.compile(r"[ \t]+[^\s,;)}\]]")
_TEXT = re.compile(
    # The password of a URL's user info: scheme://user:PASSWORD@host.
    r"(?P<url>(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:'\"<>]*:)"
    r"(?P<url_pw>[^\s/?#@'\"<>]+)(?=@)"
    # An HTTP credential after its scheme, in any case and spacing (tabs, several spaces).
    r"|(?P<scheme>\b(?i:bearer|basic)[ \t]+)(?P<cred>[A-Za-z0-9._~+/-]+=*)"
    # Key shapes.
    r"|(?P<shape>(?<![A-Za-z0-9])(?:"
    r"sk-[A-Za-z0-9_-]{6,}"  # OpenAI (sk-, sk-proj-, sk-svcacct-), Anthropic (sk-ant-)
    r"|AIza[0-9A-Za-z_-]{20,}"  # Google
    r"|(?:AKIA|ASIA)[0-9A-Z]{16,}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{16,}"  # GitHub
    r"|xox[a-z]-[A-Za-z0-9-]{8,}"  # Slack
    r"|eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"  # JWT
    r"))"
    # NAME=VALUE, NAME: VALUE, "NAME": "VALUE" (the name is checked by _sub).
    r"|(?P<kv>(?<![\w.-])(?P<name>[A-Za-z_][\w.-]*)[\"']?[ \t]*(?P<sep>[:=])[ \t]*)"
    r"(?P<kv_scheme>(?i:bearer|basic)[ \t]+)?"
    # An unquoted value is matched up to a ':' or '=' (linear time when the name is not a
    # secret's and the search goes on inside it); when masked it runs on (_UNQUOTED_VALUE).
    # A quoted value may lack its closing quote (a cut-off excerpt): then it runs to the line end.
    r"(?P<value>\"(?:[^\"\\\n]|\\.)*\"?|'(?:[^'\\\n]|\\.)*'?"
    rf"|[^{_VALUE_END}:=]+)"
)


def _is_basic_credential(text: str) -> bool:
    # ``Basic`` is also a word: only base64 of ``user:password`` is a credential.
    try:
        decoded = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


def _sub(text: str) -> str:
    """``text`` with every match of :data:`_TEXT` that is a secret masked.

    A loop rather than ``re.sub``: a match that turns out not to be a secret (a ``NAME=`` whose
    name is not a secret's, ``Basic`` followed by a word) gives back what it consumed, and the
    search goes on inside it, so ``note: sk-...`` is still found; each search starts further
    on, so the work stays linear without recursion.
    """
    search = _TEXT.search
    match = search(text)
    if match is None:
        return text
    out: list[str] = []
    done = 0  # text[:done] is in out
    while match is not None:
        kind = match.lastgroup
        if kind == "shape":
            cut, end = match.start(), match.end()
        elif kind == "url_pw":
            cut, end = match.start("url_pw"), match.end()
        elif kind == "cred":
            cred = match["cred"]
            bearer = match["scheme"][:6].lower() == "bearer"
            if len(cred) >= 6 and (bearer or _is_basic_credential(cred)):
                cut, end = match.start("cred"), match.end()
            else:
                match = search(text, match.start("cred"))
                continue
        else:  # NAME=VALUE
            name, start = match["name"], match.start()
            secret = is_secret_name(name) or (
                name.lower() in _QUERY_NAMES and start > 0 and text[start - 1] in "?&;"
            )
            if not secret:
                match = search(text, match.end("kv"))
                continue
            value = match["value"]
            if value[0] in "\"'":  # keep the quotes; an empty value stays empty
                closed = len(value) >= 2 and value[-1] == value[0]
                cut, end = match.start("value") + 1, match.end() - (1 if closed else 0)
            else:
                cut = match.start("value")
                tail = _UNQUOTED_VALUE.match(text, cut)
                end = tail.end() if tail is not None else match.end()
                if match["sep"] == ":" and not match["kv_scheme"] and _PROSE.match(text, end):
                    match = search(text, match.end("kv"))
                    continue
            if cut >= end or _PLACEHOLDER.fullmatch(text, cut, end):
                match = search(text, match.end("kv"))
                continue
        out.append(text[done:cut])
        out.append(REDACTED)
        done = end
        match = search(text, end)
    out.append(text[done:])
    return "".join(out)


def _prepare(secrets: Iterable[str | None]) -> tuple[str, ...]:
    """Known secrets to search for: long enough, also URL-encoded, longest first."""
    found: set[str] = set()
    for secret in secrets:
        if isinstance(secret, str) and len(secret) >= _MIN_KNOWN:
            found.add(secret)
            found.add(quote(secret, safe=""))
    return tuple(sorted(found, key=len, reverse=True))


# What every match of _TEXT needs somewhere: a cheap test that rules most strings out.
_HINT = re.compile(
    r"[:=]|sk-|AIza|A[KS]IA|gh[pousr]_|github_pat_|xox[a-z]-|eyJ"
    r"|[Bb](?:[Ee][Aa][Rr][Ee][Rr]|[Aa][Ss][Ii][Cc])"
)
# Short strings in which _TEXT finds nothing (names, schema words and model names repeat in
# every event). Bounded: cleared when full. Known secrets are replaced before it is consulted,
# so it only ever answers for the patterns.
_CLEAN: set[str] = set()
_CLEAN_MAX_ITEMS = 4096
_CLEAN_MAX_LENGTH = 256


def _text(text: str, known: tuple[str, ...]) -> str:
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if text in _CLEAN:
        return text
    if _HINT.search(text) is not None:
        redacted = _sub(text)
        if redacted != text:
            return redacted
    if len(text) <= _CLEAN_MAX_LENGTH:
        if len(_CLEAN) >= _CLEAN_MAX_ITEMS:
            _CLEAN.clear()
        _CLEAN.add(text)
    return text


def redact_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with API keys, tokens, credentials, secret-named values and ``secrets`` masked."""
    return _text(text, _prepare(secrets))


# --- values ------------------------------------------------------------------------------------

#: Types that never hold a secret (under a secret name, numbers are still masked).
_ATOMIC: frozenset[type] = frozenset(
    {
        int, float, bool, type(None), complex, decimal.Decimal, fractions.Fraction,
        datetime.datetime, datetime.date, datetime.time, datetime.timedelta, uuid.UUID,
    }
)  # fmt: skip
_KEPT_UNDER_NAME: frozenset[type] = frozenset({bool, type(None)})
#: Mappings whose keys are JSON Schema property names, not secrets: a subschema under
#: ``properties.password`` is walked, not masked (its strings still are checked).
_SCHEMA_MAPS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)


def redact(value: Any, secrets: Iterable[str | None] = ()) -> Any:
    """A copy of ``value`` with every secret masked, at any depth, in any container."""
    return _walk(value, _prepare(secrets), False, 0, set())


Walker = Callable[[Any, tuple[str, ...], bool, int, set[int]], Any]


def _walk(value: Any, known: tuple[str, ...], masked: bool, depth: int, active: set[int]) -> Any:
    """Redact ``value``; ``masked``: it sits under a secret name, so all of it is secret.

    ``active`` holds the ids of the containers being walked (the path from the root), so a
    container met inside itself is a cycle.
    """
    cls = type(value)
    if cls is str:
        return (REDACTED if value else value) if masked else _text(value, known)
    if cls in _ATOMIC:
        return REDACTED if masked and cls not in _KEPT_UNDER_NAME else value
    walk: Walker
    if cls is dict or isinstance(value, Mapping):
        walk = _mapping
    elif cls is list or cls is tuple or isinstance(value, (list, tuple, set, frozenset)):
        walk = _collection
    elif isinstance(value, (bytes, bytearray, memoryview)):
        return _bytes(value, known, masked)
    elif isinstance(value, str):  # a str subclass (StrEnum): kept when nothing is masked
        if masked:
            return REDACTED if value else value
        text = _text(str(value), known)
        return value if text == value else text
    elif isinstance(value, BaseModel):
        walk = _model
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        walk = _dataclass
    elif isinstance(value, BaseException):
        if masked:
            return REDACTED
        try:
            return _text(f"{type(value).__name__}: {value}", known)
        except Exception:
            return type(value).__name__
    elif isinstance(value, enum.Enum):
        return REDACTED if masked else value
    else:
        return _other(value, known, masked)
    return _guarded(value, walk, known, masked, depth, active)


def _guarded(
    value: Any, walk: Walker, known: tuple[str, ...], masked: bool, depth: int, active: set[int]
) -> Any:
    """``walk`` a container one level down, unless too deep or inside itself (a cycle)."""
    if depth >= MAX_DEPTH:
        return _TOO_DEEP
    ident = id(value)
    if ident in active:
        return _CYCLE
    active.add(ident)
    try:
        return walk(value, known, masked, depth + 1, active)
    finally:
        active.discard(ident)


def _mapping(
    value: Any, known: tuple[str, ...], masked: bool, depth: int, active: set[int]
) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if type(key) is str:
            new_key: Any = _text(key, known)
            secret = masked or is_secret_name(key)
            if type(item) is str:  # the common case, inline
                out[new_key] = (REDACTED if item else item) if secret else _text(item, known)
                continue
            if not masked and key in _SCHEMA_MAPS and isinstance(item, Mapping):
                out[new_key] = _guarded(item, _schema_map, known, False, depth, active)
                continue
        else:
            new_key, secret = _member(key, known, False, depth, active), masked
        out[new_key] = _walk(item, known, secret, depth, active)
    return out


def _schema_map(
    value: Mapping[Any, Any], known: tuple[str, ...], masked: bool, depth: int, active: set[int]
) -> dict[Any, Any]:
    """A ``properties``-like map: its keys are property names, so a subschema (a mapping) is
    walked whatever its name; other values still go by the name rule."""
    out: dict[Any, Any] = {}
    for key, item in value.items():
        secret = type(key) is str and not isinstance(item, Mapping) and is_secret_name(key)
        out[_member(key, known, False, depth, active)] = _walk(item, known, secret, depth, active)
    return out


def _member(item: Any, known: tuple[str, ...], masked: bool, depth: int, active: set[int]) -> Any:
    """A redacted dict key or set member, still hashable (else its redacted ``repr``)."""
    if type(item) is str:
        return (REDACTED if item else item) if masked else _text(item, known)
    new = _walk(item, known, masked, depth, active)
    try:
        hash(new)
    except TypeError:
        return REDACTED if masked else _text(repr(item), known)
    return new


def _collection(
    value: Any, known: tuple[str, ...], masked: bool, depth: int, active: set[int]
) -> Any:
    cls = type(value)
    if isinstance(value, (set, frozenset)):
        members = [_member(item, known, masked, depth, active) for item in value]
        return frozenset(members) if isinstance(value, frozenset) else set(members)
    # A (name, value) pair, as in a list of headers: the name decides for the value. A tuple,
    # or a two-item list inside a list (headers as JSON); a lone list such as a schema's
    # ``"required": ["password", "token"]`` is not a pair.
    if not masked and isinstance(value, tuple) and _is_pair(value):
        items = [_text(value[0], known), _walk(value[1], known, True, depth, active)]
    elif masked:
        items = [_walk(item, known, True, depth, active) for item in value]
    else:
        items = [
            [_text(item[0], known), _walk(item[1], known, True, depth + 1, active)]
            if type(item) is list and _is_pair(item)
            else _walk(item, known, False, depth, active)
            for item in value
        ]
    if cls is list or cls is tuple:
        return items if cls is list else tuple(items)
    if isinstance(value, tuple):
        try:  # a named tuple keeps its type
            return cls(*items)
        except Exception:
            return tuple(items)
    return items


#: What the first item of a (name, value) pair looks like: a header or field name.
_PAIR_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,80}")


def _is_pair(value: list[Any] | tuple[Any, ...]) -> bool:
    if len(value) != 2 or type(value[0]) is not str:
        return False
    return _PAIR_NAME.fullmatch(value[0]) is not None and is_secret_name(value[0])


def _bytes(value: bytes | bytearray | memoryview, known: tuple[str, ...], masked: bool) -> Any:
    cls: type = bytes if isinstance(value, memoryview) else type(value)
    if masked:
        return cls(_REDACTED_BYTES) if len(value) else cls(value)
    text = bytes(value).decode("utf-8", "surrogateescape")
    redacted = _text(text, known)
    if redacted == text:
        return value if type(value) is bytes else cls(value)
    return cls(redacted.encode("utf-8", "surrogateescape"))


def _model(
    value: BaseModel, known: tuple[str, ...], masked: bool, depth: int, active: set[int]
) -> dict[str, Any]:
    fields = {name: getattr(value, name, None) for name in type(value).model_fields}
    fields.update(value.__pydantic_extra__ or {})
    return _mapping(fields, known, masked, depth, active)


def _dataclass(
    value: Any, known: tuple[str, ...], masked: bool, depth: int, active: set[int]
) -> dict[str, Any]:
    fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
    return _mapping(fields, known, masked, depth, active)


def _other(value: Any, known: tuple[str, ...], masked: bool) -> Any:
    """Any other object: kept, unless its ``repr`` shows a secret (then that, redacted)."""
    if masked:
        return REDACTED
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__}>"
    redacted = _text(text, known)
    return value if redacted == text else redacted


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogEvent:
    """One thing that happened: ``type`` such as ``request.start``, and its (redacted) data."""

    type: str
    data: Mapping[str, Any] = field(default_factory=dict)


class LogSink:
    """Delivers redacted events to ``on_log``; sync or async callbacks both work.

    An async callback's coroutine is awaited by the async paths (:meth:`flush`). On sync paths it
    is run to completion on a private loop, closed by :meth:`close` when the call ends; inside a
    running event loop it is scheduled on that loop instead. No event is dropped.
    """

    __slots__ = ("_given", "_loop", "_on_log", "_pending", "_secrets", "_tasks", "async_mode")

    def __init__(
        self, on_log: OnLog | None, *, secrets: Iterable[str] = (), async_mode: bool = False
    ) -> None:
        self._on_log = on_log
        self._given: tuple[str, ...] = tuple(s for s in secrets if s)
        self._secrets = _prepare(self._given)
        self._pending: list[Awaitable[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.async_mode = async_mode

    def __bool__(self) -> bool:
        return self._on_log is not None

    def add_secret(self, secret: str | None) -> None:
        """Also mask ``secret`` (a key) wherever it appears in an event."""
        if secret and secret not in self._given:
            self._given = (*self._given, secret)
            self._secrets = _prepare(self._given)

    def emit(self, type: str, level: str = "info", **data: Any) -> None:
        if self._on_log is None:
            return
        event = LogEvent(type, _walk(data, self._secrets, False, 0, set()))
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
        async def _await() -> None:
            await awaitable

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:
            # A sync call made from async code (a notebook, a handler): this thread's loop is
            # busy running us, so the callback runs on it as soon as we give control back.
            task = running.create_task(_await())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(_await())

    def close(self) -> None:
        """Release the private loop of a sync path (called when the call or stream ends)."""
        if self._loop is not None:
            self._loop.close()
            self._loop = None


NULL_SINK = LogSink(None)
