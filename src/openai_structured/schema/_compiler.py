"""Pass 1: walk an input JSON Schema and build the strict form, collecting errors and changes.

The output of this pass still carries private markers (see ``_keywords``): which properties
were optional (``OPT``), which annotations stood beside a ``$ref`` (``SIB``) and where each
node came from (``PATH``). Pass 2 (``_finalize``) turns that into the schema that is sent.

Referenced subschemas are compiled once each into ``defs`` (by their pointer in the input), from
a work list, so a chain of definitions never deepens the Python stack and recursion needs no
special case here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from itertools import product
from typing import Any
from urllib.parse import unquote, urljoin

from ..errors import SchemaError
from ._keywords import (
    ARRAY_KEYWORDS,
    ASSERTION_KEYWORDS,
    JSON_TYPES,
    KNOWN_KEYWORDS,
    MISSING,
    NUMBER_KEYWORDS,
    OBJECT_KEYWORDS,
    OPT,
    PATH,
    REF_KEYWORDS,
    SIB,
    SRC,
    STRING_KEYWORDS,
    SUBSCHEMA_KEYS,
    SUBSCHEMA_LIST_KEYS,
    SUBSCHEMA_MAP_KEYS,
    SUPPORTED_FORMATS,
    Schema,
    canon,
    child,
    get_pointer,
    json_type,
    short_json,
)

MAX_WALK = 64  # structural nesting we follow before declaring a schema unreasonable
MAX_BRANCHES = 64  # anyOf branches produced by distributing combinators
MAX_MERGE_STEPS = 500
MAX_NODES = 50_000  # total subschemas compiled for one document (merging can multiply them)

FIX_ANY = 'give it a type, e.g. {"type": "string"}, or list its allowed values with "enum"'
FIX_MAP = (
    'use an array of {"key": ..., "value": ...} objects, or declare the allowed keys under '
    '"properties"'
)
FIX_CONDITIONAL = (
    "express the alternatives with anyOf (one branch per case), or drop the condition and "
    "state it in the description"
)


@dataclass(frozen=True)
class Change:
    """One rewrite made to fit strict mode: where (input JSON pointer) and what."""

    path: str
    action: str
    lossy: bool = False  # True when a constraint became a description hint only

    def __str__(self) -> str:
        return f"{self.path}: {self.action}" + (" [hint only]" if self.lossy else "")


class _Unsat(Exception):
    """allOf parts contradict each other."""


def _assertions(schema: dict[str, Any]) -> set[str]:
    return {k for k in schema if k in ASSERTION_KEYWORDS}


def _ref_key(schema: dict[str, Any]) -> str | None:
    for key in REF_KEYWORDS:
        if key in schema:
            return key
    return None


def _mark(schema: Any, path: str, frozen: bool) -> Any:
    if isinstance(schema, dict):
        return {**schema, SRC: (path, frozen)}
    return schema


def _mark_children(key: str, value: Any, path: str, frozen: bool) -> Any:
    """Tag the subschemas under ``key`` with their own paths before they are moved around."""
    if key in SUBSCHEMA_KEYS or (key == "items" and isinstance(value, dict)):
        return _mark(value, child(path, key, frozen=frozen), frozen)
    if key == "items" and isinstance(value, list):
        return [_mark(v, child(path, key, i, frozen=frozen), frozen) for i, v in enumerate(value)]
    if key in SUBSCHEMA_MAP_KEYS and isinstance(value, dict):
        return {n: _mark(v, child(path, key, n, frozen=frozen), frozen) for n, v in value.items()}
    if key in SUBSCHEMA_LIST_KEYS and isinstance(value, list):
        return [_mark(v, child(path, key, i, frozen=frozen), frozen) for i, v in enumerate(value)]
    return value


def _is_any(schema: Any) -> bool:
    """Absent, ``true`` or annotations only: accepts every value."""
    return (
        schema is MISSING
        or schema is True
        or (isinstance(schema, dict) and not _assertions(schema))
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _normalize_draft4(schema: dict[str, Any]) -> dict[str, Any]:
    """Draft 4 wrote ``exclusiveMaximum: true`` next to ``maximum``; later drafts use a number."""
    out = schema
    for bound, flag in (("maximum", "exclusiveMaximum"), ("minimum", "exclusiveMinimum")):
        value = out.get(flag)
        if isinstance(value, bool):
            out = dict(out)
            del out[flag]
            if value and _is_number(out.get(bound)):
                out[flag] = out.pop(bound)
    return out


class Compiler:
    """Pass 1 over one input document."""

    def __init__(self, doc: Any) -> None:
        self.doc = doc
        self.errors: list[SchemaError] = []
        self.changes: list[Change] = []
        self.defs: dict[str, Schema] = {}
        self._def_names: dict[str, str] = {}
        self._used_names: set[str] = set()
        self._pending: list[tuple[str, str]] = []
        self._unsat: set[int] = set()
        # (ref target, where it was inlined) for the allOf merges enclosing the current node:
        # inlining the same target at the same place again would never end.
        self._merging: list[tuple[str, str]] = []
        self._last_merge_refs: set[tuple[str, str]] = set()
        self._budget = MAX_NODES
        self._ids: dict[str, str] = {}  # absolute or raw $id -> pointer
        self._anchors: dict[tuple[str, str], str] = {}  # (resource pointer, anchor) -> pointer
        self._resources: list[tuple[str, str]] = []  # (pointer, base uri), longest first
        self._root_uri = ""
        self._index()

    # --- bookkeeping -----------------------------------------------------------------------

    def error(
        self, path: str, reason: str, fix: str | None = None, *, unsat: bool = False
    ) -> Schema:
        """Record a problem; ``unsat`` marks "no value can match" (an anyOf branch may go)."""
        err = SchemaError(reason, path=path, fix=fix)
        self.errors.append(err)
        if unsat:
            self._unsat.add(id(err))
        return {}

    def change(self, path: str, action: str, lossy: bool = False) -> None:
        self.changes.append(Change(path, action, lossy))

    def run(self) -> Schema:
        root = self.node(self.doc, "#", 0)
        while self._pending:
            ptr, name = self._pending.pop(0)
            self.defs[name] = self.node(get_pointer(self.doc, ptr), ptr, 0)
        return root

    # --- $id / $anchor index and $ref resolution ---------------------------------------------

    def _index(self) -> None:
        if not isinstance(self.doc, dict):
            return
        root_id = self.doc.get("$id", self.doc.get("id"))
        if isinstance(root_id, str) and not root_id.startswith("#"):
            self._root_uri = root_id.split("#")[0]
            self._ids[self._root_uri] = "#"
        stack: list[tuple[Any, str, str, str, int]] = [(self.doc, "#", self._root_uri, "#", 0)]
        skip = {"enum", "const", "default", "examples", "example"}
        while stack:
            node, ptr, base, resource, depth = stack.pop()
            if depth > MAX_WALK:
                continue
            if isinstance(node, dict):
                sid = node.get("$id")
                if isinstance(sid, str) and ptr != "#":
                    if sid.startswith("#"):
                        self._anchors[(resource, sid[1:])] = ptr
                    else:
                        uri = sid.split("#")[0]
                        base = urljoin(base, uri) if base else uri
                        resource = ptr
                        self._ids.setdefault(uri, ptr)
                        self._ids.setdefault(base, ptr)
                        self._resources.append((ptr, base))
                anchor = node.get("$anchor")
                if isinstance(anchor, str):
                    self._anchors[(resource, anchor)] = ptr
                for key, value in node.items():
                    if key not in skip and isinstance(value, (dict, list)):
                        stack.append((value, child(ptr, key), base, resource, depth + 1))
            elif isinstance(node, list):
                for i, value in enumerate(node):
                    if isinstance(value, (dict, list)):
                        stack.append((value, child(ptr, i), base, resource, depth + 1))
        self._resources.sort(key=lambda r: len(r[0]), reverse=True)

    def _resource_of(self, path: str) -> tuple[str, str]:
        for ptr, base in self._resources:
            if path == ptr or path.startswith(ptr + "/"):
                return ptr, base
        return "#", self._root_uri

    def resolve(self, ref: str, path: str) -> str | None:
        """Turn a ``$ref`` into a pointer inside this document, or record why it cannot be."""
        resource, base = self._resource_of(path)
        uri, _, frag = ref.partition("#")
        if uri:
            target = self._ids.get(uri)
            if target is None and base:
                target = self._ids.get(urljoin(base, uri))
            if target is None:
                self.error(
                    path,
                    f"$ref {ref!r} points outside this schema (remote references are not followed)",
                    "bundle it: copy the referenced schema under $defs and refer to it as "
                    '"#/$defs/<Name>"',
                )
                return None
            resource = target
        frag = unquote(frag)
        if frag == "":
            ptr = resource
        elif frag.startswith("/"):
            ptr = ("" if resource == "#" else resource) + frag
            if not ptr.startswith("#"):
                ptr = "#" + ptr
        else:
            found = self._anchors.get((resource, frag))
            if found is None:
                self.error(path, f"$ref {ref!r}: no $anchor named {frag!r}", "fix the reference")
                return None
            ptr = found
        if get_pointer(self.doc, ptr) is MISSING:
            self.error(
                path,
                f"$ref {ref!r} does not resolve to anything in this schema",
                "fix the reference or add the missing definition",
            )
            return None
        return ptr

    def def_name(self, ptr: str) -> str | None:
        """The ``$defs`` name for the subschema at ``ptr`` (None for the root), queued once."""
        if ptr == "#":
            return None
        if ptr in self._def_names:
            return self._def_names[ptr]
        segments = ptr.split("/")[1:]
        if len(segments) >= 2 and segments[-2] in ("$defs", "definitions"):
            base = segments[-1]
        else:
            base = "_".join(segments)
        base = re.sub(r"[^A-Za-z0-9_.-]", "_", base.replace("~1", "/").replace("~0", "~"))[:60]
        base = base or "def"
        name, n = base, 2
        while name in self._used_names:
            name, n = f"{base}_{n}", n + 1
        self._used_names.add(name)
        self._def_names[ptr] = name
        self._pending.append((ptr, name))
        return name

    # --- the walk ----------------------------------------------------------------------------

    def node(self, schema: Any, path: str, depth: int, frozen: bool = False) -> Schema:
        """Compile one subschema."""
        if isinstance(schema, dict) and SRC in schema:
            path, frozen = schema[SRC]
            schema = {k: v for k, v in schema.items() if k != SRC}
        self._budget -= 1
        if self._budget == 0:
            return self.error(
                path,
                "the schema is too complex to compile (combining allOf/anyOf multiplies it)",
                "simplify the combinators",
            )
        if self._budget < 0:
            return {}
        if depth > MAX_WALK:
            return self.error(
                path,
                f"schema is nested more than {MAX_WALK} levels deep",
                "flatten it, or move repeated parts into $defs",
            )
        if schema is True or (isinstance(schema, dict) and not _assertions(schema)):
            return self.error(
                path, "this schema accepts any value, which strict mode cannot express", FIX_ANY
            )
        if schema is False:
            return self.error(
                path,
                "this schema is `false`: no value can match it",
                "remove it, or give it a type",
                unsat=True,
            )
        if not isinstance(schema, dict):
            return self.error(
                path,
                f"a schema must be an object or a boolean, not {type(schema).__name__}",
                "fix the schema document",
            )
        schema = _normalize_draft4(schema)

        ref_key = _ref_key(schema)
        if ref_key is not None:
            return self._ref(schema, ref_key, path, depth, frozen)

        if "allOf" in schema:
            items = schema["allOf"]
            rest = {k: v for k, v in schema.items() if k != "allOf"}
            if (
                isinstance(items, list)
                and len(items) == 1
                and isinstance(items[0], dict)
                and _ref_key(items[0]) is not None
                and _assertions(items[0]) == {_ref_key(items[0])}
                and not _assertions(rest)
            ):
                # ``allOf: [{$ref}]`` + annotations is the old spelling of "$ref with a
                # description"; keep it a reference so recursive models stay finite.
                self.change(path, "single-item allOf around a $ref unwrapped")
                inner = {
                    **items[0],
                    **{
                        k: v
                        for k, v in rest.items()
                        if k in ("title", "description", "default", "examples")
                    },
                }
                return self.node(
                    _mark(inner, child(path, "allOf", 0, frozen=frozen), frozen), path, depth + 1
                )
            return self._merged([(schema, path, frozen)], path, depth)

        has_any, has_one = "anyOf" in schema, "oneOf" in schema
        if has_any or has_one:
            siblings = _assertions(schema) - {"anyOf", "oneOf", "nullable"}
            if siblings or (has_any and has_one):
                return self._merged([(schema, path, frozen)], path, depth)
            return self._union(schema, path, depth, frozen)
        return self._typed(schema, path, depth, frozen)

    def _merged(self, parts: list[tuple[Any, str, bool]], path: str, depth: int) -> Schema:
        try:
            merged = self.merge(parts, path)
        except _Unsat as exc:
            return self.error(
                path,
                f"allOf parts contradict each other: {exc}",
                "remove the conflicting constraint",
                unsat=True,
            )
        if merged is None:
            return {}
        if merged is False:
            return self.error(
                path,
                "allOf contains `false`: no value can match",
                "remove the false part",
                unsat=True,
            )
        self.change(
            path,
            "combinators merged into one schema (allOf inlined / siblings "
            "distributed into anyOf branches)",
        )
        refs = sorted(self._last_merge_refs)
        self._merging.extend(refs)
        try:
            return self.node({**merged, SRC: (path, True)}, path, depth + 1)
        finally:
            del self._merging[len(self._merging) - len(refs) :]

    # --- $ref --------------------------------------------------------------------------------

    def _ref(self, schema: Schema, key: str, path: str, depth: int, frozen: bool) -> Schema:
        ref = schema[key]
        if not isinstance(ref, str):
            return self.error(path, f"{key} must be a string", "fix the reference")
        if key == "$dynamicRef" and not ref.startswith("#"):
            return self.error(
                path, "$dynamicRef to another resource is not supported", "use a plain $ref"
            )
        rest = {k: v for k, v in schema.items() if k != key}
        if key == "$dynamicRef" and not ref.startswith("#/"):
            ref = "#"  # a dynamic anchor in a single document refers to its root here
        if _assertions(rest):
            # 2019-09+: keywords beside $ref apply too, i.e. allOf[$ref, rest].
            return self._merged([(schema, path, frozen)], path, depth)
        ptr = self.resolve(ref, path)
        if ptr is None:
            return {}
        name = self.def_name(ptr)
        out: Schema = {"$ref": "#" if name is None else f"#/$defs/{name}", PATH: path}
        siblings = self._annotations(rest, path)
        if siblings:
            out[SIB] = siblings
        return out

    # --- allOf merge -------------------------------------------------------------------------

    def merge(self, parts: list[tuple[Any, str, bool]], path: str) -> Any:
        """One schema equal to ``allOf(parts)``, with no allOf or $ref at its top.

        Returns ``False`` when a part is ``false`` and None after recording an error. Top-level
        anyOf/oneOf in the parts are distributed: ``A and (B or C)`` = ``(A and B) or (A and C)``.
        """
        flat: list[tuple[dict[str, Any], str, bool]] = []
        work = list(parts)
        seen_refs: set[tuple[str, str]] = set()
        steps = 0
        while work:
            steps += 1
            if steps > MAX_MERGE_STEPS:
                self.error(path, "allOf is too large to merge", "simplify the schema")
                return None
            sch, p, fz = work.pop(0)
            if isinstance(sch, dict) and SRC in sch:
                p, fz = sch[SRC]
                sch = {k: v for k, v in sch.items() if k != SRC}
            if sch is True:
                continue
            if sch is False:
                return False
            if not isinstance(sch, dict):
                self.error(p, "a schema must be an object or a boolean", "fix the schema")
                return None
            sch = _normalize_draft4(sch)
            key = _ref_key(sch)
            if key is not None:
                ref = sch[key]
                sch = {k: v for k, v in sch.items() if k != key}
                if not isinstance(ref, str):
                    self.error(p, f"{key} must be a string", "fix the reference")
                    return None
                ptr = self.resolve(ref, p)
                if ptr is None:
                    return None
                work.insert(0, (sch, p, fz))
                if (ptr, p) in self._merging:
                    self.error(
                        p,
                        f"$ref {ref!r} is recursive inside allOf (or beside other "
                        "keywords); such a schema cannot be merged into one",
                        "move the recursive reference into a property of its own, without allOf",
                    )
                    return None
                # A and A = A: expanding a reference twice adds nothing (also ends cycles).
                if ptr not in {r for r, _ in seen_refs}:
                    seen_refs.add((ptr, p))
                    work.insert(0, (get_pointer(self.doc, ptr), ptr, False))
                continue
            if "allOf" in sch:
                items = sch["allOf"]
                rest = {k: v for k, v in sch.items() if k != "allOf"}
                if not isinstance(items, list):
                    self.error(p, "allOf must be a list", "fix the schema")
                    return None
                work[0:0] = [(rest, p, fz)] + [
                    (it, child(p, "allOf", i, frozen=fz), fz) for i, it in enumerate(items)
                ]
                continue
            flat.append((sch, p, fz))
        self._last_merge_refs = seen_refs

        choices: list[list[tuple[Any, str, bool]]] = []
        base: list[tuple[dict[str, Any], str, bool]] = []
        for sch, p, fz in flat:
            for key in ("anyOf", "oneOf"):
                if key not in sch:
                    continue
                items = sch[key]
                if not isinstance(items, list) or not items:
                    self.error(
                        child(p, key, frozen=fz),
                        f"{key} must be a non-empty list",
                        "fix the schema",
                    )
                    return None
                if key == "oneOf":
                    self.change(p, "oneOf rewritten as anyOf")
                choices.append(
                    [(it, child(p, key, i, frozen=fz), fz) for i, it in enumerate(items)]
                )
            base.append(
                (
                    {k: v for k, v in sch.items() if k not in ("anyOf", "oneOf", "discriminator")},
                    p,
                    fz,
                )
            )

        if choices:
            count = math.prod(len(c) for c in choices)
            if count > MAX_BRANCHES:
                self.error(
                    path,
                    f"combining these anyOf/oneOf lists gives {count} alternatives "
                    f"(limit {MAX_BRANCHES})",
                    "simplify the alternatives",
                )
                return None
            outer = {
                k: v for s, _, _ in base for k, v in s.items() if k in ("title", "description")
            }
            plain = [
                ({k: v for k, v in s.items() if k not in ("title", "description")}, p, fz)
                for s, p, fz in base
            ]
            branches = [
                {"allOf": [_mark(s, p, fz) for s, p, fz in [*plain, *combo]], SRC: (path, True)}
                for combo in product(*choices)
            ]
            return {**outer, "anyOf": branches}
        return self._merge_dicts(base, path)

    def _merge_dicts(self, base: list[tuple[dict[str, Any], str, bool]], path: str) -> Any:
        values: dict[str, list[tuple[Any, str, bool]]] = {}
        for sch, p, fz in base:
            for key, value in sch.items():
                values.setdefault(key, []).append((_mark_children(key, value, p, fz), p, fz))
        out: dict[str, Any] = {}
        skip = {
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
        for key, entries in values.items():
            if key in skip:
                continue
            vals = [v for v, _, _ in entries]
            if len(vals) == 1 or key in ("title", "description", "default", "examples", "example"):
                out[key] = vals[0]
            elif key == "type":
                out[key] = self._merge_types(vals)
            elif key == "properties":
                names: dict[str, list[Any]] = {}
                for v in vals:
                    if isinstance(v, dict):
                        for n, sub in v.items():
                            names.setdefault(n, []).append(sub)
                out[key] = {n: self._all_of(subs, path) for n, subs in names.items()}
            elif key == "items" and all(isinstance(v, (dict, bool)) for v in vals):
                out[key] = self._all_of(vals, path)
            elif key == "required":
                out[key] = list(dict.fromkeys(r for v in vals if isinstance(v, list) for r in v))
            elif key == "additionalProperties":
                schemas = [v for v in vals if v is not False and v is not True and v != {}]
                out[key] = schemas[0] if schemas else not any(v is False for v in vals)
            elif key == "enum":
                out[key] = self._merge_enum(vals)
            elif key in (
                "minimum",
                "exclusiveMinimum",
                "minLength",
                "minItems",
                "minProperties",
                "minContains",
            ):
                out[key] = max(vals) if all(_is_number(v) for v in vals) else vals[0]
            elif key in (
                "maximum",
                "exclusiveMaximum",
                "maxLength",
                "maxItems",
                "maxProperties",
                "maxContains",
            ):
                out[key] = min(vals) if all(_is_number(v) for v in vals) else vals[0]
            elif key == "multipleOf":
                out[key] = self._merge_multiple(vals)
            elif key == "uniqueItems":
                out[key] = any(v is True for v in vals)
            elif key == "nullable":
                out[key] = all(v is True for v in vals)
            elif len({canon(v) for v in vals}) == 1:
                out[key] = vals[0]
            else:
                raise _Unsat(f"different values for {key!r} cannot be combined")
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
                    raise _Unsat(
                        f"the part at {p} is closed (additionalProperties: false) but other "
                        f"parts add {extra}"
                    )
        return out

    def _all_of(self, subs: list[Any], path: str) -> Any:
        unique = list({canon(s): s for s in subs}.values())
        if len(unique) == 1:
            return unique[0]
        return {"allOf": unique, SRC: (path, True)}

    @staticmethod
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
            raise _Unsat(f"no type satisfies all of {vals}")
        ordered = [
            t
            for t in ("object", "array", "string", "number", "integer", "boolean", "null")
            if t in result
        ]
        return ordered[0] if len(ordered) == 1 else ordered

    @staticmethod
    def _merge_enum(vals: list[Any]) -> list[Any]:
        lists = [v for v in vals if isinstance(v, list)]
        if not lists:
            return list(vals[0]) if isinstance(vals[0], list) else []
        keep = [
            x for x in lists[0] if all(canon(x) in {canon(y) for y in other} for other in lists[1:])
        ]
        if not keep:
            raise _Unsat("the enum lists have no value in common")
        return keep

    @staticmethod
    def _merge_multiple(vals: list[Any]) -> Any:
        if len(set(vals)) == 1:
            return vals[0]
        if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in vals):
            return math.lcm(*vals)
        raise _Unsat(f"multipleOf values {vals} cannot be combined")

    # --- unions ------------------------------------------------------------------------------

    def _union(self, schema: Schema, path: str, depth: int, frozen: bool) -> Schema:
        key = "anyOf" if "anyOf" in schema else "oneOf"
        items = schema[key]
        if not isinstance(items, list) or not items:
            return self.error(
                child(path, key, frozen=frozen), f"{key} must be a non-empty list", "fix the schema"
            )
        if key == "oneOf":
            self.change(path, "oneOf rewritten as anyOf")
        if "discriminator" in schema:
            self.change(path, "discriminator dropped (anyOf branches already differ)")
        branches: list[Schema] = []
        for i, item in enumerate(items):
            sub = child(path, key, i, frozen=frozen)
            if item is False:
                self.change(sub, "branch `false` dropped (it can never match)")
                continue
            mark = len(self.errors)
            out = self.node(item, sub, depth + 1, frozen)
            new = self.errors[mark:]
            if new and all(id(e) in self._unsat for e in new):
                # A branch no value can match (often one created by distributing keywords
                # into anyOf) changes nothing: drop it instead of failing.
                del self.errors[mark:]
                self.change(sub, "branch dropped: no value can match it")
                continue
            if set(out) <= {"anyOf", "description", "title", PATH} and isinstance(
                out.get("anyOf"), list
            ):
                branches.extend(out["anyOf"])
            else:
                branches.append(out)
        if schema.get("nullable") is True:
            branches.append({"type": "null"})
        if not branches:
            return self.error(
                path,
                f"no {key} branch can match any value",
                "add a branch that can match",
                unsat=True,
            )
        out = dict(branches[0]) if len(branches) == 1 else {"anyOf": branches}
        out[PATH] = path
        self._annotate(out, schema, path, [])
        return out

    # --- typed schemas -----------------------------------------------------------------------

    def _types(self, schema: Schema, path: str) -> list[str] | None:
        declared = schema.get("type", MISSING)
        if declared is MISSING:
            found: list[str] = []
            keys = set(schema)
            if keys & OBJECT_KEYWORDS:
                found.append("object")
            if keys & ARRAY_KEYWORDS:
                found.append("array")
            if keys & STRING_KEYWORDS:
                fmt = schema.get("format")
                if fmt in ("int32", "int64") and not keys & (STRING_KEYWORDS - {"format"}):
                    found.append("integer")
                elif fmt in ("float", "double") and not keys & (STRING_KEYWORDS - {"format"}):
                    found.append("number")
                else:
                    found.append("string")
            if keys & NUMBER_KEYWORDS and "number" not in found and "integer" not in found:
                found.append("number")
            if found:
                self.change(
                    path,
                    f"type {found if len(found) > 1 else found[0]!r} inferred from its keywords",
                )
            return found
        if isinstance(declared, str):
            names = [declared]
        elif isinstance(declared, list) and declared and all(isinstance(t, str) for t in declared):
            names = list(dict.fromkeys(declared))
        else:
            self.error(path, "type must be a type name or a list of them", 'e.g. "type": "string"')
            return None
        unknown = [t for t in names if t not in JSON_TYPES]
        if unknown:
            if unknown == ["any"]:
                self.error(path, 'type "any" accepts any value', FIX_ANY)
            else:
                self.error(path, f"unknown type {unknown[0]!r}", f"use one of {sorted(JSON_TYPES)}")
            return None
        if "number" in names and "integer" in names:
            names.remove("integer")
        return names

    def _typed(self, schema: Schema, path: str, depth: int, frozen: bool) -> Schema:
        if "not" in schema:
            self.error(
                child(path, "not", frozen=frozen),
                "`not` cannot be expressed in strict mode",
                "list the allowed values with enum, or the allowed shapes with anyOf",
            )
        if "if" in schema and ("then" in schema or "else" in schema):
            self.error(
                child(path, "if", frozen=frozen),
                "if/then/else cannot be expressed in strict mode",
                FIX_CONDITIONAL,
            )
        types = self._types(schema, path)
        if types is None:
            return {}
        if schema.get("nullable") is True and types and "null" not in types:
            types.append("null")
            self.change(path, "OpenAPI `nullable: true` rewritten as a null alternative")
        if "enum" in schema or "const" in schema:
            # Inferred types must not filter the listed values; only a declared type does.
            out = self._enum(schema, types if "type" in schema else [], path)
        else:
            if not types:
                return self.error(
                    path, "this schema accepts any value, which strict mode cannot express", FIX_ANY
                )
            branches = [self._one_type(schema, t, path, depth, frozen) for t in types]
            out = branches[0] if len(branches) == 1 else {"anyOf": branches}
        if not out:
            return out
        out[PATH] = path
        self._annotate(out, schema, path, [])
        unknown = sorted(k for k in schema if k not in KNOWN_KEYWORDS and not k.startswith("\x00"))
        if unknown:
            self.change(path, f"non-standard keywords dropped: {', '.join(unknown)}")
        return out

    def _enum(self, schema: Schema, types: list[str], path: str) -> Schema:
        is_const = "const" in schema and "enum" not in schema
        values = [schema["const"]] if is_const else schema["enum"]
        if "enum" in schema and "const" in schema:
            values = [
                v for v in values if isinstance(values, list) and canon(v) == canon(schema["const"])
            ]
        key = "const" if is_const else "enum"
        if not isinstance(values, list) or not values:
            return self.error(path, f"{key} must be a non-empty list", "list at least one value")
        kept: dict[str, Any] = {}
        for v in values:
            kind = json_type(v)
            if kind is None:
                return self.error(
                    path,
                    "enum/const values that are objects or "
                    "arrays cannot be expressed in strict mode",
                    "use scalar values, or describe the object with properties",
                )
            if types:
                ok = (
                    kind in types
                    or (kind == "integer" and "number" in types)
                    or (kind == "number" and "integer" in types and float(v).is_integer())
                )
                if not ok:
                    continue
            kept.setdefault(f"{kind}:{canon(v)}", v)
        if schema.get("nullable") is True:
            kept.setdefault("null:null", None)
        if not kept:
            return self.error(
                path,
                f"no {key} value matches the declared type",
                "fix the type or the values",
                unsat=True,
            )
        if len(kept) < len(values):
            self.change(path, "enum values that could never validate were dropped")
        ignored = sorted(set(schema) & (STRING_KEYWORDS | NUMBER_KEYWORDS))
        if ignored:
            self.change(path, f"constraints beside enum dropped: {', '.join(ignored)}", lossy=True)
        groups: dict[str, list[Any]] = {}
        for v in kept.values():
            kind = json_type(v) or "null"
            kind = "number" if kind == "integer" else kind
            groups.setdefault(kind, []).append(v)
        branches: list[Schema] = []
        for kind, vals in groups.items():
            if kind == "null":
                branches.append({"type": "null"})
                continue
            if kind == "number" and all(isinstance(v, int) or float(v).is_integer() for v in vals):
                kind = (
                    "integer"
                    if not types or "integer" in types or "number" not in types
                    else "number"
                )
                if kind == "integer" and any(isinstance(v, float) for v in vals):
                    kind = "number"
            if len(vals) == 1 and is_const:
                branches.append({"type": kind, "const": vals[0]})
            else:
                branches.append({"type": kind, "enum": vals})
        return branches[0] if len(branches) == 1 else {"anyOf": branches}

    def _one_type(self, schema: Schema, kind: str, path: str, depth: int, frozen: bool) -> Schema:
        if kind in ("null", "boolean"):
            return {"type": kind}
        if kind == "string":
            return self._string(schema, path)
        if kind in ("number", "integer"):
            out: Schema = {"type": kind}
            for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                if _is_number(schema.get(key)):
                    out[key] = schema[key]
            if _is_number(schema.get("multipleOf")) and schema["multipleOf"] > 0:
                out["multipleOf"] = schema["multipleOf"]
            return out
        if kind == "array":
            return self._array(schema, path, depth, frozen)
        return self._object(schema, path, depth, frozen)

    def _string(self, schema: Schema, path: str) -> Schema:
        out: Schema = {"type": "string"}
        hints: list[str] = []
        if isinstance(schema.get("pattern"), str):
            try:
                re.compile(schema["pattern"])
                out["pattern"] = schema["pattern"]
            except re.error:
                hints.append(f"Must match the regular expression {schema['pattern']}.")
                self.change(
                    path,
                    "pattern that is not a valid regular expression moved into the description",
                    lossy=True,
                )
        fmt = schema.get("format")
        if isinstance(fmt, str):
            if fmt in SUPPORTED_FORMATS:
                out["format"] = fmt
            else:
                hints.append(f"Format: {fmt}.")
                self.change(
                    path, f"unsupported format {fmt!r} moved into the description", lossy=True
                )
        if _is_count(schema.get("minLength")) and schema["minLength"] > 0:
            hints.append(f"At least {schema['minLength']} characters.")
            self.change(path, "minLength moved into the description", lossy=True)
        if _is_count(schema.get("maxLength")):
            hints.append(f"At most {schema['maxLength']} characters.")
            self.change(path, "maxLength moved into the description", lossy=True)
        for key, label in (("contentMediaType", "Media type"), ("contentEncoding", "Encoding")):
            if isinstance(schema.get(key), str):
                hints.append(f"{label}: {schema[key]}.")
                self.change(path, f"{key} moved into the description", lossy=True)
        if hints:
            out["description"] = " ".join(hints)
        return out

    def _array(self, schema: Schema, path: str, depth: int, frozen: bool) -> Schema:
        out: Schema = {"type": "array"}
        items = schema.get("items", MISSING)
        prefix: Any = schema.get("prefixItems", MISSING)
        prefix_key = "prefixItems"
        if isinstance(items, list):  # draft 4-2019 tuple form
            prefix, prefix_key = items, "items"
            tail = schema.get("additionalItems", MISSING)
            tail_key = "additionalItems"
        else:
            tail, tail_key = items, "items"
        min_items = schema.get("minItems") if _is_count(schema.get("minItems")) else None
        max_items = schema.get("maxItems") if _is_count(schema.get("maxItems")) else None
        if isinstance(prefix, list) and prefix:
            compiled = [
                self.node(p, child(path, prefix_key, i, frozen=frozen), depth + 1, frozen)
                for i, p in enumerate(prefix)
            ]
            if len({canon(c) for c in compiled}) != 1:
                self.error(
                    child(path, prefix_key, frozen=frozen),
                    "a tuple whose positions have different schemas cannot be expressed "
                    "in strict mode",
                    "use an object with one named property per position, or a list "
                    "of a single item type",
                )
                return {}
            out["items"] = compiled[0]
            self.change(path, "tuple of identical item schemas rewritten as a list")
            restrict = tail is False
            if not restrict and not _is_any(tail):
                tail_out = self.node(tail, child(path, tail_key, frozen=frozen), depth + 1, frozen)
                restrict = canon(tail_out) != canon(compiled[0])
            if restrict:
                max_items = len(prefix) if max_items is None else min(max_items, len(prefix))
        elif _is_any(tail):
            return self.error(
                path,
                "the array's items have no schema (any value)",
                'give the items a type, e.g. "items": {"type": "string"}',
            )
        elif tail is False:
            return self.error(
                child(path, tail_key, frozen=frozen),
                "`items: false` allows only an empty array",
                "remove the property or give the items a type",
            )
        else:
            out["items"] = self.node(tail, child(path, tail_key, frozen=frozen), depth + 1, frozen)
        if min_items is not None and min_items > 0:
            out["minItems"] = min_items
        if max_items is not None:
            out["maxItems"] = max_items
        if min_items is not None and max_items is not None and min_items > max_items:
            return self.error(
                path,
                f"minItems {min_items} is larger than maxItems {max_items}",
                "fix the bounds",
                unsat=True,
            )
        if "contains" in schema:
            self.error(
                child(path, "contains", frozen=frozen),
                "`contains` cannot be expressed in strict mode",
                "describe the requirement in the description, or restructure the array",
            )
        if schema.get("uniqueItems") is True:
            out["description"] = "Items must be unique."
            self.change(path, "uniqueItems moved into the description", lossy=True)
        return out

    def _object(self, schema: Schema, path: str, depth: int, frozen: bool) -> Schema:
        props = schema.get("properties", {})
        if not isinstance(props, dict):
            return self.error(path, "properties must be an object", "fix the schema")
        required_raw = schema.get("required", [])
        required = (
            [r for r in required_raw if isinstance(r, str)]
            if isinstance(required_raw, list)
            else []
        )
        ok = True

        extra = schema.get("additionalProperties", MISSING)
        extra_key = "additionalProperties"
        if extra is MISSING and "unevaluatedProperties" in schema:
            extra, extra_key = schema["unevaluatedProperties"], "unevaluatedProperties"
        if extra is False or extra == {"not": {}}:
            pass
        elif extra is MISSING:
            if "properties" not in schema:
                ok = False
                self.error(
                    path,
                    "this object declares no properties, so it accepts any keys",
                    "declare its properties (or set additionalProperties: false for an "
                    "always-empty object); for a map, " + FIX_MAP,
                )
            else:
                self.change(path, "object closed (additionalProperties: false)")
        elif extra is True or extra == {}:
            if props:
                self.change(
                    path,
                    f"{extra_key}: true replaced by false; strict mode only "
                    "produces the declared properties",
                )
            else:
                ok = False
                self.error(
                    child(path, extra_key, frozen=frozen),
                    "an open object (a map with arbitrary keys) cannot be expressed in strict mode",
                    FIX_MAP,
                )
        else:
            ok = False
            self.error(
                child(path, extra_key, frozen=frozen),
                f"{extra_key} with a schema (a map with arbitrary keys) cannot be "
                "expressed in strict mode",
                FIX_MAP,
            )

        pattern_props = schema.get("patternProperties")
        if isinstance(pattern_props, dict) and pattern_props:
            ok = False
            self.error(
                child(path, "patternProperties", frozen=frozen),
                "patternProperties cannot be expressed in strict mode",
                FIX_MAP,
            )
        names_schema = schema.get("propertyNames", MISSING)
        if names_schema not in (MISSING, True, {}):
            if not self._names_ok(names_schema, list(props)):
                ok = False
                self.error(
                    child(path, "propertyNames", frozen=frozen),
                    "propertyNames cannot be expressed in strict mode (or rejects a "
                    "declared property)",
                    FIX_MAP,
                )
            else:
                self.change(path, "propertyNames dropped: every declared property name passes it")
        for key in ("dependentSchemas", "dependencies"):
            deps = schema.get(key)
            if isinstance(deps, dict) and any(not isinstance(v, list) for v in deps.values()):
                ok = False
                self.error(
                    child(path, key, frozen=frozen),
                    f"{key} with schemas (conditional subschemas) cannot be expressed in "
                    "strict mode",
                    FIX_CONDITIONAL,
                )

        out_props: dict[str, Any] = {}
        optional: list[str] = []
        for name, sub in props.items():
            sub_path = child(path, "properties", name, frozen=frozen)
            if sub is False:
                if name in required:
                    ok = False
                    self.error(
                        sub_path,
                        f"property {name!r} is required but its schema is `false`",
                        "remove it from required",
                        unsat=True,
                    )
                else:
                    self.change(
                        sub_path, "property dropped: its schema is `false`, so it can never appear"
                    )
                continue
            out_props[name] = self.node(sub, sub_path, depth + 1, frozen)
            if name not in required:
                optional.append(name)
        missing = [r for r in required if r not in props]
        for name in missing:
            ok = False
            self.error(
                child(path, "required", frozen=frozen),
                f"required property {name!r} has no schema under properties",
                f"declare {name!r} under properties with a type",
            )

        hints: list[str] = []
        count = len(out_props)
        low: int = schema["minProperties"] if _is_count(schema.get("minProperties")) else 0
        high: int = schema["maxProperties"] if _is_count(schema.get("maxProperties")) else count
        if low > count or (high < count and not optional):
            ok = False
            self.error(
                path,
                f"minProperties/maxProperties cannot hold: strict mode always "
                f"produces all {count} properties",
                "remove the bound",
            )
        elif low > count - len(optional) or high < count:
            if low > count - len(optional):
                hints.append(f"Give at least {low} of the properties.")
            if high < count:
                hints.append(f"Give at most {high} of the properties.")
            self.change(path, "minProperties/maxProperties moved into the description", lossy=True)
        dep_required = (
            dict(schema.get("dependentRequired") or {})
            if isinstance(schema.get("dependentRequired"), dict)
            else {}
        )
        if isinstance(schema.get("dependencies"), dict):
            dep_required.update(
                {k: v for k, v in schema["dependencies"].items() if isinstance(v, list)}
            )
        for name, deps in dep_required.items():
            if not isinstance(deps, list):
                continue
            if name not in out_props or all(d in required for d in deps):
                continue  # always satisfied once every property is present
            hints.append(f"If {name!r} is given, also give {', '.join(map(repr, deps))}.")
            self.change(path, "dependentRequired moved into the description", lossy=True)
        if not ok:
            return {}
        out: Schema = {
            "type": "object",
            "properties": out_props,
            "required": list(out_props),
            "additionalProperties": False,
        }
        if optional:
            out[OPT] = optional
        if hints:
            out["description"] = " ".join(hints)
        return out

    @staticmethod
    def _names_ok(names_schema: Any, names: list[str]) -> bool:
        """Whether every declared name satisfies a simple ``propertyNames`` schema."""
        if names_schema is False:
            return not names
        if not isinstance(names_schema, dict):
            return False
        allowed = {
            "type",
            "pattern",
            "minLength",
            "maxLength",
            "enum",
            "const",
            "title",
            "description",
            "$comment",
        }
        if set(names_schema) - allowed or names_schema.get("type", "string") != "string":
            return False
        for name in names:
            pattern = names_schema.get("pattern")
            try:
                if isinstance(pattern, str) and not re.search(pattern, name):
                    return False
            except re.error:
                return False
            if _is_count(names_schema.get("minLength")) and len(name) < names_schema["minLength"]:
                return False
            if _is_count(names_schema.get("maxLength")) and len(name) > names_schema["maxLength"]:
                return False
            enum = names_schema.get("enum")
            if isinstance(enum, list) and name not in enum:
                return False
            if "const" in names_schema and names_schema["const"] != name:
                return False
        return True

    # --- annotations -------------------------------------------------------------------------

    def _annotations(self, schema: Schema, path: str) -> Schema:
        """Title and description (with default/examples folded in) of one node."""
        out: Schema = {}
        if isinstance(schema.get("title"), str):
            out["title"] = schema["title"]
        parts: list[str] = []
        if isinstance(schema.get("description"), str) and schema["description"].strip():
            parts.append(schema["description"].strip())
        if "default" in schema and schema["default"] is not None:
            parts.append(f"Default: {short_json(schema['default'])}.")
            self.change(path, "default moved into the description")
        examples = schema.get("examples", schema.get("example", MISSING))
        if examples is not MISSING:
            listed = examples if isinstance(examples, list) else [examples]
            if listed:
                parts.append("Examples: " + ", ".join(short_json(e, 80) for e in listed[:5]) + ".")
                self.change(path, "examples moved into the description")
        if schema.get("deprecated") is True:
            parts.append("Deprecated.")
        if parts:
            out["description"] = " ".join(parts)
        return out

    def _annotate(self, out: Schema, schema: Schema, path: str, hints: list[str]) -> None:
        ann = self._annotations(schema, path)
        if "title" in ann:
            out["title"] = ann["title"]
        text = " ".join(p for p in (ann.get("description"), *hints, out.get("description")) if p)
        if text:
            out["description"] = text
