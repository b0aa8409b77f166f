"""Schemas split over several documents: ``bundle()`` embeds the ones the caller hands over.

Nothing is fetched or read for a ``$ref``; without the document a remote reference stays a
``SchemaError`` naming it. With it, the bundled schema compiles, the answer comes back through
the loopback server, and the referenced document's constraints are checked after the answer.
"""

from __future__ import annotations

from typing import Any

import pytest

from openai_structured import ValidationError, openai_structured_call
from openai_structured.errors import SchemaError
from openai_structured.schema import bundle, check_schema, compile_schema
from openai_structured.testing import FakeOpenAIServer, Reply

COMMON: dict[str, Any] = {
    "$id": "https://example.com/schemas/common.json",
    "definitions": {
        "name": {"type": "string", "minLength": 2},
        "address": {
            "type": "object",
            "properties": {"city": {"$ref": "#/definitions/name"}, "zip": {"$ref": "zip.json"}},
            "required": ["city", "zip"],
        },
    },
}
ZIP: dict[str, Any] = {"type": "string", "pattern": "^[0-9]{5}$"}
PERSON: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "name": {"$ref": "common.json#/definitions/name"},
        "home": {"$ref": "https://example.com/schemas/common.json#/definitions/address"},
    },
    "required": ["name", "home"],
}
DOCS = {
    "https://example.com/schemas/common.json": COMMON,
    "https://example.com/schemas/zip.json": ZIP,
}
BASE = "https://example.com/schemas/person.json"


def test_a_remote_reference_without_its_document_is_a_schema_error_naming_it() -> None:
    with pytest.raises(SchemaError) as info:
        compile_schema(PERSON)
    assert "common.json#/definitions/name" in str(info.value)
    assert info.value.path == "#/properties/name"
    # a document that is not handed over is not looked for either
    report = check_schema(bundle(PERSON, {}, base_uri=BASE))
    assert not report.ok and "points outside this schema" in report.errors[0].reason


def test_bundle_embeds_every_document_reached_transitively_and_leaves_the_input_alone() -> None:
    before = repr(PERSON)
    bundled = bundle(PERSON, DOCS, base_uri=BASE)
    assert repr(PERSON) == before
    embedded = bundled["definitions"]  # draft 7: resources live under definitions
    assert sorted(part["$id"] for part in embedded.values()) == sorted(DOCS)
    assert bundled["$id"] == BASE
    # the same document referred to twice is embedded once; the references are as written
    assert bundled["properties"]["name"] == {"$ref": "common.json#/definitions/name"}
    report = check_schema(bundled)
    assert report.ok, report.errors


def test_documents_are_found_by_their_own_id_too() -> None:
    by_location = {"file:///elsewhere/common.json": COMMON, "file:///elsewhere/zip.json": ZIP}
    # zip.json is resolved against common.json's $id, so only the location-keyed copy of ZIP
    # under that URI can serve it: hand it over under its $id-relative URI
    report = check_schema(bundle(PERSON, by_location, base_uri=BASE))
    assert not report.ok and "zip.json" in report.errors[0].reason
    found = check_schema(bundle(PERSON, {**by_location, DOCS_ZIP: ZIP}, base_uri=BASE))
    assert found.ok, found.errors


DOCS_ZIP = "https://example.com/schemas/zip.json"


def test_a_document_that_is_not_a_schema_object_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="not a JSON Schema object"):
        bundle(PERSON, {**DOCS, DOCS_ZIP: ["not", "a", "schema"]}, base_uri=BASE)
    with pytest.raises(TypeError):
        bundle(["x"], DOCS)  # type: ignore[arg-type]


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_a_bundled_schema_round_trips_and_checks_the_embedded_constraints(api: str) -> None:
    schema = bundle(PERSON, DOCS, base_uri=BASE)
    good = {"name": "Ada", "home": {"city": "Paris", "zip": "75001"}}
    bad = {"name": "A", "home": {"city": "Paris", "zip": "7500"}}
    with FakeOpenAIServer() as server:
        server.queue(Reply.json(good), Reply.json(bad))
        kwargs: dict[str, Any] = {
            "client": server.client(),
            "model": "gpt-4o",
            "schema": schema,
            "user_prompt": "Who?",
            "api": api,
        }
        assert openai_structured_call(**kwargs) == good
        sent = server.requests[0].json
        refs, stack = [], [sent]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                refs += [v for k, v in node.items() if k == "$ref"]
                stack += node.values()
            elif isinstance(node, list):
                stack += node
        assert refs and all(r.startswith("#/") for r in refs)  # the sent schema stands alone
        with pytest.raises(ValidationError) as info:
            openai_structured_call(**kwargs)
    paths = sorted((e["path"], e["type"]) for e in info.value.errors())
    # zip's pattern is sent (strict mode enforces it); minLength is checked after the answer
    assert paths == [("home.zip", "pattern"), ("name", "minLength")]
