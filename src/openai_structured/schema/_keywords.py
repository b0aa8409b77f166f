"""Keyword tables and small JSON helpers shared by the compiler, finaliser and restorer.

What OpenAI's strict mode accepts (Structured Outputs guide, "Supported schemas", as published
at https://developers.openai.com/api/docs/guides/structured-outputs#supported-schemas and
checked for this module in 2026):

- types: string, number, boolean, integer, object, array, enum, anyOf (and null);
- string: ``pattern``, ``format`` in date-time, time, date, duration, email, hostname, ipv4,
  ipv6, uuid;
- number/integer: ``multipleOf``, ``maximum``, ``exclusiveMaximum``, ``minimum``,
  ``exclusiveMinimum``;
- array: ``minItems``, ``maxItems``;
- ``$defs`` + local ``$ref`` (recursion via ``#`` or ``#/$defs/...``), ``description``,
  ``title``, ``enum``, ``const``;
- not supported: ``allOf``, ``not``, ``dependentRequired``, ``dependentSchemas``, ``if``,
  ``then``, ``else``; ``minLength``/``maxLength`` are not in the supported list (the guide names
  them only as unsupported for fine-tuned models), so we keep them as description hints;
- limits: 5000 object properties in total, 10 levels of object nesting, 120,000 characters of
  property names + definition names + enum values + const values, 1000 enum values in total,
  and 15,000 characters for one string enum with more than 250 values.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

Schema = dict[str, Any]

SUPPORTED_FORMATS: Final = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
JSON_TYPES: Final = frozenset({"null", "boolean", "object", "array", "number", "integer", "string"})

MAX_PROPERTIES: Final = 5000
MAX_DEPTH: Final = 10
MAX_STRING_CHARS: Final = 120_000
MAX_ENUM_VALUES: Final = 1000
LARGE_ENUM: Final = 250
LARGE_ENUM_CHARS: Final = 15_000

# Our own limit, not OpenAI's: structural nesting we follow before calling a schema unreasonable.
MAX_WALK: Final = 64

OBJECT_KEYWORDS: Final = frozenset(
    {
        "properties",
        "required",
        "additionalProperties",
        "patternProperties",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "dependentRequired",
        "dependentSchemas",
        "dependencies",
        "unevaluatedProperties",
    }
)
ARRAY_KEYWORDS: Final = frozenset(
    {
        "items",
        "prefixItems",
        "additionalItems",
        "minItems",
        "maxItems",
        "uniqueItems",
        "contains",
        "minContains",
        "maxContains",
        "unevaluatedItems",
    }
)
STRING_KEYWORDS: Final = frozenset(
    {
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "contentEncoding",
        "contentMediaType",
        "contentSchema",
    }
)
NUMBER_KEYWORDS: Final = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
)
REF_KEYWORDS: Final = ("$ref", "$recursiveRef", "$dynamicRef")

# Keywords that constrain values (as opposed to annotations such as title/description).
ASSERTION_KEYWORDS: Final = (
    OBJECT_KEYWORDS
    | ARRAY_KEYWORDS
    | STRING_KEYWORDS
    | NUMBER_KEYWORDS
    | frozenset(REF_KEYWORDS)
    | frozenset(
        {
            "type",
            "enum",
            "const",
            "allOf",
            "anyOf",
            "oneOf",
            "not",
            "if",
            "then",
            "else",
            "nullable",
        }
    )
)

# Keywords with no effect on validation that we read or drop without comment.
ANNOTATION_KEYWORDS: Final = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "example",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$schema",
        "$id",
        "id",
        "$anchor",
        "$dynamicAnchor",
        "$recursiveAnchor",
        "$vocabulary",
        "$defs",
        "definitions",
        "discriminator",
    }
)

KNOWN_KEYWORDS: Final = ASSERTION_KEYWORDS | ANNOTATION_KEYWORDS

# Subschema positions, for path tracking when schemas are merged.
SUBSCHEMA_KEYS: Final = frozenset(
    {
        "additionalProperties",
        "additionalItems",
        "contains",
        "propertyNames",
        "not",
        "if",
        "then",
        "else",
        "unevaluatedProperties",
        "unevaluatedItems",
        "contentSchema",
    }
)
SUBSCHEMA_MAP_KEYS: Final = frozenset(
    {"properties", "patternProperties", "dependentSchemas", "$defs", "definitions"}
)
SUBSCHEMA_LIST_KEYS: Final = frozenset({"prefixItems", "anyOf", "oneOf", "allOf"})

# Private markers carried on intermediate dicts; never part of any returned schema.
SRC: Final = "\x00src"  # input-side copy: (path, frozen) of where it came from
OPT: Final = "\x00opt"  # output object: names of properties that were optional
SIB: Final = "\x00sib"  # output $ref: annotations that stood beside it
PATH: Final = "\x00path"  # output node: input path, for errors found after compilation
# output node: how its value is turned back into the declared shape (``_restore``):
# ("json", None) a string holding any JSON value; ("entries", None) a map sent as a list of
# {key, value}; ("extra", name) an object whose other keys are entries under ``name``;
# ("tuple", n) a tuple sent as an object with properties "0".."n-1"; ("unwrap", name) a root
# wrapped in an object with one property.
XF: Final = "\x00xf"
#: The two properties of one map entry.
ENTRY_KEY: Final = "key"
ENTRY_VALUE: Final = "value"
#: The one property of a wrapped root.
ROOT_PROPERTY: Final = "value"


def assertions(schema: Schema) -> set[str]:
    """The keywords of ``schema`` that constrain values (none: it accepts anything)."""
    return {k for k in schema if k in ASSERTION_KEYWORDS}


def ref_key(schema: Schema) -> str | None:
    """Which reference keyword ``schema`` uses, if any."""
    for key in REF_KEYWORDS:
        if key in schema:
            return key
    return None


def is_number(value: Any) -> bool:
    """A finite JSON number (booleans are not numbers in JSON Schema)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def normalize_draft4(schema: Schema) -> Schema:
    """Draft 4 wrote ``exclusiveMaximum: true`` next to ``maximum``; later drafts use a number."""
    out = schema
    for bound, flag in (("maximum", "exclusiveMaximum"), ("minimum", "exclusiveMinimum")):
        value = out.get(flag)
        if isinstance(value, bool):
            out = dict(out)
            del out[flag]
            if value and is_number(out.get(bound)):
                out[flag] = out.pop(bound)
    return out


