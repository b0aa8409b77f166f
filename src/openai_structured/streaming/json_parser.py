"""An incremental, resumable JSON parser whose total work is linear in its input.

Feed it text in chunks of any size; it returns what completed (whole top-level values and, when
asked, each array element at any depth) and keeps the value in progress *in place* (the dicts
and lists being built are the ones you will get at the end), so looking at the partial result
costs nothing per chunk.

Why it is fast and linear whatever the chunking:

* Nothing is ever re-scanned from the start of the buffer. The parser is a state machine with an
  explicit stack (no recursion, so no depth limit) and one handler method per state; at a chunk
  boundary it keeps only the unfinished *token* (part of a string, number or literal), or the
  text of a container small next to the chunk (see ``_DEFER_FACTOR``), never the text of the
  value.
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
_SIMPLE_STR = re.compile(r'(?P<text>[^"\\\x00-\x1f]*)"')
# A simple key, its colon and the whitespace after it, from the opening quote.
_KEY_COLON = re.compile(r'"(?P<key>[^"\\\x00-\x1f]*)"[ \t\n\r]*:[ \t\n\r]*')
# Raw string content (escapes kept) up to an unescaped quote or a trailing lone backslash.
# Unrolled loops ("normal* (special normal*)*"): the regex engine keeps no state per character
# of a long string, only per escape (the alternation form cost ~240 bytes a character).
_STR_BODY = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
# Inside a broken value: everything up to the next quote or bracket.
_SKIP_PLAIN = re.compile(r'[^"{}\[\]]*')
# Every character that can belong to a number; the token is validated when it ends.
_NUM_RUN = re.compile(r"[-+0-9.eE]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?P<frac>\.[0-9]+)?(?P<exp>[eE][-+]?[0-9]+)?")
_LITERALS: dict[str, tuple[str, Any]] = {
    "t": ("true", True),
    "f": ("false", False),
    "n": ("null", None),
}
_NUMBER_START = frozenset("-0123456789")

#: Containers may nest this deep: the JSON parsers of the non-streaming path (jiter, pydantic)
#: stop at the same depth, so a call and a stream judge the same answer alike, and a hostile
#: answer of 100,000 nested arrays is a parse error, not 100,000 live lists.
MAX_DEPTH = 201

# Fused patterns: a whole object member or array element whose value is a simple scalar, in one
# regex call; ``m.lastgroup`` says which kind of scalar matched (or ``key``/none: the value
# needs another path). Numbers only match when a character that cannot continue them follows
# (so a number at the end of a chunk is left to the resumable path); ints are limited to 4000
# digits so that longer ones reach ``int()``'s limit error like json.loads.
_SCALAR = (
    r'(?:"(?P<str>[^"\\\x00-\x1f]*)"'  # a string without escapes
    r'|"(?P<esc>[^"\\\x00-\x1f]*(?:\\.[^"\\\x00-\x1f]*)*)"'  # with escapes (scanstring decodes)
    r"|(?P<int>-?(?:0|[1-9][0-9]{0,3999}))(?=[^-+0-9.eE])"
    r"|(?P<lit>true|false|null)"
    r"|(?P<float>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+))"
    r"(?=[^-+0-9.eE]))"
)
_W = r"[ \t\n\r]*"
_KEY_RE = r'"(?P<key>[^"\\\x00-\x1f]*)"' + _W + ":" + _W
_MEMBER_FIRST = re.compile(_W + _KEY_RE + _SCALAR + "?", re.DOTALL)  # after '{'
_MEMBER_NEXT = re.compile(_W + "," + _W + _KEY_RE + _SCALAR + "?", re.DOTALL)  # after a member
# An element: a scalar, or the bracket that opens a container (group ``open``).
_ELEMENT_FIRST = re.compile(_W + "(?:" + _SCALAR + r"|(?P<open>[{\[]))", re.DOTALL)  # after '['
_ELEMENT_NEXT = re.compile(_W + "," + _W + "(?:" + _SCALAR + r"|(?P<open>[{\[]))", re.DOTALL)
_LITERAL_VALUES: dict[str, Any] = {"true": True, "false": False, "null": None}


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
_skip_plain: Callable[[str, int], Any] = _SKIP_PLAIN.match
_FAST_FAIL_CHARGE = 64  # budget charged per failed fast attempt, on top of the text it scanned

# States of the machine; each has one handler in _HANDLERS (same order), except _DEFERRED,
# which only ever holds between two feeds.
_OUTSIDE = 0  # between top-level values
_VALUE = 1  # a value must start here (after ':' or an array ',', or top level in strict mode)
_OBJ_FIRST = 2  # after '{': a member or '}'
_OBJ_NEXT = 3  # after a member's value: ',' or '}'
_KEY = 4  # after ',' in an object: a key
_COLON = 5  # after a key that needed the slow path: ':'
_ARR_FIRST = 6  # after '[': an element or ']'
_ARR_NEXT = 7  # after an element: ',' or ']'
_IN_STRING = 8  # inside a string spanning chunks (raw pieces in _raw)
_IN_NUMBER = 9  # inside a number spanning chunks
_IN_LITERAL = 10  # inside true/false/null spanning chunks
_SKIP = 11  # inside a broken value: skipping to its end (brackets counted in _depth)
_SKIP_STRING = 12  # inside a string of a broken value
_DEFERRED = 13  # a small container spanning chunks: its text is kept, parsed whole when it closes

# A container that does not close inside a chunk but is small (its text so far at most this many
# times the new text) is kept as text and re-tried whole with the C scanner on the next chunk,
# instead of being walked token by token in Python. The bound keeps the total work linear.
_DEFER_FACTOR = 4
_CLOSERS = {"{": "}", "[": "]"}


def _number(token: str) -> Any:
    m = _NUMBER.fullmatch(token)
    if m is None:
        raise ValueError(f"invalid number {token!r}")
    if m["frac"] is None and m["exp"] is None:
        return int(token)  # may raise ValueError past the int digit limit, like json.loads
    return float(token)


def _deep_copy(value: Any) -> Any:
    """Copy a dict or list and the dicts/lists inside it, without recursion (values can be
    nested arbitrarily deep)."""
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
    before, between or after values (``Here is the JSON:``, markdown fences, whitespace) is
    skipped and counted in :attr:`skipped`. A syntax error inside a value discards that whole
    value: the parser counts it in :attr:`parse_errors`, skips to the bracket that closes the
    broken value (brackets inside strings do not count) and resumes after it, so no fragment of
    a broken value is ever returned (``[3[4]]`` gives nothing, not ``[4]``). Reaching
    ``max_parse_errors`` errors raises :class:`~openai_structured.errors.StreamParseError`.

    ``lenient=False`` (strict JSON text): top-level values may be any JSON value, separated by
    whitespace only, and the first error raises :class:`JSONParseError`.

    ``items=True`` makes :meth:`feed` also return a :class:`ParsedItem` for every array element at
    any depth as it closes (children before their parents). Off by default because it costs one
    small tuple per element.

    The machine has one handler per state (``_outside``, ``_value``, ``_obj_first``, ...): each
    consumes what it can from the chunk and returns where it stopped and the next state.
    """

    __slots__ = (
        "_budget",
        "_defer_limit",
        "_deferred",
        "_depth",
        "_esc",
        "_keys",
        "_lit",
        "_num",
        "_paths",
        "_raw",
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
        "position",
        "skipped",
        "truncated",
        "value_start",
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
        self.position = 0  # absolute offset of the current chunk's first character
        self._raw: list[str] = []  # raw pieces of a string spanning chunks
        self._esc = False  # that string's raw text ends with an unpaired backslash
        self._str_is_key = False
        self._str_start = 0
        self._num: list[str] = []
        self._lit = ""  # literal spanning chunks: the text received so far
        self._top_scalar = False  # strict mode: the value in progress is a top-level scalar
        self._deferred = ""  # text of a deferred container (state _DEFERRED)
        self._depth = 0  # state _SKIP: brackets of the broken value still open
        self._budget = 0  # per chunk: text the fast path may still waste on failed attempts
        self._defer_limit = 0  # per chunk: the longest container text that may be deferred
        self.value_start: int | None = None
        self.parse_errors = 0
        self.skipped = 0
        self.truncated = False
        self.last_error: JSONParseError | None = None
        self.first_error: JSONParseError | None = None

    # --- inspection ------------------------------------------------------------------------

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
        if self._state != _IN_STRING or self._str_is_key:
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
            defer, self.defer = self.defer, False
            try:
                out += self.feed("")  # parse the kept text token by token to find its end
            finally:
                self.defer = defer
        end = self.position
        if self._state == _IN_NUMBER:
            try:
                value = _number("".join(self._num))
            except ValueError as exc:
                self._error(str(exc), end)
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
        state = self._state
        if state == _IN_STRING and not self._esc and '"' not in text and "\\" not in text:
            self._raw.append(text)  # more of a long string: nothing can complete
            self.position += len(text)
            return []
        # Per chunk: the longest container text that may be deferred, and the budget for
        # failed fast-path attempts.
        self._defer_limit = _DEFER_FACTOR * len(text) if self.defer else -1
        if state == _DEFERRED:
            text = self._undefer(text)
            state = self._state
        n = len(text)
        if not n:
            return []
        self._budget = 2 * n + 256
        out: list[ParseEvent] = []
        handlers = _HANDLERS
        i = 0
        try:
            while i < n:
                i, state = handlers[state](self, text, i, out)
        except StreamParseError:
            state = self._state  # gave up: _error left the machine skipping the broken value
            raise
        finally:
            self._state = state
            self.position += n
        return out

    def _undefer(self, text: str) -> str:
        """State _DEFERRED and ``text`` arrives: keep deferring the container if it still cannot
        close and is small (return ""), else return its kept text and ``text`` to parse."""
        prev = self._deferred
        if _CLOSERS[prev[0]] not in text and len(prev) + len(text) <= self._defer_limit:
            self._deferred = prev + text
            self.position += len(text)
            return ""
        self._deferred = ""
        self.position -= len(prev)  # resume at the start of the kept container
        self._state = _VALUE
        return prev + text

    # --- state handlers: (text, i, out) -> (where they stopped, the next state) -------------

    def _outside(self, text: str, i: int, out: list[ParseEvent]) -> tuple[int, int]:
        """Between top-level values: lenient mode skips to the next '{' or '['."""
        if self.lenient:
            m = _OPEN.search(text, i)
            if m is None:
                self.skipped += len(text) - i
                return len(text), _OUTSIDE
            j = m.start()
            self.skipped += j - i
            self.value_start = self.position + j
            return self._container(text, j, out)
        i = _ws_match(text, i).end()
        if i == len(text):
            return i, _OUTSIDE
        self.value_start = self.position + i
        return self._value(text, i, out)

    def _value(self, text: str, i: int, out: list[ParseEvent]) -> tuple[int, int]:
        """A value starts here."""
        c = text[i]
        if c in _WS_CHARS:
            i = _ws_match(text, i).end()
            if i == len(text):
                return i, _VALUE
            c = text[i]
        if c == "{" or c == "[":
            return self._container(text, i, out)
        if c == '"':
            if text.find('"', i + 1) > 0:  # it may end in this chunk
                m = _SIMPLE_STR.match(text, i + 1)
                if m is not None:
                    end = m.end()
                    return end, self._attach(m["text"], end, out)
                try:
                    value, end = _scanstring(text, i + 1, True)
                except ValueError:
                    pass  # an error, or a quote that an escape cut: the general path tells
                else:
                    return end, self._attach(value, end, out)
            if not self._stack:
                self._top_scalar = True
            # (_raw is empty and _esc False whenever no string is open)
            self._str_is_key = False
            self._str_start = self.position + i
            return i + 1, _IN_STRING
        if c in _NUMBER_START:
            j = _num_run(text, i).end()
            if j == len(text):
                if not self._stack:
                    self._top_scalar = True
                self._num = [text[i:]]
                return j, _IN_NUMBER
            try:
                value = _number(text[i:j])
            except ValueError as exc:
                return j, self._error(str(exc), self.position + i)
            return j, self._attach(value, j, out)
        lit = _LITERALS.get(c)
        if lit is not None:
            word, value = lit
            if text.startswith(word, i):
                end = i + len(word)
                return end, self._attach(value, end, out)
            rest = text[i:]
            if len(rest) < len(word) and word.startswith(rest):
                if not self._stack:
                    self._top_scalar = True
                self._lit = rest
                return len(text), _IN_LITERAL
        return i, self._error(f"Expecting a value, got {c!r}", self.position + i)

    def _obj_first(self, text: str, i: int, out: list[ParseEvent]) -> tuple[int, int]:
        """After '{': members, or '}'."""
        m = _MEMBER_FIRST.match(text, i)
        if m is not None:
            return self._members(text, m, out)
        i = _ws_match(text, i).end()
        if i == len(text):
            return i, _OBJ_FIRST
        if text[i] == "}":
            return i + 1, self._close(i + 1, out)
        return i, _KEY

    def _obj_next(self, text: str, i: int, out: list[ParseEvent]) -> tuple[int, int]:
        """After a member's value: more members, ',' or '}'."""
        if len(text) - i >= 4:  # the shortest member start is ',"":'
            m = _MEMBER_NEXT.match(text, i)
            if m is not None:
                return self._members(text, m, out)
        return self._obj_end(text, i, out)

    def _members(self, text: str, m: Any, out: list[ParseEvent]) -> tuple[int, int]:
        """Members matched by the fused patterns, one regex call each while the value is a
        scalar; a container value goes to the C scanner right here."""
        top = self._stack[-1]
        while True:
            i = m.end()
            kind = m.lastgroup
            if kind == "str":
                top[m["key"]] = m["str"]
            elif kind == "int":
                top[m["key"]] = int(m["int"])
            elif kind == "lit":
                top[m["key"]] = _LITERAL_VALUES[m["lit"]]
            elif kind == "float":
                top[m["key"]] = float(m["float"])
            else:
                key = self._keys[-1] = m["key"]
                if kind == "esc":
                    start = m.start("esc")
                    try:
                        top[key] = _scanstring(text, start, True)[0]
                    except ValueError:
                        return start - 1, _VALUE  # a bad escape: let the general path report it
                elif i < len(text) and (text[i] == "{" or text[i] == "["):
                    i, state = self._container(text, i, out)
                    if state != _OBJ_NEXT:
                        return i, state  # opened (or deferred): go on inside it
                else:
                    return i, _VALUE  # the value needs the general path
            m = _MEMBER_NEXT.match(text, i)
            if m is None:
                return self._obj_end(text, i, out)

    def _obj_end(self, text: str, i: int, out: list[ParseEvent]) -> tuple[int, int]:
        """',' or '}' after a member's value."""
        n = len(text)
        if i < n and text[i] in _WS_CHARS:
            i = _ws_match(text, i).end()
        if i == n:
            return i, _OBJ_NEXT
        c = text[i]
        if c == "}":
            return i + 1, self._close(i + 1, out)
        if c == ",":
            i += 1
            return self._key(text, i, out) if i < n else (i, _KEY)
        return i, self._error(f"Expecting ',' or '}}', got {c!r}", self.position + i)

    def _key(self, text: str, i: int, out: list[ParseEvent]) -> tuple[int, int]:
        """A key must start here."""
        c = text[i]
        if c in _WS_CHARS:
            i = _ws_match(text, i).end()
            if i == len(text):
                return i, _KEY
            c = text[i]
        if c == '"':
            if text.find('"', i + 1) > 0:  # it may end in this chunk
                m = _KEY_COLON.match(text, i)
                if m is not None:
                    self._keys[-1] = m["key"]
                    return m.end(), _VALUE
            self._str_is_key = True
            self._str_start = self.position + i
            return i + 1, _IN_STRING
        return i, self._error(f"Expecting a key, got {c!r}", self.position + i)

    def _colon(self, text: str, i: int, out: list[ParseEvent]) -> tuple[int, int]:
        """After a key that spanned chunks (or had escapes): ':'."""
        c = text[i]
        if c in _WS_CHARS:
            i = _ws_match(text, i).end()
            if i == len(text):
                return i, _COLON
            c = text[i]
        if c == ":":
            i += 1
            return self._value(text, i, out) if i < len(text) else (i, _VALUE)
        return i, self._error(f"Expecting ':', got {c!r}", self.position + i)

    def _arr_first(self, text: str, i: int, out: list[ParseEvent]) -> tuple[int, int]:
        """After '[': elements, or ']'."""
        m = _ELEMENT_FIRST.match(text, i)
        if m is not None:
            return self._elements(text, m, out)
        i = _ws_match(text, i).end()
        if i == len(text):
            return i, _ARR_FIRST
        if text[i] == "]":
            return i + 1, self._close(i + 1, out)
        return i, _VALUE

    def _arr_next(self, text: str, i: int, out: list[ParseEvent]) -> tuple[int, int]:
        """After an element: more elements, ',' or ']'."""
        m = _ELEMENT_NEXT.match(text, i)
        if m is not None:
            return self._elements(text, m, out)
        return self._arr_end(text, i, out)

    def _elements(self, text: str, m: Any, out: list[ParseEvent]) -> tuple[int, int]:
        """Elements matched by the fused patterns: scalars by one regex call each, containers
        by the C scanner."""
        top = self._stack[-1]
        items = self.items
        while True:
            kind = m.lastgroup
            if kind == "open":
                i, state = self._container(text, m.start("open"), out)
                if state != _ARR_NEXT:
                    return i, state  # opened (or deferred): go on inside it
            else:
                i = m.end()
                if kind == "str":
                    value = m["str"]
                elif kind == "int":
                    value = int(m["int"])
                elif kind == "lit":
                    value = _LITERAL_VALUES[m["lit"]]
                elif kind == "float":
                    value = float(m["float"])
                else:  # "esc"
                    start = m.start("esc")
                    try:
                        value = _scanstring(text, start, True)[0]
                    except ValueError:
                        return start - 1, _VALUE  # a bad escape: let the general path report it
                top.append(value)
                if items:
                    out.append(ParsedItem((*self._path_at(-1), len(top) - 1), value))
            m = _ELEMENT_NEXT.match(text, i)
            if m is None:
                return self._arr_end(text, i, out)

    def _arr_end(self, text: str, i: int, out: list[ParseEvent]) -> tuple[int, int]:
        """',' or ']' after an element."""
        n = len(text)
        if i < n and text[i] in _WS_CHARS:
            i = _ws_match(text, i).end()
        if i == n:
            return i, _ARR_NEXT
        c = text[i]
        if c == "]":
            return i + 1, self._close(i + 1, out)
        if c == ",":
            i += 1
            return self._value(text, i, out) if i < n else (i, _VALUE)
        return i, self._error(f"Expecting ',' or ']', got {c!r}", self.position + i)

    def _in_string(self, text: str, i: int, out: list[ParseEvent]) -> tuple[int, int]:
        """Inside a string spanning chunks: keep its raw pieces; decode it whole when it ends."""
        n = len(text)
        j = i
        if self._esc:
            j += 1  # the character after a backslash that ended the last chunk
            self._esc = False
        q = text.find('"', j)
        if q < 0 or "\\" in text:  # no end here, or maybe escapes to step over
            j = _str_body(text, j).end() if j < n else n
            if j >= n:
                self._raw.append(text[i:])
                return n, _IN_STRING
            if text[j] == "\\":  # a lone backslash at the very end of the chunk
                self._raw.append(text[i:])
                self._esc = True
                return n, _IN_STRING
        else:
            j = q
        j += 1
        raw = "".join(self._raw) + text[i:j]  # the whole string, its closing quote included
        self._raw.clear()  # (so it is empty whenever no string is open)
        try:
            value = _scanstring(raw, 0, True)[0]
        except json.JSONDecodeError as exc:
            return j, self._error(exc.msg, self._str_start + 1 + exc.pos)
        if self._str_is_key:
            self._keys[-1] = value
            if j < n and text[j] == ":":  # usually right after the key
                j += 1
                return self._value(text, j, out) if j < n else (j, _VALUE)
            return j, _COLON
        return j, self._attach(value, j, out)

    def _in_number(self, text: str, i: int, out: list[ParseEvent]) -> tuple[int, int]:
        """Inside a number spanning chunks: it ends at the first character that cannot
        continue it."""
        j = _num_run(text, i).end()
        self._num.append(text[i:j])
        if j == len(text):
            return j, _IN_NUMBER
        token = "".join(self._num)
        self._num = []
        try:
            value = _number(token)
        except ValueError as exc:
            return j, self._error(str(exc), self.position + j - len(token))
        return j, self._attach(value, j, out)

    def _in_literal(self, text: str, i: int, out: list[ParseEvent]) -> tuple[int, int]:
        """Inside true/false/null spanning chunks."""
        lit = self._lit
        word, value = _LITERALS[lit[0]]
        piece = text[i : i + len(word) - len(lit)]
        if not word.startswith(piece, len(lit)):
            return i, self._error(f"Invalid literal {lit + piece!r}", self.position + i)
        i += len(piece)
        if len(lit) + len(piece) < len(word):
            self._lit = lit + piece
            return i, _IN_LITERAL
        self._lit = ""
        return i, self._attach(value, i, out)

    def _skip(self, text: str, i: int, out: list[ParseEvent]) -> tuple[int, int]:
        """Inside a broken value: skip to the bracket that closes it (strings skipped whole)."""
        n = len(text)
        depth = self._depth
        while True:
            i = _skip_plain(text, i).end()
            if i == n:
                self._depth = depth
                return i, _SKIP
            c = text[i]
            i += 1
            if c == '"':
                self._depth = depth
                return i, _SKIP_STRING
            if c == "{" or c == "[":
                depth += 1
            else:
                depth -= 1
                if depth == 0:
                    self._depth = 0
                    return i, _OUTSIDE

    def _skip_string(self, text: str, i: int, out: list[ParseEvent]) -> tuple[int, int]:
        """Inside a string of a broken value: skip to its closing quote."""
        if self._esc:
            i += 1  # the character after a backslash that ended the last chunk
            self._esc = False
        n = len(text)
        if i < n:
            i = _str_body(text, i).end()
        if i >= n:
            return n, _SKIP_STRING
        if text[i] == "\\":  # a lone backslash at the very end of the chunk
            self._esc = True
            return n, _SKIP_STRING
        return i + 1, _SKIP

    # --- transitions -----------------------------------------------------------------------

    def _container(self, text: str, i: int, out: list[ParseEvent]) -> tuple[int, int]:
        """A container starts at ``text[i]``: parse it whole with the C scanner if it completes
        in this chunk (and the budget allows), else defer or open it."""
        brace = text[i] == "{"
        n = len(text)
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
                if self.items:
                    self._walk(value, out)
                return end, self._attach(value, end, out)
        if incomplete and n - i <= self._defer_limit:
            self._deferred = text[i:]
            return n, _DEFERRED
        if len(self._stack) >= MAX_DEPTH:
            return i, self._error(f"JSON nested deeper than {MAX_DEPTH} levels", self.position + i)
        self._open({} if brace else [])
        return i + 1, (_OBJ_FIRST if brace else _ARR_FIRST)

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
            self._emit_value(value, self.position + i, out)
            return _OUTSIDE
        top = stack[-1]
        if type(top) is list:
            top.append(value)
            if self.items:
                out.append(ParsedItem((*self._path_at(-1), len(top) - 1), value))
            return _ARR_NEXT
        top[self._keys[-1]] = value
        return _OBJ_NEXT

    def _close(self, i: int, out: list[ParseEvent]) -> int:
        """The innermost container closed just before chunk index ``i``; return the state."""
        stack = self._stack
        container = stack.pop()
        self._keys.pop()
        path = self._path_at(-1) if self.items else ()
        self._paths.pop()
        self._steps.pop()
        if not stack:
            self._emit_value(container, self.position + i, out)
            return _OUTSIDE
        if type(stack[-1]) is list:
            if self.items:
                out.append(ParsedItem(path, container))
            return _ARR_NEXT
        return _OBJ_NEXT

    def _emit_value(self, value: Any, end: int, out: list[ParseEvent]) -> None:
        start = self.value_start
        assert start is not None  # set by _outside when the value started
        out.append(ParsedValue(value, start, end))
        self.value_start = None
        self._top_scalar = False

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

    def _error(self, msg: str, pos: int) -> int:
        """A syntax error: strict mode raises; lenient mode discards the value in progress and
        returns the state that skips the rest of it."""
        err = JSONParseError(msg, pos)
        if not self.lenient:
            raise err
        self.parse_errors += 1
        self.last_error = err
        if self.first_error is None:
            self.first_error = err
        # Lenient values are containers, so at least one bracket is open here: skip until the
        # text closes them all (the offending character included, which may be one of them).
        self._depth = len(self._stack)
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
            self._state = _SKIP
            raise StreamParseError(
                f"Gave up after {self.parse_errors} JSON syntax errors in the stream; the last "
                f"one: {err}. The model's output is not JSON: check the prompt and the "
                "response format.",
                attempts=self.parse_errors,
                last_error=err,
            )
        return _SKIP


_Handler = Callable[[JSONStreamParser, str, int, list[ParseEvent]], tuple[int, int]]
# Indexed by state (see the state constants; _DEFERRED needs none: it is never entered mid-chunk).
_HANDLERS: tuple[_Handler, ...] = (
    JSONStreamParser._outside,
    JSONStreamParser._value,
    JSONStreamParser._obj_first,
    JSONStreamParser._obj_next,
    JSONStreamParser._key,
    JSONStreamParser._colon,
    JSONStreamParser._arr_first,
    JSONStreamParser._arr_next,
    JSONStreamParser._in_string,
    JSONStreamParser._in_number,
    JSONStreamParser._in_literal,
    JSONStreamParser._skip,
    JSONStreamParser._skip_string,
)
