"""Guards for the operations a template can run: operators, string methods, formatting, filters.

Each guard works out the size a result *will* have from its inputs (a width, a repeat count, a
replacement times its occurrences, the printed length of a list) and refuses it before it is
built; results are then checked again and counted against the render's budget. The limits and
the counting live in :mod:`._limits`; this module knows the operations.

A few of Jinja's filters are replaced by versions that give the same output but can be stopped:
``wordwrap`` (textwrap is quadratic on long words and cannot be interrupted), ``urlize``
(worked through in pieces, so the deadline is checked), ``join``, ``sum``, ``list`` and
``pprint`` (they would otherwise build their whole result before anything could look at it).
"""

from __future__ import annotations

import functools
import pprint
import re
import textwrap
from collections.abc import Callable, Iterator, Mapping
from string import Formatter
from typing import Any, cast

from jinja2 import filters as jinja_filters
from jinja2.environment import Environment
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.utils import _PassArg, pass_context, pass_environment, pass_eval_context
from markupsafe import Markup

from ._limits import CLOCK_MASK, RenderState, current_state, is_container

__all__ = [
    "check_printf",
    "checked_binop",
    "guard_filters",
    "guard_method",
    "guarded_format",
    "guarded_range",
    "text_of",
]


def _digits(bits: int) -> int:
    """About how many decimal digits a number of ``bits`` bits has (integer arithmetic, so a
    huge exponent cannot overflow a float)."""
    return bits * 30103 // 100000 + 1


def text_of(state: RenderState, value: Any, what: str, *, mode: str = "str") -> str:
    """``str(value)`` (or ``repr``), refused before it is built if it would be over the limit."""
    if mode == "str" and isinstance(value, str):
        return value
    state.check_size(state.text_size(value, mode=mode), what)
    return str(value) if mode == "str" else repr(value)


def check_result(state: RenderState, result: Any, what: str, *, deep: bool = True) -> None:
    """Check a new value against the size limit and count it against the render's budget.

    ``deep`` measures containers with everything they hold (shared parts counted each time);
    otherwise only their length is counted (for results that only rearrange their input).
    """
    if isinstance(result, (str, bytes)):
        state.check_size(len(result), what)
        state.add_built(len(result), what)
    elif isinstance(result, (list, tuple, dict, set, frozenset)):
        state.check_size(state.data_size(result) if deep else len(result), what)
        state.add_built(len(result), what, items=True)


# --- operators ----------------------------------------------------------------------------------


def _repeat_size(state: RenderState, seq: Any, count: Any) -> int | None:
    if not isinstance(seq, (str, bytes, list, tuple)) or not isinstance(count, int):
        return None
    if count <= 0:
        return 0
    if isinstance(seq, (str, bytes)):
        return len(seq) * count
    return 1 + count * max(state.data_size(seq) - 1, 0)


#: Operand types and operators for which only the integer size can matter (see
#: ``TemplateEnvironment.call_binop``, which handles them without the general checks).
NUMBERS = frozenset({int, float, bool})
GROWING = frozenset({"*", "**"})
FEW_BITS = 4096  # an integer this small is far under any sensible digit limit


def digits_of(bits: int) -> int:
    """About how many decimal digits an integer of ``bits`` bits has."""
    return _digits(bits)


