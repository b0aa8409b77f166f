"""Render limits: how much time, output and work one render may use, and the state that counts it.

A template is code written by someone else, and Jinja's sandbox stops it from reaching Python
internals but not from asking for a 100-million-character string, an endless loop or a
million-digit integer. :class:`RenderLimits` says how much is allowed; a :class:`RenderState`
(one per render, found through a context variable so that filters, operators and included
templates all see the same one) counts what has been used and raises a
:class:`~.errors.TemplateLimitError` naming the limit and how to raise it.

Sizes are measured, not guessed after the fact: the environment asks for the size a result
*will* have (a width, a repeat count, the text of a list) before building it, so no limit can
be passed by building something huge and checking it afterwards.

The measuring functions here are iterative (no recursion on user data) and remember what they
measured, so a structure that shares one big part many times costs one visit per distinct
object, while its expanded size (what printing or comparing it costs) is what gets checked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from itertools import chain
from time import monotonic
from typing import Any

from jinja2.utils import Namespace

from .errors import TemplateInputError, TemplateLimitError, TemplateTimeoutError

__all__ = [
    "DEFAULT_RENDER_LIMITS",
    "MAX_DATA_DEPTH",
    "MAX_DATA_INT_DIGITS",
    "RenderLimits",
    "RenderState",
    "activate",
    "current_state",
    "loads_bounded",
]

#: The CLI options that change the limits, named in every limit error. One place, so the
#: messages stay right if the options are renamed.
CLI_TIMEOUT_OPTION = "--template-timeout"
CLI_LIMIT_OPTION = "--template-limit"


@dataclass(frozen=True)
class RenderLimits:
    """How much one render may use; every field is checked while the template runs.

    * ``timeout``: seconds of wall-clock time for the whole render (the body and the front
      matter's ``system_prompt``); ``None`` for no deadline.
    * ``max_output_size``: characters in the rendered text, and the size of any one value the
      template builds: characters for a string, items plus the size of each item for a list
      or dict (shared items counted each time they appear, since printing or comparing the
      value costs that much).
    * ``max_build_size``: characters of all the strings one render builds, together, with each
      item of a list or dict it builds counting as 8 (``None``: ten times
      ``max_output_size``). It bounds the memory many values can hold and the cost of
      building a string piece by piece.
    * ``max_loop_iterations``: iterations of all ``{% for %}`` loops of one render, together.
    * ``max_range``: items in one ``range()``.
    * ``max_int_digits``: decimal digits of an integer computed by ``+ - * **``.
    """

    timeout: float | None = 10.0
    max_output_size: int = 20_000_000
    max_build_size: int | None = None
    max_loop_iterations: int = 1_000_000
    max_range: int = 100_000
    max_int_digits: int = 4_300

    def __post_init__(self) -> None:
        if self.timeout is not None and not (
            isinstance(self.timeout, (int, float)) and self.timeout > 0
        ):
            raise ValueError(f"RenderLimits.timeout must be positive or None, got {self.timeout!r}")
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if value is None and name == "max_build_size":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RenderLimits.{name} must be a positive integer, got {value!r}")

    @property
    def build_budget(self) -> int:
        """``max_build_size``, or its default of ten times ``max_output_size``."""
        return self.max_build_size if self.max_build_size is not None else 10 * self.max_output_size

    def replace(self, **changes: Any) -> RenderLimits:
        """A copy with some fields changed (validated like the constructor)."""
        return dataclasses.replace(self, **changes)

    def with_specs(self, specs: Iterable[str]) -> RenderLimits:
        """A copy changed by ``NAME=VALUE`` strings (what ``--template-limit`` passes).

        ``NAME`` is a field name (``max_loop_iterations``; ``-`` may stand for ``_``); ``VALUE``
        an integer (``1_000_000`` and ``1e6`` are accepted) or, for ``timeout`` and
        ``max_build_size``, ``none``; ``timeout=0`` also means no deadline. A bad spec raises
        :class:`~.errors.TemplateInputError` listing the names.
        """
        changes: dict[str, Any] = {}
        for spec in specs:
            name, sep, text = spec.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in _FIELDS:
                raise TemplateInputError(
                    f"{CLI_LIMIT_OPTION} expects NAME=VALUE with NAME one of "
                    f"{', '.join(_FIELDS)}; got {spec!r}."
                )
            changes[name] = _parse_limit_value(name, text.strip())
        try:
            return self.replace(**changes)
        except ValueError as exc:
            raise TemplateInputError(f"{CLI_LIMIT_OPTION}: {exc}") from None


_FIELDS = tuple(f.name for f in dataclasses.fields(RenderLimits))
_INT_FIELDS = tuple(name for name in _FIELDS if name != "timeout")

DEFAULT_RENDER_LIMITS = RenderLimits()
"""The limits a render uses unless told otherwise."""


def _parse_limit_value(name: str, text: str) -> Any:
    if text.lower() in ("none", "off", "unlimited") and name in ("timeout", "max_build_size"):
        return None
    try:
        number = float(text.replace("_", "")) if name == "timeout" else _parse_int(text)
    except ValueError:
        raise TemplateInputError(
            f"{CLI_LIMIT_OPTION} {name}={text!r}: not a number; for example "
            f"{CLI_LIMIT_OPTION} {name}={getattr(DEFAULT_RENDER_LIMITS, name) or 1}."
        ) from None
    if name == "timeout" and number == 0:
        return None
    return number


def _parse_int(text: str) -> int:
    cleaned = text.replace("_", "")
    if re.fullmatch(r"[0-9]+", cleaned):
        return int(cleaned)
    value = float(cleaned)  # 1e6
    if not value.is_integer() or not math.isfinite(value):
        raise ValueError(text)
    return int(value)


def _hint(limit: str) -> str:
    if limit == "timeout":
        return (
            f"raise it with {CLI_TIMEOUT_OPTION} SECONDS (ostruct) or "
            f"RenderLimits(timeout=...) (Python)"
        )
    return (
        f"raise it with {CLI_LIMIT_OPTION} {limit}=N (ostruct) or RenderLimits({limit}=...) "
        f"(Python)"
    )


def limit_error(limit: str, value: Any, what: str, unit: str) -> TemplateLimitError:
    """The error for going over ``limit``: what happened, the limit and how to change it."""
    shown = f"{value:,}" if isinstance(value, int) else str(value)
    return TemplateLimitError(
        f"{what}; the limit is {shown} {unit} ({limit}); {_hint(limit)}.",
        limit=limit,
        value=value,
    )


# --- the per-render state ---------------------------------------------------------------------

# Containers measured element by element. Everything else is a leaf.
_DICT_KEYS: Any = type({}.keys())
_DICT_VALUES: Any = type({}.values())
_DICT_ITEMS: Any = type({}.items())
_CONTAINERS = (list, tuple, dict, set, frozenset, Namespace, _DICT_KEYS, _DICT_VALUES, _DICT_ITEMS)
# Only structures at least this big are remembered across measurements, and the remembered
# ones together hold at most _MEMO_ITEMS items (the memo keeps them alive).
_MEMO_MIN = 512
_MEMO_SLOTS = 64
_MEMO_ITEMS = 1_000_000
# A list item counts like this many characters against max_build_size (a pointer's bytes).
ITEM_WEIGHT = 8
# Check the clock every this many operations (a power of two minus one, used as a mask).
CLOCK_MASK = 63


def is_container(value: Any) -> bool:
    """Whether ``value`` is a structure whose printed or compared cost depends on its items."""
    return isinstance(value, _CONTAINERS)


def _attrs(ns: Any) -> dict[str, Any]:
    return ns._Namespace__attrs  # type: ignore[no-any-return]


def _children(value: Any) -> tuple[Iterator[Any], int]:
    """An iterator over what a container holds (dict keys and values alike), and its length."""
    if isinstance(value, dict):
        return chain.from_iterable(value.items()), len(value)
    if isinstance(value, Namespace):
        attrs = _attrs(value)
        return chain.from_iterable(attrs.items()), len(attrs)
    if isinstance(value, _DICT_ITEMS):
        return chain.from_iterable(value), len(value)
    return iter(value), len(value)


class RenderState:
    """What one render has used so far, checked against its :class:`RenderLimits`."""

    __slots__ = (
        "_memo",
        "_memo_items",
        "budget",
        "built",
        "deadline",
        "iterations",
        "limits",
        "max_size",
        "ops",
    )

    def __init__(self, limits: RenderLimits, *, timed: bool = True) -> None:
        self.limits = limits
        self.max_size = limits.max_output_size
        self.budget = limits.build_budget
        self.deadline = (
            monotonic() + limits.timeout if timed and limits.timeout is not None else None
        )
        self.ops = 0
        self.iterations = 0
        self.built = 0
        self._memo: OrderedDict[int, tuple[Any, int]] = OrderedDict()
        self._memo_items = 0

    # -- time and loops --

    def tick(self) -> None:
        """Count one operation; every few operations, check the deadline."""
        self.ops += 1
        if not self.ops & CLOCK_MASK and self.deadline is not None:
            self.check_time()

    def tick_many(self, count: int) -> None:
        """Count ``count`` operations done in one go, then check the deadline."""
        self.ops += count
        self.check_time()

    def check_time(self) -> None:
        """Raise :class:`TemplateTimeoutError` if the deadline has passed."""
        if self.deadline is not None and monotonic() > self.deadline:
            timeout = self.limits.timeout
            raise TemplateTimeoutError(
                f"the template is still rendering after {timeout:g} seconds; the limit is "
                f"{timeout:g} seconds (timeout); {_hint('timeout')}, or make the template do "
                f"less (fewer or smaller loops, smaller inputs).",
                limit="timeout",
                value=timeout,
            )

    def iterate(self) -> None:
        """Count one loop iteration against ``max_loop_iterations``."""
        self.iterations += 1
        if self.iterations > self.limits.max_loop_iterations:
            raise limit_error(
                "max_loop_iterations",
                self.limits.max_loop_iterations,
                "the template's loops ran more iterations than allowed (all loops of one "
                "render count together)",
                "iterations",
            )
        self.tick()

    # -- sizes --

    def check_size(self, size: int, what: str) -> None:
        """Refuse a value of ``size`` (characters, or items plus their sizes) over the limit."""
        if size > self.max_size:
            # Measuring stops just past the limit (max_size + 1): then only "over" is known.
            exact = self.max_size + 1 < size <= 10 * self.max_size
            shown = f"{size:,}" if exact else f"over {self.max_size:,}"
            raise limit_error(
                "max_output_size",
                self.max_size,
                f"{what} would be {shown} characters or items",
                "characters or items per value",
            )

    def add_built(self, size: int, what: str, *, items: bool = False) -> None:
        """Count a newly built string (``size`` characters) or container (``size`` items, each
        weighing :data:`ITEM_WEIGHT` characters) against ``max_build_size``."""
        self.built += size * ITEM_WEIGHT if items else size
        if self.built > self.budget:
            raise limit_error(
                "max_build_size",
                self.budget,
                f"{what} brought the strings and lists this render has built to "
                f"{self.built:,} characters (a list item counts as {ITEM_WEIGHT})",
                "characters per render",
            )

    def check_digits(self, digits: int, what: str) -> None:
        """Refuse an integer result of about ``digits`` decimal digits over ``max_int_digits``."""
        if digits > self.limits.max_int_digits:
            raise limit_error(
                "max_int_digits",
                self.limits.max_int_digits,
                f"{what} would have about {digits:,} digits",
                "digits",
            )

    def check_range(self, items: int | None, what: str) -> None:
        """Refuse a ``range()`` of more than ``max_range`` items (``None``: too many to count)."""
        limit = self.limits.max_range
        if items is None or items > limit:
            count = "too many" if items is None else f"{items:,}"
            raise limit_error(
                "max_range", limit, f"range too big: {what} would have {count} items", "items"
            )

    def remember(self, value: Any, size: int) -> None:
        """Note the expanded size of a big structure, so later measurements reuse it."""
        if size < _MEMO_MIN:
            return
        key = id(value)
        if key in self._memo:
            self._memo.move_to_end(key)
            return
        items = len(_attrs(value)) if isinstance(value, Namespace) else len(value)
        if items > _MEMO_ITEMS:
            return
        self._memo[key] = (value, size)  # the reference keeps the id from being reused
        self._memo_items += items
        while len(self._memo) > _MEMO_SLOTS or self._memo_items > _MEMO_ITEMS:
            _, (old, _) = self._memo.popitem(last=False)
            self._memo_items -= len(_attrs(old)) if isinstance(old, Namespace) else len(old)

    def _recall(self, value: Any) -> int | None:
        entry = self._memo.get(id(value))
        if entry is None or entry[0] is not value:
            return None
        self._memo.move_to_end(id(value))
        return entry[1]

    def data_size(self, value: Any, limit: int | None = None) -> int:
        """The expanded size of ``value``: characters of strings plus items of containers.

        Shared parts count each time they occur. Stops early and returns ``limit + 1`` once the
        size is over ``limit`` (default: ``max_output_size``).
        """
        leaf = _leaf_data_size(value)
        if leaf is not None:
            return leaf
        known = self._recall(value)
        if known is not None:
            return known
        cap = self.max_size if limit is None else limit
        return _measure(self, value, cap, _leaf_data_size, _data_frame)

    def text_size(self, value: Any, limit: int | None = None, *, mode: str = "str") -> int:
        """The length of ``str(value)`` (``mode="repr"``: ``repr(value)``), without building it.

        Exact for strings, numbers and the built-in containers; other objects are converted
        to find out. Returns ``limit + 1`` (default: ``max_output_size``) once over the limit.
        """
        cap = self.max_size if limit is None else limit
        if mode == "str":
            if isinstance(value, str):
                return len(value)
            own_str = type(value).__str__ is not object.__str__  # type: ignore[comparison-overlap]
            if own_str or _repr_kind(type(value)) is None:
                return len(str(value))  # its own __str__ (a file's content) or a leaf
        leaf = _leaf_repr_size(value)
        if leaf is not None:
            return leaf
        return _measure(self, value, cap, _leaf_repr_size, _repr_frame, memo=False)

    def json_size(self, value: Any, indent: int | None = None, limit: int | None = None) -> int:
        """An upper bound of ``len(json.dumps(value, indent=indent, ensure_ascii=False))``.

        Files count as ``{"path", "content"}`` and sets as lists (as :func:`~.filters.to_json`
        writes them). Returns ``limit + 1`` (default: ``max_output_size``) once over the limit.
        """
        cap = self.max_size if limit is None else limit
        return _json_size(value, indent, cap)


_PLAIN_CONTAINERS = frozenset(
    {list, tuple, dict, set, frozenset, Namespace, _DICT_KEYS, _DICT_VALUES, _DICT_ITEMS}
)
_BASE_REPRS = {list.__repr__: list, tuple.__repr__: tuple, dict.__repr__: dict}
_REPR_KINDS: dict[type, type | str | None] = {}


def _repr_kind(kind: type) -> type | str | None:
    """How ``repr`` of a ``kind`` instance is measured: as a built-in container type, as a
    named tuple (``"named"``), or ``None`` (a leaf: its own ``repr`` is called)."""
    try:
        return _REPR_KINDS[kind]
    except KeyError:
        pass
    found: type | str | None = None
    if kind in _PLAIN_CONTAINERS:
        found = kind
    elif issubclass(kind, tuple) and isinstance(getattr(kind, "_fields", None), tuple):
        found = "named" if kind.__repr__ is not tuple.__repr__ else tuple
    elif issubclass(kind, (list, tuple, dict)):
        found = _BASE_REPRS.get(kind.__repr__)
    _REPR_KINDS[kind] = found
    return found


def _leaf_data_size(value: Any) -> int | None:
    if isinstance(value, (str, bytes, bytearray)):
        return len(value)
    if isinstance(value, _CONTAINERS):
        return None
    return 1


_SCALARS = frozenset({int, float, bool, type(None)})
_FLAT = _SCALARS | {str}


def _data_frame(value: Any) -> tuple[Iterator[Any], int]:
    if type(value) in (list, tuple) and len(value) > 64:
        # A long flat list (numbers, strings) is measured at C speed, not item by item.
        types = set(map(type, value))
        if types <= _SCALARS:
            return iter(()), 1 + 2 * len(value)
        if types <= _FLAT:
            texts = value if types == {str} else [v for v in value if type(v) is str]
            return iter(()), 1 + 2 * len(value) - len(texts) + sum(map(len, texts))
    children, length = _children(value)
    return children, 1 + length


def _str_repr_size(text: str) -> int:
    if type(text) is str and text.isascii() and text.isprintable():
        quotes = text.count("'") if ("'" in text and '"' in text) else 0
        return len(text) + 2 + text.count("\\") + quotes
    return len(repr(text))


def _leaf_repr_size(value: Any) -> int | None:
    kind = type(value)
    if kind is str:
        return _str_repr_size(value)
    if kind is int and value.bit_length() > 256:
        return int(value.bit_length() * 0.30103) + 3
    if kind in _LEAF_TYPES or _repr_kind(kind) is None:
        return len(repr(value))
    return None


_LEAF_TYPES = frozenset({int, float, bool, type(None), bytes})


def _repr_frame(value: Any) -> tuple[Iterator[Any], int]:
    """Children and the fixed characters of the repr of a container."""
    kind = _repr_kind(type(value))
    children, n = _children(value)
    seps = 2 * (n - 1) if n else 0
    if kind in (list, tuple) and n > 64 and set(map(type, value)) <= _SCALARS:
        # Long lists of numbers: their reprs are short; measured at C speed.
        children, seps = iter(()), seps + sum(map(len, map(repr, value)))
    if kind == "named":
        fields = type(value)._fields
        return children, len(type(value).__name__) + 2 + seps + sum(len(f) + 1 for f in fields)
    if kind is list:
        return children, 2 + seps
    if kind is tuple:
        return children, 3 if n == 1 else 2 + seps
    if kind is dict:
        return children, 2 + seps + 2 * n
    if kind is set:
        return children, 2 + seps if n else 5
    if kind is frozenset:
        return children, 13 + seps if n else 11
    if kind is Namespace:
        return children, 12 + 2 + seps + 2 * n  # "<Namespace " + dict repr + ">"
    if kind is _DICT_KEYS:
        return children, 11 + 2 + seps
    if kind is _DICT_VALUES:
        return children, 13 + 2 + seps
    return children, 12 + 2 + seps + 4 * n  # dict_items([(k, v), ...])


def _measure(
    state: RenderState,
    root: Any,
    limit: int,
    leaf_size: Any,
    frame_of: Any,
    *,
    memo: bool = True,
) -> int:
    """Sum ``leaf_size`` over the expanded tree under ``root``, visiting each object once.

    Iterative (deep data cannot overflow the stack); a container met again inside itself (a
    namespace holding itself) counts as a short placeholder, as ``repr`` prints ``[...]``.
    """
    seen: dict[int, int] = {}  # this walk's sizes, by id
    alive: list[Any] = []  # keeps measured objects alive so their ids stay unique
    children, base = frame_of(root)
    stack: list[list[Any]] = [[root, children, base]]
    on_path = {id(root)}
    while stack:
        frame = stack[-1]
        for child in frame[1]:
            size = leaf_size(child)
            if size is None:
                size = seen.get(id(child))
                if size is None and memo:
                    size = state._recall(child)
                if size is None:
                    if id(child) in on_path:
                        size = 13
                    else:
                        grandchildren, base = frame_of(child)
                        stack.append([child, grandchildren, base])
                        on_path.add(id(child))
                        break
            frame[2] += size
            if frame[2] > limit:
                return limit + 1
        else:
            stack.pop()
            obj, _, size = frame
            on_path.discard(id(obj))
            seen[id(obj)] = size
            alive.append(obj)
            if memo:
                state.remember(obj, size)
            if not stack:
                return int(size)
            stack[-1][2] += size
            if stack[-1][2] > limit:
                return limit + 1
    return 0  # pragma: no cover - the loop always returns


def _json_str_size(text: str) -> int:
    if text.isascii() and text.isprintable():
        return len(text) + 2 + text.count('"') + text.count("\\")
    return len(json.encoder.encode_basestring(text))


def _json_leaf(value: Any) -> int | None:
    if isinstance(value, str):
        return _json_str_size(value)
    if value is None or isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return int(value.bit_length() * 0.30103) + 3
    if isinstance(value, float):
        return 24
    return None


def _json_size(root: Any, indent: int | None, limit: int) -> int:
    """An upper bound of the JSON text of ``root``; iterative, shared parts visited once."""
    step = indent if isinstance(indent, int) and indent > 0 else 0
    pretty = indent is not None
    seen: dict[tuple[int, int], int] = {}
    alive: list[Any] = []
    total = 0

    def frame(value: Any, depth: int) -> list[Any] | int:
        items: Iterator[Any]
        allowed = getattr(type(value), "_template_attributes", None)
        if allowed is not None and "content" in allowed:  # a FileInfo: {"path", "content"}
            return 30 + _json_str_size(value.path) + _json_str_size(value.content)
        if isinstance(value, dict):
            items, n, per = chain.from_iterable(value.items()), len(value), 2
        elif isinstance(value, (list, tuple, set, frozenset)):
            items, n, per = iter(value), len(value), 0
        else:
            return 0  # json.dumps refuses it; nothing to build
        if not n:
            return 2
        # "[" newline, per item: indent + ", "/"," + newline, closing indent and "]"
        line = 1 + step * (depth + 1) if pretty else 0
        fixed = 2 + n * (line + 2 + per) + step * depth
        return [value, items, fixed, depth]

    first = frame(root, 0)
    if isinstance(first, int):
        leaf = _json_leaf(root)
        return leaf if leaf is not None else first
    stack: list[list[Any]] = [first]
    while stack:
        top = stack[-1]
        for child in top[1]:
            size = _json_leaf(child)
            if size is None:
                key = (id(child), top[3] + 1 if pretty else 0)
                size = seen.get(key)
                if size is None:
                    made = frame(child, top[3] + 1)
                    if isinstance(made, int):
                        size = made
                    else:
                        stack.append(made)
                        break
            top[2] += size
            if top[2] > limit:
                return limit + 1
        else:
            stack.pop()
            seen[(id(top[0]), top[3] if pretty else 0)] = top[2]
            alive.append(top[0])
            if not stack:
                total = int(top[2])
                break
            stack[-1][2] += top[2]
            if stack[-1][2] > limit:
                return limit + 1
    return total


# --- the active state ---------------------------------------------------------------------------

_STATE: ContextVar[RenderState | None] = ContextVar("openai_structured_render_state", default=None)


def current_state(limits: RenderLimits | None = None) -> RenderState:
    """The state of the render in progress, or a fresh untimed one when none is.

    Outside a render (a filter called from Python), each call gets its own state: the limits
    on single values apply, the per-render totals and the deadline do not.
    """
    state = _STATE.get()
    if state is not None:
        return state
    return RenderState(limits or DEFAULT_RENDER_LIMITS, timed=False)


def active_state() -> RenderState | None:
    """The state of the render in progress, if any."""
    return _STATE.get()


@contextlib.contextmanager
def activate(limits: RenderLimits) -> Iterator[RenderState]:
    """Make a new render state current for the ``with`` block (reuses one already active)."""
    state = _STATE.get()
    if state is not None:
        yield state
        return
    state = RenderState(limits)
    token = _STATE.set(state)
    try:
        yield state
    finally:
        _STATE.reset(token)


# --- data read from text (front matter, -J, from_json) -----------------------------------------

MAX_DATA_DEPTH = 200
"""Deepest nesting of lists and objects accepted in front matter, ``-J`` and ``from_json``."""

MAX_DATA_INT_DIGITS = 4_300
"""Most digits of an integer accepted in front matter, ``-J`` and ``from_json`` (Python's own
limit for converting text to integers)."""

_JSON_TOKEN = re.compile(r'[\[\]{}"\\]')


class DataLimitError(ValueError):
    """Data text goes over :data:`MAX_DATA_DEPTH` or :data:`MAX_DATA_INT_DIGITS`."""


def _check_int(text: str) -> int:
    digits = len(text) - (text[:1] in "+-")
    if digits > MAX_DATA_INT_DIGITS:
        raise DataLimitError(
            f"a number with {digits:,} digits is over the limit of {MAX_DATA_INT_DIGITS:,} "
            f"digits for numbers in data; write it as a string instead"
        )
    return int(text)


def _json_depth(text: str) -> int:
    """The deepest nesting of lists and objects outside strings, in one pass: linear even for
    hostile text (a run of unclosed quotes made a string-matching regex quadratic)."""
    depth = deepest = 0
    in_string = False
    escaped = -1  # the position a backslash escapes
    for match in _JSON_TOKEN.finditer(text):
        at, char = match.start(), match.group()
        if at == escaped:
            continue
        if in_string:
            if char == "\\":
                escaped = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def loads_bounded(text: str) -> Any:
    """``json.loads`` refusing nesting deeper than :data:`MAX_DATA_DEPTH` and huge integers.

    Raises :class:`json.JSONDecodeError` for invalid JSON and :class:`DataLimitError` (a
    ``ValueError``) naming the limit otherwise, never a ``RecursionError``.
    """
    if text.count("[") + text.count("{") > MAX_DATA_DEPTH:
        depth = _json_depth(text)
        if depth > MAX_DATA_DEPTH:
            raise DataLimitError(
                f"lists and objects are nested {depth:,} levels deep, over the limit of "
                f"{MAX_DATA_DEPTH} levels for data; flatten the data"
            )
    try:
        return json.loads(text, parse_int=_check_int)
    except RecursionError:
        raise DataLimitError(
            f"lists and objects are nested too deeply (the limit is {MAX_DATA_DEPTH} levels)"
        ) from None


def check_int_text(text: str) -> int:
    """``int(text)`` for a number read from data, refusing more than the digit limit."""
    return _check_int(text)
