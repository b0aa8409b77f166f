"""An incremental, resumable JSON parser whose total work is linear in its input.

Feed it text in chunks of any size; it returns what completed (whole top-level values and, when
asked, each array element at any depth) and keeps the value in progress *in place* (the dicts
and lists being built are the ones you will get at the end), so looking at the partial result
costs nothing per chunk.

Why it is fast and linear whatever the chunking:

* Nothing is ever re-scanned from the start of the buffer. The parser is a state machine with an
  explicit stack (no recursion, so no depth limit), and it only keeps the unfinished *token* at a
  chunk boundary (part of a string, number or literal), never the text of the value.
* Runs of string characters, numbers and whitespace are consumed with compiled regexes, and every
  container that *completes inside one chunk* is parsed by the standard library's C scanner
  (``json``'s ``scan_once``) in one call. The Python state machine therefore only walks the few
  tokens that straddle chunk boundaries. Failed fast-path attempts (a container that does not
  close inside the chunk) are charged against a per-chunk budget proportional to the chunk, so a
  pathological input (deep nesting, one huge value) falls back to the plain state machine instead
  of becoming quadratic.
* Strings are decoded by ``json``'s own ``scanstring``, so escapes and surrogate pairs (split
  anywhere) decode exactly as :func:`json.loads` does.

Differences from :func:`json.loads`, on purpose: ``NaN``/``Infinity`` are rejected (they are not
JSON), and in *lenient* mode (the default, for model output) text outside values is skipped and a
broken value is discarded rather than raising on the first error (see :class:`JSONStreamParser`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, NamedTuple, NoReturn

from ..errors import StreamParseError

__all__ = [
    "JSONParseError",
    "JSONStreamParser",
    "ParsedItem",
    "ParsedValue",
    "PathItem",
]

PathItem = str | int
"""One step of a path inside a value: a dict key or a list index."""


class JSONParseError(ValueError):
    """A JSON syntax error at absolute character offset ``pos`` of the text fed so far."""

    def __init__(self, msg: str, pos: int) -> None:
        super().__init__(f"{msg} (char {pos})")
        self.msg = msg
        self.pos = pos


class ParsedValue(NamedTuple):
    """A complete top-level value and the span ``[start, end)`` of its text (absolute offsets)."""

    value: Any
    start: int
    end: int


class ParsedItem(NamedTuple):
    """An array element that just closed; ``path`` locates it from the top-level value."""

    path: tuple[PathItem, ...]
    value: Any


ParseEvent = ParsedValue | ParsedItem

# --- lexical helpers -----------------------------------------------------------------------

_WS_CHARS = " \t\n\r"
_WS = re.compile(r"[ \t\n\r]*")
_OPEN = re.compile(r"[{\[]")
# A string value without escapes or control characters, from just after the opening quote.
_SIMPLE_STR = re.compile(r'([^"\\\x00-\x1f]*)"')
# A simple key, its colon and the whitespace after it, from the opening quote.
_KEY_COLON = re.compile(r'"([^"\\\x00-\x1f]*)"[ \t\n\r]*:[ \t\n\r]*')
# Raw string content (escapes kept) up to an unescaped quote or a trailing lone backslash.
_STR_BODY = re.compile(r'(?:[^"\\]+|\\.)*', re.DOTALL)
# Every character that can belong to a number; the token is validated when it ends.
_NUM_RUN = re.compile(r"[-+0-9.eE]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_LITERALS: dict[str, tuple[str, Any]] = {
    "t": ("true", True),
    "f": ("false", False),
    "n": ("null", None),
}
_NUMBER_START = frozenset("-0123456789")

# Fused patterns: a whole object member or array element whose value is a simple scalar, in one
# regex call. Numbers only match when a character that cannot continue them follows (so a number
# at the end of a chunk is left to the resumable path); ints are limited to 4000 digits so that
# longer ones reach ``int()``'s limit error like json.loads. Groups: string, int, literal, float.
_SCALAR = (
    r'(?:"([^"\\\x00-\x1f]*)"'
    r'|"((?:[^"\\\x00-\x1f]|\\.)*)"'
    r"|(-?(?:0|[1-9][0-9]{0,3999}))(?=[^-+0-9.eE])"
    r"|(true|false|null)"
    r"|(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+))(?=[^-+0-9.eE]))"
)
_W = r"[ \t\n\r]*"
_KEY_RE = r'"([^"\\\x00-\x1f]*)"' + _W + ":" + _W
# Groups: 1 key, 2 plain string, 3 string with escapes, 4 int, 5 literal, 6 float.
_MEMBER_FIRST = re.compile(_W + _KEY_RE + _SCALAR + "?", re.DOTALL)  # after '{'
_MEMBER_NEXT = re.compile(_W + "," + _W + _KEY_RE + _SCALAR + "?", re.DOTALL)  # after a member
# Groups: 1 plain string, 2 string with escapes, 3 int, 4 literal, 5 float, 6 container start.
_ELEMENT_FIRST = re.compile(_W + "(?:" + _SCALAR + "|([{\\[]))", re.DOTALL)  # after '['
_ELEMENT_NEXT = re.compile(_W + "," + _W + "(?:" + _SCALAR + "|([{\\[]))", re.DOTALL)
_LITERAL_VALUES: dict[str | None, Any] = {"true": True, "false": False, "null": None}


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


# The C scanner parses a whole value starting at an index and returns where it ended; it is the
# fast path for every container that completes inside one chunk.
_scan_once: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder(
    parse_constant=_reject_constant
).scan_once  # type: ignore[attr-defined]
# json's own string decoder (C), so escapes and surrogates decode exactly like json.loads.
_scanstring: Callable[[str, int, bool], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
# Typed as returning Any: these patterns match the empty string, so they never return None.
_ws_match: Callable[[str, int], Any] = _WS.match
_num_run: Callable[[str, int], Any] = _NUM_RUN.match
_str_body: Callable[[str, int], Any] = _STR_BODY.match
_FAST_FAIL_CHARGE = 64  # budget charged per failed fast attempt, on top of the text it scanned

# States of the machine.
_OUTSIDE = 0  # between top-level values
_VALUE = 1  # a value must start here (after ':' or an array ',', or top level in strict mode)
_ARR_FIRST = 2  # after '[': a value or ']'
_OBJ_FIRST = 3  # after '{': a key or '}'
_KEY = 4  # after ',' in an object: a key
_COLON = 5  # after a key that needed the slow path: ':'
_AFTER = 6  # after a value inside a container: ',' or the closing bracket
_STRING = 7  # inside a string spanning chunks (raw pieces in _raw)
_NUMBER_ST = 8  # inside a number spanning chunks
_LITERAL = 9  # inside true/false/null spanning chunks
_DEFERRED = 10  # a small container spanning chunks: its text is kept, parsed whole when it closes

# A container that does not close inside a chunk but is small (its text so far at most this many
# times the new text) is kept as text and re-tried whole with the C scanner on the next chunk,
# instead of being walked token by token in Python. The bound keeps the total work linear.
_DEFER_FACTOR = 4
_CLOSERS = {"{": "}", "[": "]"}


def _number(token: str) -> Any:
    m = _NUMBER.fullmatch(token)
    if m is None:
        raise ValueError(f"invalid number {token!r}")
    if m.group(1) is None and m.group(2) is None:
        return int(token)  # may raise ValueError past the int digit limit, like json.loads
    return float(token)


def _deep_copy(value: Any) -> Any:
    """Copy nested dicts/lists without recursion (values can be nested arbitrarily deep)."""
    if type(value) is not dict and type(value) is not list:
        return value
    root: Any = {} if type(value) is dict else []
    todo: list[tuple[Any, Any]] = [(value, root)]
    while todo:
        src, dst = todo.pop()
        if type(src) is dict:
            for k, v in src.items():
                if type(v) is dict or type(v) is list:
                    new: Any = {} if type(v) is dict else []
                    todo.append((v, new))
                    dst[k] = new
                else:
                    dst[k] = v
        else:
            for v in src:
                if type(v) is dict or type(v) is list:
                    new = {} if type(v) is dict else []
                    todo.append((v, new))
                    dst.append(new)
                else:
                    dst.append(v)
    return root


def _walk_recursive(value: Any, path: tuple[PathItem, ...], out: list[ParseEvent]) -> None:
    if type(value) is list:
        for j, child in enumerate(value):
            child_path = (*path, j)
            if type(child) is list or type(child) is dict:
                _walk_recursive(child, child_path, out)
            out.append(ParsedItem(child_path, child))
    else:
        for key, child in value.items():
            if type(child) is list or type(child) is dict:
                _walk_recursive(child, (*path, key), out)


def _walk_iterative(value: Any, base: tuple[PathItem, ...], out: list[ParseEvent]) -> None:
    todo: list[tuple[Any, tuple[PathItem, ...], Any, bool]] = [
        (
            value,
            base,
            iter(enumerate(value) if type(value) is list else value.items()),
            type(value) is list,
        )
    ]
    while todo:
        container, path, it, is_list = todo[-1]
        for key, child in it:
            if type(child) is list:
                todo.append((child, (*path, key), iter(enumerate(child)), True))
                break
            if type(child) is dict:
                todo.append((child, (*path, key), iter(child.items()), False))
                break
            if is_list:
                out.append(ParsedItem((*path, key), child))
        else:
            todo.pop()
            if todo and todo[-1][3]:
                out.append(ParsedItem(path, container))


def decode_partial_string(raw: str) -> str:
    """Decode the raw text of an unfinished JSON string, dropping a cut-off trailing escape."""
    cut = raw
    for _ in range(3):
        try:
            text: str = _scanstring(cut + '"', 0, True)[0]
        except ValueError:
            k = cut.rfind("\\")
            if k < 0:
                return cut
            cut = cut[:k]
            continue
        if text and "\ud800" <= text[-1] <= "\udbff":
            text = text[:-1]  # a high surrogate whose low half has not arrived yet
        return text
    return ""


class JSONStreamParser:
    """Incremental JSON parser: :meth:`feed` text in any chunks, get completed values and items.

    ``lenient=True`` (model output): only ``{`` and ``[`` start a top-level value; any other text
    before, between or after values (``Here is the JSON:``, markdown fences) is skipped and
    counted in :attr:`skipped`. A syntax error inside a value discards that whole value (no
    fragment of it is ever returned), increments :attr:`parse_errors` and the parser resumes at
    the next ``{`` or ``[`` at or after the offending character. Reaching ``max_parse_errors``
    errors raises :class:`~openai_structured.errors.StreamParseError`.

    ``lenient=False`` (strict JSON text): top-level values may be any JSON value, separated by
    whitespace only, and the first error raises :class:`JSONParseError`.

    ``items=True`` makes :meth:`feed` also return a :class:`ParsedItem` for every array element at
    any depth as it closes (children before their parents). Off by default because it costs one
    small tuple per element.
    """

    __slots__ = (
        "_budget",
        "_defer_limit",
        "_deferred",
        "_esc",
        "_keys",
        "_lit",
        "_n",
        "_num",
        "_offset",
        "_paths",
        "_raw",
        "_resume",
        "_stack",
        "_state",
        "_steps",
        "_str_is_key",
        "_str_start",
        "_top_scalar",
        "defer",
        "first_error",
        "items",
        "last_error",
        "lenient",
        "max_parse_errors",
        "parse_errors",
        "skipped",
        "truncated",
        "value_start",
        "values_completed",
    )

    def __init__(
        self, *, lenient: bool = True, items: bool = False, max_parse_errors: int | None = 5
    ) -> None:
        if max_parse_errors is not None and max_parse_errors < 1:
            raise ValueError("max_parse_errors must be at least 1 (or None for no limit)")
        self.lenient = lenient
        self.items = items
        self.defer = True  # allow deferring small containers (see _DEFER_FACTOR)
        self.max_parse_errors = max_parse_errors
        self.reset()

    def reset(self) -> None:
        """Forget everything: state, counters and the value in progress."""
        self._stack: list[Any] = []  # open containers, outermost first
        self._keys: list[Any] = []  # per open container: the key being filled (dicts)
        # Per open container: its step inside its parent, and its path as a tuple, built only
        # when an item event needs it (building one per container would cost O(depth) each).
        self._steps: list[PathItem] = []
        self._paths: list[tuple[PathItem, ...] | None] = []
        self._state = _OUTSIDE
        self._offset = 0  # absolute offset of the current chunk's first character
        self._raw: list[str] = []  # raw pieces of a string spanning chunks
        self._esc = False  # that string's raw text ends with an unpaired backslash
        self._str_is_key = False
        self._str_start = 0
        self._num: list[str] = []
        self._lit = ""  # literal spanning chunks: the text received so far
        self._top_scalar = False  # strict mode: the value in progress is a top-level scalar
        self._deferred = ""  # text of a deferred container (state _DEFERRED)
        self._budget = 0
        self._defer_limit = 0
        self._n = 0
        self._resume = 0
        self.value_start: int | None = None
        self.parse_errors = 0
        self.skipped = 0
        self.values_completed = 0
        self.truncated = False
        self.last_error: JSONParseError | None = None
        self.first_error: JSONParseError | None = None

    # --- inspection ------------------------------------------------------------------------

    @property
    def position(self) -> int:
        """Characters consumed so far (absolute offset of the next character)."""
        return self._offset

    @property
    def in_value(self) -> bool:
        """True while a top-level value has started and not yet completed."""
        return self.value_start is not None

    @property
    def value(self) -> Any:
        """The live value in progress (a *view*: mutated in place as parsing continues).

        Cost O(1). Not in it: the unfinished string, number or literal, and a small container
        still held as text (deferred, see ``_DEFER_FACTOR``: at most a few chunks long). Use
        :meth:`snapshot` for everything received. None when no value is open.
        """
        return self._stack[0] if self._stack else None

    @property
    def path(self) -> tuple[PathItem, ...]:
        """Path of the innermost open container (empty at top level)."""
        return self._path_at(len(self._stack) - 1) if self._stack else ()

    def partial_string(self) -> str | None:
        """The decoded text so far of an unfinished string *value* (not key), else None."""
        if self._state != _STRING or self._str_is_key:
            return None
        return decode_partial_string("".join(self._raw))

    def snapshot(self) -> Any:
        """A deep *copy* of the value in progress, including the unfinished trailing string.

        Cost O(size of the value so far); independent of later parsing. Unfinished numbers and
        literals are left out (their final value is unknown); an object key whose value has not
        started yet is absent. None when no value is open.
        """
        if self._state == _DEFERRED:
            inner = JSONStreamParser(max_parse_errors=None)
            inner.defer = False
            inner.feed(self._deferred)
            text = inner.snapshot()
        else:
            text = self.partial_string()
        if not self._stack:
            return text if self._top_scalar or self._state == _DEFERRED else None
        root = _deep_copy(self._stack[0])
        if text is not None:
            target = root
            for step in self._steps[1:]:
                target = target[step]
            if type(target) is list:
                target.append(text)
            else:
                target[self._keys[-1]] = text
        return root

    # --- feeding ---------------------------------------------------------------------------

    def close(self) -> list[ParseEvent]:
        """End of input: finish a pending top-level number; note (lenient) or raise (strict) a
        value cut off mid-way."""
        out: list[ParseEvent] = []
        if self._state == _DEFERRED:
            out += self._run("", False)  # parse the kept text token by token to find its end
        end = self._offset
        if self._state == _NUMBER_ST:
            try:
                value = _number("".join(self._num))
            except ValueError as exc:
                self._error(str(exc), end, out)
                return out
            self._num = []
            if not self._stack:
                self._emit_value(value, end, out)
                return out
        if self.value_start is not None:
            if not self.lenient:
                raise JSONParseError("Unexpected end of input inside a value", end)
            self.truncated = True
        return out

    def feed(self, text: str) -> list[ParseEvent]:
        """Consume ``text``; return the values (and items) that completed in it, in order."""
        if not text:
            return []
        if self._state == _STRING and not self._esc and '"' not in text and "\\" not in text:
            self._raw.append(text)  # more of a long string: nothing can complete
            self._offset += len(text)
            return []
        return self._run(text, self.defer)

    def _run(self, text: str, defer: bool) -> list[ParseEvent]:
        out: list[ParseEvent] = []
        new = len(text)
        if self._state == _DEFERRED:
            # Resume at the start of the kept container, with its text in front.
            prev = self._deferred
            self._deferred = ""
            self._offset -= len(prev)
            self._state = _VALUE
            # It cannot close yet: keep it without scanning, if still small enough.
            if defer and _CLOSERS[prev[0]] not in text and len(prev) + new <= _DEFER_FACTOR * new:
                self._deferred = prev + text
                self._state = _DEFERRED
                self._offset += len(prev) + new
                return out
            text = prev + text
        n = len(text)
        i = 0
        self._budget = 2 * n + 256  # for failed fast-path attempts in this chunk
        self._n = n
        self._defer_limit = _DEFER_FACTOR * new if defer else -1
        stack = self._stack
        keys = self._keys
        items = self.items
        state = self._state
        ws_match = _ws_match
        try:
            while i < n:
                # ------------------------------------------- after '{' / a value / '['
                if state in (_AFTER, _OBJ_FIRST, _ARR_FIRST):
                    top = stack[-1]
                    if type(top) is dict:
                        # Members whose value is a scalar: one regex call each; a container
                        # value goes to the C scanner right here.
                        m = (_MEMBER_NEXT if state == _AFTER else _MEMBER_FIRST).match(text, i)
                        while m is not None:
                            kind = m.lastindex
                            i = m.end()
                            if kind == 2:
                                top[m.group(1)] = m.group(2)
                            elif kind == 4:
                                top[m.group(1)] = int(m.group(4))
                            elif kind == 5:
                                top[m.group(1)] = _LITERAL_VALUES[m.group(5)]
                            elif kind == 6:
                                top[m.group(1)] = float(m.group(6))
                            else:
                                key = keys[-1] = m.group(1)
                                if kind == 3:
                                    try:
                                        top[key] = _scanstring(text, m.start(3), True)[0]
                                    except ValueError:
                                        i = m.start(3) - 1  # let the general path report it
                                        state = _VALUE
                                        break
                                elif i < n and (text[i] == "{" or text[i] == "["):
                                    state = self._container(text, i, out)
                                    i = self._resume
                                    if state != _AFTER:
                                        break
                                else:  # the value needs the general path
                                    state = _VALUE
                                    break
                            state = _AFTER
                            m = _MEMBER_NEXT.match(text, i)
                    else:
                        # Elements: scalars by one regex call each, containers by the C scanner.
                        m = (_ELEMENT_NEXT if state == _AFTER else _ELEMENT_FIRST).match(text, i)
                        while m is not None:
                            kind = m.lastindex
                            if kind == 6:
                                state = self._container(text, m.start(6), out)
                                i = self._resume
                                if state != _AFTER:
                                    break
                                m = _ELEMENT_NEXT.match(text, i)
                                continue
                            i = m.end()
                            if kind == 1:
                                value = m.group(1)
                            elif kind == 2:
                                try:
                                    value = _scanstring(text, m.start(2), True)[0]
                                except ValueError:
                                    i = m.start(2) - 1
                                    state = _VALUE
                                    break
                            elif kind == 3:
                                value = int(m.group(3))
                            elif kind == 4:
                                value = _LITERAL_VALUES[m.group(4)]
                            else:
                                value = float(m.group(5))
                            top.append(value)
                            if items:
                                out.append(ParsedItem((*self._path_at(-1), len(top) - 1), value))
                            state = _AFTER
                            m = _ELEMENT_NEXT.match(text, i)
                    if state >= 100:
                        state -= 100  # a container was opened or deferred: go on inside it
                        continue
                    if i == n or state == _VALUE:
                        continue
                    c = text[i]
                    if c in _WS_CHARS:
                        i = ws_match(text, i).end()
                        if i == n:
                            break
                        c = text[i]
                    if ((c == "}" and type(top) is dict) or (c == "]" and type(top) is list)) and (
                        state == _AFTER or c == ("}" if state == _OBJ_FIRST else "]")
                    ):
                        i += 1
                        state = self._close_container(i, out)
                        continue
                    if state == _AFTER:
                        if c != ",":
                            state = self._error(
                                f"Expecting ',' or a closing bracket, got {c!r}",
                                self._offset + i,
                                out,
                            )
                            continue
                        i += 1
                        state = _KEY if type(top) is dict else _VALUE
                        continue
                    state = _KEY if state == _OBJ_FIRST else _VALUE
                    continue
                # ---------------------------------------------------------------- VALUE
                if state <= _VALUE:
                    c = text[i]
                    if c in _WS_CHARS:
                        i = ws_match(text, i).end()
                        if i == n:
                            break
                        c = text[i]
                    if state == _OUTSIDE:
                        if self.lenient:
                            m = _OPEN.search(text, i)
                            if m is None:
                                self.skipped += n - i
                                i = n
                                break
                            j = m.start()
                            self.skipped += j - i
                            i = j
                            c = text[i]
                        self.value_start = self._offset + i
                    if c == "{" or c == "[":
                        state = self._container(text, i, out)
                        i = self._resume
                        if state >= 100:
                            state -= 100
                        continue
                    if c == '"':
                        m = _SIMPLE_STR.match(text, i + 1)
                        if m is not None:
                            i = m.end()
                            state = self._attach(m.group(1), i, out)
                            continue
                        try:
                            value, i = _scanstring(text, i + 1, True)
                        except ValueError:
                            pass
                        else:
                            state = self._attach(value, i, out)
                            continue
                        if not stack:
                            self._top_scalar = True
                        self._str_is_key = False
                        self._str_start = self._offset + i
                        self._raw = []
                        self._esc = False
                        i += 1
                        state = _STRING
                        continue
                    if c in _NUMBER_START:
                        j = _num_run(text, i).end()
                        if j == n:
                            if not stack:
                                self._top_scalar = True
                            self._num = [text[i:]]
                            i = n
                            state = _NUMBER_ST
                            break
                        try:
                            value = _number(text[i:j])
                        except ValueError as exc:
                            state = self._error(str(exc), self._offset + i, out)
                            i = j
                            continue
                        i = j
                        state = self._attach(value, i, out)
                        continue
                    lit = _LITERALS.get(c)
                    if lit is not None:
                        word, value = lit
                        if text.startswith(word, i):
                            i += len(word)
                            state = self._attach(value, i, out)
                            continue
                        if n - i < len(word) and word.startswith(text[i:]):
                            if not stack:
                                self._top_scalar = True
                            self._lit = text[i:]
                            i = n
                            state = _LITERAL
                            break
                    state = self._error(f"Expecting a value, got {c!r}", self._offset + i, out)
                    continue
                # ---------------------------------------------------------------- KEY
                if state == _KEY:
                    c = text[i]
                    if c in _WS_CHARS:
                        i = ws_match(text, i).end()
                        if i == n:
                            break
                        c = text[i]
                    if c == '"':
                        m = _KEY_COLON.match(text, i)
                        if m is not None:
                            keys[-1] = m.group(1)
                            i = m.end()
                            state = _VALUE
                            continue
                        self._str_is_key = True
                        self._str_start = self._offset + i
                        self._raw = []
                        self._esc = False
                        i += 1
                        state = _STRING
                        continue
                    state = self._error(f"Expecting a key, got {c!r}", self._offset + i, out)
                    continue
                # ---------------------------------------------------------------- STRING
                if state == _STRING:
                    j = i
                    if self._esc:
                        j += 1  # the character after a backslash that ended the last chunk
                        self._esc = False
                    if j < n:
                        j = _str_body(text, j).end()
                    if j >= n:
                        self._raw.append(text[i:])
                        i = n
                        break
                    if text[j] == "\\":  # a lone backslash at the very end of the chunk
                        self._raw.append(text[i:])
                        self._esc = True
                        i = n
                        break
                    self._raw.append(text[i:j])
                    i = j + 1
                    raw = "".join(self._raw)
                    self._raw = []
                    try:
                        value = _scanstring(raw + '"', 0, True)[0]
                    except json.JSONDecodeError as exc:
                        state = self._error(exc.msg, self._str_start + 1 + exc.pos, out)
                        continue
                    if self._str_is_key:
                        keys[-1] = value
                        state = _COLON
                    else:
                        state = self._attach(value, i, out)
                    continue
                if state == _COLON:
                    c = text[i]
                    if c in _WS_CHARS:
                        i = ws_match(text, i).end()
                        if i == n:
                            break
                        c = text[i]
                    if c == ":":
                        i += 1
                        state = _VALUE
                        continue
                    state = self._error(f"Expecting ':', got {c!r}", self._offset + i, out)
                    continue
                if state == _NUMBER_ST:
                    j = _num_run(text, i).end()
                    self._num.append(text[i:j])
                    if j == n:
                        i = n
                        break
                    i = j
                    token = "".join(self._num)
                    self._num = []
                    try:
                        value = _number(token)
                    except ValueError as exc:
                        state = self._error(str(exc), self._offset + i - len(token), out)
                        continue
                    state = self._attach(value, i, out)
                    continue
                # state == _LITERAL
                word, value = _LITERALS[self._lit[0]]
                need = len(word) - len(self._lit)
                piece = text[i : i + need]
                if word.startswith(piece, len(self._lit)):
                    i += len(piece)
                    self._lit += piece
                    if len(self._lit) == len(word):
                        self._lit = ""
                        state = self._attach(value, i, out)
                    continue
                state = self._error(f"Invalid literal {self._lit + piece!r}", self._offset + i, out)
        finally:
            self._state = state
            self._offset += n
        return out

    # --- transitions -----------------------------------------------------------------------

    def _container(self, text: str, i: int, out: list[ParseEvent]) -> int:
        """A container starts at ``text[i]``: parse it whole with the C scanner if it completes
        in this chunk (and the budget allows), else open it. Sets ``_resume``; returns the next
        state, plus 100 when the container was opened (so loops know to leave)."""
        brace = text[i] == "{"
        n = self._n
        # Whether the container may simply not have arrived in full yet (then deferring it is
        # worth it): surely so when its closing bracket does not occur in the text at all.
        incomplete = text.find("}" if brace else "]", i) < 0
        if self._budget > 0 and not incomplete:
            try:
                value, end = _scan_once(text, i)
            except json.JSONDecodeError as exc:
                self._budget -= n - i + _FAST_FAIL_CHARGE
                # Ran out of text (rather than met an error): failed at the very end, or in
                # a string or \\u escape that the end cut.
                incomplete = (
                    exc.pos >= n
                    or exc.msg.startswith("Unterminated string")
                    or (exc.msg.startswith("Invalid \\u") and exc.pos >= n - 5)
                )
            except (ValueError, StopIteration, RecursionError):
                self._budget -= n - i + _FAST_FAIL_CHARGE
                incomplete = False
            else:
                self._resume = end
                if self.items:
                    self._walk(value, out)
                return self._attach(value, end, out)
        if incomplete and n - i <= self._defer_limit:
            self._deferred = text[i:]
            self._resume = self._n
            return _DEFERRED + 100
        self._open({} if brace else [])
        self._resume = i + 1
        return (_OBJ_FIRST if brace else _ARR_FIRST) + 100

    def _path_at(self, level: int) -> tuple[PathItem, ...]:
        """The path of the open container at ``level`` (negative counts from the innermost)."""
        paths = self._paths
        if level < 0:
            level += len(paths)
        path = paths[level]
        if path is None:
            known = level
            while paths[known] is None:
                known -= 1
            path = paths[known] + tuple(self._steps[known + 1 : level + 1])  # type: ignore[operator]
            paths[level] = path
        return path

    def _open(self, container: Any) -> None:
        """Start a container: attach it to its parent *now*, so the live value shows it."""
        stack = self._stack
        if stack:
            parent = stack[-1]
            if type(parent) is list:
                parent.append(container)
                step: PathItem = len(parent) - 1
            else:
                step = self._keys[-1]
                parent[step] = container
            self._steps.append(step)
            self._paths.append(None)
        else:
            self._steps.append(0)
            self._paths.append(())
        stack.append(container)
        self._keys.append(None)

    def _attach(self, value: Any, i: int, out: list[ParseEvent]) -> int:
        """A value completed at chunk index ``i``: store it in its parent; return the state."""
        stack = self._stack
        if not stack:
            self._emit_value(value, self._offset + i, out)
            return _OUTSIDE
        top = stack[-1]
        if type(top) is list:
            top.append(value)
            if self.items:
                out.append(ParsedItem((*self._path_at(-1), len(top) - 1), value))
        else:
            top[self._keys[-1]] = value
        return _AFTER

    def _close_container(self, i: int, out: list[ParseEvent]) -> int:
        stack = self._stack
        container = stack.pop()
        self._keys.pop()
        path = self._path_at(-1) if self.items else ()
        self._paths.pop()
        self._steps.pop()
        if not stack:
            self._emit_value(container, self._offset + i, out)
            return _OUTSIDE
        if self.items and type(stack[-1]) is list:
            out.append(ParsedItem(path, container))
        return _AFTER

    def _emit_value(self, value: Any, end: int, out: list[ParseEvent]) -> None:
        start = self.value_start if self.value_start is not None else end
        out.append(ParsedValue(value, start, end))
        self.value_start = None
        self._top_scalar = False
        self.values_completed += 1

    def _walk(self, value: Any, out: list[ParseEvent]) -> None:
        """Item events for the arrays inside a container the fast path parsed in one go,
        children before parents like the token-by-token path."""
        if self._stack:
            top = self._stack[-1]
            step: PathItem = len(top) if type(top) is list else self._keys[-1]
            base: tuple[PathItem, ...] = (*self._path_at(-1), step)
        else:
            base = ()
        mark = len(out)
        try:
            _walk_recursive(value, base, out)
        except RecursionError:  # deeper than the interpreter's stack: walk with our own
            del out[mark:]
            _walk_iterative(value, base, out)

    def _error(self, msg: str, pos: int, out: list[ParseEvent]) -> int:
        """Record a syntax error: strict mode raises, lenient mode discards the value."""
        err = JSONParseError(msg, pos)
        if not self.lenient:
            raise err
        self.parse_errors += 1
        self.last_error = err
        if self.first_error is None:
            self.first_error = err
        self._stack.clear()
        self._keys.clear()
        self._paths.clear()
        self._steps.clear()
        self._raw = []
        self._num = []
        self._lit = ""
        self._esc = False
        self._deferred = ""
        self._top_scalar = False
        self.value_start = None
        if self.max_parse_errors is not None and self.parse_errors >= self.max_parse_errors:
            self._state = _OUTSIDE
            raise StreamParseError(
                f"Gave up after {self.parse_errors} JSON syntax errors in the stream; the last "
                f"one: {err}. The model's output is not JSON: check the prompt and the "
                "response format.",
                attempts=self.parse_errors,
                last_error=err,
            )
        return _OUTSIDE
