"""``ostruct models``, ``ostruct schema check``, and the help text and docs of ``ostruct run``."""

from __future__ import annotations

import json
import re
from pathlib import Path

from openai_structured.cli import cli
from openai_structured.cli.exit_codes import EXIT_CODE_HELP, ExitCode
from openai_structured.registry import get_registry

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_models_table_lists_every_registry_model(ostruct):
    out = ostruct("models")
    assert out.code == 0
    for caps in get_registry().models():
        assert caps.canonical in out.stdout
    assert "128,000" in out.stdout  # gpt-4o's context window
    assert "$2.5" in out.stdout  # gpt-4o's input price


def test_models_json_has_the_figures(ostruct):
    out = ostruct("models", "--json")
    assert out.code == 0
    records = {r["name"]: r for r in json.loads(out.stdout)}
    # The registry's models, and the embedded local model (marked local).
    assert set(records) == {c.canonical for c in get_registry().models()} | {"gemma-3-270m"}
    assert [r["name"] for r in records.values() if r["local"]] == ["gemma-3-270m"]
    gpt4o = records["gpt-4o"]
    assert gpt4o["context_window"] == 128_000
    assert gpt4o["max_output_tokens"] == 16_384
    assert gpt4o["supports_streaming"] is True
    assert gpt4o["prices_usd_per_1m"]["input"] == 2.5
    assert records["o1"]["supports_streaming"] is False


def test_schema_check_ok_exits_0(ostruct, workdir):
    out = ostruct("schema", "check", "schema.json")
    assert out.code == 0
    assert out.stdout.startswith("OK: schema 'person'")


def test_schema_check_show_prints_the_strict_schema(ostruct, workdir):
    (workdir / "loose.json").write_text(
        json.dumps({"type": "object", "properties": {"a": {"type": "string"}}})
    )
    out = ostruct("schema", "check", "--show", "loose.json")
    assert out.code == 0
    assert "object closed (additionalProperties: false)" in out.stdout
    strict = json.loads(out.stdout.split("strict schema:\n", 1)[1])
    assert strict["additionalProperties"] is False


def test_schema_check_problems_exit_1_with_path_and_fix(ostruct, workdir):
    (workdir / "bad.json").write_text(
        json.dumps(
            {
                "type": "object",
                "properties": {"m": {"$ref": "https://example.com/other.json"}},
                "required": ["m"],
            }
        )
    )
    out = ostruct("schema", "check", "bad.json")
    assert out.code == 1
    assert out.stdout.startswith("FAILED")
    assert "#/properties/m" in out.stdout
    assert "fix:" in out.stdout


def test_schema_check_lists_each_rewrite_as_lossless_or_lossy_and_shows_what_is_sent(
    ostruct, workdir
):
    (workdir / "wide.json").write_text(
        json.dumps(
            {
                "type": "object",
                "properties": {
                    "m": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "n": {"type": "string", "not": {"const": "x"}},
                },
                "required": ["m", "n"],
            }
        )
    )
    out = ostruct("schema", "check", "--show", "wide.json")
    assert out.code == 0, out.stderr
    assert out.stdout.startswith("OK: schema")
    lines = out.stdout.splitlines()
    assert any("lossless" in line and "#/properties/m" in line for line in lines)
    assert any("lossy" in line and "#/properties/n" in line for line in lines)
    strict = json.loads(out.stdout.split("strict schema:\n", 1)[1])
    m = strict["properties"]["m"]
    assert m["type"] == "array"
    assert set(m["items"]["properties"]) == {"key", "value"}
    assert strict["properties"]["n"] == {"type": "string"}


def test_schema_check_unreadable_or_not_json_exits_1(ostruct, workdir):
    (workdir / "broken.json").write_text("{nope")
    out = ostruct("schema", "check", "broken.json")
    assert out.code == 1
    assert "broken.json:1:2" in out.stderr
    out = ostruct("schema", "check", "missing.json")
    assert out.code == 1
    assert "missing.json: file not found" in out.stderr


def test_run_help_lists_every_exit_code(ostruct):
    out = ostruct("run", "--help")
    assert out.code == 0
    for code, label, _ in EXIT_CODE_HELP:
        assert re.search(rf"^\s+{int(code)}\s+{label}\s", out.stdout, re.MULTILINE), label


def _run_options() -> list[str]:
    command = cli.commands["run"]
    names: list[str] = []
    for param in command.params:
        names += [o for o in param.opts if o.startswith("--")]
    return names


def test_docs_describe_every_run_option_and_exit_code():
    text = DOCS.read_text(encoding="utf-8")
    missing = [name for name in _run_options() if f"`{name}" not in text]
    assert missing == [], f"docs/cli.md does not describe {missing}"
    for code, label, _ in EXIT_CODE_HELP:
        assert re.search(rf"^\| {int(code)} \| {label} \|", text, re.MULTILINE), label
    assert [int(c) for c in ExitCode] == [int(c) for c, _, _ in EXIT_CODE_HELP]


def test_version(ostruct):
    out = ostruct("--version")
    assert out.code == 0
    assert out.stdout.startswith("ostruct, version ")
