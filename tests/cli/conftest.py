"""Fixtures for the ``ostruct`` CLI tests.

Most tests call the click command in-process (``CliRunner``: fast) against the loopback fake
server; a representative set runs the real entry point in a subprocess. Every invocation
checks that the canary API key from the environment never reaches stdout or stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import CANARY, PERSON_SCHEMA, Outcome
from click.testing import CliRunner

from openai_structured.cli import cli
from openai_structured.testing import FakeOpenAIServer

# Environment variables that would make a run pick a real provider or the embedded model.
_PROVIDER_VARS = (
    "OPENAI_BASE_URL",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_AD_TOKEN",
    "OPENAI_STRUCTURED_SERVER",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "local: end-to-end test against the embedded model (needs the [local] extra)"
    )


@pytest.fixture(scope="session")
def _server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def server(_server: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    _server.reset()
    _server.default_reply = None
    yield _server
    assert not _server.errors, _server.errors


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A canary key, no other provider, and the embedded model switched off."""
    for name in _PROVIDER_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    monkeypatch.setenv("OPENAI_STRUCTURED_LOCAL", "0")
    monkeypatch.setenv("COLUMNS", "160")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with ``prompt.j2`` and ``schema.json``; the cwd during the test."""
    (tmp_path / "prompt.j2").write_text("Who is {{ who }}?\n", encoding="utf-8")
    (tmp_path / "schema.json").write_text(json.dumps(PERSON_SCHEMA), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _check_no_canary(outcome: Outcome) -> Outcome:
    assert CANARY not in outcome.stdout, outcome.stdout
    assert CANARY not in outcome.stderr, outcome.stderr
    # Nor any recognisable piece of it.
    assert "CANARY0123" not in outcome.stdout + outcome.stderr
    return outcome


@pytest.fixture
def ostruct() -> Any:
    """Invoke the CLI in-process: ``ostruct("run", "prompt.j2", ..., input="piped")``."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Outcome:
        result = runner.invoke(cli, list(args), input=input, catch_exceptions=False)
        return _check_no_canary(Outcome(result.exit_code, result.stdout, result.stderr))

    return invoke


@pytest.fixture
def ostruct_process() -> Any:
    """Run the real entry point (``python -m openai_structured.cli``) in a subprocess."""

    def run(
        *args: str,
        cwd: Path,
        input: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> Outcome:
        environment = {k: v for k, v in os.environ.items() if k not in _PROVIDER_VARS}
        environment.update(env or {})
        proc = subprocess.run(
            [sys.executable, "-m", "openai_structured.cli", *args],
            cwd=cwd,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=environment,
            timeout=timeout,
        )
        return _check_no_canary(Outcome(proc.returncode, proc.stdout, proc.stderr))

    return run