def checked_binop(state: RenderState, operator: str, left: Any, right: Any, native: Any) -> Any:
    """Apply ``left <operator> right``, refusing results over the size and integer limits."""
    state.ops += 1
    if not state.ops & CLOCK_MASK and state.deadline is not None:
        state.check_time()
    size: int | None = None
    if operator == "*":
        size = _repeat_size(state, left, right)
        if size is None:
            size = _repeat_size(state, right, left)
        if size is not None:
            kind = type(left if isinstance(left, (str, bytes, list, tuple)) else right).__name__
            state.check_size(size, f"repeating a {kind} with *")
        elif isinstance(left, int) and isinstance(right, int):
            state.check_digits(_digits(left.bit_length() + right.bit_length()), "this product")
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            state.check_digits(_digits(left.bit_length() * right), f"{left} ** {right}")
    elif operator == "+":
        if isinstance(left, (str, bytes)) and isinstance(right, (str, bytes)):
            state.check_size(len(left) + len(right), "joining two strings with +")
        elif isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
            size = 1 + state.data_size(left) + state.data_size(right)
            state.check_size(size, f"joining two {type(left).__name__}s with +")
    elif operator == "%" and isinstance(left, (str, bytes)):
        check_printf(state, left, right)
    result = native(left, right)
    if type(result) is int and operator in "+-*":
        state.check_digits(_digits(result.bit_length()), "this result")
    elif isinstance(result, (str, bytes)):
        state.add_built(len(result), f"the {operator} operator")
    elif isinstance(result, (list, tuple)):
        state.add_built(len(result), f"the {operator} operator", items=True)
        if size is not None:
            state.remember(result, size)
    return result


# --- printf-style formatting (% and the format filter) ---------------------------------------


def _printf_specs(fmt: str) -> Iterator[tuple[str | None, str, str | None, str]]:
    """``(key, width, precision, conversion)`` of each ``%`` directive, as Python parses them."""
    i, n = 0, len(fmt)
    while True:
        i = fmt.find("%", i)
        if i < 0 or i + 1 >= n:
            return
        i += 1
        key = None
        if fmt[i] == "(":
            depth, j = 1, i + 1
            while j < n and depth:
                depth += {"(": 1, ")": -1}.get(fmt[j], 0)
                j += 1
            key, i = fmt[i + 1 : j - 1], j
        while i < n and fmt[i] in "-+ #0":
            i += 1
        start, i = i, _number_end(fmt, i)
        width = fmt[start:i]
        precision = None
        if i < n and fmt[i] == ".":
            start, i = i + 1, _number_end(fmt, i + 1)
            precision = fmt[start:i]
        while i < n and fmt[i] in "hlL":
            i += 1
        yield key, width, precision, fmt[i : i + 1]
        i += 1


def _number_end(fmt: str, i: int) -> int:
    """The end of a width or precision at ``i``: ``*`` or a run of digits."""
    n = len(fmt)
    if i < n and fmt[i] == "*":
        return i + 1
    while i < n and fmt[i].isdigit():
        i += 1
    return i


@functools.lru_cache(maxsize=256)
def _cached_specs(fmt: str) -> tuple[tuple[str | None, str, str | None, str], ...]:
    return tuple(_printf_specs(fmt))


def _number(text: str | None, pending: list[Any]) -> int | None:
    """A width or precision: digits, or ``*`` (the next argument); ``None`` if absent/unusable."""
    if not text:
        return None
    if text == "*":
        if not pending:
            return None
        value = pending.pop(0)
        return abs(value) if isinstance(value, int) else None
    return int(text) if len(text) <= 12 else 10**12


def _converted_size(state: RenderState, conversion: str, arg: Any, precision: int | None) -> int:
    if conversion in "sb":
        if isinstance(arg, (str, bytes)):
            return len(arg) if precision is None else min(len(arg), precision)
        size = state.text_size(arg)
        state.check_size(size, "a %s conversion")
        return size if precision is None else min(size, precision)
    if conversion in "ra":
        size = state.text_size(arg, mode="repr")
        state.check_size(size, f"a %{conversion} conversion")
        return size * (10 if conversion == "a" else 1)
    if conversion == "c":
        return 1
    if isinstance(arg, int):
        return _digits(arg.bit_length()) * 2 + (precision or 0) + 4  # o/x/d, sign, prefix
    return 330 + (precision or 0)  # a float: at most 309 digits before the point


