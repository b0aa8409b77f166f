"""Answers a model could give: values valid under a strict schema the compiler sent.

Shared by the property tests (hypothesis draws the choices) and the corpus contract test (a
seeded ``random.Random`` does). The generator covers the subset of JSON Schema strict mode
allows (``type``, ``properties``, ``items``, ``anyOf``, ``$ref``, ``enum``/``const``, string
``pattern``/``format``, number bounds and ``multipleOf``, ``minItems``/``maxItems``); what it
cannot produce raises :class:`GiveUp` with a short reason, so callers can count it.

Strings at the nodes listed in ``slots`` (the pointers where ``CompiledSchema.restore`` parses
a JSON-encoded string, see :func:`json_slots`) are JSON texts, so that restoring them has
something to parse (JSON objects where the description asks for one); an answer may still carry
a non-JSON string there on purpose (``broken_json``), which the restore must reject. The
``{key, value}`` entry lists of maps (see :func:`entry_lists`) get distinct keys, none of them
a declared property's name, since a key given twice is rejected by design.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

try:  # Python 3.11+
    import re._parser as sre_parse  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse  # type: ignore[no-redef]

T = TypeVar("T")

#: Where a generated value gets so deep or large that it is not worth finishing.
MAX_DEPTH = 40
MAX_NODES = 20_000

#: Strings for a plain ``{"type": "string"}``: empty, short, with spaces, digits.
STRINGS = ["", "a", "xyz", "Hello world", "0", "2024"]
#: JSON texts for a JSON-encoded-string slot.
JSON_TEXTS = ["null", "1", "-2.5", "true", '"s"', "[]", '[1, "x"]', "{}", '{"a": {"b": [null]}}']
#: JSON objects, for a slot whose description asks for one.
JSON_OBJECTS = ["{}", '{"a": 1}', '{"k": [true, null], "n": {"m": "x"}}']
#: Not JSON: what a careless model may write in such a slot.
BROKEN_JSON = "{not json"
FORMATS = {
    "date-time": "2024-01-02T03:04:05Z",
    "time": "03:04:05Z",
    "date": "2024-01-02",
    "duration": "P1D",
    "email": "a@example.com",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uuid": "6f1d0a56-0a4f-4a58-9d0e-1b2c3d4e5f60",
}


class GiveUp(Exception):
    """The generator cannot produce a value here (the reason says why)."""


class Chooser(Protocol):
    """Where the choices come from."""

    def pick(self, options: Sequence[T]) -> T: ...

    def integer(self, low: int, high: int) -> int: ...


class RandomChooser:
    """Choices from a seeded ``random.Random`` (deterministic for a given seed)."""

    def __init__(self, seed: int | str) -> None:
        self.rng = random.Random(seed)

    def pick(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)


class DrawChooser:
    """Choices drawn by hypothesis (``st.data()``), so that they shrink."""

    def __init__(self, data: Any) -> None:
        from hypothesis import strategies as st

        self.data = data
        self.st = st

    def pick(self, options: Sequence[T]) -> T:
        return self.data.draw(self.st.sampled_from(list(options)))  # type: ignore[no-any-return]

    def integer(self, low: int, high: int) -> int:
        return self.data.draw(self.st.integers(low, high))  # type: ignore[no-any-return]


def esc(segment: object) -> str:
    return str(segment).replace("~", "~0").replace("/", "~1")


def _kinds(compiled: Any) -> dict[str, tuple[str, Any]]:
    """Each node's restore kind, by pointer into the schema sent (see ``NodeRestore``)."""
    table = getattr(compiled, "_table", None) or {}
    return {ptr: entry.kind for ptr, entry in table.items() if entry.kind is not None}


def json_slots(compiled: Any) -> frozenset[str]:
    """The pointers (into the schema sent) of the strings ``restore`` parses as JSON."""
    return frozenset(ptr for ptr, kind in _kinds(compiled).items() if kind[0] == "json")


