"""``ostruct run --dry-run``: renders, checks, counts and prices the request with no network."""

from __future__ import annotations

import socket

import pytest
from cli_support import ADA

from openai_structured.testing import FakeOpenAIServer, Reply
from openai_structured.tokens import count_message_tokens, estimate_cost


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Any attempt to open a connection fails the test (and is recorded)."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise AssertionError(f"dry run tried to connect to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def _fm_template(workdir):
    (workdir / "t.j2").write_text(
        "---\nsystem_prompt: You extract people.\n---\nWho is {{ who }}?\n", encoding="utf-8"
    )
    return "t.j2"


def test_dry_run_prints_prompts_schema_tokens_and_cost_offline(ostruct, workdir, no_network):
    template = _fm_template(workdir)
    out = ostruct("run", template, "schema.json", "-V", "who=Ada", "--model", "gpt-4o",
                  "--temperature", "0.2", "--max-output-tokens", "500", "--dry-run")  # fmt: skip
    assert out.code == 0, out.stderr
    assert no_network == []
    text = out.stdout
    assert "nothing was sent" in text
    assert "--- system prompt ---\nYou extract people.\n" in text
    assert "--- user prompt ---\nWho is Ada?\n" in text
    assert '"additionalProperties": false' in text
    assert "temperature=0.2" in text
    assert "max_completion_tokens=500" in text  # what gpt-4o's chat API takes
    # The count is the real tokenizer's, with chat framing.
    messages = [
        {"role": "system", "content": "You extract people."},
        {"role": "user", "content": "Who is Ada?\n"},
    ]
    tokens = count_message_tokens(messages, "gpt-4o")
    assert f"prompt tokens: {tokens:,} (o200k_base" in text
    assert "limits: ok" in text
    cost = estimate_cost("gpt-4o", tokens, 500)
    assert cost is not None
    assert "output at most $0.005 (500 tokens, --max-output-tokens)" in text
    assert out.stderr == ""


def test_dry_run_needs_no_server_and_no_key(ostruct_process, workdir, tmp_path):
    out = ostruct_process(
        "run", "prompt.j2", "schema.json", "-V", "who=Ada", "--dry-run", "--model", "gpt-4o",
        cwd=workdir, env={"OPENAI_API_KEY": "", "OPENAI_STRUCTURED_LOCAL": "0"},
    )  # fmt: skip
    assert out.code == 0, out.stderr
    assert "no server configured" in out.stdout
    assert "prompt tokens: " in out.stdout and "unavailable" not in out.stdout


def test_dry_run_sends_nothing_to_a_running_server(ostruct, workdir):
    with FakeOpenAIServer(default_reply=Reply.json(ADA)) as server:
        out = ostruct("run", "prompt.j2", "schema.json", "-V", "who=Ada", "--dry-run",
                      "--base-url", server.base_url, "--stream")  # fmt: skip
        assert out.code == 0, out.stderr
        assert server.requests == []
    assert "(profile compatible)" in out.stdout
    assert "stream=" not in out.stdout  # transport fields are not parameters
    assert "api:     chat (stream)" in out.stdout


def test_unknown_model_has_no_token_count_rather_than_a_guess(ostruct, workdir, no_network):
    out = ostruct("run", "prompt.j2", "schema.json", "-V", "who=Ada", "--dry-run",
                  "--model", "my-local-model", "--base-url", "http://127.0.0.1:9/v1")  # fmt: skip
    assert out.code == 0, out.stderr
    assert "prompt tokens: unavailable" in out.stdout
    assert "cost: unknown" in out.stdout


def test_dry_run_runs_the_same_preflight_checks(ostruct, workdir, no_network):
    base = ["run", "prompt.j2", "schema.json", "-V", "who=Ada", "--dry-run"]
    # OPENAI_API_KEY is set: the OpenAI profile applies the registry.
    assert ostruct(*base, "--model", "unknown-model").code == 5
    assert ostruct(*base, "--model", "o1", "--temperature", "0.5").code == 5
    assert ostruct(*base, "--model", "gpt-4o", "--max-output-tokens", "999999").code == 8
    (workdir / "bad.json").write_text(
        '{"type": "object", "properties": {"a": false}, "required": ["a"]}'
    )
    bad = ostruct("run", "prompt.j2", "bad.json", "-V", "who=Ada", "--dry-run")
    assert bad.code == 4


def test_prompt_over_the_context_window_is_a_token_limit_error(ostruct, workdir, no_network):
    (workdir / "big.txt").write_text("word " * 140_000)
    out = ostruct("run", "big.j2", "schema.json", "-f", "big=big.txt", "--max-file-size", "2M",
                  "--model", "gpt-4o", "--dry-run")  # fmt: skip
    assert out.code == 3  # big.j2 does not exist yet: input error first
    (workdir / "big.j2").write_text("{{ big.content }}")
    out = ostruct("run", "big.j2", "schema.json", "-f", "big=big.txt", "--max-file-size", "2M",
                  "--model", "gpt-4o", "--dry-run")  # fmt: skip
    assert out.code == 8
    assert "context window" in out.stderr


def test_dry_run_with_the_responses_api_and_a_profile(ostruct, workdir, no_network):
    out = ostruct("run", "prompt.j2", "schema.json", "-V", "who=Ada", "--dry-run",
                  "--api", "responses", "--reasoning-effort", "low", "--model", "o3-mini",
                  "--server", "openai", "--base-url", "http://127.0.0.1:9/v1")  # fmt: skip
    assert out.code == 0, out.stderr
    assert "from --server" in out.stdout
    assert 'reasoning={"effort": "low"}' in out.stdout
    assert "schema as sent (text, strict)" in out.stdout
    assert "prompt tokens: " in out.stdout
