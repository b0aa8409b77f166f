"""What the embedded model may write: the schema its grammar is built from, and its token limit.

Pure (no llama_cpp, no I/O), used by the server wrapper (:mod:`._decoding`) for every request
with a JSON Schema. A 270M model sometimes repeats itself: the same names in a list, the same
phrase in a string, until the token limit. Three bounds, all derived from the request itself:

* **Lists** hold at most :attr:`Caps.items` items: one more than the input has list separators
  (commas, semicolons, line breaks, tabs, "and", "or", ``/``, ``&``, ``+``, bullets), at least
  :data:`MIN_ITEMS`, at most :data:`MAX_ITEMS`. An extracted list cannot have more items than
  the text has places to separate them; a looping list is closed there, as valid JSON.
* **Strings** hold at most :attr:`Caps.chars` characters: the input's length, at least
  :data:`MIN_CHARS`, at most :data:`MAX_CHARS` (llama.cpp's grammar expands ``{0,n}`` into n
  rules, refuses a rule whose repetitions multiply to 2,000 or more, and one repeated more
  than 1,000 times before it is defined).
* **Output tokens** (:func:`output_limit`): the tokens of the answer's skeleton (every key, one
  item per list), plus twice the input's tokens (several fields of a row may copy from the
  same words), plus a margin. Extracted values are copied from the input, so an answer longer
  than that is a loop; it ends as ``finish_reason="length"``, which the library reports as
  ``TokenLimitError`` with the partial answer.

A bound the schema states itself (``maxItems``, ``maxLength``) is kept when it is tighter. The
caps shape only the grammar: the answer is still validated against the caller's own schema.

:func:`grammar_schema` also rewrites what llama-cpp-python's schema-to-grammar converter cannot
take into something looser that it can, so that the converter does not fail and the server
does not fall back to unconstrained JSON: type lists become ``anyOf``; ``anyOf``/``oneOf``
siblings are merged into the branches; a one-element ``allOf`` is inlined; subschemas it
cannot express (``true``, no known keyword, a remote ``$ref``, ``not``, ``if``, an unanchored
or unsupported ``pattern``) accept any JSON value in that place. The answer's validation
against the real schema still applies all of them.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._copying import (
    PROPERS,
    CopySource,
    cell_kind,
    copy_kind,
    is_sentinel,
    sentinel,
    sentinel_kind,
    stem_match,
)
from ._naming import ABBREVIATIONS, ORDINALS, distinct_labels, name_words, string_qualifier
from ._rows import COLUMN_SEPARATORS, MIN_ROWS, Row, marker_number, table_columns

__all__ = [
    "ANY_TYPE",
    "MAX_CHARS",
    "MAX_ITEMS",
    "MIN_CHARS",
    "MIN_ITEMS",
    "Caps",
    "caps_for",
    "definitions",
    "grammar_schema",
    "input_text",
    "message_parts",
    "output_limit",
    "outside_lists",
    "safe_pattern",
    "skeleton",
]

MIN_ITEMS = 8
MAX_ITEMS = 100
MIN_CHARS = 256
#: (llama.cpp 0.3.36 refuses a repetition of more than 1,000 of a rule it reads later in the
#: grammar, as ``(char){0,1500}`` in a field's rule that sorts before ``char``.)
MAX_CHARS = 1000
#: Output tokens allowed per input token, on top of the skeleton (see :func:`output_limit`).
INPUT_FACTOR = 2.0
#: Output tokens allowed on top of the skeleton and the input's share.
MARGIN = 64
#: Items of a list of objects the skeleton holds (their keys are output the input does not
#: hold; one item's worth cut answers with three or four items off).
OBJECT_ITEMS = 4
#: The share of an item's typed fields a block's rows must hold values for, on average, to
#: be the list's rows (:meth:`_Sanitizer._rows`).
ROW_SHARE = 0.5
#: The converter's name for "any JSON value" (its ``value`` rule); not a JSON Schema type.
ANY_TYPE = "value"

_SEPARATORS = re.compile(r"[,;\n\t/&+\u2022\u00b7]|\band\b|\bor\b", re.IGNORECASE)
_TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")
# Keywords llama-cpp-python's converter reads (anything else is dropped from the grammar's copy).
_KEPT = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "enum",
        "const",
        "anyOf",
        "oneOf",
        "allOf",
        "$ref",
        "pattern",
        "format",
    }
)
_DEFS = ("$defs", "definitions")
# Regex shorthands the converter copies verbatim, as class members (\s: a plain space only).
_CLASS_ESCAPES = {"d": "0-9", "w": "A-Za-z0-9_", "s": " "}
# Escapes the converter itself turns into literals outside a class.
_CONVERTER_ESCAPES = frozenset("[]()|{}*+?")
# What a negated class must also exclude to stay inside a JSON string: GBNF for a quote, a
# backslash and the control characters.
_JSON_UNSAFE = r'"\\\x00-\x1F\x7F'

_ANY: dict[str, Any] = {"type": ANY_TYPE}
# Nesting beyond this (or a cycle of allOf references) accepts any value there.
_MAX_DEPTH = 64


@dataclass(frozen=True)
class Caps:
    """The longest list and string the grammar admits where the schema gives no tighter bound."""

    items: int
    chars: int


def message_parts(content: Any) -> list[str]:
    """The text of a message's content: a string, or the text parts of a part list."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, Sequence):
        return [
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        ]
    return []