def entry_lists(compiled: Any) -> dict[str, frozenset[str]]:
    """The pointers of the ``{key, value}`` entry lists, each with the keys it must not use
    (the declared properties beside it)."""
    out: dict[str, frozenset[str]] = {}
    schema = compiled.schema
    for ptr, (kind, arg) in _kinds(compiled).items():
        if kind == "entries":
            out[ptr] = frozenset()
        elif kind == "extra":
            node = _at(schema, ptr)
            declared = frozenset(node.get("properties", {})) if isinstance(node, dict) else set()
            out[f"{ptr}/properties/{esc(arg)}"] = frozenset(declared)
    return out


def _at(schema: Any, ptr: str) -> Any:
    node = schema
    for part in ptr.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node


class Generator:
    """Draw one answer for a strict schema ``root``."""

    def __init__(
        self,
        root: dict[str, Any],
        chooser: Chooser,
        *,
        slots: frozenset[str] = frozenset(),
        entries: dict[str, frozenset[str]] | None = None,
        broken_json: bool = False,
    ) -> None:
        self.root = root
        self.choose = chooser
        self.slots = slots
        self.entries = entries or {}
        self.broken_json = broken_json
        self.nodes = 0

    def answer(self) -> Any:
        return self.value(self.root, "#", 0)

    # --- the walk ----------------------------------------------------------------------------

    def value(self, node: Any, ptr: str, depth: int, hint: str = "") -> Any:
        """A value for ``node`` at pointer ``ptr``; ``hint`` is the description of the anyOf
        around it (the compiler moves a nullable node's description onto its wrapper)."""
        self.nodes += 1
        if depth > MAX_DEPTH:
            raise GiveUp("too deep")
        if self.nodes > MAX_NODES:
            raise GiveUp("too large")
        if not isinstance(node, dict):
            raise GiveUp("boolean schema")
        if "$ref" in node:
            ref = node["$ref"]
            if ref == "#":
                return self.value(self.root, "#", depth + 1)
            name = ref[len("#/$defs/") :]
            return self.value(self.root["$defs"][name], f"#/$defs/{esc(name)}", depth + 1)
        if "anyOf" in node:
            branches = list(enumerate(node["anyOf"]))
            if depth > 8:  # steer recursion towards leaves, the usual way out
                leaves = [(i, b) for i, b in branches if not _container(b)]
                branches = leaves or branches
            i, branch = self.choose.pick(branches)
            hint = f"{hint} {node.get('description', '')}"
            return self.value(branch, f"{ptr}/anyOf/{i}", depth + 1, hint)
        if "const" in node:
            return node["const"]
        if "enum" in node:
            return self.choose.pick(node["enum"])
        kind = node.get("type")
        if isinstance(kind, list):
            kind = self.choose.pick(kind)
        if kind == "null":
            return None
        if kind == "boolean":
            return self.choose.pick([True, False])
        if kind in ("integer", "number"):
            return self.number(node, kind)
        if kind == "string":
            return self.string(node, ptr, hint)
        if kind == "array":
            low = node.get("minItems", 0)
            high = min(node.get("maxItems", low + 2), low + 2)
            if low > high:
                raise GiveUp("minItems > maxItems")
            n = low if depth > 6 else self.choose.integer(low, high)
            items = node.get("items", {})
            out = [self.value(items, f"{ptr}/items", depth + 1) for _ in range(n)]
            if ptr in self.entries:
                out = _distinct_keys(out, self.entries[ptr])
                if len(out) < low:
                    raise GiveUp("distinct map keys")
            return out
        if kind == "object":
            props = node.get("properties", {})
            return {
                k: self.value(v, f"{ptr}/properties/{esc(k)}", depth + 1) for k, v in props.items()
            }
        raise GiveUp(f"no type: {sorted(node)[:4]}")

    # --- leaves ------------------------------------------------------------------------------

    def string(self, node: dict[str, Any], ptr: str, hint: str = "") -> str:
        if ptr in self.slots:
            if self.broken_json:
                return BROKEN_JSON
            if "JSON object" in f"{hint} {node.get('description', '')}":
                return self.choose.pick(JSON_OBJECTS)
            return self.choose.pick(JSON_TEXTS)
        fmt = node.get("format")
        if "pattern" in node:
            text = regex_sample(node["pattern"], self.choose)
            if fmt is not None and text != FORMATS.get(fmt, text):
                raise GiveUp("pattern and format")
            return text
        if fmt is not None:
            if fmt not in FORMATS:
                raise GiveUp(f"format {fmt}")
            return FORMATS[fmt]
        return self.choose.pick(STRINGS)

    def number(self, node: dict[str, Any], kind: str) -> int | float:
        lo: float = -math.inf
        hi: float = math.inf
        lo_open = hi_open = False
        if "minimum" in node:
            lo = node["minimum"]
        if "exclusiveMinimum" in node and node["exclusiveMinimum"] >= lo:
            lo, lo_open = node["exclusiveMinimum"], True
        if "maximum" in node:
            hi = node["maximum"]
        if "exclusiveMaximum" in node and node["exclusiveMaximum"] <= hi:
            hi, hi_open = node["exclusiveMaximum"], True
        step = node.get("multipleOf", 1)
        if kind == "integer" and isinstance(step, float) and not step.is_integer():
            # integers that are multiples of a fraction: multiples of its numerator, roughly
            step = _integer_step(step)
        # Multiples k * step inside the bounds, within a window of 40 around 0 or a bound.
        k_lo = -math.inf if lo == -math.inf else math.ceil(lo / step)
        k_hi = math.inf if hi == math.inf else math.floor(hi / step)
        if k_lo == -math.inf and k_hi == math.inf:
            k_lo, k_hi = -20, 20
        elif k_lo == -math.inf:
            k_lo = k_hi - 40
        elif k_hi == math.inf:
            k_hi = k_lo + 40
        candidates: list[int | float] = []
        if k_hi - k_lo <= 80:
            ks = range(int(k_lo), int(k_hi) + 1)
        else:
            ks = [*range(int(k_lo), int(k_lo) + 20), *range(int(k_hi) - 19, int(k_hi) + 1)]
        for k in ks:
            value: int | float = k * step
            if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
                value = int(value)
            if _fits(value, lo, hi, lo_open, hi_open, node.get("multipleOf"), kind):
                candidates.append(value)
        if not candidates and kind == "number" and "multipleOf" not in node:
            middle = (lo + hi) / 2 if math.isfinite(lo) and math.isfinite(hi) else None
            if middle is not None and _fits(middle, lo, hi, lo_open, hi_open, None, kind):
                candidates.append(middle)
        if not candidates:
            raise GiveUp("number bounds")
        return self.choose.pick(candidates)


