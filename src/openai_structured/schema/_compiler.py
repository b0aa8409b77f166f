"""Pass 1: walk an input JSON Schema and build the strict form, collecting errors and changes.

The output of this pass still carries private markers (see ``_keywords``): which properties
were optional (``OPT``), which annotations stood beside a ``$ref`` (``SIB``) and where each
node came from (``PATH``). Pass 2 (``_finalize``) turns that into the schema that is sent.

Two concerns live in their own modules: where a ``$ref`` points and what its target is called in
``$defs`` (``_refs``), and how ``allOf`` parts become one schema (``_allof``). Referenced
subschemas are compiled once each into ``defs`` (by their pointer in the input), from a work
list, so a chain of definitions never deepens the Python stack and recursion needs no special
case here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import SchemaError
from ._allof import MergeError, Part, RecursiveMerge, Unsatisfiable, merge_all_of
from ._keywords import (
    ARRAY_KEYWORDS,
    ENTRY_KEY,
    ENTRY_VALUE,
    JSON_TYPES,
    KNOWN_KEYWORDS,
    MAX_WALK,
    MISSING,
    NUMBER_KEYWORDS,
    OBJECT_KEYWORDS,
    OPT,
    PATH,
    SIB,
    SRC,
    STRING_KEYWORDS,
    SUPPORTED_FORMATS,
    XF,
    Schema,
    assertions,
    canon,
    child,
    is_number,
    json_type,
    mark,
    normalize_draft4,
    ref_key,
    short_json,
    unmark,
)
from ._refs import RefIndex, UnresolvedRef
from ._regex import search, sendable

MAX_NODES = 50_000  # total subschemas compiled for one document (merging can multiply them)

ANY_HINT = "Any JSON value, written as a JSON-encoded string."
UNSENT_PATTERN = (
    "pattern in a syntax strict mode may not read (\\p{...}) not sent: checked after the answer"
)
MAP_HINT = "A map, given as a list of {key, value} entries (each key at most once)."
EXTRA_HINT = "Other keys of the object, as a list of {key, value} entries (each key once)."
TUPLE_HINT = 'A tuple: property "0" is its first item, "1" the second, and so on.'


@dataclass(frozen=True)
class Change:
    """One rewrite made to fit strict mode: where (input JSON pointer) and what."""

    path: str
    action: str
    #: True when a constraint is not in what is sent (at most a hint in the description): the
    #: answer is checked against the original schema instead. False: a lossless rewrite.
    lossy: bool = False

    def __str__(self) -> str:
        return f"{self.path}: {self.action} [{'lossy' if self.lossy else 'lossless'}]"


def _is_any(schema: Any) -> bool:
    """Absent, ``true`` or annotations only: accepts every value."""
    return (
        schema is MISSING or schema is True or (isinstance(schema, dict) and not assertions(schema))
    )


def _free_name(props: dict[str, Any]) -> str:
    """A property name for an object's other keys that no declared property uses."""
    name = "additional_properties"
    while name in props:
        name = "_" + name
    return name


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class Compiler:
    """Pass 1 over one input document."""

    def __init__(self, doc: Any) -> None:
        self.doc = doc
        self.refs = RefIndex(doc)
        self.errors: list[SchemaError] = []
        self.changes: list[Change] = []
        self.defs: dict[str, Schema] = {}
        # Errors that mean "no value can match", by id; the value keeps each error alive, so
        # its id cannot be reused by a later error after an anyOf branch's errors are dropped.
        self._unsat: dict[int, SchemaError] = {}
        # (ref target, where it was inlined) for the allOf merges enclosing the current node:
        # inlining the same target at the same place again would never end.
        self._merging: list[tuple[str, str]] = []
        # Document places whose allOf is being merged -> the $defs name they get if the merge
        # meets the same place again inside itself (a recursion through allOf).
        self._sites: dict[str, str | None] = {}
        self._budget = MAX_NODES

    # --- bookkeeping -----------------------------------------------------------------------

    def error(
        self, path: str, reason: str, fix: str | None = None, *, unsat: bool = False
    ) -> Schema:
        """Record a problem; ``unsat`` marks "no value can match" (an anyOf branch may go)."""
        err = SchemaError(reason, path=path, fix=fix)
        self.errors.append(err)
        if unsat:
            self._unsat[id(err)] = err
        return {}

    def change(self, path: str, action: str, lossy: bool = False) -> None:
        self.changes.append(Change(path, action, lossy))

    def any_value(self, schema: Schema, path: str) -> Schema:
        """A node that accepts any value: sent as a string holding JSON, parsed on restore."""
        self.change(path, "any value sent as a JSON-encoded string; restore() parses it")
        out: Schema = {"type": "string", XF: ("json", None), PATH: path}
        self._annotate(out, schema, path, [ANY_HINT])
        return out

    def run(self) -> Schema:
        root = self.node(self.doc, "#", 0)
        pending = self.refs.pending
        while pending:
            ptr, name = pending.popleft()
            self.defs[name] = self.node(self.refs.target(ptr), ptr, 0)
        return root

    # --- the walk ----------------------------------------------------------------------------

    def node(self, schema: Any, path: str, depth: int, frozen: bool = False) -> Schema:
        """Compile one subschema."""
        schema, path, frozen = unmark(schema, path, frozen)
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
        if schema is True or (isinstance(schema, dict) and not assertions(schema)):
            return self.any_value(schema if isinstance(schema, dict) else {}, path)
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
        schema = normalize_draft4(schema)

        key = ref_key(schema)
        if key is not None:
            return self._ref(schema, key, path, depth, frozen)

        if "allOf" in schema:
            items = schema["allOf"]
            rest = {k: v for k, v in schema.items() if k != "allOf"}
            if (
                isinstance(items, list)
                and len(items) == 1
                and isinstance(items[0], dict)
                and ref_key(items[0]) is not None
                and assertions(items[0]) == {ref_key(items[0])}
                and not assertions(rest)
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
                    mark(inner, child(path, "allOf", 0, frozen=frozen), frozen), path, depth + 1
                )
            return self._merged([(schema, path, frozen)], path, depth)

        has_any, has_one = "anyOf" in schema, "oneOf" in schema
        if has_any or has_one:
            siblings = assertions(schema) - {"anyOf", "oneOf", "nullable"}
            if siblings or (has_any and has_one):
                return self._merged([(schema, path, frozen)], path, depth)
            return self._union(schema, path, depth, frozen)
        return self._typed(schema, path, depth, frozen)

    def _merged(self, parts: list[Part], path: str, depth: int) -> Schema:
        """Compile ``allOf(parts)`` as the one schema ``_allof`` merges them into.

        A recursive schema whose recursion passes through allOf (or keywords beside a
        ``$ref``) meets the same place of the document again while merging it: that place
        becomes a definition, merged once, and the recursion a reference to it."""
        if any(frozen for _, _, frozen in parts):  # a copy made by merging: not a place
            return self._merge(parts, path, depth)
        if path in self._sites:
            return {"$ref": f"#/$defs/{self._site_name(path)}", PATH: path}
        self._sites[path] = None
        try:
            out = self._merge(parts, path, depth)
        finally:
            defined = self._sites.pop(path)
        if defined is None:
            return out
        self.defs[defined] = out
        self.change(path, "recursive allOf merged once into $defs; the recursion refers to it")
        return {"$ref": f"#/$defs/{defined}", PATH: path}

    def _site_name(self, site: str) -> str:
        """The ``$defs`` name the merged schema of ``site`` (a place being merged) gets."""
        name = self._sites[site] or self.refs.new_name(site.rsplit("/", 1)[-1] or "root")
        self._sites[site] = name
        return name

    def _recursion(self, exc: RecursiveMerge, path: str) -> Schema:
        """allOf parts that inline ``exc.target`` inside its own expansion: a reference to it
        is sent (the merged definition when it is a place being merged), the rest checked
        after the answer."""
        if exc.target in self._sites:
            name = self._site_name(exc.target)
        else:
            found = self.refs.def_name(exc.target)
            name = "" if found is None else found
        self.change(
            path,
            f"allOf beside a recursive reference ({exc.path}): only the reference is sent, "
            "the other parts are checked after the answer",
            lossy=True,
        )
        return {"$ref": f"#/$defs/{name}" if name else "#", PATH: path}

    def _merge(self, parts: list[Part], path: str, depth: int) -> Schema:
        try:
            merged = merge_all_of(parts, path, self.refs, self._merging, self.change, self._sites)
        except RecursiveMerge as exc:
            return self._recursion(exc, path)
        except MergeError as exc:
            return self.error(exc.path, exc.reason, exc.fix)
        except Unsatisfiable as exc:
            return self.error(
                path,
                f"allOf parts contradict each other: {exc}",
                "remove the conflicting constraint",
                unsat=True,
            )
        if merged.schema is False:
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
        refs = sorted(merged.refs)
        self._merging.extend(refs)
        try:
            return self.node({**merged.schema, SRC: (path, True)}, path, depth + 1)
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
        if assertions(rest):
            # 2019-09+: keywords beside $ref apply too, i.e. allOf[$ref, rest].
            return self._merged([(schema, path, frozen)], path, depth)
        try:
            ptr = self.refs.resolve(ref, path)
        except UnresolvedRef as exc:
            return self.error(path, exc.reason, exc.fix)
        name = self.refs.def_name(ptr)
        out: Schema = {"$ref": "#" if name is None else f"#/$defs/{name}", PATH: path}
        siblings = self._annotations(rest, path)
        if siblings:
            out[SIB] = siblings
        return out

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
                return []  # any value: _typed sends it as a JSON string
            else:
                self.error(path, f"unknown type {unknown[0]!r}", f"use one of {sorted(JSON_TYPES)}")
            return None
        if "number" in names and "integer" in names:
            names.remove("integer")
        return names

    def _typed(self, schema: Schema, path: str, depth: int, frozen: bool) -> Schema:
        dropped = [k for k in ("not", "if", "then", "else") if k in schema]
        if dropped:
            self.change(
                path,
                f"`{'`/`'.join(dropped)}` left out of what is sent (strict mode cannot express "
                "it); checked against the original schema after the answer",
                lossy=True,
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
                return self.any_value(schema, path)
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
        if any(json_type(v) is None for v in values):
            return self._encoded_enum(values, key, path)
        kept: dict[str, Any] = {}
        for v in values:
            kind = json_type(v)
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

    def _encoded_enum(self, values: list[Any], key: str, path: str) -> Schema:
        """Values that are objects or arrays: the enum of their JSON texts, parsed on restore."""
        texts = list(
            dict.fromkeys(json.dumps(v, separators=(",", ":"), ensure_ascii=False) for v in values)
        )
        self.change(
            path,
            f"{key} with object or array values sent as the enum of their JSON texts; restore() "
            "parses the one chosen",
        )
        return {
            "type": "string",
            "enum": texts,
            "description": "One of the listed JSON values, written as a JSON-encoded string.",
            XF: ("json", None),
        }

    def _one_type(self, schema: Schema, kind: str, path: str, depth: int, frozen: bool) -> Schema:
        if kind in ("null", "boolean"):
            return {"type": kind}
        if kind == "string":
            return self._string(schema, path)
        if kind in ("number", "integer"):
            out: Schema = {"type": kind}
            for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                if is_number(schema.get(key)):
                    out[key] = schema[key]
            if is_number(schema.get("multipleOf")) and schema["multipleOf"] > 0:
                out["multipleOf"] = schema["multipleOf"]
            return out
        if kind == "array":
            return self._array(schema, path, depth, frozen)
        return self._object(schema, path, depth, frozen)

    def _string(self, schema: Schema, path: str) -> Schema:
        out: Schema = {"type": "string"}
        hints: list[str] = []
        if isinstance(schema.get("pattern"), str):
            if sendable(schema["pattern"]):
                out["pattern"] = schema["pattern"]
            else:
                hints.append(f"Must match the regular expression {schema['pattern']}.")
                self.change(path, UNSENT_PATTERN, lossy=True)
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
            if any(not c for c in compiled):
                return {}
            if len({canon(c) for c in compiled}) != 1:
                # Exactly one item per position is sent: bounds that allow that, and items
                # after the prefix, hold (a restriction); anything else is checked after.
                n = len(compiled)
                unsent: list[str] = [k for k in ("uniqueItems", "contains") if k in schema]
                if min_items is not None and min_items > n:
                    unsent.append("minItems")
                if max_items is not None and max_items < n:
                    unsent.append("maxItems")
                if unsent:
                    self.change(
                        path,
                        f"{', '.join(unsent)} of the tuple left out of what is sent (it has "
                        "exactly one item per position); checked against the original schema "
                        "after the answer",
                        lossy=True,
                    )
                self.change(
                    path,
                    'tuple sent as an object with one property per position ("0", "1", '
                    "...); restore() turns it back into a list",
                )
                return {
                    "type": "object",
                    "properties": {str(i): c for i, c in enumerate(compiled)},
                    "required": [str(i) for i in range(len(compiled))],
                    "additionalProperties": False,
                    "description": TUPLE_HINT,
                    XF: ("tuple", len(compiled)),
                }
            out["items"] = compiled[0]
            self.change(path, "tuple of identical item schemas rewritten as a list")
            restrict = tail is False
            if not restrict and not _is_any(tail):
                tail_out = self.node(tail, child(path, tail_key, frozen=frozen), depth + 1, frozen)
                restrict = canon(tail_out) != canon(compiled[0])
            if restrict:
                max_items = len(prefix) if max_items is None else min(max_items, len(prefix))
        elif _is_any(tail):
            out["items"] = self.any_value(
                tail if isinstance(tail, dict) else {}, child(path, tail_key, frozen=frozen)
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
            self.change(
                path,
                "`contains` left out of what is sent (strict mode cannot express it); checked "
                "against the original schema after the answer",
                lossy=True,
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
        pattern_props = schema.get("patternProperties")
        patterns = pattern_props if isinstance(pattern_props, dict) and pattern_props else {}
        names_schema = schema.get("propertyNames", MISSING)
        # The keys beyond the declared ones: None (closed), or (key schema, value schema) pairs.
        others: list[tuple[Any, Any, str]] | None = None
        if extra is False or extra == {"not": {}}:
            others = None
        elif extra is MISSING or extra is True or extra == {}:
            declared_empty = extra is MISSING and "properties" in schema  # {}: a closed object
            if not props and not patterns and not required and not declared_empty:
                return self.any_object(schema, path)
            if props or required:
                if extra is not MISSING:
                    self.change(
                        path,
                        f"{extra_key}: true replaced by false; strict mode only produces the "
                        "declared properties",
                    )
                else:
                    self.change(path, "object closed (additionalProperties: false)")
        else:
            others = [(MISSING, extra, child(path, extra_key, frozen=frozen))]
        if patterns:
            if others is None:
                others = []
            for pattern, sub in patterns.items():
                others.insert(
                    len(others) - (1 if others and others[-1][0] is MISSING else 0),
                    (pattern, sub, child(path, "patternProperties", pattern, frozen=frozen)),
                )
        if names_schema not in (MISSING, True, {}):
            if others is not None:
                self.change(path, "propertyNames checked after the answer", lossy=True)
            elif not self._names_ok(names_schema, list(props)):
                self.change(
                    path,
                    "`propertyNames` left out of what is sent (strict mode cannot express it); "
                    "checked against the original schema after the answer",
                    lossy=True,
                )
            else:
                self.change(path, "propertyNames dropped: every declared property name passes it")
        for key in ("dependentSchemas", "dependencies"):
            deps = schema.get(key)
            if isinstance(deps, dict) and any(not isinstance(v, list) for v in deps.values()):
                self.change(
                    path,
                    f"{key} (conditional subschemas) left out of what is sent; checked "
                    "against the original schema after the answer",
                    lossy=True,
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
        for name in [r for r in required if r not in props]:
            # A required name without a schema: any value, unless extra keys say otherwise.
            value_schema = MISSING if others is None else others[-1][1]
            if others is not None and others[-1][0] is not MISSING:
                value_schema = MISSING
            out_props[name] = (
                self.any_value({}, child(path, "required", frozen=frozen))
                if _is_any(value_schema)
                else self.node(
                    value_schema, child(path, extra_key, frozen=frozen), depth + 1, frozen
                )
            )

        hints: list[str] = []
        count = len(out_props)
        low: int = schema["minProperties"] if _is_count(schema.get("minProperties")) else 0
        high: int = schema["maxProperties"] if _is_count(schema.get("maxProperties")) else count
        if others is None and (low > count or (high < count and not optional)):
            ok = False
            self.error(
                path,
                f"minProperties/maxProperties cannot hold: strict mode always "
                f"produces all {count} properties",
                "remove the bound",
            )
        elif others is None and (low > count - len(optional) or high < count):
            if low > count - len(optional):
                hints.append(f"Give at least {low} of the properties.")
            if high < count:
                hints.append(f"Give at most {high} of the properties.")
            self.change(path, "minProperties/maxProperties moved into the description", lossy=True)
        elif others is not None and (low or "maxProperties" in schema):
            hints.append(
                f"{'At least ' + str(low) if low else ''}"
                f"{' and ' if low and 'maxProperties' in schema else ''}"
                f"{'At most ' + str(high) if 'maxProperties' in schema else ''} keys in all."
            )
            self.change(path, "minProperties/maxProperties checked after the answer", lossy=True)
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
        entries = None
        if others is not None:
            entries = self._entries(others, names_schema, path, depth)
            if entries is None:
                return {}
            if not out_props:
                self.change(path, "map sent as a list of {key, value} entries; restore() "
                            "turns it back into an object")  # fmt: skip
                entries[XF] = ("entries", None)
                if hints:
                    entries["description"] = " ".join([entries["description"], *hints])
                if low:
                    entries["minItems"] = low
                return entries
        out: Schema = {
            "type": "object",
            "properties": out_props,
            "required": list(out_props),
            "additionalProperties": False,
        }
        if entries is not None:
            name = _free_name(out_props)
            out["properties"][name] = entries
            out["required"].append(name)
            entries["description"] = EXTRA_HINT
            out[XF] = ("extra", name)
            self.change(
                path,
                f"keys beyond the declared properties sent as {{key, value}} entries under "
                f"{name!r}; restore() merges them back",
            )
        if optional:
            out[OPT] = optional
        if hints:
            out["description"] = " ".join(hints)
        return out

    def any_object(self, schema: Schema, path: str) -> Schema:
        """An object that may hold any keys and values: sent as a JSON-encoded string."""
        self.change(path, "object with any keys sent as a JSON-encoded string; restore() parses it")
        out: Schema = {"type": "string", XF: ("json", None), PATH: path}
        self._annotate(out, schema, path, ["A JSON object, written as a JSON-encoded string."])
        return out

    def _entries(
        self, others: list[tuple[Any, Any, str]], names_schema: Any, path: str, depth: int
    ) -> Schema | None:
        """The entries list of a map: one entry shape per key pattern, then the rest."""
        shapes: list[Schema] = []
        for pattern, value_schema, where in others:
            key: Schema = {"type": "string"}
            if pattern is MISSING and isinstance(names_schema, dict):
                pattern = names_schema.get("pattern", MISSING)
            if isinstance(pattern, str) and sendable(pattern):
                key["pattern"] = pattern
            elif isinstance(pattern, str):
                key["description"] = f"Must match the regular expression {pattern}."
                self.change(where, UNSENT_PATTERN, lossy=True)
            if isinstance(names_schema, dict) and isinstance(names_schema.get("enum"), list):
                names = [n for n in names_schema["enum"] if isinstance(n, str)]
                if names:
                    key = {"type": "string", "enum": names}
            value = (
                self.any_value({}, where)
                if _is_any(value_schema)
                else self.node(value_schema, where, depth + 1)
            )
            if not value:
                return None
            shapes.append(
                {
                    "type": "object",
                    "properties": {ENTRY_KEY: key, ENTRY_VALUE: value},
                    "required": [ENTRY_KEY, ENTRY_VALUE],
                    "additionalProperties": False,
                }
            )
        items: Schema = shapes[0] if len(shapes) == 1 else {"anyOf": shapes}
        return {"type": "array", "items": items, "description": MAP_HINT}

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
            if isinstance(pattern, str) and not search(pattern, name):
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