def mark(schema: Any, path: str, frozen: bool) -> Any:
    """Tag a subschema with where it came from before merging moves it elsewhere."""
    if isinstance(schema, dict):
        return {**schema, SRC: (path, frozen)}
    return schema


def unmark(schema: Any, path: str, frozen: bool) -> tuple[Any, str, bool]:
    """The subschema without its :func:`mark`, and the (path, frozen) it reports errors at."""
    if isinstance(schema, dict) and SRC in schema:
        path, frozen = schema[SRC]
        schema = {k: v for k, v in schema.items() if k != SRC}
    return schema, path, frozen


def esc(segment: object) -> str:
    """Escape one JSON-pointer segment."""
    return str(segment).replace("~", "~0").replace("/", "~1")


def unesc(segment: str) -> str:
    return segment.replace("~1", "/").replace("~0", "~")


def child(path: str, *segments: object, frozen: bool = False) -> str:
    """The path of a child node; merged nodes (``frozen``) keep reporting their owner's path."""
    if frozen:
        return path
    for seg in segments:
        path = f"{path}/{esc(seg)}"
    return path


_MISSING: Final = object()


def get_pointer(doc: Any, ptr: str) -> Any:
    """Resolve ``#/a/b`` in ``doc``; returns ``MISSING`` when absent."""
    if ptr in ("#", ""):
        return doc
    node = doc
    for raw in ptr.lstrip("#").split("/")[1:]:
        seg = unesc(raw)
        if isinstance(node, dict):
            if seg not in node:
                return _MISSING
            node = node[seg]
        elif isinstance(node, list):
            if not seg.isdigit() or int(seg) >= len(node):
                return _MISSING
            node = node[int(seg)]
        else:
            return _MISSING
    return node


MISSING: Final = _MISSING


def canon(value: Any) -> str:
    """A comparable dump that ignores private markers."""
    return json.dumps(strip_markers(value), sort_keys=True, separators=(",", ":"), default=str)


def strip_markers(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_markers(v) for k, v in value.items() if not k.startswith("\x00")}
    if isinstance(value, list):
        return [strip_markers(v) for v in value]
    return value


def json_type(value: Any) -> str | None:
    """The JSON type name of a scalar (None for containers)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def short_json(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def copy_json(value: Any) -> Any:
    """Fast deep copy of a JSON tree (dicts, lists, scalars)."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value
