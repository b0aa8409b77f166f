"""Every successful compilation made by these tests is checked against OpenAI's strict rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from schema_checker import assert_openai_strict

import openai_structured.schema as schema_module


@pytest.fixture(autouse=True, scope="session")
def _check_every_compilation() -> Iterator[None]:
    original = schema_module._compile_document

    def checked(doc: Any, name: str, strict: bool) -> Any:
        outcome = original(doc, name, strict)
        if strict and outcome.compiled is not None:
            assert_openai_strict(outcome.compiled.schema)
        for err in outcome.errors:
            assert "internal" not in err.reason
        return outcome

    schema_module._compile_document = checked
    schema_module._by_key.clear()
    schema_module._by_type.clear()
    schema_module._by_annotation.clear()
    try:
        yield
    finally:
        schema_module._compile_document = original
