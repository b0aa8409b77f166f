"""The embedded model's prompt for a structured request (pure functions).

The bundled GGUF is the *pretrained* Gemma 3 270M, not the instruction-tuned one (asked "What
is the capital of France?" in Gemma's chat format, it repeats the question), and its chat
control tokens mean little to it. A pretrained model continues documents; instructions sway it
little, patterns a lot. And the server's grammar only says which tokens may come next, not
what the fields mean: without the schema in the prompt the model meets a key only when the
grammar makes it write it, then writes whatever fits.

So for a request with an object schema the prompt is a plain document (:func:`completion_prompt`)
whose obvious continuation is the answer:

* the caller's system text, then a few rules (copy text as written, plain digits, ISO dates,
  null for what the text does not give);
* one worked example in a fixed, unrelated domain (:data:`EXAMPLE`): a text, its fields, and
  its answer as JSON, so the model has seen values copied out of a text before it writes one;
* the request in the same layout: the caller's text, the schema's fields (:func:`field_guide`:
  name, type, format, allowed values, description, in schema order) and the start of a JSON
  code block, which the grammar then fills.

What was kept, and why, is measured in docs/local.md ("Accuracy on unseen data").
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._bounds import message_parts

__all__ = [
    "EXAMPLE",
    "STYLE_ENV",
    "Style",
    "completion_prompt",
    "field_guide",
    "schema_of",
    "style_from_environment",
]

# A guide is for a schema a person wrote; deeper nesting than this is shown as "object".
_MAX_DEPTH = 4
# Past this many fields (counting nested ones) the guide is cut, not the prompt blown up.
_MAX_LINES = 60
#: Where the answer starts: a JSON code block, as documents on the web write one.
ANSWER_CUE = "JSON:\n```json\n"
#: The prompt's stop strings: the end of the code block (the grammar ends the JSON itself).
STOP = ["```", "<end_of_turn>"]

#: The worked example: a text, its schema and the answer a careful reader gives. Its domain
#: (a library's overdue notice) is in none of the measured tasks, and its values are unlikely
#: in a real input, so a value copied from it by mistake is easy to spot.
EXAMPLE: dict[str, Any] = {
    "text": (
        "Westgate Library, 31 March 2023. Two items you borrowed on 4 March 2023 were due "
        'back on 25 March 2023 and are now 6 days late: the book "The Silent River" by Tomas '
        'Eriksen (item 55-0193) and the DVD "Northern Lights" (item 71-2208). Fine so far: '
        "EUR 1.50. Please return them to any branch."
    ),
    "schema": {
        "type": "object",
        "properties": {
            "library": {"type": "string"},
            "borrowed_on": {"type": "string", "format": "date"},
            "due_on": {"type": "string", "format": "date"},
            "days_late": {"type": "integer"},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "kind": {"type": "string", "enum": ["book", "dvd", "magazine"]},
                        "title": {"type": "string"},
                        "item_id": {"type": "string"},
                    },
                },
            },
            "fine": {"type": "number", "description": "Amount owed"},
            "renewals_left": {"type": ["integer", "null"]},
        },
    },
    "answer": {
        "library": "Westgate Library",
        "borrowed_on": "2023-03-04",
        "due_on": "2023-03-25",
        "days_late": 6,
        "items": [
            {"kind": "book", "title": "The Silent River", "item_id": "55-0193"},
            {"kind": "dvd", "title": "Northern Lights", "item_id": "71-2208"},
        ],
        "fine": 1.5,
        "renewals_left": None,
    },
}

RULES = (
    "Copy names, codes and other text exactly as the text writes them. Write numbers as "
    "plain digits, without units, currency or separators. Write dates as YYYY-MM-DD. Write "
    "null for a field the text does not give."
)


@dataclass(frozen=True)
class Style:
    """How a structured request is put to the model. The defaults are the measured choice
    (docs/local.md, "Accuracy on unseen data"); the others are there to measure it again:
    ``benchmarks/local_accuracy.py --style fields=after,example=true`` (passed to the server
    in :data:`STYLE_ENV`, which is not a supported setting)."""

    #: The worked example (:data:`EXAMPLE`) before the request.
    example: bool = False
    #: The rules after the system text.
    rules: bool = True
    #: The fields before the text ("before"), after it ("after"), both, or not at all ("none").
    fields: str = "before"
    #: Field descriptions from the schema.
    descriptions: bool = True
    #: The word "text" for plain string fields (a small model may copy it into an answer).
    text_type: bool = True
    #: Thousands separators dropped from numbers in the text, when the schema has numbers.
    plain_numbers: bool = True
    #: Values only copied from the text where the schema says what they are (:mod:`._copying`).
    copy_values: bool = True
    #: A copy narrowed by what the field's name says (``phone``, ``year``, ``_km``;
    #: :mod:`._naming`).
    by_name: bool = True
    #: An enum narrowed to the values the text mentions, when it mentions some.
    mentions: bool = True
    #: A required list of objects holds one at least.
    listed: bool = True
    #: A list of objects written one item per line in the text: one item per row, each
    #: from its row (:mod:`._rows`).
    rows: bool = True
    #: The answer's keys drafted, and evaluated in one batch with the token before them
    #: (:mod:`._drafting`).
    draft_keys: bool = True
    #: Where what is written of a value begins only one of the values its place admits (a
    #: date, a phone number, an enum's value), the rest drafted too (:mod:`._drafting`).
    draft_values: bool = True
    #: Inside a word of a copy, the rest of the word drafted (the grammar writes it).
    draft_words: bool = True
    #: The prompt as a document to continue; False: Gemma's chat turns (``format_gemma3``).
    document: bool = True
    #: The text's numbers chosen whole by their likelihood, not digit by digit
    #: (:mod:`._choosing`). Off: +5 fields on the tuning half and +4 held out, but the median
    #: extraction went from 2.7-2.9 s to 3.1-3.5 s, over the 3 s bar (docs/local.md).
    choose_whole: bool = False
    #: Added to the logit of ``null`` where a value begins: how sure the model must be that a
    #: value is there before it writes one (measured: 0 and 2 copy the text's words where
    #: the answer is null; 3 kept as many fields right as the lone-space drafts did).
    null_bias: float = 3.0
    #: Where the grammar admits only pieces of the prompt, the schema and the grammar's
    #: literals, the logits of those tokens only (:mod:`._head`): the same answers, faster.
    partial_head: bool = True

    @classmethod
    def parse(cls, text: str) -> Style:
        """``key=value,...`` (booleans ``true``/``false``) over the defaults; ValueError if bad."""
        values: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, _, raw = item.partition("=")
            default = getattr(cls(), key, None)
            if default is None or not raw:
                raise ValueError(f"unknown or empty style setting {item!r}")
            if key == "fields" and raw not in _FIELD_PLACES:
                raise ValueError(f"fields takes one of {', '.join(_FIELD_PLACES)}, not {raw!r}")
            if isinstance(default, bool):
                if raw not in ("true", "false"):
                    raise ValueError(f"{key} takes true or false, not {raw!r}")
                values[key] = raw == "true"
            elif isinstance(default, float):
                try:
                    values[key] = float(raw)
                except ValueError:
                    raise ValueError(f"{key} takes a number, not {raw!r}") from None
            else:
                values[key] = raw
        return cls(**values)


_FIELD_PLACES = ("before", "after", "both", "none")

#: The environment variable ``benchmarks/local_accuracy.py --style`` sets for its server.
STYLE_ENV = "OPENAI_STRUCTURED_LOCAL_STYLE"


def style_from_environment() -> Style:
    """The style the server uses: the defaults, or what :data:`STYLE_ENV` says (measuring)."""
    return Style.parse(os.environ.get(STYLE_ENV, ""))


DEFAULT_STYLE = Style()


def schema_of(response_format: Any) -> Mapping[str, Any] | None:
    """The JSON Schema in a request's ``response_format``, if it has one (any known form)."""
    if not isinstance(response_format, Mapping):
        return None
    schema = response_format.get("schema")
    if schema is None and isinstance(response_format.get("json_schema"), Mapping):
        schema = response_format["json_schema"].get("schema")
    return schema if isinstance(schema, Mapping) else None


