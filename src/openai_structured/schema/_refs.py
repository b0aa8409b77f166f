"""``$ref`` resolution inside one input document: the ``$id``/``$anchor`` index and ``$defs`` names.

No reference is ever fetched or read from disk (SPEC §4): a ``$ref`` becomes a JSON pointer into
the same document, or :class:`UnresolvedRef` says why it cannot and how to bundle it. Every
target gets one ``$defs`` name in the compiled schema and is queued once, so the compiler
compiles definitions from a work list and a chain of references never deepens the Python stack.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any
from urllib.parse import unquote, urljoin

from ._keywords import MAX_WALK, MISSING, child, get_pointer

# Values that are data, not subschemas: an "$id" inside an enum value names nothing.
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples", "example"})


_ID_DRAFTS = re.compile(r"json-schema\.org/draft-0[34]/")


def names_with_id(node: Any, inherited: bool) -> bool:
    """Whether ``id`` (not ``$id``) names resources in ``node``: drafts 3 and 4, as its
    ``$schema`` says, else as the enclosing schema's."""
    dialect = node.get("$schema") if isinstance(node, dict) else None
    if isinstance(dialect, str):
        return _ID_DRAFTS.search(dialect) is not None
    return inherited


class UnresolvedRef(Exception):
    """A ``$ref`` that does not point into this document; carries the reason and the fix."""

    def __init__(self, reason: str, fix: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fix = fix


class RefIndex:
    """Where each ``$ref`` of one document points, and the ``$defs`` name of each target."""

    def __init__(self, doc: Any) -> None:
        self.doc = doc
        # Targets named by def_name() and not compiled yet: (pointer, $defs name), in order.
        self.pending: deque[tuple[str, str]] = deque()
        self._def_names: dict[str, str] = {}
        self._used_names: set[str] = set()
        self._ids: dict[str, str] = {}  # absolute or raw $id -> pointer
        self._anchors: dict[tuple[str, str], str] = {}  # (resource pointer, anchor) -> pointer
        self._resources: list[tuple[str, str]] = []  # (pointer, base uri), longest first
        self._root_uri = ""
        self._index()

    def target(self, ptr: str) -> Any:
        """The subschema at a pointer returned by :meth:`resolve`."""
        return get_pointer(self.doc, ptr)

    def _index(self) -> None:
        if not isinstance(self.doc, dict):
            return
        root_id = self.doc.get("$id", self.doc.get("id"))
        if isinstance(root_id, str) and not root_id.startswith("#"):
            self._root_uri = root_id.split("#")[0]
            self._ids[self._root_uri] = "#"
        stack: list[tuple[Any, str, str, str, int, bool]] = [
            (self.doc, "#", self._root_uri, "#", 0, names_with_id(self.doc, False))
        ]
        while stack:
            node, ptr, base, resource, depth, old = stack.pop()
            if depth > MAX_WALK:
                continue
            if isinstance(node, dict):
                old = names_with_id(node, old)
                sid = node.get("$id", node.get("id") if old else None)
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
                for keyword in ("$anchor", "$dynamicAnchor"):  # a dynamic anchor is one too
                    anchor = node.get(keyword)
                    if isinstance(anchor, str):
                        self._anchors.setdefault((resource, anchor), ptr)
                for key, value in node.items():
                    if key not in _DATA_KEYWORDS and isinstance(value, (dict, list)):
                        stack.append((value, child(ptr, key), base, resource, depth + 1, old))
            elif isinstance(node, list):
                for i, value in enumerate(node):
                    if isinstance(value, (dict, list)):
                        stack.append((value, child(ptr, i), base, resource, depth + 1, old))
        self._resources.sort(key=lambda r: len(r[0]), reverse=True)

    def _resource_of(self, path: str) -> tuple[str, str]:
        """The innermost ``$id`` resource containing ``path``: relative refs resolve against it."""
        for ptr, base in self._resources:
            if path == ptr or path.startswith(ptr + "/"):
                return ptr, base
        return "#", self._root_uri

    def resolve(self, ref: str, path: str) -> str:
        """The pointer ``ref`` (found at ``path``) names in this document; else UnresolvedRef."""
        resource, base = self._resource_of(path)
        uri, _, frag = ref.partition("#")
        if uri:
            target = self._ids.get(uri)
            if target is None and base:
                target = self._ids.get(urljoin(base, uri))
            if target is None:
                raise UnresolvedRef(
                    f"$ref {ref!r} points outside this schema (remote references are not followed)",
                    "bundle it: copy the referenced schema under $defs and refer to it as "
                    '"#/$defs/<Name>"',
                )
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
                raise UnresolvedRef(f"$ref {ref!r}: no $anchor named {frag!r}", "fix the reference")
            ptr = found
        if get_pointer(self.doc, ptr) is MISSING:
            raise UnresolvedRef(
                f"$ref {ref!r} does not resolve to anything in this schema",
                "fix the reference or add the missing definition",
            )
        return ptr

    def new_name(self, base: str) -> str:
        """A ``$defs`` name no other definition has, made from ``base``."""
        base = re.sub(r"[^A-Za-z0-9_.-]", "_", base)[:60] or "def"
        name, n = base, 2
        while name in self._used_names:
            name, n = f"{base}_{n}", n + 1
        self._used_names.add(name)
        return name

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
        name = self.new_name(base.replace("~1", "/").replace("~0", "~"))
        self._def_names[ptr] = name
        self.pending.append((ptr, name))
        return name