def _distinct_keys(entries: list[Any], reserved: frozenset[str]) -> list[Any]:
    seen = set(reserved)
    out = []
    for entry in entries:
        key = entry.get("key") if isinstance(entry, dict) else None
        if key not in seen:
            seen.add(key)
            out.append(entry)
    return out


def _container(node: Any) -> bool:
    return isinstance(node, dict) and (
        "$ref" in node or "anyOf" in node or node.get("type") in ("object", "array")
    )


def _integer_step(step: float) -> int:
    from fractions import Fraction

    return Fraction(step).limit_denominator(10**6).numerator or 1


def _fits(
    value: float,
    lo: float,
    hi: float,
    lo_open: bool,
    hi_open: bool,
    multiple: Any,
    kind: str,
) -> bool:
    """``value`` passes the bounds as ``jsonschema`` checks them (floats included)."""
    if kind == "integer" and not (isinstance(value, int) or float(value).is_integer()):
        return False
    if value < lo or (lo_open and value == lo) or value > hi or (hi_open and value == hi):
        return False
    if multiple is None:
        return True
    if isinstance(multiple, float):
        quotient = value / multiple
        return math.isfinite(quotient) and int(quotient) == quotient
    return not (value % multiple)


# --- strings for a regular expression ---------------------------------------------------------

