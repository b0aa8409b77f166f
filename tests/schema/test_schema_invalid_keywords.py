"""A schema whose keywords have invalid values is a SchemaError from the compiler (strict or
not) and from ``ostruct schema check``, pointing at the keyword (issue 10), not a jsonschema
exception when the answer arrives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from openai_structured import SchemaError
from openai_structured.schema import check_schema, compile_schema


def _person(**name: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"type": "string", **name}},
        "required": ["name"],
        "additionalProperties": False,
    }


CASES = [
    (_person(pattern="(["), "#/properties/name/pattern", "regex"),
    ({**_person(), "required": "name"}, "#/required", "array"),
    (_person(minLength="x"), "#/properties/name/minLength", "integer"),
    (
        {
            **_person(items=[{"type": "string"}]),
            "$schema": "https://json-schema.org/draft/2020-12/schema",
        },
        "#/properties/name/items",
        "object",
    ),
]


@pytest.mark.parametrize(("schema", "path", "why"), CASES)
@pytest.mark.parametrize("strict", [True, False])
def test_an_invalid_keyword_value_is_a_schema_error_at_its_path(
    schema: dict[str, Any], path: str, why: str, strict: bool
) -> None:
    with pytest.raises(SchemaError) as info:
        compile_schema(schema, strict=strict)
    assert info.value.path == path
    assert why in info.value.reason
    assert "not a valid JSON Schema" in info.value.reason


def test_a_lone_surrogate_is_a_schema_error() -> None:
    schema = {**_person(), "properties": {"\ud800": {"type": "string"}}, "required": ["\ud800"]}
    with pytest.raises(SchemaError, match="not valid Unicode"):
        compile_schema(schema)


def test_schemas_written_for_older_drafts_are_still_accepted() -> None:
    draft4 = {**_person(), "properties": {"n": {"type": "number", "maximum": 5,
              "exclusiveMaximum": True}}, "required": ["n"]}  # fmt: skip
    assert compile_schema(draft4).schema["properties"]["n"]["type"] == "number"


@pytest.mark.parametrize(("schema", "path", "why"), CASES[:2])
def test_schema_check_reports_it_and_exits_1(
    tmp_path: Path, schema: dict[str, Any], path: str, why: str
) -> None:
    report = check_schema(schema)
    assert not report.ok
    (tmp_path / "s.json").write_text(json.dumps(schema))
    out = subprocess.run(
        [sys.executable, "-m", "openai_structured.cli", "schema", "check", "s.json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert path in out.stdout + out.stderr
    assert "Traceback" not in out.stderr