def check_printf(state: RenderState, fmt: str | bytes, args: Any) -> None:
    """Refuse ``fmt % args`` before it runs if its result would be over the size limit."""
    text = fmt if isinstance(fmt, str) else fmt.decode("latin-1")
    if "%" not in text:
        return
    specs = _cached_specs(text) if len(text) <= 256 else _printf_specs(text)
    positional = list(args) if isinstance(args, tuple) else [args]
    mapping: Any = None
    total = len(text)
    for count, (key, width_text, precision_text, conversion) in enumerate(specs):
        if not count & 1023:
            state.tick()
        width = _number(width_text, positional) or 0
        precision = _number(precision_text, positional)
        state.check_size(max(width, precision or 0), "a % format width or precision")
        if conversion == "%":
            total += 1
            continue
        if key is not None:
            if mapping is None:
                mapping = args if isinstance(args, Mapping) else {}
            if key not in mapping:
                return  # Python raises for this format; nothing gets built
            arg = mapping[key]
        elif positional:
            arg = positional.pop(0)
        else:
            return
        total += max(width, _converted_size(state, conversion, arg, precision)) + 4
        state.check_size(total, "this % format")


# --- str.format -------------------------------------------------------------------------------

_SPEC_NUMBER = re.compile(r"\d+")


class _BoundedFormatting(Formatter):
    """``str.format`` that checks every width, precision and field against the size limit."""

    _state: RenderState
    _total: int

    def vformat(self, format_string: Any, args: Any, kwargs: Any) -> str:
        self._state = current_state()
        self._total = len(format_string)
        self._state.tick()
        return super().vformat(format_string, args, kwargs)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion in ("r", "a", "s") and not isinstance(value, str):
            mode = "str" if conversion == "s" else "repr"
            self._state.check_size(self._state.text_size(value, mode=mode), "a format field")
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        for match in _SPEC_NUMBER.finditer(format_spec):
            digits = match.group()
            number = int(digits) if len(digits) <= 12 else 10**12
            self._state.check_size(number, "a format width or precision")
        if not format_spec and not isinstance(value, str):
            self._state.check_size(self._state.text_size(value), "a format field")
        result = super().format_field(value, format_spec)
        self._total += len(result)
        self._state.check_size(self._total, "this format string")
        return result


class _Formatter(_BoundedFormatting, SandboxedFormatter):
    pass


class _EscapeFormatter(_BoundedFormatting, SandboxedEscapeFormatter):
    pass


def guarded_format(environment: Environment, method: Any) -> Callable[..., str]:
    """Replace a string's ``format``/``format_map`` with a sandboxed, size-checked one."""
    owner = method.__self__
    formatter: SandboxedFormatter
    if isinstance(owner, Markup):
        formatter = _EscapeFormatter(environment, escape=owner.escape)
    else:
        formatter = _Formatter(environment)
    is_format_map = method.__name__ == "format_map"
    kind = type(owner)

    def wrapper(*args: Any, **kwargs: Any) -> str:
        if is_format_map:
            if kwargs:
                raise TypeError("format_map() takes no keyword arguments")
            if len(args) != 1:
                raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
            kwargs, args = args[0], ()
        return cast(str, kind(formatter.vformat(owner, args, kwargs)))  # Markup stays Markup

    return functools.update_wrapper(wrapper, method)


# --- string methods -------------------------------------------------------------------------


