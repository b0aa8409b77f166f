"""Closed choices: a number from the text is chosen whole, by the model's likelihood (pure).

Greedy decoding chooses a value one token at a time. For a number that is the first digit
alone: asked for a car's mileage, the model's logits for ``1`` and ``8`` are within 0.1 of each
other, and the ``1`` it picks then commits it to whichever of the text's numbers starts with 1.
Where the grammar admits only the numbers the text writes (and ``null`` where allowed), the
sampler instead scores each whole value, with the end of the value, and writes the likeliest
(:class:`~._decoding.FirstChoiceGrammarSampler`). On the tuning half of
tests/data/extraction, with the right answer's earlier fields given, this picked 11 of 14
numbers right against 3 of 14 by their first token.

This module is the pure part: which places in the answer hold a closed choice and what its
values are (:func:`closed_choices`), and where the answer being written is (:class:`ValuePath`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._bounds import definitions
from ._copying import KINDS, CopySource, base_kind, is_sentinel, is_spanned, sentinel_kind

__all__ = ["ITEM", "MAX_CHOICES", "ValuePath", "closed_choices", "closed_places", "spanned_places"]

#: The path step of a list's items.
ITEM = "[]"
#: Places with more values than this are written token by token (each value costs a decode).
MAX_CHOICES = 24
#: The kinds chosen whole: the text's numbers. Dates, times, enums and booleans were measured
#: too (docs/local.md): they cost a batch decode each and gained nothing the numbers did not.
_CLOSED_KINDS = frozenset(kind for kind in KINDS if kind.endswith(("integer", "number")))
_MAX_DEPTH = 16

Path = tuple[str, ...]


def closed_choices(
    schema: Mapping[str, Any], copy_from: CopySource | None
) -> dict[Path, list[str]]:
    """The JSON texts each closed place of a grammar schema (:func:`~._bounds.grammar_schema`'s
    output) may hold, by key path (``ITEM`` for a list's items); places with one value or more
    than :data:`MAX_CHOICES` are left out."""
    found = _Places(definitions(schema), copy_from, _CLOSED_KINDS, enums=False).walk(schema)
    return {path: values for path, values in found.items() if 1 < len(values) <= MAX_CHOICES}


def closed_places(schema: Mapping[str, Any], copy_from: CopySource | None) -> dict[Path, list[str]]:
    """Every place of a grammar schema that the grammar closes to a list of JSON texts (the
    text's dates, phone numbers, codes and numbers; an enum's values; null), however many:
    where what is written of a value begins one of them only, the rest is known
    (:class:`~._drafting.KeyDraft`)."""
    return _Places(definitions(schema), copy_from, None, enums=True).walk(schema)


def spanned_places(schema: Mapping[str, Any]) -> frozenset[Path]:
    """The places of a grammar schema whose strings are runs of the text's words (a list
    written one item per row included): inside a word, the rest of it is the grammar's."""
    defs = definitions(schema)
    found: set[Path] = set()

    def walk(node: Any, path: Path, depth: int) -> None:
        if not isinstance(node, Mapping) or depth > _MAX_DEPTH:
            return
        if isinstance(node.get("$ref"), str):
            walk(defs.get(node["$ref"]), path, depth + 1)
        const = node.get("const")
        if isinstance(const, str) and is_sentinel(const) and is_spanned(sentinel_kind(const)):
            found.add(path)
        for branch in node.get("anyOf") or []:
            walk(branch, path, depth + 1)
        properties = node.get("properties")
        if isinstance(properties, Mapping):
            for name, sub in properties.items():
                walk(sub, (*path, str(name)), depth + 1)
        for item in [node.get("items"), *(node.get("prefixItems") or [])]:
            walk(item, (*path, ITEM), depth + 1)

    walk(schema, (), 0)
    return frozenset(found)


@dataclass
class _Places:
    defs: Mapping[str, Any]
    copy_from: CopySource | None
    #: The copied kinds that count as closed (None: every one whose values are listed).
    kinds: frozenset[str] | None
    enums: bool

    def walk(self, schema: Any) -> dict[Path, list[str]]:
        found: dict[Path, list[str]] = {}
        self._walk(schema, (), found, 0)
        return found

    def _walk(self, node: Any, path: Path, found: dict[Path, list[str]], depth: int) -> None:
        if not isinstance(node, Mapping) or depth > _MAX_DEPTH:
            return
        ref = node.get("$ref")
        if isinstance(ref, str):
            self._walk(self.defs.get(ref), path, found, depth + 1)
            return
        values = self._values(node, depth)
        if values is not None:
            found[path] = values
            return
        properties = node.get("properties")
        if isinstance(properties, Mapping):
            for name, sub in properties.items():
                self._walk(sub, (*path, str(name)), found, depth + 1)
        if isinstance(node.get("items"), Mapping):
            self._walk(node["items"], (*path, ITEM), found, depth + 1)

    def _values(self, node: Mapping[str, Any], depth: int) -> list[str] | None:
        """The JSON texts of a closed place, or None when the place is open (or no value)."""
        if depth > _MAX_DEPTH:
            return None
        ref = node.get("$ref")
        if isinstance(ref, str):
            target = self.defs.get(ref)
            return self._values(target, depth + 1) if isinstance(target, Mapping) else None
        if "const" in node:
            const = node["const"]
            if not is_sentinel(const) or self.copy_from is None:
                return None
            kind = sentinel_kind(const)
            if self.kinds is not None and base_kind(kind) not in self.kinds:
                return None
            return self.copy_from.values(kind) or None  # none listed: spans of the text
        if node.get("type") == "null":
            return ["null"]
        enum = node.get("enum")
        if self.enums and isinstance(enum, list) and enum:
            return [json.dumps(value) for value in enum]  # as the converter writes them
        branches = node.get("anyOf")
        if isinstance(branches, list) and branches:
            union: list[str] = []
            for branch in branches:
                values = self._values(branch, depth + 1) if isinstance(branch, Mapping) else None
                if values is None:
                    return None
                union.extend(value for value in values if value not in union)
            return union
        return None


