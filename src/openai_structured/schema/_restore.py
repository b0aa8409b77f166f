"""Undo the "optional became nullable" rewrite on a value produced under a strict schema.

The compiler records, per object node of the sent schema (by JSON pointer), which properties
were optional and not nullable in the original. Walking the value alongside the sent schema, a
``null`` under such a key is dropped, so that the original model's default applies. Unions are
resolved by shape: the first branch the value structurally matches is followed; when none does,
the value is left as it is (validation will then report the real problem).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._keywords import Schema, esc

MAX_VALUE_DEPTH = 256  # deeper values are returned unchanged rather than risking the stack
MAX_REF_HOPS = 64


class Restorer:
    def __init__(self, schema: Schema, table: Mapping[str, frozenset[str]]) -> None:
        self.schema = schema
        self.defs: Schema = schema.get("$defs", {})
        self.table = table

    def restore(self, value: Any) -> Any:
        if not self.table:
            return value
        return self._walk(value, self.schema, "#", 0)

    def restore_at(self, path: tuple[str | int, ...], value: Any) -> Any:
        """Restore ``value`` found at ``path`` (keys and indices) inside a whole answer.

        Streams validate array items as they close, before the whole value exists. Where a
        union on the way is ambiguous for the path, the value is returned unchanged.
        """
        if not self.table:
            return value
        node, ptr = self.schema, "#"
        for step in path:
            located = self._step(node, ptr, step)
            if located is None:
                return value
            node, ptr = located
        return self._walk(value, node, ptr, 0)

    def _step(self, node: Schema, ptr: str, step: str | int) -> tuple[Schema, str] | None:
        hops = 0
        while "$ref" in node and hops < MAX_REF_HOPS:
            node, ptr = self._target(node["$ref"])
            hops += 1
        if "anyOf" in node:
            found = [
                located
                for i, branch in enumerate(node["anyOf"])
                if isinstance(branch, dict)
                and (located := self._step(branch, f"{ptr}/anyOf/{i}", step)) is not None
            ]
            return found[0] if len(found) == 1 else None
        if isinstance(step, int):
            items = node.get("items")
            return (items, f"{ptr}/items") if isinstance(items, dict) else None
        props = node.get("properties")
        sub = props.get(step) if isinstance(props, dict) else None
        return (sub, f"{ptr}/properties/{esc(step)}") if isinstance(sub, dict) else None

    def _target(self, ref: str) -> tuple[Schema, str]:
        if ref == "#":
            return self.schema, "#"
        name = ref[len("#/$defs/") :]
        return self.defs.get(name, {}), f"#/$defs/{esc(name)}"

    def _walk(self, value: Any, node: Schema, ptr: str, depth: int) -> Any:
        if depth > MAX_VALUE_DEPTH:
            return value
        hops = 0
        while "$ref" in node and hops < MAX_REF_HOPS:
            node, ptr = self._target(node["$ref"])
            hops += 1
        if "anyOf" in node:
            for i, branch in enumerate(node["anyOf"]):
                if self.matches(value, branch, 0):
                    return self._walk(value, branch, f"{ptr}/anyOf/{i}", depth + 1)
            return value
        if isinstance(value, dict) and isinstance(node.get("properties"), dict):
            props = node["properties"]
            drop = self.table.get(ptr, frozenset())
            out: dict[str, Any] = {}
            for key, item in value.items():
                if item is None and key in drop:
                    continue
                sub = props.get(key)
                out[key] = (
                    self._walk(item, sub, f"{ptr}/properties/{esc(key)}", depth + 1)
                    if isinstance(sub, dict)
                    else item
                )
            return out
        if isinstance(value, list) and isinstance(node.get("items"), dict):
            items = node["items"]
            return [self._walk(v, items, f"{ptr}/items", depth + 1) for v in value]
        return value

    def matches(self, value: Any, node: Schema, depth: int) -> bool:
        """Structural match: types, enum/const, object keys; not string or number bounds."""
        if depth > MAX_VALUE_DEPTH:
            return False
        hops = 0
        while "$ref" in node and hops < MAX_REF_HOPS:
            node, _ = self._target(node["$ref"])
            hops += 1
        if "anyOf" in node:
            return any(self.matches(value, b, depth + 1) for b in node["anyOf"])
        if "const" in node and not _same(value, node["const"]):
            return False
        if "enum" in node and not any(_same(value, v) for v in node["enum"]):
            return False
        kind = node.get("type")
        kinds = kind if isinstance(kind, list) else [kind] if isinstance(kind, str) else []
        if kinds and not any(_is_type(value, k) for k in kinds):
            return False
        if isinstance(value, dict) and isinstance(node.get("properties"), dict):
            props = node["properties"]
            if set(value) != set(props):
                return False
            return all(self.matches(value[k], props[k], depth + 1) for k in props)
        if isinstance(value, list) and isinstance(node.get("items"), dict):
            return all(self.matches(v, node["items"], depth + 1) for v in value)
        return True


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == 1.0`` but ``True != 1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if _is_type(a, "number") and _is_type(b, "number"):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def _is_type(value: Any, kind: str) -> bool:
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return kind == "number" or isinstance(value, int) or float(value).is_integer()
