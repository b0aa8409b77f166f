"""Checks of a schema document as written, before it is compiled or used to validate.

Both run for every profile, strict or not, so a schema that cannot be used fails before any
request: :func:`invalid_keywords` (the metaschema, and text that cannot be sent) and
:func:`outside_references` (a ``$ref`` that would need a fetch: none is ever made).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import jsonschema

from ..errors import SchemaError
from ._keywords import SUBSCHEMA_KEYS, SUBSCHEMA_LIST_KEYS, SUBSCHEMA_MAP_KEYS, Schema, esc
from ._refs import RefIndex, UnresolvedRef, names_with_id
from ._regex import FORMATS, compiles

__all__ = [
    "invalid_keywords",
    "outside_references",
    "schema_nodes",
    "subschemas",
    "validator_class",
]


def outside_references(doc: Any) -> list[SchemaError]:
    """A ``SchemaError`` for each ``$ref`` that points outside ``doc`` (such references are
    never fetched: no network, no files, so the schema cannot be used as written) or at nothing
    in it. Only schema positions are searched: a ``$ref`` inside ``examples``, ``default``,
    ``enum`` or an unknown keyword is data, and no validator follows it."""
    ids: set[str] = set()
    refs: list[tuple[str, str, str, str]] = []  # (pointer, keyword, reference, base URI there)
    for node, ptr, base, named in schema_nodes(doc):
        if named is not None:
            ids.update((named.split("#", 1)[0], base.split("#", 1)[0]))
        for keyword in ("$ref", "$dynamicRef"):
            value = node.get(keyword)
            if isinstance(value, str):
                refs.append((ptr, keyword, value, base))
    errors = []
    index = None
    for ptr, keyword, ref, base in refs:
        target = ref.split("#", 1)[0]
        if not target or target in ids or (base and urljoin(base, target) in ids):
            if keyword == "$dynamicRef":
                continue  # resolved at run time through the dynamic scope, not by pointer
            # inside this document: it must point at something, even in a part that is only
            # checked after the answer (not, if, contains...)
            index = index or RefIndex(doc)
            try:
                index.resolve(ref, ptr)
            except UnresolvedRef as exc:
                errors.append(SchemaError(exc.reason, path=ptr, fix=exc.fix))
            continue
        errors.append(
            SchemaError(
                f"$ref {ref!r} points outside this schema; references are never fetched "
                "(no network, no files)",
                path=ptr,
                fix="inline the referenced schema under $defs and refer to it as #/$defs/...",
            )
        )
    return errors


def schema_nodes(doc: Any, base: str = "") -> Iterator[tuple[Schema, str, str, str | None]]:
    """Every schema object of ``doc`` (schema positions only, see :func:`subschemas`): the
    node, its pointer, the base URI in force there, and the resource URI the node names
    itself (``$id``; ``id`` at the root and in drafts 3 and 4), else None."""
    stack: list[tuple[Any, str, str, bool]] = [(doc, "#", base, False)]
    while stack:
        node, ptr, here, old = stack.pop()
        if not isinstance(node, dict):
            continue
        old = names_with_id(node, old)
        own = node.get("$id", node.get("id") if old or ptr == "#" else None)
        named = own if isinstance(own, str) and not own.startswith("#") else None
        if named is not None:
            here = urljoin(here, named) if here else named
        yield node, ptr, here, named
        for key, value in node.items():
            stack.extend(
                (sub, at, here, old) for sub, at in subschemas(key, value, f"{ptr}/{esc(key)}")
            )


def subschemas(key: str, value: Any, ptr: str) -> list[tuple[Any, str]]:
    """The schemas held by keyword ``key`` (every draft's applicators), with their pointers."""
    if key in SUBSCHEMA_KEYS or (key == "items" and isinstance(value, dict)):
        return [(value, ptr)]
    if (key in SUBSCHEMA_LIST_KEYS or key in ("items", "extends")) and isinstance(value, list):
        return [(v, f"{ptr}/{i}") for i, v in enumerate(value)]
    if (key in SUBSCHEMA_MAP_KEYS or key == "dependencies") and isinstance(value, dict):
        return [(v, f"{ptr}/{esc(k)}") for k, v in value.items()]
    if key == "extends" and isinstance(value, dict):
        return [(value, ptr)]
    return []


#: Without ``$schema``, a schema valid under one of these drafts is taken as written for it.
_OLDER_DRAFTS = (
    jsonschema.Draft201909Validator,
    jsonschema.Draft7Validator,
    jsonschema.Draft6Validator,
    jsonschema.Draft4Validator,
    jsonschema.Draft3Validator,
)


def _valid_under(cls: Any, doc: Any) -> bool:
    try:
        cls.check_schema(doc, format_checker=FORMATS)
    except jsonschema.SchemaError:
        return False
    return True


#: Keywords only drafts 4-7 have; their 2019-09 replacements. A document without ``$schema``
#: that uses the first and none of the second is read as draft 7.
_DRAFT7_ONLY = frozenset({"dependencies", "additionalItems"})
_DRAFT2019_ONLY = frozenset(
    {"$defs", "dependentSchemas", "dependentRequired", "prefixItems", "unevaluatedProperties",
     "unevaluatedItems", "$anchor", "$dynamicRef", "$recursiveRef"}
)  # fmt: skip


def _keywords_used(doc: Any) -> set[str]:
    return {k for node, _, _, _ in schema_nodes(doc) for k in node if isinstance(k, str)}


def validator_class(doc: Any) -> Any:
    """The ``jsonschema`` validator class for ``doc``: the draft its ``$schema`` names; without
    one, 2020-12 unless only an older draft's metaschema accepts the document (boolean
    ``exclusiveMaximum``, tuple ``items: [...]``, ``type: "any"``...) or it uses draft 7's
    ``dependencies`` and nothing newer (2020-12 would ignore them)."""
    cls = jsonschema.validators.validator_for(doc, default=jsonschema.Draft202012Validator)
    if not isinstance(doc, dict) or "$schema" in doc:
        return cls
    if not _valid_under(cls, doc):
        for old in _OLDER_DRAFTS:
            if _valid_under(old, doc):
                return old
        return cls
    used = _keywords_used(doc)
    draft7 = used & _DRAFT7_ONLY and not used & _DRAFT2019_ONLY
    if draft7 and _valid_under(jsonschema.Draft7Validator, doc):
        return jsonschema.Draft7Validator
    return cls


def invalid_keywords(doc: Any) -> list[SchemaError]:
    """The schema checked against its metaschema (the draft its ``$schema`` names, else
    2020-12) and for text that cannot be sent: a keyword with an invalid value (``pattern:
    "(["``, ``required: "a"``, ``minimum: "x"``) is a SchemaError here, before any request,
    not a ``jsonschema`` exception when the answer is validated."""
    try:
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        return [
            SchemaError(
                f"the schema holds text that is not valid Unicode ({exc.reason}: a lone "
                "surrogate such as '\\ud800')",
                fix="remove or replace that character",
            )
        ]
    except (ValueError, RecursionError):
        return [SchemaError("the schema is nested too deeply to process", fix="flatten it")]
    if not isinstance(doc, dict):
        return []
    cls: Any = jsonschema.validators.validator_for(doc, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(doc, format_checker=FORMATS)
    except jsonschema.SchemaError as exc:
        if "$schema" not in doc and any(_valid_under(old, doc) for old in _OLDER_DRAFTS):
            # written for an older draft (boolean exclusiveMaximum, type: any...), whose
            # metaschema does not check regular expressions: they must still compile
            return _bad_patterns(doc)
        where = "#" + "".join("/" + esc(p) for p in exc.absolute_path)
        keyword = str(exc.absolute_path[-1]) if exc.absolute_path else ""
        return [
            SchemaError(
                f"not a valid JSON Schema: {exc.message}",
                path=where,
                fix=f"correct the value of {keyword!r} (see the JSON Schema specification)"
                if keyword
                else "correct the schema (see the JSON Schema specification)",
            )
        ]
    except RecursionError:
        return [SchemaError("the schema is nested too deeply to process", fix="flatten it")]
    return []


def _bad_patterns(doc: Any) -> list[SchemaError]:
    """Regular expressions (``pattern`` values, ``patternProperties`` keys) that neither
    ``re`` nor ``regex`` compiles: the answer could not be checked against them."""
    stack: list[tuple[Any, str]] = [(doc, "#")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, list):
            stack.extend((v, f"{where}/{i}") for i, v in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        found = []
        if isinstance(node.get("pattern"), str):
            found.append((node["pattern"], f"{where}/pattern"))
        if isinstance(node.get("patternProperties"), dict):
            found.extend((k, f"{where}/patternProperties") for k in node["patternProperties"])
        for pattern, at in found:
            if not compiles(pattern):
                return [
                    SchemaError(
                        f"not a valid JSON Schema: {pattern!r} is not a regular expression",
                        path=at,
                        fix="correct the regular expression",
                    )
                ]
        stack.extend((v, f"{where}/{esc(k)}") for k, v in node.items())
    return []
