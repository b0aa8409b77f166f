"""Real-world schemas: every one compiles to a strict schema or fails with a pointing error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from schema_checker import assert_openai_strict, pointer_exists

from openai_structured.schema import check_schema, compile_schema, to_strict_schema

CORPUS = sorted((Path(__file__).parent / "corpus" / "schemastore").glob("*.json"))


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_corpus_schema_compiles_or_fails_at_an_existing_path(path: Path) -> None:
    doc = _load(path)
    report = check_schema(doc)
    if report.ok:
        assert report.schema is not None
        assert_openai_strict(report.schema)
        # compiling the output again reaches a fixed point (the first round may still flatten
        # an alias definition or a nested anyOf that inlining produced)
        again = to_strict_schema(report.schema)
        assert to_strict_schema(again) == again
    else:
        for err in report.errors:
            assert pointer_exists(doc, err.path), (err.path, err.reason)
            assert err.fix


def test_corpus_summary(capsys: pytest.CaptureFixture[str]) -> None:
    compiled = sum(check_schema(_load(p)).ok for p in CORPUS)
    with capsys.disabled():
        print(
            f"\nschema corpus: {len(CORPUS)} schemas, {compiled} compiled, "
            f"{len(CORPUS) - compiled} raised SchemaError"
        )
    assert len(CORPUS) >= 250
    assert compiled >= 60  # a regression guard, measured: 73


# Schemas shaped like the examples in OpenAI's Structured Outputs guide: already strict, so the
# compiler must return them unchanged.
ALREADY_STRICT: list[dict[str, Any]] = [
    {
        "type": "object",
        "properties": {
            "handle": {"type": "string", "description": "starts with @", "pattern": "^@[a-z]+$"},
            "mail": {"type": "string", "format": "email"},
        },
        "required": ["handle", "mail"],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "properties": {
            "place": {"type": "string"},
            "unit": {"anyOf": [{"type": "string", "enum": ["F", "C"]}, {"type": "null"}]},
            "reading": {"type": "number", "minimum": -130, "maximum": 130},
        },
        "required": ["place", "unit", "reading"],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": ["div", "button", "form"]},
            "label": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#"}},
        },
        "required": ["kind", "label", "children"],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "properties": {"head": {"$ref": "#/$defs/node"}},
        "required": ["head"],
        "additionalProperties": False,
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "value": {"type": "number"},
                    "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]},
                },
                "required": ["value", "next"],
                "additionalProperties": False,
            }
        },
    },
    {
        "type": "object",
        "properties": {
            "steps": {"type": "array", "items": {"$ref": "#/$defs/step"}, "minItems": 1},
            "answer": {"type": "string"},
        },
        "required": ["steps", "answer"],
        "additionalProperties": False,
        "$defs": {
            "step": {
                "type": "object",
                "properties": {"why": {"type": "string"}, "out": {"type": "string"}},
                "required": ["why", "out"],
                "additionalProperties": False,
            }
        },
    },
]


@pytest.mark.parametrize(
    "schema", ALREADY_STRICT, ids=["string", "number", "root-recursion", "linked-list", "defs"]
)
def test_openai_guide_style_schemas_pass_through_unchanged(schema: dict[str, Any]) -> None:
    compiled = compile_schema(schema)
    assert compiled.schema == schema
    assert compiled.changes == ()
