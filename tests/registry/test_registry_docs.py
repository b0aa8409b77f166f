"""docs/models.md carries the table generated from the data file; keep them in sync."""

from __future__ import annotations

from pathlib import Path

from openai_structured.registry._doc import render_models_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"


def test_models_doc_table_matches_the_data_file() -> None:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("<!-- models-table -->\n") + len("<!-- models-table -->\n")
    end = text.index("<!-- /models-table -->")
    assert text[start:end] == render_models_table(), (
        "docs/models.md is out of date: regenerate the table with "
        "`python -m openai_structured.registry`"
    )
