"""Undo the "optional became nullable" rewrite on a value produced under a strict schema.

The compiler records, per object node of the sent schema (by JSON pointer), which properties
were optional and not nullable in the original. Walking the value alongside the sent schema, a
``null`` under such a key is dropped, so that the original model's default applies. Unions are
resolved by shape: the first branch the value structurally matches is followed; when none does,
the value is left as it is (validation will then report the real problem).

The walk is linear and uses no Python recursion, so a value nested as deep as a recursive
schema allows (a linked list of 500 nodes) is restored exactly: every (value, schema node) pair
is matched at most once per call (memoised), and subtrees whose schema can never hold a null to
drop are not visited at all (they are shared with the input, not copied).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._keywords import Schema, esc

MAX_REF_HOPS = 64
_EMPTY: Schema = {}  # the target of a $ref to a missing definition: matches anything, no nulls
_NOTHING: frozenset[str] = frozenset()

_NO_CONST: Any = object()
# One structural question: does this value match this schema node?
_Query = tuple[Any, Schema]
# A node as _shallow reads it: (union alternatives, const, enum, types, properties, items).
_Shape = tuple[
    "list[Schema] | None",
    Any,
    "list[Any] | None",
    "tuple[str, ...]",
    "Schema | None",
    "Schema | None",
]


class Restorer:
    def __init__(self, schema: Schema, table: Mapping[str, frozenset[str]]) -> None:
        self.schema = schema
        self.defs: Schema = schema.get("$defs", {})
        # The table is keyed by pointer; nodes are looked up by identity instead, so the walk
        # never builds pointer strings.
        ptrs, self._needed = self._index(table)
        self._drop = {key: table[ptr] for key, ptr in ptrs.items() if ptr in table}
        self._shapes: dict[int, _Shape] = {}

    # --- which schema nodes can need restoring ---------------------------------------------

    def _index(self, table: Mapping[str, frozenset[str]]) -> tuple[dict[int, str], set[int]]:
        """Each node's pointer, and the nodes under which some null may have to be dropped.

        A node needs restoring when it is an object listed in the table, or when one of its
        children (a property, the items, an anyOf branch, the target of its $ref) does.
        """
        ptrs: dict[int, str] = {}
        parents: dict[int, list[int]] = {}
        stack: list[tuple[Any, str]] = [(self.schema, "#")]
        stack.extend((node, f"#/$defs/{esc(name)}") for name, node in self.defs.items())
        while stack:
            node, ptr = stack.pop()
            if not isinstance(node, dict) or id(node) in ptrs:
                continue
            ptrs[id(node)] = ptr
            children: list[tuple[Any, str]] = []
            if isinstance(node.get("$ref"), str):
                ref = node["$ref"]
                name = ref[len("#/$defs/") :]
                children.append((self._target(ref), "#" if ref == "#" else f"#/$defs/{esc(name)}"))
            props = node.get("properties")
            if isinstance(props, dict):
                children.extend((sub, f"{ptr}/properties/{esc(k)}") for k, sub in props.items())
            if isinstance(node.get("items"), dict):
                children.append((node["items"], f"{ptr}/items"))
            if isinstance(node.get("anyOf"), list):
                children.extend((b, f"{ptr}/anyOf/{i}") for i, b in enumerate(node["anyOf"]))
            for sub, sub_ptr in children:
                if isinstance(sub, dict):
                    parents.setdefault(id(sub), []).append(id(node))
                    stack.append((sub, sub_ptr))
        needed = {key for key, ptr in ptrs.items() if ptr in table}
        work = list(needed)
        while work:
            for parent in parents.get(work.pop(), ()):
                if parent not in needed:
                    needed.add(parent)
                    work.append(parent)
        return ptrs, needed

    # --- public --------------------------------------------------------------------------------

    def restore(self, value: Any) -> Any:
        return self._restore(value, self.schema)

    def restore_at(self, path: tuple[str | int, ...], value: Any) -> Any:
        """Restore ``value`` found at ``path`` (keys and indices) inside a whole answer.

        Streams validate array items as they close, before the whole value exists. Where a
        union on the way is ambiguous for the path, the value is returned unchanged.
        """
        node = self.schema
        for step in path:
            located = self._step(node, step)
            if located is None:
                return value
            node = located
        return self._restore(value, node)

    # --- navigation ------------------------------------------------------------------------------

    def _step(self, node: Schema, step: str | int) -> Schema | None:
        """The schema of child ``step`` of a value under ``node``; None if unknown or ambiguous."""
        alternatives = self._shape_of(node)[0]
        found: dict[int, Schema] = {}
        for alternative in [self._deref(node)] if alternatives is None else alternatives:
            if isinstance(step, int):
                sub = alternative.get("items")
            else:
                props = alternative.get("properties")
                sub = props.get(step) if isinstance(props, dict) else None
            if isinstance(sub, dict):
                found[id(sub)] = sub
        return next(iter(found.values())) if len(found) == 1 else None

    def _target(self, ref: str) -> Schema:
        if ref == "#":
            return self.schema
        target = self.defs.get(ref[len("#/$defs/") :], _EMPTY)
        return target if isinstance(target, dict) else _EMPTY

    def _deref(self, node: Schema) -> Schema:
        hops = 0
        while "$ref" in node and hops < MAX_REF_HOPS:
            node = self._target(node["$ref"])
            hops += 1
        return node

    # --- the walk ------------------------------------------------------------------------------

    def _restore(self, value: Any, node: Schema) -> Any:
        """The restored copy of ``value`` under ``node``: an explicit work list, no recursion.

        Each task fills one slot of an output container that already holds the input item, so
        a task that finds nothing to change simply leaves the input item in place.
        """
        needed = self._needed
        memo: dict[tuple[int, int], bool] = {}
        holder = [value]
        tasks: list[tuple[Any, Schema, Any, Any]] = [(value, node, holder, 0)]
        while tasks:
            value, node, parent, slot = tasks.pop()
            located = self._branch(value, node, memo)
            if located is None:
                continue
            if isinstance(value, dict):
                props = located.get("properties")
                if not isinstance(props, dict):
                    continue
                drop = self._drop.get(id(located), _NOTHING)
                out: dict[str, Any] = {}
                for key, item in value.items():
                    if item is None and key in drop:
                        continue
                    out[key] = item
                    if isinstance(item, (dict, list)):
                        sub = props.get(key)
                        if isinstance(sub, dict) and id(sub) in needed:
                            tasks.append((item, sub, out, key))
                parent[slot] = out
            elif isinstance(value, list):
                items = located.get("items")
                if not isinstance(items, dict):
                    continue
                copied = list(value)
                for i, item in enumerate(value):
                    if isinstance(item, (dict, list)):
                        tasks.append((item, items, copied, i))
                parent[slot] = copied
        return holder[0]

    def _branch(self, value: Any, node: Schema, memo: dict[tuple[int, int], bool]) -> Schema | None:
        """The node (past $refs and the chosen union branch) that ``value`` is restored under.

        None when nothing under it can change: no null to drop below, or no branch matches.
        Nested unions count as one, in order (the first branch of the first matching branch is
        the first matching alternative), which also ends a union that refers to itself.
        """
        if id(node) not in self._needed:
            return None
        alternatives = self._shape_of(node)[0]
        if alternatives is None:
            return self._deref(node)
        for alternative in alternatives:
            if self._matches(value, alternative, memo):
                return alternative if id(alternative) in self._needed else None
        return None

    # --- structural matching ---------------------------------------------------------------------

    def _matches(self, value: Any, node: Schema, memo: dict[tuple[int, int], bool]) -> bool:
        """Structural match: types, enum/const, object keys; not string or number bounds.

        An explicit stack of frames, each "all of" or "any of" a list of (value, node) queries,
        short-circuiting like ``all()``/``any()``. Each frame's result is memoised by identity,
        so matching down a deep value costs one visit per pair, not one per level.
        """
        key = (id(value), id(node))
        if key in memo:
            return memo[key]
        first = self._shallow(value, node)
        if isinstance(first, bool):
            return first
        # frame: [memo key, wants_all, queries, next index]
        stack: list[list[Any]] = [[key, first[0], first[1], 0]]
        result = False
        while stack:
            frame = stack[-1]
            key, wants_all, queries, index = frame
            if index == len(queries):
                result = wants_all  # every query matched (all) / none did (any)
            else:
                frame[3] = index + 1
                sub_value, sub_node = queries[index]
                sub_key = (id(sub_value), id(sub_node))
                known = memo.get(sub_key)
                if known is not None:
                    sub_result = known
                else:
                    shallow = self._shallow(sub_value, sub_node)
                    if not isinstance(shallow, bool):
                        stack.append([sub_key, shallow[0], shallow[1], 0])
                        continue
                    sub_result = shallow
                if sub_result == wants_all:
                    continue  # this query does not decide the frame: on to the next
                result = sub_result
            memo[key] = result
            stack.pop()
            # hand the result to the frame that asked
            while stack:
                parent = stack[-1]
                if result == parent[1]:
                    break
                memo[parent[0]] = result
                stack.pop()
        return result

    def _shallow(self, value: Any, node: Schema) -> bool | tuple[bool, list[_Query]]:
        """Whether ``value`` matches ``node`` at its top level, or the (all/any, queries) left."""
        alternatives, const, enum, kinds, props, items = self._shape_of(node)
        if alternatives is not None:
            return False, [(value, b) for b in alternatives]
        if const is not _NO_CONST and not _same(value, const):
            return False
        if enum is not None and not any(_same(value, v) for v in enum):
            return False
        if kinds and not any(_is_type(value, k) for k in kinds):
            return False
        if props is not None and isinstance(value, dict):
            if value.keys() != props.keys():
                return False
            return True, [(value[k], sub) for k, sub in props.items()]
        if items is not None and isinstance(value, list):
            return True, [(v, items) for v in value]
        return True

    def _shape_of(self, node: Schema) -> _Shape:
        """What ``_shallow`` reads from a node, computed once per node (the schema is fixed)."""
        shape = self._shapes.get(id(node))
        if shape is None:
            shape = self._shapes[id(node)] = self._shape(node)
        return shape

    def _shape(self, node: Schema) -> _Shape:
        node = self._deref(node)
        if isinstance(node.get("anyOf"), list):
            return self._alternatives(node), _NO_CONST, None, (), None, None
        kind = node.get("type")
        kinds = tuple(kind) if isinstance(kind, list) else (kind,) if isinstance(kind, str) else ()
        enum = node.get("enum")
        props = node.get("properties")
        items = node.get("items")
        return (
            None,
            node.get("const", _NO_CONST),
            enum if isinstance(enum, list) else None if "enum" not in node else [],
            kinds,
            props if isinstance(props, dict) else None,
            items if isinstance(items, dict) else None,
        )

    def _alternatives(self, union: Schema) -> list[Schema]:
        """The schemas a union allows, nested unions and $refs flattened, in order.

        Flattening keeps every frame of ``_matches`` for one value a step down into it, so a
        union that refers back to itself cannot loop (the repeat adds nothing and is cut).
        """
        out: list[Schema] = []
        seen = {id(union)}
        stack = list(reversed(union["anyOf"]))
        while stack:
            node = stack.pop()
            if not isinstance(node, dict):
                continue
            node = self._deref(node)
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node.get("anyOf"), list):
                stack.extend(reversed(node["anyOf"]))
            else:
                out.append(node)
        return out


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