def completion_prompt(
    messages: Sequence[Mapping[str, Any]],
    schema: Mapping[str, Any] | None,
    style: Style = DEFAULT_STYLE,
) -> tuple[str, list[str]] | None:
    """The prompt and stop strings for a request with an object ``schema``; None otherwise
    (the caller then uses the chat format).

    System and developer messages come first; the first user message is the text; a later
    assistant message (an earlier answer, when the library asks again after a validation
    error) closes its code block, and the user message after it (the errors) opens a new one.
    """
    if schema is None or not style.document:
        return None
    fields = field_guide(schema, style)
    if not fields:
        return None
    system = "\n\n".join(
        message_text(m.get("content")).strip()
        for m in messages
        if m.get("role") in ("system", "developer")
    )
    head = [p for p in (system, RULES if style.rules else "") if p]
    if style.example:
        example = _block(EXAMPLE["text"], field_guide(EXAMPLE["schema"], style), style)
        head.append(example + json.dumps(EXAMPLE["answer"], ensure_ascii=False) + "\n```")
    prompt = "\n\n".join(head) + ("\n\n" if head else "")
    first = True
    for message in messages:
        role = message.get("role")
        text = message_text(message.get("content")).strip()
        if role in ("system", "developer"):
            continue
        if role == "assistant":
            prompt += text + "\n```\n\n"
        elif first:
            prompt += _block(normalise_text(text, schema, style), fields, style)
            first = False
        else:  # the next text (worked examples as turns) or a re-ask's errors
            prompt += f"{normalise_text(text, schema, style)}\n\n{ANSWER_CUE}"
    if first:  # no user message: the fields alone
        prompt += _block("", fields, style)
    elif not prompt.endswith(ANSWER_CUE):
        prompt += ANSWER_CUE
    return prompt, list(STOP)


