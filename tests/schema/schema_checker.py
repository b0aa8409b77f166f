"""An independent checker of OpenAI's strict-mode rules, used on every compiled schema in tests.

It is written from the Structured Outputs guide ("Supported schemas"), not from the compiler,
so that a compiler bug does not hide itself.
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator

SUPPORTED_FORMATS = {
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
}
TYPES = {"string", "number", "integer", "boolean", "object", "array", "null"}
COMMON = {"type", "description", "title", "anyOf", "$ref", "enum", "const"}
BY_TYPE = {
    "string": {"pattern", "format"},
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
    "integer": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
    "array": {"items", "minItems", "maxItems"},
    "object": {"properties", "required", "additionalProperties"},
    "boolean": set(),
    "null": set(),
}


class StrictViolation(AssertionError):
    pass


def _fail(path: str, msg: str) -> None:
    raise StrictViolation(f"{path}: {msg}")


def assert_openai_strict(schema: Any) -> None:
    """Raise ``StrictViolation`` unless ``schema`` satisfies OpenAI's strict-mode rules."""
    if not isinstance(schema, dict):
        _fail("#", "schema is not an object")
    json.dumps(schema, allow_nan=False)  # plain JSON only
    Draft202012Validator.check_schema(schema)
    if schema.get("type") != "object" or "anyOf" in schema or "$ref" in schema:
        _fail("#", "root must be a plain object schema")
    defs = schema.get("$defs", {})
    if not isinstance(defs, dict):
        _fail("#/$defs", "not an object")
    stats = {"props": 0, "enum": 0, "chars": sum(len(n) for n in defs)}
    used: set[str] = set()

    def walk(node: Any, path: str, root: bool = False) -> None:
        if not isinstance(node, dict):
            _fail(path, "every schema must be an object (no boolean schemas)")
        for key in node:
            if key.startswith("\x00"):
                _fail(path, "private marker leaked")
        if "$ref" in node:
            if set(node) != {"$ref"}:
                _fail(path, f"keywords beside $ref: {sorted(node)}")
            ref = node["$ref"]
            if ref != "#":
                if not ref.startswith("#/$defs/") or ref[8:] not in defs:
                    _fail(path, f"unresolvable $ref {ref}")
                used.add(ref[8:])
            return
        if "anyOf" in node:
            branches = node["anyOf"]
            if not isinstance(branches, list) or not branches:
                _fail(path, "anyOf must be a non-empty list")
            extra = set(node) - {"anyOf", "description", "title"}
            if extra:
                _fail(path, f"keywords beside anyOf: {sorted(extra)}")
            for i, b in enumerate(branches):
                walk(b, f"{path}/anyOf/{i}")
            return
        kind = node.get("type")
        if kind not in TYPES:
            _fail(path, f"missing or unsupported type {kind!r}")
        allowed = COMMON | BY_TYPE[kind] | ({"$defs"} if root else set())
        extra = set(node) - allowed
        if extra:
            _fail(path, f"unsupported keywords for {kind}: {sorted(extra)}")
        if "format" in node and node["format"] not in SUPPORTED_FORMATS:
            _fail(path, f"unsupported format {node['format']!r}")
        if "enum" in node:
            values = node["enum"]
            if not isinstance(values, list) or not values:
                _fail(path, "empty enum")
            stats["enum"] += len(values)
            stats["chars"] += sum(len(str(v)) for v in values)
            for v in values:
                if isinstance(v, (dict, list)):
                    _fail(path, "enum values must be scalars")
        if "const" in node:
            stats["chars"] += len(str(node["const"]))
        if kind == "object":
            props = node.get("properties")
            if not isinstance(props, dict):
                _fail(path, "object without properties")
            if node.get("additionalProperties") is not False:
                _fail(path, "additionalProperties must be false")
            if node.get("required") != list(props):
                _fail(path, "every property must be required (in order)")
            stats["props"] += len(props)
            for name, sub in props.items():
                stats["chars"] += len(name)
                walk(sub, f"{path}/properties/{name}")
        if kind == "array":
            if "items" not in node:
                _fail(path, "array without items")
            walk(node["items"], f"{path}/items")

    walk(schema, "#", root=True)
    for name, sub in defs.items():
        walk(sub, f"#/$defs/{name}")
    unused = set(defs) - used
    if unused:
        _fail("#/$defs", f"unused definitions {sorted(unused)}")
    if stats["props"] > 5000:
        _fail("#", "more than 5000 properties")
    if stats["enum"] > 1000:
        _fail("#", "more than 1000 enum values")
    if stats["chars"] > 120_000:
        _fail("#", "more than 120,000 characters of names and enum values")
    if _depth(schema, defs) > 10:
        _fail("#", "more than 10 levels of object nesting")


def _depth(schema: dict[str, Any], defs: dict[str, Any]) -> int:
    memo: dict[str, int] = {}

    def height(node: Any, stack: tuple[str, ...]) -> int:
        if not isinstance(node, dict):
            return 0
        if "$ref" in node:
            ref = node["$ref"]
            if ref in stack:
                return 0
            if ref in memo:
                return memo[ref]
            target = schema if ref == "#" else defs.get(ref[8:], {})
            value = height(target, (*stack, ref))
            memo[ref] = value
            return value
        own = 1 if node.get("type") == "object" else 0
        subs = [*node.get("anyOf", []), *node.get("properties", {}).values()]
        if "items" in node:
            subs.append(node["items"])
        return own + max((height(s, stack) for s in subs), default=0)

    return height(schema, ("#",))


def pointer_exists(doc: Any, path: str) -> bool:
    """Whether the JSON pointer ``path`` (``#/a/b``) names a location in ``doc``."""
    node = doc
    for raw in path.lstrip("#").split("/")[1:]:
        seg = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and seg in node:
            node = node[seg]
        elif isinstance(node, list) and seg.isdigit() and int(seg) < len(node):
            node = node[int(seg)]
        else:
            return False
    return True
