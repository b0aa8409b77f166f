"""Regular expressions as JSON Schema writes them (ECMAScript), checked with Python.

Python's ``re`` lacks Unicode property classes (``\\p{L}``, ``\\P{C}``) that ECMAScript and
most schema validators accept, and that CloudFormation, AWS and many OpenAPI documents use.
A pattern ``re`` compiles is sent as it is; one only the ``regex`` module compiles is kept out
of what is sent (a hint in the description) and checked after the answer with ``regex``; one
neither compiles is an invalid schema. ``jsonschema`` itself calls ``re``, so the validators
here replace its three keywords that read patterns.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import jsonschema
import regex

__all__ = ["FORMATS", "compiles", "regex_aware", "search", "sendable"]


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    try:
        return re.compile(pattern)
    except re.error:
        return regex.compile(pattern)  # raises regex.error when neither accepts it


def sendable(pattern: str) -> bool:
    """Whether ``pattern`` may be sent as it is: Python's ``re`` reads it."""
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def compiles(pattern: str) -> bool:
    """Whether ``pattern`` is a regular expression at all (``re`` or ``regex``)."""
    try:
        _compiled(pattern)
    except (re.error, regex.error):
        return False
    return True


def search(pattern: str, text: str) -> bool:
    """``re.search``, with ``regex`` for what ``re`` cannot read (the pattern must compile)."""
    return _compiled(pattern).search(text) is not None


#: The ``regex`` format as schema checks need it: ECMAScript classes such as ``\\p{L}`` count.
FORMATS = jsonschema.FormatChecker()
FORMATS.checks("regex")(lambda value: not isinstance(value, str) or compiles(value))


def _pattern(validator: Any, patrn: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not search(patrn, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for patrn, subschema in patterns.items():
        for key, value in instance.items():
            if search(patrn, key):
                yield from validator.descend(value, subschema, path=key, schema_path=patrn)


def _additional_properties(validator: Any, extra: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    declared = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [
        key for key in instance if key not in declared and not any(search(p, key) for p in patterns)
    ]
    if validator.is_type(extra, "object"):
        for key in extras:
            yield from validator.descend(instance[key], extra, path=key)
    elif extra is False and extras:
        names = ", ".join(repr(key) for key in sorted(extras))
        if patterns:
            listed = ", ".join(repr(p) for p in sorted(patterns))
            yield jsonschema.ValidationError(f"{names} do not match any of the regexes: {listed}")
        else:
            yield jsonschema.ValidationError(
                f"Additional properties are not allowed ({names} unexpected)"
            )


_KEYWORDS = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}


@lru_cache(maxsize=16)
def regex_aware(cls: Any) -> Any:
    """``cls`` (a ``jsonschema`` validator class) reading patterns with :func:`search`."""
    return jsonschema.validators.extend(cls, _KEYWORDS)  # type: ignore[no-untyped-call]