def input_text(messages: Iterable[Mapping[str, Any]]) -> str:
    """The text the answer is drawn from: every message but the model's own turns."""
    return "\n".join(
        part
        for message in messages
        if message.get("role") != "assistant"
        for part in message_parts(message.get("content"))
    )


def caps_for(text: str) -> Caps:
    """The caps for an input ``text`` (see the module docstring)."""
    separators = len(_SEPARATORS.findall(text))
    return Caps(
        items=min(MAX_ITEMS, max(MIN_ITEMS, separators + 1)),
        chars=min(MAX_CHARS, max(MIN_CHARS, len(text))),
    )


def output_limit(*, skeleton_tokens: int, input_tokens: int) -> int:
    """The ``max_tokens`` for an answer whose skeleton and input have these token counts."""
    return skeleton_tokens + math.ceil(INPUT_FACTOR * input_tokens) + MARGIN


def grammar_schema(
    schema: Any,
    caps: Caps,
    *,
    pattern: Callable[[str], str | None] | None = None,
    copy_from: CopySource | None = None,
) -> dict[str, Any]:
    """A copy of ``schema`` for the grammar: capped, and in the forms the converter takes.

    ``pattern`` turns a ``pattern`` into one the converter expresses as valid JSON, or None to
    drop it (the string is then only capped); default :func:`safe_pattern`. With
    ``copy_from``, the values :mod:`._copying` can take from the text become its placeholders.
    """
    return _sanitized(schema, caps, pattern or safe_pattern, copy_from)[0]


def outside_lists(
    schema: Any,
    caps: Caps,
    copy_from: CopySource,
    *,
    pattern: Callable[[str], str | None] | None = None,
) -> CopySource:
    """``copy_from``, its strings outside the lists of objects ``schema`` writes one item per
    row not copied from those rows (:attr:`CopySource.taken`); pass it to
    :func:`grammar_schema` and to the grammar. Which rows a list takes is known once it is
    read, after the fields before it: the schema is read once to know."""
    sanitizer = _sanitized(schema, caps, pattern or safe_pattern, copy_from)[1]
    return copy_from.outside(sanitizer.blocks_taken) if sanitizer.blocks_taken else copy_from


def _sanitized(
    schema: Any,
    caps: Caps,
    check: Callable[[str], str | None],
    copy_from: CopySource | None,
) -> tuple[dict[str, Any], _Sanitizer]:
    doc: dict[str, Any] = dict(copy.deepcopy(schema)) if isinstance(schema, Mapping) else {}
    defs = {key: doc.pop(key) for key in _DEFS if isinstance(doc.get(key), Mapping)}
    sanitizer = _Sanitizer(caps, check, defs, copy_from)
    listed = _item_refs(doc) | {ref for table in defs.values() for ref in _item_refs(table)}
    tables = {
        key: {
            name: sanitizer.definition(sub, f"#/{key}/{name}" in listed, str(name))
            for name, sub in table.items()
        }
        for key, table in defs.items()
    }
    root = sanitizer.node(doc) if doc else {"type": "object"}
    # The converter does not follow a root that is only a reference (nor the references
    # inside what it points to): inline the chain.
    for _ in range(len(_DEFS) * 64):
        ref = root.get("$ref")
        if not isinstance(ref, str):
            break
        table, name = ref[2:].split("/", 1)
        root = dict(tables[table][name])
    if root == _ANY:
        root = {"type": "object"}  # the answer of a JSON mode request is an object
    return {**root, **tables}, sanitizer


def skeleton(schema: Any, *, depth: int = 8) -> str:
    """The shortest-values instance of ``schema`` as the model would write it: every property,
    one item per list (:data:`OBJECT_ITEMS` for a list of objects), ``""``, ``0``, ``null``,
    the longest enum value (for its tokens)."""
    defs = definitions(schema) if isinstance(schema, Mapping) else {}
    return json.dumps(_instance(schema, defs, depth), ensure_ascii=False)


