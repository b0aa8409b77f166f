"""What the answer writes next that the model need not choose token by token (pure).

Most of a JSON answer is its keys: ``, "venue": "`` costs the 270M model five decodes of
~16 ms each, and the grammar leaves it no choice. llama-cpp-python's generation loop takes a
*draft* (its speculative decoding hook): tokens it evaluates in one batch with the token
just chosen, then checks one by one. :class:`KeyDraft` is that draft: after ``{`` or ``,``
in an object (or a key's opening quote), the next *required* key, one the grammar makes the
answer write, in the order it writes them (llama.cpp's converter: the required keys in the
schema's order, then the optional ones), its colon spaced as the answer spaces them and, for
a string value, its opening quote; at an object item of a list, its ``{`` and first key. The
sampler takes a drafted token wherever the grammar admits it
(:class:`~._decoding.FirstChoiceGrammarSampler`): the text is what the grammar would have
the model write anyway; its split into tokens may differ, and so may the spaces the grammar
leaves free (a colon's and a comma's follow the answer's first ones; none after ``{``/``[``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._bounds import definitions
from ._choosing import ITEM, Path, ValuePath
from ._copying import is_sentinel, sentinel_kind

__all__ = ["CopiedWords", "KeyDraft"]

_MAX_DEPTH = 32


@dataclass(frozen=True)
class CopiedWords:
    """Where an answer copies runs of the text's words (:func:`~._choosing.spanned_places`)
    and those words, each with the gap after it (:attr:`~._copying.CopySource.words`)."""

    paths: frozenset[Path] = frozenset()
    words: Sequence[tuple[str, str]] = ()
    #: Where a word begins with each character: a copy's possible starts, looked up once
    #: per token rather than found by reading every word.
    _starts: Mapping[str, tuple[int, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        starts: dict[str, list[int]] = {}
        for index, (word, _) in enumerate(self.words):
            starts.setdefault(word[:1], []).append(index)
        object.__setattr__(self, "_starts", {c: tuple(i) for c, i in starts.items()})

    def rest_of_word(self, written: str) -> str:
        """Of a run of the words being copied (``written``: the JSON string's text so far),
        the rest of the word it ends inside, where every run of the words it may be goes on
        the same way; else ``""`` (at a word's end what follows is the model's to choose). A
        run's words are whole in its grammar (:meth:`~._copying.CopySource.span_rules`), so
        the rest of a begun word is no choice."""
        if not written or "\\" in written or '"' in written:
            return ""  # an escape: not compared (a line break written "\\n", a quote)
        words = self.words
        rests: set[str] = set()
        for start in self._starts.get(written[0], ()):
            at = 0
            for index in range(start, len(words)):
                word, gap = words[index]
                end = at + len(word)
                if end < len(written) and written[at:end] == word:
                    at = end + (1 if gap else 0)  # a gap is written as one space
                    if written[end:at] != (" " if gap else ""):
                        break
                    continue
                if end == len(written) and written[at:] == word:
                    return ""  # a whole word here: the model chooses what comes next
                if end > len(written) and word.startswith(written[at:]):
                    rests.add(word[len(written) - at :])
                break
            if len(rests) > 1:
                return ""
        return rests.pop() if len(rests) == 1 else ""


class KeyDraft:
    """Fed the answer's text as it is written; :meth:`next_text` is the text to draft."""

    def __init__(
        self,
        schema: Mapping[str, Any],
        places: Mapping[Path, list[str]] | None = None,
        copied: CopiedWords | None = None,
    ) -> None:
        self._schema = schema
        #: The places the grammar closes to a list of values (:func:`~._choosing.closed_places`).
        self._places = places or {}
        self._copied = copied or CopiedWords()
        self._defs = definitions(schema)
        self._path = ValuePath()
        #: How the answer spaces a key's colon and an object's comma (``": "``, ``", "``),
        #: once it has written one: the draft writes them the same way.
        self._after: dict[str, str | None] = {":": None, ",": None}
        self._pending: str | None = None

    def feed(self, text: str) -> None:
        for char in text:
            if self._pending is not None:
                self._after[self._pending] = " " if char == " " else ""
                self._pending = None
            inside = self._path.in_string
            self._path.feed(char)
            if not inside and char in ":," and self._after[char] is None:
                self._pending = char

    def next_text(self) -> str:
        """The text the answer very likely writes next, or ``""``."""
        state = self._path.position()
        if state is None:
            return self._rest_of_value()
        steps, top_is_list, last_key, last_char = state
        node = self._node_at(steps)
        if node is None:
            return ""
        if last_char == '"':  # the key's quote is written ('{"' and ',"' are tokens)
            key = None if top_is_list else self._next_key(node, last_key)
            return "" if key is None else self._key_text(node, key)[1:]
        # After a comma, spaced as the answer spaces its commas (not known yet: no draft); after
        # "{" and "[" unspaced (measured: it kept more fields right than their own style).
        lead = "" if self._path.spaced or last_char != "," else self._after[","]
        if lead is None:
            return ""
        if top_is_list:  # at a list's item: an object item's "{" and its first key
            if last_char == "[" and not node.get("minItems"):
                return ""  # the list may be empty: "]" is the model's to choose
            item = self._resolved(_items(node))  # one kind of object, never null
            if not isinstance(item, Mapping) or not isinstance(item.get("properties"), Mapping):
                return ""
            key = self._next_key(item, "")
            return "" if key is None else lead + "{" + self._key_text(item, key)
        key = self._next_key(node, last_key)
        return "" if key is None else lead + self._key_text(node, key)

    def _rest_of_value(self) -> str:
        """Where what is written of a value begins one of its place's values only, the rest
        of it (a string's without its closing quote: the model writes '",' or '"}' itself)."""
        writing = self._path.writing()
        if writing is None:
            return ""
        path, written = writing
        if path in self._copied.paths and written.startswith('"'):
            return self._copied.rest_of_word(written[1:])
        values = [v for v in self._places.get(path, ()) if v.startswith(written)]
        if len(values) != 1:
            return ""
        rest = values[0][len(written) :]
        return rest[:-1] if values[0].startswith('"') else rest

    def _key_text(self, node: Mapping[str, Any], key: str) -> str:
        value = self._resolved(node["properties"][key])
        text = json.dumps(key) + ":"  # as the converter writes it: "caf\u00e9"
        space = self._after[":"]
        if space is None:  # not seen yet: up to the colon
            return text
        forced = _forced(value)
        if forced is not None:  # the one value the grammar admits: "sold_out": false
            return text + space + forced
        if _string_valued(value):
            return text + space + '"'
        # A string or null: up to the colon, so the model writes ' "' or ' null' as it would
        # (after a lone space token it all but never begins a string: the README's main job).
        return text if _string_or_null(value, self._resolved) else text + space

    def _next_key(self, node: Mapping[str, Any], last: str) -> str | None:
        properties = node.get("properties")
        if not isinstance(properties, Mapping) or not properties:
            return None
        required = node.get("required")
        needed = set(required) if isinstance(required, list) else set()
        order = [str(k) for k in properties if k in needed]
        order += [str(k) for k in properties if k not in needed]
        if not last:
            return order[0] if order[0] in needed else None
        if last not in order or order.index(last) + 1 >= len(order):
            return None
        following = order[order.index(last) + 1]
        return following if following in needed else None  # an optional key may be left out

    def _node_at(self, steps: tuple[str, ...]) -> Mapping[str, Any] | None:
        """The schema of the container the answer is in (an object, or a list)."""
        node: Any = self._schema
        for step in steps:
            container = self._object(node) if step != ITEM else self._list(node)
            if container is None:
                return None
            node = _items(container) if step == ITEM else container["properties"].get(step)
        resolved = self._resolved(node)
        return resolved if isinstance(resolved, Mapping) else None

    def _object(self, node: Any) -> Mapping[str, Any] | None:
        return self._branch(node, lambda n: isinstance(n.get("properties"), Mapping))

    def _list(self, node: Any) -> Mapping[str, Any] | None:
        return self._branch(node, lambda n: n.get("type") == "array" or "items" in n)

    def _branch(self, node: Any, wanted: Any) -> Mapping[str, Any] | None:
        node = self._resolved(node)
        if not isinstance(node, Mapping):
            return None
        if wanted(node):
            return node
        branches = [self._resolved(b) for b in node.get("anyOf") or []]
        matching = [b for b in branches if isinstance(b, Mapping) and wanted(b)]
        # One branch of the kind (and null): that one; two objects (Kitten | Puppy): which
        # one is being written is not known, so nothing is drafted inside it.
        return matching[0] if len(matching) == 1 else None

    def _resolved(self, node: Any) -> Any:
        for _ in range(_MAX_DEPTH):
            if not isinstance(node, Mapping) or not isinstance(node.get("$ref"), str):
                return node
            node = self._defs.get(node["$ref"])
        return None


def _string_valued(node: Any) -> bool:
    """Whether a value of ``node`` always starts with ``"`` (a string, never null)."""
    if not isinstance(node, Mapping):
        return False
    const = node.get("const")
    if is_sentinel(const):
        kind = sentinel_kind(str(const))
        return not kind.startswith(("integer", "number", "unsigned"))
    if isinstance(const, str):
        return True
    enum = node.get("enum")
    if isinstance(enum, list) and enum:
        return all(isinstance(value, str) for value in enum)
    return node.get("type") == "string"


def _string_or_null(node: Any, resolved: Callable[[Any], Any]) -> bool:
    """Whether ``node`` admits null and strings, nothing else (``Optional[str]``, a nullable
    date, an enum of strings and None)."""
    if not isinstance(node, Mapping):
        return False
    enum = node.get("enum")
    if isinstance(enum, list) and None in enum:
        return len(enum) > 1 and all(v is None or isinstance(v, str) for v in enum)
    kinds = node.get("type")
    if isinstance(kinds, list):
        return sorted(kinds) == ["null", "string"]
    branches = node.get("anyOf")
    if not isinstance(branches, list):
        return False
    nulls = [b for b in branches if isinstance(b, Mapping) and b.get("type") == "null"]
    others = [b for b in branches if b not in nulls]
    return bool(nulls) and bool(others) and all(_string_valued(resolved(b)) for b in others)


def _forced(node: Any) -> str | None:
    """The JSON text of the one value ``node`` admits (a ``const``, an enum of one), if so;
    not a copied value's placeholder."""
    if not isinstance(node, Mapping):
        return None
    if "const" in node and not is_sentinel(node["const"]):
        return json.dumps(node["const"])
    enum = node.get("enum")
    if isinstance(enum, list) and len(enum) == 1:
        return json.dumps(enum[0])
    return None


def _items(node: Mapping[str, Any]) -> Any:
    """A list's items (of a list written one item per row, the first row's: the rows' keys
    are the same)."""
    rows = node.get("prefixItems")
    if "items" in node or not isinstance(rows, list) or not rows:
        return node.get("items")
    if len(rows) == 1 or not all(isinstance(row, Mapping) for row in rows):
        return rows[0]
    # The rows' keys are the same; what is drafted of a value (a forced one, a quote) only
    # where every row has it, and a key as required only where every row requires it.
    first = rows[0]
    properties = first.get("properties")
    if not isinstance(properties, Mapping):
        return first
    merged = {
        key: sub
        if all(row.get("properties", {}).get(key) == sub for row in rows)
        else {"type": "string"}
        if all(_string_valued(row.get("properties", {}).get(key)) for row in rows)
        else {}
        for key, sub in properties.items()
    }
    required = [
        key
        for key in first.get("required", [])
        if all(key in row.get("required", []) for row in rows)
    ]
    return {**first, "properties": merged, "required": required}