def _block(text: str, fields: str, style: Style) -> str:
    parts = [f"Text:\n{text}"] if text else []
    if style.fields in ("after", "both"):
        parts.append(f"Fields:\n{fields}")
    if style.fields in ("before", "both"):
        parts.insert(0, f"Fields:\n{fields}")
    return "\n\n".join(parts) + "\n\n" + ANSWER_CUE


def field_guide(schema: Mapping[str, Any], style: Style = DEFAULT_STYLE) -> str:
    """One line per field of an object ``schema`` (nested fields indented); "" otherwise."""
    root = _Resolver(schema, style)
    node, _ = root.resolve(schema)
    if not _is_object(node):
        return ""
    lines: list[str] = []
    for line in root.object_lines(node, 0):
        if len(lines) == _MAX_LINES:
            lines.append("- ...")
            break
        lines.append(line)
    return "\n".join(lines)


class _Resolver:
    """Walks a schema: ``$ref`` within the document, ``anyOf``/``type`` lists with null."""

    def __init__(self, root: Mapping[str, Any], style: Style) -> None:
        self.root = root
        self.style = style

    def resolve(self, node: Any, seen: frozenset[str] = frozenset()) -> tuple[Any, bool]:
        """The node behind refs and one-branch combinators, and whether null is allowed."""
        nullable = False
        for _ in range(16):
            if not isinstance(node, Mapping):
                return {}, nullable
            ref = node.get("$ref")
            if isinstance(ref, str):
                if ref in seen:
                    return {}, nullable
                seen = seen | {ref}
                node = self._merge(self._lookup(ref), node, "$ref")
                continue
            combined = False
            for key in ("anyOf", "oneOf", "allOf"):
                branches = node.get(key)
                if not isinstance(branches, list):
                    continue
                real = [b for b in branches if not _is_null(b)]
                if key != "allOf" and len(real) < len(branches):
                    nullable = True
                if len(real) == 1:
                    node = self._merge(real[0], node, key)
                    combined = True
                    break
            if combined:
                continue
            kind = node.get("type")
            if isinstance(kind, list) and "null" in kind:
                nullable = True
                rest = [t for t in kind if t != "null"]
                node = {**node, "type": rest[0] if len(rest) == 1 else rest}
            enum = node.get("enum")
            if isinstance(enum, list) and None in enum:
                nullable = True
            return node, nullable
        return {}, nullable

    def _merge(self, target: Any, node: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        """``target`` (a ref's target or the one real branch) with ``node``'s other keywords."""
        if isinstance(target, Mapping) and isinstance(target.get("$ref"), str):
            target = {
                **self._lookup(target["$ref"]),
                **{k: v for k, v in target.items() if k != "$ref"},
            }
        base = target if isinstance(target, Mapping) else {}
        return {**base, **{k: v for k, v in node.items() if k != key}}

    def _lookup(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#"):
            return {}
        node: Any = self.root
        for part in ref[1:].split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                return {}
            node = node[part]
        return node if isinstance(node, Mapping) else {}

    def object_lines(self, node: Mapping[str, Any], depth: int) -> Iterator[str]:
        properties = node.get("properties")
        if not isinstance(properties, Mapping):
            return
        indent = "  " * depth
        required = node.get("required")
        first = set(required) if isinstance(required, list) else set()
        # In the order the answer is written: llama.cpp's grammar puts required fields first.
        ordered = sorted(properties.items(), key=lambda item: item[0] not in first)
        for name, raw in ordered:
            child, nullable = self.resolve(raw)
            kind, nested = self._kind(child, depth)
            if not self.style.text_type and kind == "text":
                kind = ""
            if nullable:
                kind = f"{kind or 'text'} or null"
            line = f"{indent}- {name}: {kind}" if kind else f"{indent}- {name}"
            description = child.get("description")
            if self.style.descriptions and isinstance(description, str) and description.strip():
                line += f" ({_clause(description)})"
            yield line
            yield from nested

    def _kind(self, node: Mapping[str, Any], depth: int) -> tuple[str, list[str]]:
        """A few words for the node's type, and the lines of its nested fields."""
        enum = node.get("enum")
        if isinstance(enum, list):
            return "one of " + ", ".join(_literal(v) for v in enum if v is not None), []
        if "const" in node:
            return f"always {_literal(node['const'])}", []
        if _is_object(node):
            if depth + 1 >= _MAX_DEPTH:
                return "object", []
            return "object with", list(self.object_lines(node, depth + 1))
        if _is_array(node):
            items, _ = self.resolve(node.get("items", {}))
            if _is_object(items) and depth + 1 < _MAX_DEPTH:
                return "list of objects, each with", list(self.object_lines(items, depth + 1))
            item_kind, _ = self._kind(items, depth + 1)
            if item_kind.startswith("one of "):
                return f"list of values, each {item_kind}", []
            return f"list of {_PLURALS.get(item_kind, 'values')}", []
        return _scalar(node), []


_PLURALS = {
    "text": "texts",
    "whole number": "whole numbers",
    "number": "numbers",
    "true or false": "true/false values",
    "date (YYYY-MM-DD)": "dates (YYYY-MM-DD)",
}


def _scalar(node: Mapping[str, Any]) -> str:
    kind = node.get("type")
    fmt = node.get("format")
    if kind == "string" or (kind is None and isinstance(fmt, str)):
        return {
            "date": "date (YYYY-MM-DD)",
            "date-time": "date and time (YYYY-MM-DDTHH:MM:SS)",
            "time": "time (HH:MM:SS)",
            "email": "email address",
        }.get(str(fmt), "text")
    return {
        "integer": "whole number",
        "number": "number",
        "boolean": "true or false",
    }.get(str(kind), "value")


def _is_null(node: Any) -> bool:
    return isinstance(node, Mapping) and node.get("type") == "null"


def _is_object(node: Any) -> bool:
    return isinstance(node, Mapping) and (
        node.get("type") == "object" or (node.get("type") is None and "properties" in node)
    )


def _is_array(node: Any) -> bool:
    return isinstance(node, Mapping) and (
        node.get("type") == "array" or (node.get("type") is None and "items" in node)
    )


def _literal(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _clause(text: str) -> str:
    return " ".join(text.split()).rstrip(".")


def message_text(content: Any) -> str:
    """The text of a message's content: a string, or its text parts joined."""
    return "".join(message_parts(content))


_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])")


def normalise_text(text: str, schema: Mapping[str, Any], style: Style = DEFAULT_STYLE) -> str:
    """``text`` as the model is shown it: numbers without thousands separators when the schema
    has number fields (the grammar makes the model write them that way)."""
    kinds = _scalar_kinds(schema)
    if style.plain_numbers and kinds & {"number", "whole number"}:
        text = _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), text)
    return text


def _scalar_kinds(schema: Mapping[str, Any]) -> set[str]:
    """The :func:`_scalar` kinds of every field in ``schema``."""
    found: set[str] = set()
    resolver = _Resolver(schema, DEFAULT_STYLE)

    def walk(node: Any, depth: int) -> None:
        node, _ = resolver.resolve(node)
        if depth > 2 * _MAX_DEPTH:
            return
        if _is_object(node):
            for child in (node.get("properties") or {}).values():
                walk(child, depth + 1)
        elif _is_array(node):
            walk(node.get("items", {}), depth + 1)
        else:
            found.add(_scalar(node))

    walk(schema, 0)
    return found