def definitions(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A schema's ``$defs``/``definitions``, by the local ``$ref`` that names each."""
    return {
        f"#/{table}/{name}": sub
        for table in _DEFS
        if isinstance(schema.get(table), Mapping)
        for name, sub in schema[table].items()
    }


# --- internals -------------------------------------------------------------------------------


def safe_pattern(pattern: str) -> str | None:
    """``pattern`` in the regex subset llama-cpp-python's converter handles, such that every
    match it admits is valid inside a JSON string; None when that cannot be done.

    The converter wants ``^...$``, copies character classes and unknown escapes into the
    grammar as they are (``\\d`` then fails to parse in llama.cpp, and the server used to
    crash on it), and knows nothing of JSON escaping. So: ``\\d``, ``\\w``, ``\\s`` become
    classes (``\\s`` a plain space), escaped punctuation becomes a ``\\xHH`` class, negated
    classes also exclude quotes, backslashes and control characters, and anything else
    (lookarounds, ``\\p{..}``, ``\\b``, a quote, an escaped backslash) gives None.
    """
    if not (pattern.startswith("^") and pattern.endswith("$")) or len(pattern) < 2:
        return None
    if '"' in pattern or "(?" in pattern:
        return None
    body = pattern[1:-1]
    out: list[str] = []
    in_class = negated = False
    i = 0
    while i < len(body):
        char = body[i]
        i += 1
        if char == "\\":
            if i >= len(body):
                return None
            nxt = body[i]
            i += 1
            if nxt in _CLASS_ESCAPES:
                members = _CLASS_ESCAPES[nxt]
                out.append(members if in_class else f"[{members}]")
            elif nxt.isalnum() or nxt == "\\" or ord(nxt) < 0x20 or ord(nxt) > 0xFF:
                return None  # \b, \p{..}, \n, \x41, \D, an escaped backslash...
            elif not in_class and nxt in _CONVERTER_ESCAPES:
                out.append("\\" + nxt)
            else:
                hexed = f"\\x{ord(nxt):02X}"
                out.append(hexed if in_class else f"[{hexed}]")
        elif ord(char) < 0x20:
            return None
        elif char == "[" and not in_class:
            in_class = True
            negated = body.startswith("^", i)
            out.append("[^" if negated else "[")
            i += 1 if negated else 0
        elif char == "]" and in_class:
            in_class = False
            out.append(_JSON_UNSAFE + "]" if negated else "]")
        elif in_class and not negated and char == "-" and out and i < len(body):
            # A range of a positive class must not span a quote, a backslash or a control
            # character ([ -~], [A-z]): a raw one would end or break the JSON string.
            low, high = out[-1], body[i]
            if len(low) == 1 and high not in "]\\" and _spans_unsafe(low, high):
                return None
            out.append(char)
        else:
            out.append(char)
    if in_class:
        return None
    return "^" + "".join(out) + "$"


def _spans_unsafe(low: str, high: str) -> bool:
    """Whether the class range ``low-high`` holds a character a JSON string cannot hold raw."""
    return any(ord(low) <= ord(c) <= ord(high) for c in '"\\') or ord(low) < 0x20


class _Sanitizer:
    def __init__(
        self,
        caps: Caps,
        pattern: Callable[[str], str | None],
        defs: Mapping[str, Any],
        copy_from: CopySource | None = None,
    ) -> None:
        self.copy_from = copy_from
        self.caps = caps
        self.pattern = pattern
        self.defs = defs
        self.depth = 0
        #: The name of the property being read ("" at the root and in definitions).
        self.name = ""
        #: The field whose value holds the one being read ("members" of a member's "name").
        self.owner = ""
        #: Whether the place being read also admits null (a branch of a union with null).
        self.nullable = False
        #: The label words of the property's name, and of its siblings'.
        self.labels: tuple[str, ...] = ()
        self.others: tuple[str, ...] = ()
        #: Whether the property being read is required.
        self.required = False
        #: Whether the place being read is inside a list's items.
        self.in_list = False
        #: Whether the text gives the property being read (:meth:`CopySource.given`).
        self.given = False
        #: The first rows of the blocks lists already take (one list per block).
        self.rows_taken: set[Row] = set()
        #: The one plain-text field of the items of a list written one per row, if it has
        #: one and the row is in columns: its copy is its row's cell (:data:`~._copying.CELL`;
        #: a row that is a sentence, "Luis Ferreira to get a quote by ...", is not).
        self.cell_field = ""
        #: Of a table's row being read: the cell under each field's heading, by field name.
        self.cells: dict[str, Row] = {}
        #: Where each block lists take starts and ends in the text.
        self.blocks_taken: list[Row] = []

    def definition(self, schema: Any, listed: bool, name: str = "") -> dict[str, Any]:
        """A definition's schema; ``listed`` when a list's items refer to it (its fields
        then have no labels: each item has its own values). Its ``name`` (``Dog``) is what
        its fields are in (a ``Dog``'s ``name``)."""
        outer, self.in_list, self.owner = self.in_list, listed, name
        try:
            return self.node(schema)
        finally:
            self.in_list, self.owner = outer, ""

    def node(self, schema: Any) -> dict[str, Any]:
        self.depth += 1
        try:
            return self._node(schema)
        finally:
            self.depth -= 1

    def _resolved(self, part: Any, hops: int = 8) -> Any:
        """``part`` with a local ``$ref`` replaced by what it points to (for merging)."""
        while hops and isinstance(part, Mapping) and self._local(part.get("$ref")):
            table, name = str(part["$ref"])[2:].split("/", 1)
            siblings = {k: v for k, v in part.items() if k != "$ref"}
            part = _merge(self.defs[table][name], siblings) if siblings else self.defs[table][name]
            hops -= 1
        return part

    def _node(self, schema: Any) -> dict[str, Any]:
        if schema is True or not isinstance(schema, Mapping) or self.depth > _MAX_DEPTH:
            return dict(_ANY)  # ``true``, ``false`` (looser: validation rejects it later), junk
        node = {key: value for key, value in schema.items() if key in _KEPT}
        if schema.get("nullable") is True and "type" in node:  # OpenAPI 3.0
            node = {"anyOf": [node, {"type": "null"}]}
        ref = node.get("$ref")
        if ref is not None:
            return {"$ref": ref} if self._local(ref) else dict(_ANY)
        types = node.get("type")
        if isinstance(types, list):
            kinds = [t for t in types if t in _TYPES]
            rest = {k: v for k, v in node.items() if k != "type"}
            if not kinds:
                return dict(_ANY)
            if len(kinds) > 1:  # (null is null: not a "date" null, nor a described one)
                branches = [{**rest, "type": k} if k != "null" else {"type": k} for k in kinds]
                return self.node({"anyOf": branches})
            node = {**rest, "type": kinds[0]}
        elif types is not None and types not in _TYPES:
            node.pop("type")
        for key in ("anyOf", "oneOf"):
            if key in node:
                # The branches are read with the union's description ("Start of weekday
                # access, HH:MM" around a string-or-null).
                said = {k: schema[k] for k in ("description", "title") if k in schema}
                return self._union({**said, **node}, key)
        if "allOf" in node:
            # One schema instead: the converter only merges the properties of object parts
            # (a string with an allOf of constraints became an object).
            parts = node.pop("allOf")
            merged: Any = node
            for part in parts if isinstance(parts, list) else []:
                merged = _merge(merged, self._resolved(part))
            return self.node(merged) if merged else dict(_ANY)
        if "enum" in node or "const" in node:
            kept = {key: node[key] for key in ("enum", "const") if key in node}
            if self.copy_from is not None and isinstance(kept.get("enum"), list):
                kept["enum"] = self.copy_from.narrowed(kept["enum"])
            return kept
        if self.copy_from is not None:
            source = self.copy_from
            # The bounds and the description too.
            kind = copy_kind({**schema, **node}, self.name, self.labels, self.others, self.owner)
            if kind is not None and self.name == self.cell_field and _plain(kind):
                kind = cell_kind(kind)
            usable = None
            cell = self.cells.get(self.name)
            if kind is not None and cell is not None and cell[0] < cell[1]:
                # A table's row: the cell under the field's heading, if it holds such a value.
                under = source.within(*cell)
                usable = under.kind_for(kind)
                source = under if usable is not None else source
            if usable is None and kind is not None:
                usable = source.kind_for(kind)
            absent = kind is not None and usable != kind and self.nullable
            if absent and source.null_when_absent(str(kind)):
                return {"type": "null"}  # a phone field, and no phone number in the text
            typed = kind is not None and not kind.startswith(("integer", "number", "unsigned"))
            if typed and self.nullable and source.says_nothing(self.labels):
                return {"type": "null"}  # "Frame no.: not recorded" (a number: 0, or null?)
            if usable is not None:
                return {"const": sentinel(usable)}
        return self._typed(node)

    def _union(self, node: dict[str, Any], key: str) -> dict[str, Any]:
        branches = node.pop(key)
        node.pop("anyOf", None)
        node.pop("oneOf", None)
        if not isinstance(branches, list) or not branches:
            return self.node(node) if node else dict(_ANY)
        nullable = any(self._resolved(branch) == {"type": "null"} for branch in branches)
        outer, self.nullable = self.nullable, nullable
        try:
            out = [self.node(_merge(node, branch)) for branch in branches]
        finally:
            self.nullable = outer
        if self.copy_from is not None and any(
            (is_sentinel(b.get("const")) and self.copy_from.given(sentinel_kind(b["const"])))
            or isinstance(b.get("const"), bool)
            for b in out
        ):
            # The text labels the value ("Next meeting: 5 March"): it is given, not null (and
            # written, if it may be left out).
            out = [b for b in out if b != {"type": "null"}]
            self.given = True
        return {"anyOf": out}

    def _typed(self, node: dict[str, Any]) -> dict[str, Any]:
        kind = node.get("type")
        if kind is None:
            if "properties" in node or "additionalProperties" in node:
                kind = "object"
            elif "items" in node or "prefixItems" in node:
                kind = "array"
            elif {"pattern", "minLength", "maxLength", "format"} & node.keys():
                kind = "string"
            else:
                return dict(_ANY)
            node["type"] = kind
        if kind == "object":
            return self._object(node)
        if kind == "array":
            return self._array(node)
        if kind == "string":
            return self._string(node)
        if kind == "boolean" and self.copy_from is not None and self.name and not self.in_list:
            truth = self.copy_from.truth(self.name)
            if truth is not None:
                return {"const": truth}  # the text says so (see CopySource.truth)
        return {"type": kind}

    def _object(self, node: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "object"}
        properties = node.get("properties")
        if isinstance(properties, Mapping):
            families = {str(name): self._family(sub, str(name)) for name, sub in properties.items()}
            # A typed value (a number, a date, a time) is told apart from the siblings that
            # take the same kind only: "due" is the due date's label though the total due has
            # it too. A string, which may copy anything, from all of them ("meeting" of
            # "Next meeting: 5 March, 10:00" is no meeting_title's).
            labels = distinct_labels(list(families))
            for family in set(families.values()) - {"string", "other"}:
                labels.update(distinct_labels([n for n, f in families.items() if f == family]))
            wanted = node.get("required")
            needed = (
                {n for n in wanted if isinstance(n, str)} if isinstance(wanted, list) else set()
            )
            given: list[str] = []
            out["properties"] = {
                str(name): self._field(str(name), sub, labels, families, str(name) in needed, given)
                for name, sub in properties.items()
            }
            if given and not self.in_list:
                out["required"] = [n for n in map(str, properties) if n in needed or n in given]
        required = node.get("required")
        if isinstance(required, list) and "required" not in out:
            out["required"] = [name for name in required if isinstance(name, str)]
        extra = node.get("additionalProperties")
        if extra is True or extra is False:
            out["additionalProperties"] = extra
        elif isinstance(extra, Mapping):
            out["additionalProperties"] = self.node(extra)
        return out

    def _field(
        self,
        name: str,
        schema: Any,
        labels: Mapping[str, tuple[str, ...]],
        families: Mapping[str, str],
        required: bool = False,
        given: list[str] | None = None,
    ) -> dict[str, Any]:
        """A property's schema, read with its name (what it says the value is), the label
        words of its name (:func:`~._naming.distinct_labels`) and those of its siblings of the
        same family (a name's label does not claim a number). A field the text gives is
        added to ``given``."""
        outer = self.name, self.nullable, self.labels, self.others, self.required, self.given
        owner = self.owner
        family = families[name]
        others = tuple(
            dict.fromkeys(
                w for n, ws in labels.items() if n != name and families[n] == family for w in ws
            )
        )
        if self.in_list:  # each item has its own values: a label finds one for all of them
            labels, others = {name: ()}, ()
        self.name, self.nullable, self.labels, self.others = name, False, labels[name], others
        self.required, self.given, self.owner = required, False, outer[0] or owner
        try:
            node = self.node(schema)
            if self.given and given is not None:
                given.append(name)
            return node
        finally:
            self.name, self.nullable, self.labels, self.others, self.required, self.given = outer
            self.owner = owner

    def _family(self, schema: Any, name: str = "") -> str:
        """``number`` for a number or integer (nullable too), ``date``, ``time`` or
        ``date-time`` for a string of that format, ``identifier`` for a string its ``name``
        says is a code (``invoice_number``: told apart from the ``invoice_date`` by its kind,
        like a number), ``string`` for another string, else ``other``: whose labels may
        claim a field's values."""
        node = self._resolved(schema)
        if not isinstance(node, Mapping):
            return "other"
        types = node.get("type")
        kinds: set[Any] = (
            set(t for t in types if isinstance(t, str)) if isinstance(types, list) else {types}
        )
        kinds |= {
            b.get("type")
            for b in self._branches(node)
            if b is not node and isinstance(b.get("type"), str)
        }
        kinds -= {"null", None}
        if kinds and kinds <= {"integer", "number"}:
            return "number"
        if kinds != {"string"}:
            return "other"
        formats = {
            b.get("format")
            for b in [node, *self._branches(node)]
            if b.get("type") in ("string", ["string", "null"], ["null", "string"])
        }
        dated = formats & {"date", "time", "date-time"}
        if len(dated) == 1 and None not in formats - dated:
            return str(dated.pop())
        coded = formats == {None} and string_qualifier(name, node) == "identifier"
        return "identifier" if coded else "string"

    def _family_object(self, schema: Any) -> bool:
        node = self._resolved(schema)
        return isinstance(node, Mapping) and (
            node.get("type") == "object" or isinstance(node.get("properties"), Mapping)
        )

    def _array(self, node: dict[str, Any]) -> dict[str, Any]:
        tuple_items = node.get("prefixItems")
        items = node.get("items")
        if isinstance(items, list):
            tuple_items, items = items, None
        if isinstance(tuple_items, list) and tuple_items:
            return {"type": "array", "prefixItems": [self.node(item) for item in tuple_items]}
        low = _count(node.get("minItems"), 0)
        high = min(_count(node.get("maxItems"), self.caps.items), self.caps.items)
        rows = self._rows(items, low, high)
        if rows:
            return self._rows_array(items, rows)
        enumerated = self._enumerated(items, low, high) or self._mentioned(items, low, high)
        if enumerated:
            return {"type": "array", "prefixItems": [{"const": item} for item in enumerated]}
        listed = self.required and self.copy_from is not None and self.copy_from.listed
        if listed and low == 0 and high > 0 and self._family_object(items):
            low = 1  # see CopySource.listed
        self.required = False  # not the items' lists
        outer, self.in_list = self.in_list, True
        try:
            item = self.node(items if items is not None else True)
        finally:
            self.in_list = outer
        if isinstance(item.get("enum"), list) and item["enum"]:
            high = min(high, len(item["enum"]))  # a list of choices holds each once at most
        return {"type": "array", "items": item, "minItems": low, "maxItems": max(low, high)}

    def _rows(self, items: Any, low: int, high: int) -> list[Row]:
        """The rows of the text a list of objects is written from, one item per row, if the
        text lists its items one per line (:mod:`._rows`): the block whose rows hold the most
        values for the item's typed fields (numbers, dates, times, codes), each row one at
        least (a table's heading line, which holds none, is no item); a block of other values
        (an invoice's totals) holds fewer of them per row."""
        source = self.copy_from
        if source is None or not source.rows or source.window is not None or self.in_list:
            return []
        item = self._resolved(items)
        if not self._family_object(item) or not isinstance(item.get("properties"), Mapping):
            return []
        ordinals = self._ordinals(item)
        kinds = [
            kind
            for name, sub in item["properties"].items()
            if name not in ordinals
            and (kind := self._typed_kind(str(name), sub)) is not None
            # ("from_station", and no "A -> B" in the text: plain words)
            and (not kind.startswith("string") or source.has(kind))
        ]
        fields = len(kinds) + len(ordinals)
        best: tuple[tuple[float, bool, int], list[Row]] | None = None
        for block, marked in source.row_blocks:
            if not fields:
                runs = [(block, [1] * len(block))] if marked else []
            else:
                numbered = all(marker_number(source.text, row) is not None for row in block)
                counted = len(ordinals) if numbered else 0
                hits = [_distinct_values(source.within(*row), kinds) + counted for row in block]
                runs = _holding(block, hits, marked)
            for rows, held in runs:
                if not max(low, MIN_ROWS) <= len(rows) <= high or rows[0] in self.rows_taken:
                    continue
                share = sum(held) / (len(rows) * max(fields, 1))
                score = (share, marked, len(rows))
                if share >= ROW_SHARE and (best is None or score > best[0]):
                    best = (score, rows)
        if best is None:
            return []
        self.rows_taken.add(best[1][0])
        self.blocks_taken.append((_heading_start(source.text, best[1][0][0]), best[1][-1][1]))
        return best[1]

    def _enumerated(self, items: Any, low: int, high: int) -> list[str]:
        """The items of a list of plain strings that a ``Label:`` of the field lists, as
        written (:meth:`~._copying.CopySource.enumerated`): the 270M model stops after
        one, or writes one twice."""
        source = self.copy_from
        if source is None or self.in_list or not self.labels:
            return []
        item = self._resolved(items)
        if not isinstance(item, Mapping) or set(item) - {"type", "title", "description"}:
            return []
        if item.get("type") != "string":
            return []
        listed = source.enumerated(self.labels)
        return listed if low <= len(listed) <= high else []

    def _mentioned(self, items: Any, low: int, high: int) -> list[str]:
        """The choices a list of an enum's values holds when the text mentions two or more
        of them but not all: each one it mentions (:meth:`~._copying.CopySource.mentioned`;
        "Dietary needs: one vegan, one gluten-free"). The 270M model stops after the first.
        On the tuning half such lists were these in 7 of 12; the other 5 it got wrong too."""
        source = self.copy_from
        if source is None or not source.mentions:
            return []
        item = self._resolved(items)
        if not isinstance(item, Mapping) or set(item) - {"type", "title", "description", "enum"}:
            return []
        values = item.get("enum")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            return []
        found = source.mentioned(values)
        return found if 2 <= len(found) < len(values) and low <= len(found) <= high else []

    def _ordinals(self, item: Mapping[str, Any]) -> set[str]:
        """The item's integer fields that are its place in a numbered list (``position``)."""
        found = set()
        for name, sub in item["properties"].items():
            node = self._resolved(sub)
            words = name_words(str(name))
            if (
                isinstance(node, Mapping)
                and words
                and words[-1] in ORDINALS
                and any(branch.get("type") == "integer" for branch in self._branches(node))
            ):
                found.add(str(name))
        return found

    def _typed_kind(self, name: str, schema: Any) -> str | None:
        """The copied kind of an item's field if it is more than plain words (a number, a
        date, a time, an email, a code...): what tells a list's rows from other lines."""
        node = self._resolved(schema)
        if not isinstance(node, Mapping):
            return None
        for branch in self._branches(node):
            if branch.get("type") not in (None, "null"):
                kind = copy_kind(branch, name)
                if kind is not None and not _plain(kind):
                    return kind
        return None

    def _branches(self, node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The branches of a union (``anyOf``/``oneOf``, references followed), or the node."""
        branches = node.get("anyOf") or node.get("oneOf")
        if not isinstance(branches, list) or not branches:
            return [node]
        return [b for b in map(self._resolved, branches) if isinstance(b, Mapping)]

    def _rows_array(self, items: Any, rows: list[Row]) -> dict[str, Any]:
        """A list of exactly one item per row, each copying from its own row only."""
        source = self.copy_from
        assert source is not None
        item = self._resolved(items)
        ordinals = self._ordinals(item)
        texts = [
            str(name)
            for name, sub in item["properties"].items()
            if isinstance(node := self._resolved(sub), Mapping)
            and any(_plain(copy_kind(branch, str(name)) or "") for branch in self._branches(node))
        ]
        written = []
        self.required = False  # not the items' lists
        outer = self.cell_field
        table = table_columns(source.text, rows)
        names = [str(name) for name in item["properties"]]
        under = _under_headings(names, table[0]) if table else {}
        for k, (start, end) in enumerate(rows):
            self.copy_from = source.within(start, end)
            columns = any(sep in source.text[start:end] for sep in COLUMN_SEPARATORS)
            self.cell_field = texts[0] if len(texts) == 1 and columns else ""
            self.cells = {name: table[1][k][j] for name, j in under.items()} if table else {}
            try:
                row = self.node(item)
            finally:
                self.copy_from, self.cell_field, self.cells = source, outer, {}
            number = marker_number(source.text, (start, end))
            if number is not None and isinstance(row.get("properties"), dict):
                for name in ordinals & row["properties"].keys():
                    if not _BOUNDS & set(self._resolved(item["properties"][name])):
                        row["properties"][name] = {"const": number}  # "2. Ilse van Dorp"
            written.append(row)
        return {
            "type": "array",
            "prefixItems": written,
            "minItems": len(rows),
            "maxItems": len(rows),
        }

    def _string(self, node: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string"}
        pattern = node.get("pattern")
        safe = self.pattern(pattern) if isinstance(pattern, str) else None
        if safe is not None:
            out["pattern"] = safe  # the pattern bounds it (the converter ignores lengths)
            return out
        if isinstance(node.get("format"), str):
            out["format"] = node["format"]
        low = _count(node.get("minLength"), 0)
        high = min(_count(node.get("maxLength"), self.caps.chars), self.caps.chars)
        out["minLength"] = low
        out["maxLength"] = max(low, high)
        return out

    def _local(self, ref: Any) -> bool:
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return False
        parts = ref[2:].split("/")
        return len(parts) == 2 and parts[0] in self.defs and parts[1] in self.defs[parts[0]]


# Keywords that bound a number: a row's number is not forced on a field that has them.
_BOUNDS = frozenset(
    {"enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
)


def _under_headings(names: list[str], headings: list[str]) -> dict[str, int]:
    """The column of a table each field's values are under: the heading that holds the most
    words of the field's name ("Singles" for ``single_rooms``, "Qty" for ``quantity``), and
    of two that hold as many, the one holding its last word, what the field is ("No." for
    ``couple_number`` beside "Couple"), where one heading wins and is no other field's."""
    best: dict[str, tuple[int, tuple[int, bool]]] = {}
    words = [re.findall(r"[^\W\d_]+", heading.lower()) for heading in headings]
    for name in names:
        named = [w for w in name_words(name) if len(w) > 1]
        if not named:
            continue
        parts = [(w, *ABBREVIATIONS.get(w, ())) for w in named]
        holds = [[any(_heads(forms, word) for word in cell) for forms in parts] for cell in words]
        scores = [(sum(held), held[-1]) for held in holds]
        top = max(scores, default=(0, False))
        if top[0] and scores.count(top) == 1:
            best[name] = (scores.index(top), top)
    under: dict[str, int] = {}
    for name, (column, score) in best.items():
        rivals = [s for n, (c, s) in best.items() if c == column and n != name]
        if all(score > s for s in rivals):
            under[name] = column
    return under


def _heads(forms: tuple[str, ...], word: str) -> bool:
    """Whether a heading's ``word`` is a name word's (``forms[0]``, stemmed) or one of its
    abbreviations (exactly: "no" is no "north")."""
    return stem_match(forms[0], word) or word in forms[1:]


def _heading_start(text: str, start: int) -> int:
    """Where the rows beginning at ``start`` begin with their table's heading line, if the
    line right above is one ("Pos  Boat  Sail no.", in columns like the first row's)."""
    line = text.rfind("\n", 0, start) + 1
    above = text.rfind("\n", 0, max(line - 1, 0)) + 1
    heading, first = text[above : max(line - 1, 0)], text[line : text.find("\n", start)]
    columns = [sep for sep in ("\t", "  ", "|") if sep in heading.strip() and sep in first]
    return above if line and heading.strip() and columns else start


def _plain(kind: str) -> bool:
    """Whether a copied ``kind`` is a plain string: a run of the text's words (someone's name
    is one too), not a narrower kind of string."""
    base, narrow, *_ = [*kind.split("/"), ""]
    return base == "string" and (narrow == "" or narrow in PROPERS)


def _same_value(value: str) -> str:
    try:
        return repr(float(value))
    except ValueError:
        return value


def _holding(rows: list[Row], hits: list[int], marked: bool) -> list[tuple[list[Row], list[int]]]:
    """The runs of consecutive ``rows`` that each hold a value (``hits``), with their hits;
    of marked rows, the block without the rows at its ends that hold none (a heading line):
    a marked row in the middle is an item whose values the text does not give."""
    if marked:
        held = [i for i, hit in enumerate(hits) if hit]
        if not held:
            return []
        first, last = held[0], held[-1] + 1
        return [(rows[first:last], hits[first:last])]
    runs: list[tuple[list[Row], list[int]]] = []
    current: tuple[list[Row], list[int]] = ([], [])
    for row, hit in [*zip(rows, hits, strict=True), ((0, 0), 0)]:
        if hit:
            current[0].append(row)
            current[1].append(hit)
        elif current[0]:
            runs.append(current)
            current = ([], [])
    return runs


def _distinct_values(source: CopySource, kinds: Sequence[str]) -> int:
    """How many of ``kinds`` ``source`` holds a value for, no value counted twice (a row's
    one number is a quantity or a price, not both)."""
    options: list[set[str]] = []
    for kind in kinds:
        usable = source.kind_for(kind)
        found = source.values(usable) if usable is not None else []
        options.append({_same_value(v) for v in found})  # "45" and "45.00": one value
    taken: set[str] = set()
    count = 0
    for values in sorted(options, key=len):
        free = values - taken
        if free:
            taken.add(min(free))
            count += 1
    return count


def _item_refs(schema: Any) -> set[str]:
    """The references a list's ``items`` make anywhere in ``schema``."""
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            items = node.get("items")
            if isinstance(items, Mapping) and isinstance(items.get("$ref"), str):
                found.add(items["$ref"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _merge(siblings: Mapping[str, Any], branch: Any) -> Any:
    """``siblings`` and ``branch`` as one schema (shallow: the branch wins, properties and
    required lists are joined)."""
    if not isinstance(siblings, Mapping):
        return branch  # a definition that is ``true`` or ``false``, with a description
    if not isinstance(branch, Mapping) or not siblings:
        return branch
    if "$ref" in branch:
        return branch  # the converter follows the reference and ignores its siblings
    merged = {**siblings, **branch}
    if isinstance(siblings.get("properties"), Mapping) and isinstance(
        branch.get("properties"), Mapping
    ):
        merged["properties"] = {**siblings["properties"], **branch["properties"]}
    if isinstance(siblings.get("required"), list) and isinstance(branch.get("required"), list):
        merged["required"] = list(dict.fromkeys([*siblings["required"], *branch["required"]]))
    return merged


def _count(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return default
    if not math.isfinite(value):
        return default  # Infinity and NaN, which Python's json reads
    return int(value)


def _instance(schema: Any, defs: Mapping[str, Any], depth: int) -> Any:
    if depth <= 0 or not isinstance(schema, Mapping):
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _instance(defs.get(ref), defs, depth - 1)
    if "const" in schema:
        # A copied value's placeholder: its shortest form (a copy is counted as input).
        return "" if is_sentinel(schema["const"]) else schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return max(schema["enum"], key=lambda value: len(json.dumps(value)))
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            values = [_instance(branch, defs, depth - 1) for branch in branches]
            return max(values, key=lambda value: len(json.dumps(value, default=str)))
    if isinstance(schema.get("allOf"), list) and schema["allOf"]:
        return _instance(schema["allOf"][0], defs, depth - 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return {}
        return {str(k): _instance(v, defs, depth - 1) for k, v in properties.items()}
    if kind == "array" or "items" in schema:
        items = schema.get("prefixItems") or schema.get("items")
        if isinstance(items, list):
            return [_instance(item, defs, depth - 1) for item in items]
        item = _instance(items, defs, depth - 1)
        # A list of objects repeats its keys for every item: count a few (scalars are input).
        return [item] * (OBJECT_ITEMS if isinstance(item, dict) else 1)
    return {"string": "", "integer": 0, "number": 0, "boolean": False}.get(str(kind))