_NUMBER_CHARS = frozenset("-+.0123456789eE")


@dataclass
class _Container:
    is_list: bool
    key: str = ""
    #: "key" (an object's key or its end is next), "colon", "value" (a value is next),
    #: "after" (a value was written: "," or the end is next).
    state: str = "value"


@dataclass
class ValuePath:
    """Follows the JSON text being written, to tell when only a value is left to write at a
    place of the answer, and which place (its key path, ``ITEM`` for list items)."""

    _stack: list[_Container] = field(default_factory=list)
    _in_string: bool = False
    _escape: bool = False
    _key: list[str] = field(default_factory=list)
    _reading_key: bool = False
    #: The last character written outside a string (":" or "," means a space may come first).
    last: str = ""
    #: Whether the last character written was whitespace.
    spaced: bool = False
    #: The value being written (a string from its quote on, a number's characters so far)
    #: and its path; None between values.
    _value: list[str] | None = None
    _value_path: Path = ()

    def writing(self) -> tuple[Path, str] | None:
        """The path of the value being written and its text so far, or None (between
        values, in a key, or once a string's closing quote is written)."""
        return None if self._value is None else (self._value_path, "".join(self._value))

    def at_value(self) -> Path | None:
        """The path of the value about to begin, or None (not at the start of a value)."""
        if self._in_string or not self._stack or self._stack[-1].state != "value":
            return None
        return tuple(ITEM if c.is_list else c.key for c in self._stack)

    @property
    def in_string(self) -> bool:
        """Whether the text written so far ends inside a string (a key or a value)."""
        return self._in_string

    def position(self) -> tuple[Path, bool, str, str] | None:
        """Where a key or a list item begins: the path of the container the answer is in
        (without its own step), whether it is a list, the last key written in it (``""``
        after ``{``) and the last character (``{``, ``[``, ``,``, or ``"`` when a key's
        quote has just opened); None elsewhere."""
        key_open = self._in_string and self._reading_key and not self._key
        if (self._in_string and not key_open) or not self._stack or self.last not in '{[,"':
            return None
        top = self._stack[-1]
        if top.state != ("value" if top.is_list else "key"):
            return None
        steps = tuple(ITEM if c.is_list else c.key for c in self._stack[:-1])
        return steps, top.is_list, top.key, self.last

    def feed(self, text: str) -> None:
        for char in text:
            self._char(char)

    def _char(self, char: str) -> None:
        top = self._stack[-1] if self._stack else None
        if self._value is not None:
            goes_on = self._escape or char != '"' if self._in_string else char in _NUMBER_CHARS
            if goes_on:
                self._value.append(char)
            else:
                self._value = None  # the string's quote closes it; a number ends at its end
        elif top is not None and top.state == "value" and (char == '"' or char in _NUMBER_CHARS):
            self._value_path = tuple(ITEM if c.is_list else c.key for c in self._stack)
            self._value = [char]
        if self._in_string:
            if self._escape:
                self._escape = False
            elif char == "\\":
                self._escape = True
            elif char == '"':
                self._in_string = False
                if self._reading_key and top is not None:
                    top.key, top.state = "".join(self._key), "colon"
                    self._reading_key = False
                elif top is not None:
                    top.state = "after"
                return
            if self._reading_key:
                self._key.append(char)
            return
        self.spaced = char.isspace()
        if self.spaced:
            return
        self.last = char
        if char == '"':
            self._in_string = True
            if top is not None and not top.is_list and top.state == "key":
                self._reading_key, self._key = True, []
            elif top is not None:
                top.state = "value-open"  # inside the value now
        elif char in "{[":
            if top is not None:
                top.state = "after"  # the container is this value; "after" once it closes
            self._stack.append(
                _Container(is_list=char == "[", state="value" if char == "[" else "key")
            )
        elif char in "}]":
            if self._stack:
                self._stack.pop()
        elif top is None:
            return
        elif char == ":":
            top.state = "value"
        elif char == ",":
            top.state = "value" if top.is_list else "key"
        elif top.state == "value":
            top.state = "after"  # a number, true, false or null has begun
