"""``allOf`` merging: one schema equal to the conjunction of its parts.

Strict mode has no ``allOf`` (nor keywords beside ``$ref``), so the parts are inlined, ``$ref``s
included, and their keywords intersected: bounds tighten, enums and types intersect,
``required`` lists join, properties of the same name become a nested ``allOf`` that the compiler
merges in turn. ``anyOf``/``oneOf`` among the parts are distributed, ``A and (B or C)`` =
``(A and B) or (A and C)``, so the result has no combinator the compiler cannot take.

Each subschema carries a mark (``_keywords.mark``) with the input path it came from, so that an
error inside a merged schema still names the place the user wrote it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from itertools import product
from typing import Any, Literal

from ._keywords import (
    KNOWN_KEYWORDS,
    SRC,
    SUBSCHEMA_KEYS,
    SUBSCHEMA_LIST_KEYS,
    SUBSCHEMA_MAP_KEYS,
    Schema,
    canon,
    child,
    is_number,
    mark,
    normalize_draft4,
    ref_key,
    unmark,
)
from ._refs import RefIndex, UnresolvedRef

MAX_BRANCHES = 64  # anyOf branches produced by distributing combinators
MAX_MERGE_STEPS = 500

Part = tuple[Any, str, bool]  # (subschema, input path, frozen: errors keep the owner's path)

# Keywords that say nothing about the merged value: dropped rather than intersected.
_NOT_MERGED = frozenset(
    {
        "$defs",
        "definitions",
        "$schema",
        "$id",
        "id",
        "$anchor",
        "$comment",
        "discriminator",
        "$dynamicAnchor",
        "$recursiveAnchor",
    }
)
_FIRST_WINS = frozenset({"title", "description", "default", "examples", "example"})
_LOWER_BOUNDS = frozenset(
    {"minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties", "minContains"}
)
_UPPER_BOUNDS = frozenset(
    {"maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties", "maxContains"}
)


#: Keywords the compiler does not send (strict mode cannot express them); the answer is checked
#: against the original schema instead, so parts that disagree on them still merge.
CHECKED_AFTER = frozenset(
    {"not", "if", "then", "else", "contains", "dependentSchemas", "propertyNames"}
)


class Unsatisfiable(Exception):
    """The parts contradict each other: no value can match them all."""


class RecursiveMerge(Exception):
    """Merging would inline ``target`` inside its own expansion: it never ends. The compiler
    sends a reference to ``target`` instead, the other parts checked after the answer."""

    def __init__(self, target: str, path: str) -> None:
        super().__init__(target)
        self.target = target
        self.path = path


class MergeError(Exception):
    """The parts cannot be merged (malformed, too large, recursive); ``path`` names the culprit."""

    def __init__(self, path: str, reason: str, fix: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason
        self.fix = fix


@dataclass(frozen=True)
class Merged:
    """A merge result: ``schema`` is ``False`` when a part is ``false``."""

    schema: Schema | Literal[False]
    # (target pointer, where it was inlined): the compiler must not inline them again below,
    # or a recursive reference would be expanded forever.
    refs: frozenset[tuple[str, str]]


def merge_all_of(
    parts: list[Part],
    path: str,
    refs: RefIndex,
    merging: Collection[tuple[str, str]],
    change: Callable[[str, str], None],
    sites: Collection[str] = (),
) -> Merged:
    """One schema equal to ``allOf(parts)``, with no allOf or $ref at its top.

    ``merging`` holds the references inlined by the merges enclosing this one, ``sites`` the
    places of the document whose merge encloses this one; ``change`` records rewrites. Raises
    :class:`MergeError`, :class:`Unsatisfiable` or :class:`RecursiveMerge`.
    """
    flat, inlined = _flatten(parts, path, refs, merging, sites)
    if flat is False:
        return Merged(False, inlined)

    choices: list[list[Part]] = []
    base: list[tuple[Schema, str, bool]] = []
    for sch, p, fz in flat:
        for key in ("anyOf", "oneOf"):
            if key not in sch:
                continue
            items = sch[key]
            if not isinstance(items, list) or not items:
                raise MergeError(
                    child(p, key, frozen=fz), f"{key} must be a non-empty list", "fix the schema"
                )
            if key == "oneOf":
                change(p, "oneOf rewritten as anyOf")
            choices.append([(it, child(p, key, i, frozen=fz), fz) for i, it in enumerate(items)])
        base.append(
            ({k: v for k, v in sch.items() if k not in ("anyOf", "oneOf", "discriminator")}, p, fz)
        )

    if not choices:
        return Merged(_intersect(base, path), inlined)
    count = math.prod(len(c) for c in choices)
    if count > MAX_BRANCHES:
        raise MergeError(
            path,
            f"combining these anyOf/oneOf lists gives {count} alternatives (limit {MAX_BRANCHES})",
            "simplify the alternatives",
        )
    outer = {k: v for s, _, _ in base for k, v in s.items() if k in ("title", "description")}
    plain = [
        ({k: v for k, v in s.items() if k not in ("title", "description")}, p, fz)
        for s, p, fz in base
    ]
    branches = [
        {"allOf": [mark(s, p, fz) for s, p, fz in [*plain, *combo]], SRC: (path, True)}
        for combo in product(*choices)
    ]
    return Merged({**outer, "anyOf": branches}, inlined)


def _flatten(
    parts: list[Part],
    path: str,
    refs: RefIndex,
    merging: Collection[tuple[str, str]],
    sites: Collection[str] = (),
) -> tuple[list[tuple[Schema, str, bool]] | Literal[False], frozenset[tuple[str, str]]]:
    """The parts with every nested allOf and $ref expanded in place (``False``: a part is false)."""
    flat: list[tuple[Schema, str, bool]] = []
    work = list(parts)
    seen: set[tuple[str, str]] = set()
    steps = 0
    while work:
        steps += 1
        if steps > MAX_MERGE_STEPS:
            raise MergeError(path, "allOf is too large to merge", "simplify the schema")
        sch, p, fz = unmark(*work.pop(0))
        if sch is True:
            continue
        if sch is False:
            return False, frozenset(seen)
        if not isinstance(sch, dict):
            raise MergeError(p, "a schema must be an object or a boolean", "fix the schema")
        sch = normalize_draft4(sch)
        key = ref_key(sch)
        if key is not None:
            ref = sch[key]
            sch = {k: v for k, v in sch.items() if k != key}
            if not isinstance(ref, str):
                raise MergeError(p, f"{key} must be a string", "fix the reference")
            try:
                ptr = refs.resolve(ref, p)
            except UnresolvedRef as exc:
                raise MergeError(p, exc.reason, exc.fix) from None
            work.insert(0, (sch, p, fz))
            if (ptr, p) in merging or ptr in sites:
                raise RecursiveMerge(ptr, p)
            # A and A = A: expanding a reference twice adds nothing (also ends cycles).
            if ptr not in {r for r, _ in seen}:
                seen.add((ptr, p))
                work.insert(0, (refs.target(ptr), ptr, False))
            continue
        if "allOf" in sch:
            items = sch["allOf"]
            rest = {k: v for k, v in sch.items() if k != "allOf"}
            if not isinstance(items, list):
                raise MergeError(p, "allOf must be a list", "fix the schema")
            work[0:0] = [(rest, p, fz)] + [
                (it, child(p, "allOf", i, frozen=fz), fz) for i, it in enumerate(items)
            ]
            continue
        flat.append((sch, p, fz))
    return flat, frozenset(seen)


def _mark_children(key: str, value: Any, path: str, frozen: bool) -> Any:
    """Tag the subschemas under ``key`` with their own paths before they are moved around."""
    if key in SUBSCHEMA_KEYS or (key == "items" and isinstance(value, dict)):
        return mark(value, child(path, key, frozen=frozen), frozen)
    if key == "items" and isinstance(value, list):
        return [mark(v, child(path, key, i, frozen=frozen), frozen) for i, v in enumerate(value)]
    if key in SUBSCHEMA_MAP_KEYS and isinstance(value, dict):
        return {n: mark(v, child(path, key, n, frozen=frozen), frozen) for n, v in value.items()}
    if key in SUBSCHEMA_LIST_KEYS and isinstance(value, list):
        return [mark(v, child(path, key, i, frozen=frozen), frozen) for i, v in enumerate(value)]
    return value


def _intersect(base: list[tuple[Schema, str, bool]], path: str) -> Schema:
    """Keyword-by-keyword intersection of parts that have no combinator left."""
    values: dict[str, list[Any]] = {}
    for sch, p, fz in base:
        for key, value in sch.items():
            values.setdefault(key, []).append(_mark_children(key, value, p, fz))
    out: Schema = {}
    for key, vals in values.items():
        if key in _NOT_MERGED:
            continue
        if len(vals) == 1 or key in _FIRST_WINS:
            out[key] = vals[0]
        elif key == "type":
            out[key] = _merge_types(vals)
        elif key not in KNOWN_KEYWORDS:
            out[key] = vals[0]  # a non-standard keyword (x-..., ...): never sent
        elif key in ("properties", "patternProperties"):
            names: dict[str, list[Any]] = {}
            for v in vals:
                if isinstance(v, dict):
                    for n, sub in v.items():
                        names.setdefault(n, []).append(sub)
            out[key] = {n: _conjunction(subs, path) for n, subs in names.items()}
        elif key == "items" and all(isinstance(v, (dict, bool)) for v in vals):
            out[key] = _conjunction(vals, path)
        elif key == "required":
            out[key] = list(dict.fromkeys(r for v in vals if isinstance(v, list) for r in v))
        elif key == "additionalProperties":
            schemas = [v for v in vals if v is not False and v is not True and v != {}]
            out[key] = schemas[0] if schemas else not any(v is False for v in vals)
        elif key == "enum":
            out[key] = _merge_enum(vals)
        elif key in _LOWER_BOUNDS:
            out[key] = max(vals) if all(is_number(v) for v in vals) else vals[0]
        elif key in _UPPER_BOUNDS:
            out[key] = min(vals) if all(is_number(v) for v in vals) else vals[0]
        elif key == "multipleOf":
            out[key] = _merge_multiple(vals)
        elif key == "uniqueItems":
            out[key] = any(v is True for v in vals)
        elif key == "nullable":
            out[key] = all(v is True for v in vals)
        elif len({canon(v) for v in vals}) == 1:
            out[key] = vals[0]
        elif key in CHECKED_AFTER:
            out[key] = vals[0]  # never sent: the original schema is checked after the answer
        else:
            raise Unsatisfiable(f"different values for {key!r} cannot be combined")
    # A closed part forbids the keys the other parts add; with every property required in
    # strict mode that would make the merged object impossible, so refuse it explicitly.
    merged_names = (
        set(out.get("properties", {})) if isinstance(out.get("properties"), dict) else set()
    )
    for sch, p, _ in base:
        if sch.get("additionalProperties") is False:
            declared = sch.get("properties")
            own: dict[str, Any] = declared if isinstance(declared, dict) else {}
            extra = sorted(merged_names - set(own))
            if extra:
                raise Unsatisfiable(
                    f"the part at {p} is closed (additionalProperties: false) but other "
                    f"parts add {extra}"
                )
    return out


def _conjunction(subs: list[Any], path: str) -> Any:
    """``allOf`` of distinct subschemas (one alone stands for itself), merged when compiled."""
    unique = list({canon(s): s for s in subs}.values())
    if len(unique) == 1:
        return unique[0]
    return {"allOf": unique, SRC: (path, True)}


def _merge_types(vals: list[Any]) -> Any:
    result: set[str] | None = None
    for v in vals:
        names = (
            {v}
            if isinstance(v, str)
            else {t for t in v if isinstance(t, str)}
            if isinstance(v, list)
            else set()
        )
        if "number" in names:
            names.add("integer")
        result = names if result is None else result & names
    if result is None:
        return vals[0]
    # number & integer: an integer satisfies both, so keep integer alone unless number is
    # allowed by every part.
    if (
        "integer" in result
        and "number" in result
        and any((v == "integer" or (isinstance(v, list) and "number" not in v)) for v in vals)
    ):
        result.discard("number")
    if not result:
        raise Unsatisfiable(f"no type satisfies all of {vals}")
    ordered = [
        t
        for t in ("object", "array", "string", "number", "integer", "boolean", "null")
        if t in result
    ]
    return ordered[0] if len(ordered) == 1 else ordered


def _merge_enum(vals: list[Any]) -> list[Any]:
    lists = [v for v in vals if isinstance(v, list)]
    if not lists:
        return list(vals[0]) if isinstance(vals[0], list) else []
    keep = [
        x for x in lists[0] if all(canon(x) in {canon(y) for y in other} for other in lists[1:])
    ]
    if not keep:
        raise Unsatisfiable("the enum lists have no value in common")
    return keep


def _merge_multiple(vals: list[Any]) -> Any:
    if len(set(vals)) == 1:
        return vals[0]
    if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in vals):
        return math.lcm(*vals)
    raise Unsatisfiable(f"multipleOf values {vals} cannot be combined")
