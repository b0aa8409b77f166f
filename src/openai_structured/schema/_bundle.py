"""Schemas split over several documents, made into one before they are compiled.

Nothing is ever fetched or read for a ``$ref`` (SPEC §4): the caller hands over the documents
it has (the files next to a schema, the ones a package ships) and :func:`bundle` embeds each
one the schema reaches, transitively, under ``$defs`` with its URI as ``$id`` (JSON Schema
2020-12's compound documents). The references themselves are left as written: they now
resolve inside the one document, for the compiler and for the after-answer check alike.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urldefrag, urljoin

import jsonschema

from ..errors import SchemaError
from ._checks import schema_nodes, validator_class

__all__ = ["bundle"]

_DEFINITIONS_DRAFTS = (
    jsonschema.Draft3Validator,
    jsonschema.Draft4Validator,
    jsonschema.Draft6Validator,
    jsonschema.Draft7Validator,
)

#: Where embedded documents go; distinct from any ``$defs`` name people write.
BUNDLED_PREFIX = "bundled:"


def _key(uri: str) -> str:
    return urldefrag(uri)[0]


def _references(doc: Any, base: str) -> list[str]:
    """The documents ``doc`` (whose URI is ``base``) refers to, as absolute URIs, in order."""
    found: dict[str, None] = {}
    for node, _, here, _ in schema_nodes(doc, base):
        for keyword in ("$ref", "$dynamicRef"):
            value = node.get(keyword)
            if isinstance(value, str):
                target = _key(urljoin(here, value) if here else value)
                if target and target != _key(here):
                    found.setdefault(target, None)
    return list(found)


def _ids(doc: Any, base: str) -> set[str]:
    """The URIs of the resources inside ``doc`` (its own and every nested one)."""
    out = {_key(base)} if base else set()
    out.update(_key(here) for _, _, here, named in schema_nodes(doc, base) if named is not None)
    return out


def bundle(
    schema: Mapping[str, Any],
    documents: Mapping[str, Any],
    *,
    base_uri: str | None = None,
) -> dict[str, Any]:
    """``schema`` with every document of ``documents`` it refers to embedded (a fresh copy).

    ``documents`` maps absolute URIs (``https://example.com/common.json``,
    ``file:///schemas/base.json``) to schemas; a document is also found by its own ``$id``.
    ``base_uri`` is the schema's own URI when it has no ``$id``, so that relative references
    (``"base.json#/definitions/path"``) resolve as they would next to the file. A reference
    to a document that is neither in ``schema`` nor in ``documents`` is left alone: compiling
    the result raises the ``SchemaError`` that names it.
    """
    if not isinstance(schema, Mapping):
        raise TypeError(f"bundle() takes a JSON Schema object, not {type(schema).__name__}")
    by_uri: dict[str, Any] = {}
    for uri, doc in documents.items():
        by_uri.setdefault(_key(uri), (uri, doc))
        own = doc.get("$id", doc.get("id")) if isinstance(doc, Mapping) else None
        if isinstance(own, str) and own and not own.startswith("#"):
            by_uri.setdefault(_key(urljoin(uri, own)), (uri, doc))
    out = copy.deepcopy(dict(schema))
    dialect = validator_class(out)
    old_draft = dialect in _DEFINITIONS_DRAFTS
    id_draft = dialect in (jsonschema.Draft3Validator, jsonschema.Draft4Validator)
    own = out.get("$id", out.get("id"))
    base: str = base_uri or ""
    if isinstance(own, str) and not own.startswith("#"):
        base = urljoin(base, own) if base else own
    elif base:  # relative references resolve against it
        out["$id"] = base
        if id_draft:
            out["id"] = base
    have = _ids(out, base)
    pending = _references(out, base)
    embedded: dict[str, Any] = {}
    while pending:
        uri = pending.pop(0)
        if uri in have or uri not in by_uri:
            continue
        _, doc = by_uri[uri]
        if not isinstance(doc, Mapping):
            raise SchemaError(
                f"the document given for {uri!r} is not a JSON Schema object",
                fix="pass the parsed schema (a dict) for each URI",
            )
        part = copy.deepcopy(dict(doc))
        part["$id"] = uri
        if id_draft or "id" in part:
            part["id"] = uri  # drafts 3 and 4 name a resource with id
        embedded[uri] = part
        have |= _ids(part, uri)
        pending += _references(part, uri)
    if embedded:
        # drafts before 2019-09 only look for resources under definitions
        where = "definitions" if old_draft else "$defs"
        defs = out.setdefault(where, {})
        if not isinstance(defs, dict):
            raise SchemaError(f"{where} is not an object", path=f"#/{where}", fix="make it one")
        for uri, part in embedded.items():
            name = BUNDLED_PREFIX + re.sub(r"[^A-Za-z0-9_.:/-]", "_", uri)
            while name in defs:
                name += "_"
            defs[name] = part
    return out
