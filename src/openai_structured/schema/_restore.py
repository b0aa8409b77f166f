"""Undo the compiler's lossless rewrites on a value produced under the strict schema sent, so
the answer comes back in the shape the user declared.

The compiler records, per node of the sent schema (by JSON pointer), a :class:`NodeRestore`:
which properties were optional and not nullable in the original (a ``null`` under such a key is
dropped, so that the original model's default applies), and how the node's value is turned
back (its *kind*):

==========  ======================================  =========================================
kind        sent as                                 restored to
==========  ======================================  =========================================
``json``    a string holding any JSON value         the parsed value
``entries`` a list of ``{key, value}`` objects      an object (a key twice: :class:`RestoreError`)
``extra``   declared properties + ``name``: entries  one object (the entries merged in)
``tuple``   an object with properties "0".."n-1"     a list
``unwrap``  a root object with one property          that property's value
==========  ======================================  =========================================

Walking the value alongside the sent schema, unions are resolved by shape: the first branch the
value structurally matches is followed; when none does, the value is left as it is (validation
will then report the real problem). A value that cannot be restored (a string that is not JSON,
a key given twice) raises :class:`RestoreError` with its path in the declared shape.

The walk is linear and uses no Python recursion, so a value nested as deep as a recursive
schema allows (a linked list of 500 nodes) is restored exactly: every (value, schema node) pair
is matched at most once per call (memoised), and subtrees whose schema can never hold a null to
drop are not visited at all (they are shared with the input, not copied).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from ._keywords import ENTRY_KEY, ENTRY_VALUE, Schema, esc

__all__ = ["NodeRestore", "RestoreError", "Restorer"]


class NodeRestore(NamedTuple):
    """What restoring does at one node of the sent schema."""

    #: Properties whose null means "not given" (dropped).
    drop: frozenset[str]
    #: ``(kind, argument)`` (see the module's table), or None.
    kind: tuple[str, Any] | None = None


class RestoreError(ValueError):
    """An answer valid for the sent schema that has no value in the declared shape."""

    def __init__(self, path: tuple[str | int, ...], message: str, value: Any) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.value = value


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
    def __init__(self, schema: Schema, table: Mapping[str, NodeRestore]) -> None:
        self.schema = schema
        self.defs: Schema = schema.get("$defs", {})
        # The table is keyed by pointer; nodes are looked up by identity instead, so the walk
        # never builds pointer strings.
        ptrs, self._needed = self._index(table)
        self._drop = {key: table[ptr].drop for key, ptr in ptrs.items() if ptr in table}
        self._kind = {
            key: kind for key, ptr in ptrs.items() if ptr in table and (kind := table[ptr].kind)
        }
        self._shapes: dict[int, _Shape] = {}

    # --- which schema nodes can need restoring ---------------------------------------------

    def _index(self, table: Mapping[str, NodeRestore]) -> tuple[dict[int, str], set[int]]:
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

    def restore(self, value: Any, *, lenient: bool = False) -> Any:
        """``value`` in the declared shape. ``lenient`` (for a partial value still streaming):
        nothing raises; a JSON string not complete yet becomes None, an entry without its key
        is left out."""
        return self._restore(value, self.schema, lenient)

    def declared_item(
        self, path: tuple[str | int, ...], raw: Any, root: Any
    ) -> tuple[tuple[str | int, ...], Any] | None:
        """An array element the parser completed at ``path`` (in the shape sent), as the
        declared shape sees it: its path there and its restored value. A map entry is reported
        under its key, with its value; a wrapped root loses the wrapper. ``root`` is the value
        being parsed (the keys of map entries are read from it). None when the element is not
        a value of the declared shape (inside a JSON-encoded string)."""
        node: Schema = self.schema
        value = root
        out: list[str | int] = []
        entry = False
        i = 0
        while i < len(path):
            step = path[i]
            located = self._located(node, step)
            if located is None:
                out.extend(path[i:])  # past what the schema says: kept as it is
                break
            kind = self._kind.get(id(located))
            name = kind[0] if kind else None
            value = _child(value, step)
            if name == "unwrap":
                node = located["properties"][step]
                i += 1
                continue
            if name == "json":
                return None
            if name == "tuple":
                out.append(int(step) if isinstance(step, str) and step.isdigit() else step)
                node = located["properties"][step]
                i += 1
                continue
            if name == "extra" and step == kind[1]:  # type: ignore[index]
                # The entries under ``name``: the next step is an entry's index.
                located = self._deref(located["properties"][step])
                kind = ("entries", None)
                name = "entries"
                i += 1
                if i == len(path):
                    return None  # the entries list itself is no value of the declared shape
                step = path[i]
                value = _child(value, step)
            if name == "entries" and isinstance(step, int):
                key = value.get(ENTRY_KEY) if isinstance(value, dict) else None
                if not isinstance(key, str):
                    return None
                out.append(key)
                shape = self._deref(located.get("items", _EMPTY))
                entry_node = _one_entry_shape(self, shape)
                if i + 1 == len(path):
                    entry = True
                    node = entry_node
                    break
                if path[i + 1] != ENTRY_VALUE:
                    return None
                value = _child(value, ENTRY_VALUE)
                props = entry_node.get("properties")
                node = props.get(ENTRY_VALUE, _EMPTY) if isinstance(props, dict) else _EMPTY
                i += 2
                continue
            out.append(step)
            sub = self._step(node, step)
            if sub is None:
                out.extend(path[i + 1 :])
                break
            node = sub
            i += 1
        try:
            restored = self.restore_at(path, raw)
        except RestoreError:
            restored = raw
        if entry:
            restored = restored.get(ENTRY_VALUE) if isinstance(restored, dict) else restored
        return tuple(out), restored

    def _located(self, node: Schema, step: str | int) -> Schema | None:
        """The alternative of ``node`` (past $refs) that has a child ``step``, if only one has."""
        alternatives = self._shape_of(node)[0]
        found: dict[int, Schema] = {}
        for alternative in [self._deref(node)] if alternatives is None else alternatives:
            if isinstance(step, int):
                ok = isinstance(alternative.get("items"), dict)
            else:
                props = alternative.get("properties")
                ok = isinstance(props, dict) and step in props
            if ok:
                found[id(alternative)] = alternative
        return next(iter(found.values())) if len(found) == 1 else None

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

    def _restore(self, value: Any, node: Schema, lenient: bool = False) -> Any:
        """The restored copy of ``value`` under ``node``: an explicit work list, no recursion.

        Each task fills one slot of an output container that already holds the input item, so
        a task that finds nothing to change simply leaves the input item in place. Tasks carry
        the path in the declared shape, for errors.
        """
        memo: dict[tuple[int, int], bool] = {}
        holder = [value]
        tasks: list[tuple[Any, Schema, Any, Any, tuple[str | int, ...]]] = [
            (value, node, holder, 0, ())
        ]
        while tasks:
            value, node, parent, slot, path = tasks.pop()
            located = self._branch(value, node, memo)
            if located is None:
                continue
            kind = self._kind.get(id(located))
            if kind is not None and kind[0] == "unwrap":
                inner = value.get(kind[1]) if isinstance(value, dict) else value
                parent[slot] = inner  # the wrapped root's value takes the wrapper's place
                tasks.append((inner, located["properties"][kind[1]], parent, slot, path))
            elif kind is not None:
                try:
                    parent[slot] = self._transform(kind, value, located, path, tasks, memo)
                except RestoreError:
                    if not lenient:
                        raise
                    parent[slot] = None
            elif isinstance(value, dict):
                parent[slot] = self._object(value, located, path, tasks)
            elif isinstance(value, list):
                items = located.get("items")
                if not isinstance(items, dict):
                    continue
                if id(items) not in self._needed:
                    continue
                copied = list(value)
                tasks.extend((item, items, copied, i, (*path, i)) for i, item in enumerate(value))
                parent[slot] = copied
        return holder[0]

    def _object(
        self, value: dict[str, Any], located: Schema, path: tuple[str | int, ...], tasks: list[Any]
    ) -> Any:
        props = located.get("properties")
        if not isinstance(props, dict):
            return value
        drop = self._drop.get(id(located), _NOTHING)
        needed = self._needed
        out: dict[str, Any] = {}
        for key, item in value.items():
            if item is None and key in drop:
                continue
            out[key] = item
            sub = props.get(key)
            if isinstance(sub, dict) and id(sub) in needed:
                tasks.append((item, sub, out, key, (*path, key)))
        return out

    def _transform(
        self,
        kind: tuple[str, Any],
        value: Any,
        located: Schema,
        path: tuple[str | int, ...],
        tasks: list[Any],
        memo: dict[tuple[int, int], bool],
    ) -> Any:
        """One node's value back in the declared shape (its children are queued as tasks)."""
        name, arg = kind
        if name == "json":
            if not isinstance(value, str):
                return value
            try:
                return json.loads(value)
            except (ValueError, RecursionError) as exc:
                raise RestoreError(
                    path, f"the value must be a JSON-encoded string ({exc})", value
                ) from None
        if name == "tuple":
            if not isinstance(value, dict):
                return value
            props = located["properties"]
            out = [value.get(str(i)) for i in range(arg)]
            tasks.extend((out[i], props[str(i)], out, i, (*path, i)) for i in range(arg))
            return out
        if name == "entries":
            if not isinstance(value, list):
                return value
            return self._merge({}, value, located.get("items", _EMPTY), path, tasks, memo)
        if name == "extra":
            if not isinstance(value, dict):
                return value
            base = {k: v for k, v in value.items() if k != arg}
            out = self._object(base, located, path, tasks)
            entries = value.get(arg)
            if not isinstance(entries, list):
                return out
            sub = located["properties"][arg]
            items = self._deref(sub).get("items", _EMPTY)
            return self._merge(out, entries, items, path, tasks, memo)
        return value

    def _merge(
        self,
        out: dict[str, Any],
        entries: list[Any],
        items: Schema,
        path: tuple[str | int, ...],
        tasks: list[Any],
        memo: dict[tuple[int, int], bool],
    ) -> dict[str, Any]:
        """Map entries into ``out``; each entry's value is restored under its entry schema."""
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get(ENTRY_KEY), str):
                continue  # not an entry: validation reports it
            key = entry[ENTRY_KEY]
            if key in out:
                raise RestoreError(
                    (*path, key), f"the key {key!r} is given more than once", entry.get(ENTRY_VALUE)
                )
            out[key] = entry.get(ENTRY_VALUE)
            shape = self._branch(entry, items, memo) or self._deref(items)
            props = shape.get("properties")
            sub = props.get(ENTRY_VALUE) if isinstance(props, dict) else None
            if isinstance(sub, dict) and id(sub) in self._needed:
                tasks.append((out[key], sub, out, key, (*path, key)))
        return out

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
        # A branch sent as a JSON-encoded string matches every string: a plain string branch
        # beside it is tried first (its strings are valid for the original as they are).
        json_kind = [n for n in out if (self._kind.get(id(n)) or ("",))[0] == "json"]
        if json_kind:
            out = [n for n in out if n not in json_kind] + json_kind
        return out


def _child(value: Any, step: str | int) -> Any:
    if isinstance(step, int):
        return value[step] if isinstance(value, list) and 0 <= step < len(value) else None
    return value.get(step) if isinstance(value, dict) else None


def _one_entry_shape(restorer: Restorer, items: Schema) -> Schema:
    """The entry object of a map's items (the first, when key patterns give several)."""
    alternatives = restorer._shape_of(items)[0]
    return alternatives[0] if alternatives else items


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