_CATEGORY_CHARS = {
    sre_parse.CATEGORY_DIGIT: "0123456789",
    sre_parse.CATEGORY_NOT_DIGIT: "aZ_-",
    sre_parse.CATEGORY_WORD: "aZ0_",
    sre_parse.CATEGORY_NOT_WORD: " -.",
    sre_parse.CATEGORY_SPACE: " ",
    sre_parse.CATEGORY_NOT_SPACE: "aZ0-",
}
_ANY_CHARS = "aZ0-_ ."


def regex_sample(pattern: str, choose: Chooser) -> str:
    """A string ``re.search(pattern, s)`` accepts, or :class:`GiveUp`."""
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise GiveUp("pattern does not parse") from exc
    groups: dict[int, str] = {}
    text = _emit(parsed, choose, groups, 0)
    try:
        if re.search(pattern, text) is None:
            raise GiveUp("pattern sample did not match")
    except re.error as exc:
        raise GiveUp("pattern does not compile") from exc
    return text


def _emit(parsed: Any, choose: Chooser, groups: dict[int, str], depth: int) -> str:
    if depth > 30:
        raise GiveUp("pattern too deep")
    out: list[str] = []
    for op, arg in parsed:
        if op is sre_parse.LITERAL:
            out.append(chr(arg))
        elif op is sre_parse.NOT_LITERAL:
            out.append(next(c for c in "aZ0-" if ord(c) != arg))
        elif op is sre_parse.ANY:
            out.append(choose.pick(_ANY_CHARS))
        elif op is sre_parse.IN:
            out.append(_one_of_set(arg, choose))
        elif op is sre_parse.BRANCH:
            out.append(_emit(choose.pick(arg[1]), choose, groups, depth + 1))
        elif op is sre_parse.SUBPATTERN:
            group, _add, _del, sub = arg
            text = _emit(sub, choose, groups, depth + 1)
            if group is not None:
                groups[group] = text
            out.append(text)
        elif op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT) or (
            op is getattr(sre_parse, "POSSESSIVE_REPEAT", None)
        ):
            low, high, sub = arg
            top = low + 2 if high is sre_parse.MAXREPEAT else min(high, low + 2)
            if low > 50:
                raise GiveUp("pattern repeats too often")
            count = choose.integer(low, top)
            out.extend(_emit(sub, choose, groups, depth + 1) for _ in range(count))
        elif op is getattr(sre_parse, "ATOMIC_GROUP", None):
            out.append(_emit(arg, choose, groups, depth + 1))
        elif op is sre_parse.GROUPREF:
            out.append(groups.get(arg, ""))
        elif op is sre_parse.AT:
            continue  # anchors: the text is built to fit them, re.search checks the rest
        elif op is sre_parse.CATEGORY:
            out.append(choose.pick(_CATEGORY_CHARS.get(arg, "a")))
        else:  # lookarounds, conditionals: checked by re.search, likely to fail
            raise GiveUp(f"pattern uses {op}")
    return "".join(out)


def _one_of_set(items: Any, choose: Chooser) -> str:
    negate = bool(items) and items[0][0] is sre_parse.NEGATE
    members = items[1:] if negate else items
    if negate:
        for c in "aZ0-_ .x9":
            if not _in_set(c, members):
                return c
        raise GiveUp("negated set")
    options: list[str] = []
    for op, arg in members:
        if op is sre_parse.LITERAL:
            options.append(chr(arg))
        elif op is sre_parse.RANGE:
            low, high = arg
            options.extend(chr(c) for c in {low, (low + high) // 2, high})
        elif op is sre_parse.CATEGORY:
            options.append(choose.pick(_CATEGORY_CHARS.get(arg, "a")))
    if not options:
        raise GiveUp("empty set")
    return choose.pick(options)


def _in_set(c: str, members: Any) -> bool:
    for op, arg in members:
        if op is sre_parse.LITERAL and ord(c) == arg:
            return True
        if op is sre_parse.RANGE and arg[0] <= ord(c) <= arg[1]:
            return True
        if op is sre_parse.CATEGORY and c in _CATEGORY_CHARS.get(arg, ""):
            return True
    return False