def _width(state: RenderState, owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    width = args[0] if args else kwargs.get("width")
    if isinstance(width, int):
        state.check_size(max(width, len(owner)), "padding a string to this width")


def _expandtabs(
    state: RenderState, owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    size = args[0] if args else kwargs.get("tabsize", 8)
    if isinstance(size, int):
        tab = "\t" if isinstance(owner, str) else b"\t"
        state.check_size(len(owner) + owner.count(tab) * max(size, 0), "expanding tabs")


def _replace_size(owner: Any, old: Any, new: Any, count: Any) -> int | None:
    if not isinstance(old, type(owner)) or not isinstance(new, type(owner)):
        return None
    found = owner.count(old) if old else len(owner) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(owner) + found * (len(new) - len(old))


def _replace(state: RenderState, owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if len(args) >= 2:
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        size = _replace_size(owner, args[0], args[1], count)
        if size is not None:
            state.check_size(size, "this replace()")


def _translate(
    state: RenderState, owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    table = args[0] if args else None
    if not isinstance(owner, str) or table is None:
        return
    values = table.values() if isinstance(table, Mapping) else table
    longest = 1
    for value in values if isinstance(values, (list, tuple, str, type({}.values()))) else ():
        if isinstance(value, str):
            longest = max(longest, len(value))
    state.check_size(len(owner) * longest, "this translate()")


def _encode(state: RenderState, owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    errors = args[1] if len(args) > 1 else kwargs.get("errors", "strict")
    if isinstance(owner, str) and errors not in ("strict", "ignore", "replace"):
        wide = len(owner) - len(owner.encode("ascii", "ignore"))
        state.check_size(len(owner) + wide * 100, "this encode()")  # namereplace: long names


_METHOD_CHECKS: dict[str, Callable[[RenderState, Any, tuple[Any, ...], dict[str, Any]], None]] = {
    "center": _width,
    "ljust": _width,
    "rjust": _width,
    "zfill": _width,
    "expandtabs": _expandtabs,
    "replace": _replace,
    "translate": _translate,
    "encode": _encode,
    "decode": lambda state, owner, args, kwargs: state.check_size(4 * len(owner), "decode()"),
}
_RESULT_ONLY = frozenset({"split", "rsplit", "splitlines", "join", "partition", "rpartition"})
GUARDED_METHODS = frozenset(_METHOD_CHECKS) | _RESULT_ONLY


def guard_method(method: Any) -> Callable[..., Any]:
    """Wrap a ``str``/``bytes`` method that can build large results with a size check."""
    owner = method.__self__
    name = method.__name__
    check = _METHOD_CHECKS.get(name)
    what = f"{type(owner).__name__}.{name}()"

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = current_state()
        state.tick()
        if name == "join" and args:
            items = list(args[0])  # materialised once: sized here, joined below
            strings = [i for i in items if isinstance(i, (str, bytes))]
            if len(strings) == len(items):
                sizes = sum(map(len, strings)) + len(owner) * max(len(items) - 1, 0)
                state.check_size(sizes, what)
            args = (items, *args[1:])
        elif check is not None:
            check(state, owner, args, kwargs)
        result = method(*args, **kwargs)
        if isinstance(result, (str, bytes, list)):
            state.check_size(len(result), what)  # counted against the budget by call()
        return result

    return functools.update_wrapper(wrapper, method)


# --- range ------------------------------------------------------------------------------------


def guarded_range(*args: int) -> range:
    """``range`` refusing more than ``max_range`` items (replaces Jinja's fixed 100,000)."""
    state = current_state()
    numbers = range(*args)
    try:
        count: int | None = len(numbers)
    except OverflowError:
        count = None
    if count is None or count > state.limits.max_range:
        shown = ", ".join(str(a) if abs(a) < 10**15 else "<huge>" for a in args)
        state.check_range(count, f"range({shown})")
    return numbers


# --- filters ---------------------------------------------------------------------------------

# Filters that turn their input into text first: a list given to them is printed, so its
# printed size is checked before they run.
_STRINGIFYING = frozenset(
    {
        "capitalize",
        "center",
        "e",
        "escape",
        "forceescape",
        "format",
        "indent",
        "lower",
        "replace",
        "safe",
        "string",
        "striptags",
        "title",
        "trim",
        "truncate",
        "upper",
        "urlencode",
        "urlize",
        "wordcount",
        "wordwrap",
        "xmlattr",
        "word_count",
        "char_count",
        "dedent",
        "from_json",
    }
)

# Filters whose result is built only from their input's own items (reordered, selected,
# grouped): its length is counted, not re-measured item by item.
_REARRANGING = frozenset(
    {
        "sort",
        "sort_by",
        "unique",
        "reverse",
        "dictsort",
        "groupby",
        "group_by",
        "filter_by",
        "pluck",
        "frequency",
        "pivot_table",
        "aggregate",
        "summarize",
        "from_json",
    }
)


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _check_center(
    state: RenderState, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    width = _arg(args, kwargs, 0, "width", 80)
    if isinstance(width, int):
        state.check_size(width, "center()")


def _check_indent(
    state: RenderState, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    width = _arg(args, kwargs, 0, "width", 4)
    step = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    text = text_of(state, value, "indent()")
    lines = text.count("\n") + 2
    state.check_size(len(text) + lines * max(step, 0), "indent()")


def _check_replace(
    state: RenderState, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    if len(args) < 2:
        return
    text = text_of(state, value, "replace()")
    old = text_of(state, args[0], "replace()")
    new = text_of(state, args[1], "replace()")
    count = _arg(args, kwargs, 2, "count", None)
    size = _replace_size(text, old, new, -1 if count is None else count)
    if size is not None:
        state.check_size(size, "replace()")


def _check_format(
    state: RenderState, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    check_printf(state, text_of(state, value, "format()"), kwargs or args)


def _check_escape(
    state: RenderState, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    if isinstance(value, str) and not hasattr(value, "__html__"):
        special = sum(value.count(c) for c in "&<>\"'")
        state.check_size(len(value) + 4 * special, "escaping")


def _check_batch(
    state: RenderState, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    count = _arg(args, kwargs, 0, "linecount", 0)
    fill = _arg(args, kwargs, 1, "fill_with", None)
    if fill is not None and isinstance(count, int) and count > 0:
        state.check_size(count * (1 + state.data_size(fill)), "batch() with fill_with")


def _check_slice(
    state: RenderState, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    count = _arg(args, kwargs, 0, "slices", 0)
    if isinstance(count, int):
        state.check_size(count, "slice()")


_PRE_CHECKS: dict[str, Callable[[RenderState, Any, tuple[Any, ...], dict[str, Any]], None]] = {
    "center": _check_center,
    "indent": _check_indent,
    "replace": _check_replace,
    "format": _check_format,
    "e": _check_escape,
    "escape": _check_escape,
    "forceescape": _check_escape,
    "batch": _check_batch,
    "slice": _check_slice,
}


@pass_eval_context
def _join(eval_ctx: EvalContext, value: Any, d: Any = "", attribute: Any = None) -> str:
    """Jinja's ``join``, with the items' text measured before anything is joined."""
    state = current_state()
    if attribute is not None:
        value = map(jinja_filters.make_attrgetter(eval_ctx.environment, attribute), value)
    separator = d if isinstance(d, str) else text_of(state, d, "join()")
    items: list[Any] = []
    total = 0
    for item in value:
        if not isinstance(item, str) and not hasattr(item, "__html__"):
            item = text_of(state, item, "join()")
        total += len(item) + len(separator) if isinstance(item, str) else len(separator) + 1
        if total > state.max_size or len(items) & 1023 == 1023:
            state.check_size(total, "join()")
            state.tick()
        items.append(item)
    state.check_size(total, "join()")
    return jinja_filters.sync_do_join(eval_ctx, items, separator)


@pass_environment
def _sum(environment: Environment, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
    """Jinja's ``sum``; lists and strings are added one by one through the checked ``+``."""
    if attribute is not None:
        iterable = map(jinja_filters.make_attrgetter(environment, attribute), iterable)
    if isinstance(start, (int, float)):
        return sum(iterable, start)
    state = current_state()
    total = start
    for item in iterable:
        total = checked_binop(state, "+", total, item, lambda a, b: a + b)
    return total


def _list(value: Any) -> list[Any]:
    """Jinja's ``list``, counting items as it goes and measuring what the list holds."""
    state = current_state()
    try:
        length: int | None = len(value)
    except TypeError:
        length = None
    if length is not None:
        state.check_size(length, "list()")
        result = list(value)
    else:
        result = []
        for item in value:
            result.append(item)
            if not len(result) & 1023:
                state.check_size(len(result), "list()")
                state.tick()
    state.check_size(state.data_size(result), "list()")
    return result


class _CountingWriter:
    """A stream that refuses to hold more than the size limit (for ``pprint``)."""

    def __init__(self, state: RenderState, what: str) -> None:
        self._state = state
        self._what = what
        self._parts: list[str] = []
        self._total = 0

    def write(self, text: str) -> int:
        self._total += len(text)
        self._state.check_size(self._total, self._what)
        self._state.tick()
        self._parts.append(text)
        return len(text)

    def getvalue(self) -> str:
        return "".join(self._parts)


def _pprint(value: Any) -> str:
    """Jinja's ``pprint`` (``pprint.pformat``), written through a size-checking stream."""
    state = current_state()
    state.check_size(state.text_size(value, mode="repr"), "pprint()")
    writer = _CountingWriter(state, "pprint()")
    pprint.PrettyPrinter(stream=writer).pprint(value)  # type: ignore[arg-type]
    return writer.getvalue()[:-1]  # pprint() ends with a newline, pformat() does not


_URLIZE_PIECE = 65_536
_WHITESPACE = re.compile(r"\s")


@pass_eval_context
def _urlize(eval_ctx: EvalContext, value: Any, *args: Any, **kwargs: Any) -> str:
    """Jinja's ``urlize``, run on whitespace-separated pieces so the deadline is checked.

    ``urlize`` works word by word, so pieces cut just before whitespace give the same result.
    """
    state = current_state()
    if not isinstance(value, str) or len(value) <= _URLIZE_PIECE:
        return jinja_filters.do_urlize(eval_ctx, value, *args, **kwargs)
    parts: list[str] = []
    total = 0
    start = 0
    while start < len(value):
        found = _WHITESPACE.search(value, start + _URLIZE_PIECE)
        end = found.start() if found else len(value)
        part = jinja_filters.do_urlize(eval_ctx, value[start:end], *args, **kwargs)
        total += len(part)
        state.check_size(total, "urlize()")
        state.check_time()
        parts.append(part)
        start = end
    joined = "".join(parts)
    return Markup(joined) if eval_ctx.autoescape else joined


class _TickingChunks(list[str]):
    """textwrap's chunk stack; each chunk taken off it counts as one operation of the render."""

    state: RenderState

    def pop(self, index: Any = -1) -> str:
        self.state.tick()
        return super().pop(index)


class _Wrapper(textwrap.TextWrapper):
    """textwrap with long words broken in one pass (the standard one is quadratic) and the
    render's deadline checked while it works. Output is the same as ``textwrap.wrap``'s."""

    def __init__(self, state: RenderState, **options: Any) -> None:
        super().__init__(**options)
        self._state = state

    def _split_chunks(self, text: str) -> list[str]:
        chunks = _TickingChunks(super()._split_chunks(text))
        chunks.state = self._state
        return chunks

    def _handle_long_word(
        self, reversed_chunks: list[str], cur_line: list[str], cur_len: int, width: int
    ) -> None:
        super()._handle_long_word(reversed_chunks, cur_line, cur_len, width)
        if not self.break_long_words or not reversed_chunks:
            return
        rest = reversed_chunks[-1]
        size = max(width, 1)
        if len(rest) <= 2 * size or not rest.strip():
            return
        # The standard wrapper now takes the rest one line at a time, copying what is left each
        # time. Cut it here the same way, each piece followed by a whitespace chunk a full line
        # wide: it never fits after a piece, so the line ends there, and it is dropped at the
        # start of the next line, exactly as textwrap ends a line after a broken word.
        breaker = " " * size
        pieces: list[str] = []
        start, end_of_rest = 0, len(rest)
        while end_of_rest - start > size:
            end = size
            if self.break_on_hyphens:
                hyphen = rest.rfind("-", start, start + size) - start
                if hyphen > 0 and rest[start : start + hyphen].strip("-"):
                    end = hyphen + 1
            pieces.append(rest[start : start + end])
            pieces.append(breaker)
            start += end
        pieces.append(rest[start:])
        pieces.reverse()
        reversed_chunks[-1:] = pieces


@pass_environment
def _wordwrap(
    environment: Environment,
    s: str,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    """Jinja's ``wordwrap``, linear in its input and stoppable by the render's deadline."""
    state = current_state()
    if wrapstring is None:
        wrapstring = environment.newline_sequence
    wrapper = _Wrapper(
        state,
        width=width,
        expand_tabs=False,
        replace_whitespace=False,
        break_long_words=break_long_words,
        break_on_hyphens=break_on_hyphens,
    )
    # A line without whitespace (or hyphens textwrap would break at) is one word: its lines
    # are plain slices, which is what textwrap gives, without its per-line cost.
    one_word = isinstance(width, int) and width > 0 and break_long_words
    paragraphs: list[str] = []
    total = 0
    for line in s.splitlines():
        if (
            one_word
            and len(line) > width
            and not (break_on_hyphens and "-" in line)
            and not _WHITESPACE.search(line)
        ):
            lines = [line[i : i + width] for i in range(0, len(line), width)]
        else:
            lines = wrapper.wrap(line)
        total += sum(map(len, lines)) + len(wrapstring) * (len(lines) + 1)
        state.check_size(total, "wordwrap()")
        state.check_time()
        paragraphs.append(wrapstring.join(lines))
    return wrapstring.join(paragraphs)


_REPLACEMENTS: dict[str, Callable[..., Any]] = {
    "join": _join,
    "sum": _sum,
    "list": _list,
    "pprint": _pprint,
    "urlize": _urlize,
    "wordwrap": _wordwrap,
}


def guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` wrapped so that every call is counted, pre-checked and its result checked."""
    func = _REPLACEMENTS.get(name, func)
    pass_arg = _PassArg.from_obj(func)
    pre_check = _PRE_CHECKS.get(name)
    stringifies = name in _STRINGIFYING
    deep = name not in _REARRANGING
    what = f"the {name} filter"

    @pass_context
    def guarded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        state = current_state()
        state.ops += 1  # tick(), inlined: filters are the hottest path
        if not state.ops & CLOCK_MASK and state.deadline is not None:
            state.check_time()
        if stringifies and is_container(value):
            state.check_size(state.text_size(value), what)
        if pre_check is not None:
            pre_check(state, value, args, kwargs)
        if pass_arg is _PassArg.context:
            result = func(context, value, *args, **kwargs)
        elif pass_arg is _PassArg.eval_context:
            result = func(context.eval_ctx, value, *args, **kwargs)
        elif pass_arg is _PassArg.environment:
            result = func(context.environment, value, *args, **kwargs)
        else:
            result = func(value, *args, **kwargs)
        if type(result) is str:  # check_result(), inlined for the common case
            if len(result) > state.max_size:
                state.check_size(len(result), what)
            state.built += len(result)
            if state.built > state.budget:
                state.add_built(0, what)
        else:
            check_result(state, result, what, deep=deep)
        return result

    functools.update_wrapper(guarded, func)
    guarded.jinja_pass_arg = _PassArg.context  # type: ignore[attr-defined]
    return guarded


_GUARDED: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {}


def guard_filters(filters: dict[str, Callable[..., Any]]) -> None:
    """Wrap every filter in ``filters`` (in place) with :func:`guard_filter`.

    Wrappers do not depend on the environment, so they are made once per filter function.
    """
    for name, func in list(filters.items()):
        made = _GUARDED.get(name)
        if made is None or made[0] is not func:
            made = (func, guard_filter(name, func))
            _GUARDED[name] = made
        filters[name] = made[1]
