"""Pass 2: turn pass 1's marked tree into the schema that is sent, plus the restore table.

Here, with every definition compiled, we can (1) make each formerly optional property nullable
unless it already accepts null (which may depend on a definition), recording it for
``CompiledSchema.restore``; (2) inline a ``$ref`` that had a description or title beside it
(strict mode rejects keywords next to ``$ref``), except inside its own expansion, where recursion
would not end; (3) keep only the definitions still referenced; (4) check OpenAI's size limits.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._compiler import Compiler
from ._keywords import (
    LARGE_ENUM,
    LARGE_ENUM_CHARS,
    MAX_DEPTH,
    MAX_ENUM_VALUES,
    MAX_PROPERTIES,
    MAX_STRING_CHARS,
    OPT,
    PATH,
    ROOT_PROPERTY,
    SIB,
    XF,
    Schema,
    esc,
)
from ._restore import NodeRestore

MAX_NODES = 200_000  # inlining can multiply a schema; stop long before it hurts
MAX_INLINE = 16
MAX_CUTS = 200  # references turned into JSON strings to meet the nesting limit
DEEP_HINT = "A JSON value (nested too deeply to describe here), written as a JSON-encoded string."


_Edge = tuple[int, str, Schema, str, str]


class _Abort(Exception):
    pass


def _ref_name(ref: str) -> str:
    return "#" if ref == "#" else ref[len("#/$defs/") :]


def root_node(comp: Compiler, root: Schema, seen: set[str]) -> Schema | None:
    """The pass-1 node that becomes the root, or None after recording why it cannot be one.

    ``seen`` collects the definitions the root is reached through by plain ``$ref``s: they are
    the root, so references to them become ``#`` instead of a second copy. A root that is not
    one object (an array, a scalar, a union) is wrapped in an object with one property.
    """
    node = root
    annotations: dict[str, Any] = {}
    while "$ref" in node:
        ref = node["$ref"]
        annotations = {**node.get(SIB, {}), **annotations}
        if ref in seen or ref == "#":
            comp.error("#", "the root $ref refers to itself", "point it at a definition")
            return None
        seen.add(ref)
        node = comp.defs.get(_ref_name(ref), {})
    if not node:
        return None  # an error was already recorded for it
    if node.get("type") == "object" and "anyOf" not in node:
        return {**node, **annotations} if annotations else node
    seen.clear()  # the definitions are no longer the root: references to them stay references
    if _refers_to_root(root, comp.defs):
        # A recursive root: it moves into $defs, and its self-references with it.
        name = "root"
        while name in comp.defs:
            name = "_" + name
        comp.defs[name] = root
        _point_root_refs(root, comp.defs, f"#/$defs/{name}")
        root = {"$ref": f"#/$defs/{name}"}
    comp.change(
        "#",
        f"root that is not an object wrapped in an object with one property, "
        f"{ROOT_PROPERTY!r}; restore() unwraps it",
    )
    wrapper: Schema = {
        "type": "object",
        "properties": {ROOT_PROPERTY: root},
        "required": [ROOT_PROPERTY],
        "additionalProperties": False,
        XF: ("unwrap", ROOT_PROPERTY),
    }
    for key in ("title",):
        value = node.get(key, annotations.get(key))
        if value is not None:
            wrapper[key] = value
    return wrapper


def _root_refs(root: Schema, defs: dict[str, Schema]) -> Iterator[Schema]:
    """Every compiled node that is ``{"$ref": "#"}``, each once."""
    stack: list[Any] = [root, *defs.values()]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if id(node) in seen:
                continue
            seen.add(id(node))
            if node.get("$ref") == "#":
                yield node
            stack.extend(v for k, v in node.items() if not k.startswith("\x00"))
        elif isinstance(node, list):
            stack.extend(node)


def _point_root_refs(root: Schema, defs: dict[str, Schema], target: str) -> None:
    """Every ``$ref: "#"`` in the compiled tree now points at ``target`` (in place)."""
    for node in list(_root_refs(root, defs)):
        node["$ref"] = target


def _refers_to_root(root: Schema, defs: dict[str, Schema]) -> bool:
    return next(_root_refs(root, defs), None) is not None


class Finalizer:
    def __init__(self, comp: Compiler) -> None:
        self.comp = comp
        self.pre_root: Schema = {}
        self.out_defs: dict[str, Schema] = {}
        self.queue: list[str] = []
        self.table: dict[str, set[str]] = {}
        self.kinds: dict[str, tuple[str, Any]] = {}
        self.expanding: list[str] = []
        self.properties = 0
        self.enum_values = 0
        self.enums: list[tuple[Schema, str]] = []  # (sent node, input path) of each enum
        self.chars = 0
        self.nodes = 0
        self.local: dict[str, int] = {}
        # container -> its references: (object level there, target, sent node, its pointer,
        # the input path of the $ref)
        self.edges: dict[str, list[_Edge]] = {}
        self.aliases: set[str] = set()

    def run(self, root: Schema, aliases: set[str]) -> tuple[Schema, dict[str, NodeRestore]] | None:
        self.pre_root = root
        self.aliases = {_ref_name(a) for a in aliases}
        try:
            out = self.fin(root, "#", 0, "#")
            while self.queue:
                name = self.queue.pop(0)
                if name in self.out_defs:
                    continue
                self.out_defs[name] = {}
                self.out_defs[name] = self.fin(
                    self.comp.defs[name], f"#/$defs/{esc(name)}", 0, name
                )
                self.chars += len(name)
        except _Abort:
            return None
        if self.out_defs:
            out["$defs"] = self.out_defs
        if not self._limits():
            return None
        if self.out_defs:
            self._prune(out)
        table = {
            ptr: NodeRestore(frozenset(self.table.get(ptr, ())), self.kinds.get(ptr))
            for ptr in {*self.table, *self.kinds}
        }
        return out, table

    # --- helpers -----------------------------------------------------------------------------

    def pre(self, ref: str) -> Schema:
        return self.pre_root if ref == "#" else self.comp.defs[_ref_name(ref)]

    def follow(self, ref: str, path: str) -> str:
        """Skip definitions that are nothing but another ``$ref``."""
        seen = {ref}
        while ref != "#":
            node = self.pre(ref)
            if set(node) - {"$ref", PATH, SIB}:
                break
            ref = node["$ref"]
            if ref in seen:
                self.comp.error(path, "$ref cycle with no schema in it", "fix the references")
                raise _Abort
            seen.add(ref)
        return ref

    def nullable(self, node: Schema, seen: set[str]) -> bool:
        if "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                return False
            seen.add(ref)
            return self.nullable(self.pre(ref), seen)
        kind = node.get("type")
        if kind == "null" or (isinstance(kind, list) and "null" in kind):
            return True
        if any(self.nullable(b, seen) for b in node.get("anyOf", ())):
            return True
        if "enum" in node and any(v is None for v in node["enum"]):
            return True
        return "const" in node and node["const"] is None

    # --- the walk ----------------------------------------------------------------------------

    def fin(self, node: Schema, ptr: str, depth: int, container: str) -> Schema:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self.comp.error(
                "#",
                "the schema becomes too large once references with descriptions are inlined",
                "remove descriptions beside $ref",
            )
            raise _Abort
        path = node.get(PATH, "#")
        if "$ref" in node:
            return self._ref(node, ptr, depth, container, path)
        out: Schema = {}
        if XF in node:
            self.kinds[ptr] = node[XF]
        level = depth + 1 if node.get("type") == "object" else depth
        self.local[container] = max(self.local.get(container, 0), level)
        for key, value in node.items():
            if key.startswith("\x00"):
                continue
            if key == "properties":
                out[key] = self._properties(node, value, ptr, level, container, path)
            elif key == "items":
                out[key] = self.fin(value, f"{ptr}/items", level, container)
            elif key == "anyOf":
                out[key] = [
                    self.fin(b, f"{ptr}/anyOf/{i}", level, container) for i, b in enumerate(value)
                ]
            elif key == "enum":
                out[key] = list(value)
                self.enum_values += len(value)
                self.chars += sum(len(str(v)) for v in value)
                self.enums.append((out, path))
            elif key == "const":
                out[key] = value
                self.chars += len(str(value))
            elif key == "required":
                out[key] = list(value)
            else:
                out[key] = value
        return out

    def _resolved(self, node: Schema) -> tuple[str, str]:
        ref = self.follow(node["$ref"], node.get(PATH, "#"))
        name = _ref_name(ref)
        return ("#", "#") if name in self.aliases else (ref, name)

    def _inlines(self, node: Schema, name: str) -> bool:
        return (
            bool(node.get(SIB)) and name not in self.expanding and len(self.expanding) < MAX_INLINE
        )

    def _inlined(self, node: Schema) -> Schema | None:
        """The definition a ``$ref`` node will be replaced by, or None if it stays a ref."""
        ref, name = self._resolved(node)
        return self.pre(ref) if self._inlines(node, name) else None

    def _ref(self, node: Schema, ptr: str, depth: int, container: str, path: str) -> Schema:
        ref, name = self._resolved(node)
        siblings = node.get(SIB)
        if self._inlines(node, name):
            self.expanding.append(name)
            try:
                out = self.fin(self.pre(ref), ptr, depth, container)
            finally:
                self.expanding.pop()
            if "$ref" in out:
                # The target is itself only a reference (e.g. to the root): still nothing may
                # stand beside it.
                self.comp.change(
                    path,
                    "description/title beside a $ref dropped (its target is itself a $ref; "
                    "strict mode allows no keywords next to $ref)",
                )
                return out
            out.update(node[SIB])
            self.comp.change(path, "$ref inlined so its description/title can stay beside it")
            return out
        if siblings:
            self.comp.change(
                path,
                "description/title beside a recursive $ref dropped (strict "
                "mode allows no keywords next to $ref)",
            )
        out = {"$ref": ref}
        self.edges.setdefault(container, []).append((depth, name, out, ptr, path))
        if name != "#":
            self.queue.append(name)
        return out

    def _properties(
        self,
        node: Schema,
        props: dict[str, Schema],
        ptr: str,
        level: int,
        container: str,
        path: str,
    ) -> Schema:
        optional = set(node.get(OPT, ()))
        out: Schema = {}
        for name, sub in props.items():
            sub_ptr = f"{ptr}/properties/{esc(name)}"
            self.chars += len(name)
            if name in optional and not self.nullable(sub, set()):
                shape = self._inlined(sub) if "$ref" in sub else sub
                if shape is not None and "anyOf" in shape and "$ref" not in shape:
                    wrapped = self.fin(sub, sub_ptr, level, container)
                    wrapped["anyOf"] = [*wrapped["anyOf"], {"type": "null"}]
                else:
                    inner = self.fin(sub, f"{sub_ptr}/anyOf/0", level, container)
                    wrapped = {k: inner.pop(k) for k in ("title", "description") if k in inner}
                    wrapped["anyOf"] = [inner, {"type": "null"}]
                self.table.setdefault(ptr, set()).add(name)
                self.comp.change(
                    f"{path}/properties/{esc(name)}",
                    "optional property made required and nullable (null = not given; "
                    "restore() drops it so the default applies)",
                )
                out[name] = wrapped
            else:
                out[name] = self.fin(sub, sub_ptr, level, container)
        self.properties += len(out)
        return out

    # --- limits ------------------------------------------------------------------------------

    def _height(self, container: str, stack: set[str], memo: dict[str, int]) -> int:
        if container in memo:
            return memo[container]
        if container in stack:
            return 0
        if len(stack) > 200:
            return MAX_DEPTH + 1
        stack.add(container)
        best = self.local.get(container, 0)
        for level, target, node, _, _ in self.edges.get(container, ()):
            if "$ref" in node:  # not cut by _cut_deep
                best = max(best, level + self._height(target, stack, memo))
        stack.discard(container)
        memo[container] = best
        return best

    def _prune(self, out: Schema) -> None:
        """Drop the definitions no reference reaches any more (after :meth:`_cut_deep`):
        strict mode refuses unused ones."""
        used: set[str] = set()
        stack: list[Any] = [{k: v for k, v in out.items() if k != "$defs"}]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str) and ref.startswith("#/$defs/"):
                    name = ref[len("#/$defs/") :].replace("~1", "/").replace("~0", "~")
                    if name not in used and name in self.out_defs:
                        used.add(name)
                        stack.append(self.out_defs[name])
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        for name in [n for n in self.out_defs if n not in used]:
            del self.out_defs[name]
        if not self.out_defs:
            del out["$defs"]

    def _shorten_enums(self) -> None:
        """Enums of strings over OpenAI's limits are sent as plain strings, largest first:
        the value is checked against the enum after the answer."""
        for node, path in sorted(self.enums, key=lambda e: -len(e[0]["enum"])):
            values = node["enum"]
            chars = sum(len(v) for v in values if isinstance(v, str))
            too_long = len(values) > LARGE_ENUM and chars > LARGE_ENUM_CHARS
            if not too_long and self.enum_values <= MAX_ENUM_VALUES:
                continue
            if node.get("type") != "string" or not all(isinstance(v, str) for v in values):
                continue  # left for the limit checks below to report
            del node["enum"]
            self.enum_values -= len(values)
            self.chars -= chars
            hint = f"One of {len(values)} values the schema lists, e.g. {', '.join(values[:5])}."
            described = node.get("description")
            node["description"] = f"{described} {hint}" if described else hint
            self.comp.change(
                path,
                f"enum of {len(values)} values sent as a plain string (OpenAI allows "
                f"{MAX_ENUM_VALUES} values in all, {LARGE_ENUM_CHARS} characters in one over "
                f"{LARGE_ENUM}): checked after the answer",
                lossy=True,
            )

    def _cut_deep(self) -> None:
        """Objects nested deeper than OpenAI allows: the reference that crosses the limit is
        sent as a JSON-encoded string instead (restore parses it; the value is checked against
        the original schema after the answer), deepest path first."""
        for _ in range(MAX_CUTS):
            memo: dict[str, int] = {}
            if self._height("#", set(), memo) <= MAX_DEPTH:
                return
            container, offset, seen = "#", 0, {"#"}
            cut: _Edge | None = None
            came: _Edge | None = None  # the edge into `container`
            while cut is None:
                live = [e for e in self.edges.get(container, ()) if "$ref" in e[2]]
                edge = max(live, key=lambda e: e[0] + self._height(e[1], set(), memo), default=None)
                if edge is None or offset + edge[0] + memo.get(edge[1], 0) <= MAX_DEPTH:
                    # too deep inside this container itself: cut where the path came in
                    if came is None:
                        return  # the root alone is too deep: reported by the limit check
                    cut = came
                    break
                level, target = edge[0], edge[1]
                if offset + level + 1 > MAX_DEPTH or target in seen:
                    cut = edge
                else:
                    container, offset, came = target, offset + level, edge
                    seen.add(target)
            _, target, node, ptr, where = cut
            node.clear()
            node.update({"type": "string", "description": DEEP_HINT})
            self.kinds[ptr] = ("json", None)
            self.comp.change(
                where,
                f"nested beyond OpenAI's {MAX_DEPTH} levels here: sent as a JSON-encoded "
                "string, parsed on restore and checked after the answer",
                lossy=True,
            )

    def _limits(self) -> bool:
        self._shorten_enums()
        self._cut_deep()
        before = len(self.comp.errors)
        err = self.comp.error
        for node, path in self.enums:
            values = node.get("enum", ())
            chars = sum(len(v) for v in values if isinstance(v, str))
            if len(values) > LARGE_ENUM and chars > LARGE_ENUM_CHARS:
                err(
                    path,
                    f"this enum has {len(values)} values totalling more than "
                    f"{LARGE_ENUM_CHARS} characters (OpenAI's limit for enums "
                    f"over {LARGE_ENUM} values)",
                    "shorten or split the enum",
                )
        if self.properties > MAX_PROPERTIES:
            err(
                "#",
                f"the schema has {self.properties} object properties in total; OpenAI "
                f"allows {MAX_PROPERTIES}",
                "split the task or simplify the schema",
            )
        depth = self._height("#", set(), {})
        if depth > MAX_DEPTH:
            err(
                "#",
                f"objects are nested {depth} levels deep; OpenAI allows {MAX_DEPTH}",
                "flatten the structure",
            )
        if self.enum_values > MAX_ENUM_VALUES:
            err(
                "#",
                f"the schema has {self.enum_values} enum values in total; OpenAI allows "
                f"{MAX_ENUM_VALUES}",
                "shorten the enums or use plain strings",
            )
        if self.chars > MAX_STRING_CHARS:
            err(
                "#",
                f"property names, definition names, enum and const values total "
                f"{self.chars} characters; OpenAI allows {MAX_STRING_CHARS}",
                "shorten names and enums",
            )
        return len(self.comp.errors) == before
