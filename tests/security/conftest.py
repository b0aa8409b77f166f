"""Fixtures for the redaction tests: the loopback server, sync and async calls and streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from security_support import CANARY_KEY, PERSON_SCHEMA, Call, CliOutcome, Recorder

from openai_structured import (
    async_openai_structured_call,
    async_openai_structured_events,
    openai_structured_call,
    openai_structured_events,
)
from openai_structured.cli import cli
from openai_structured.testing import FakeOpenAIServer


@pytest.fixture(scope="module")
def _server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def server(_server: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    _server.reset()
    yield _server
    assert not _server.errors, _server.errors


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["chat", "responses"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["call", "stream"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def call(server: FakeOpenAIServer, mode: str, api: str, kind: str) -> Call:
    """``call(**kwargs)``: one structured call (or a whole stream, whose final result is
    returned) through the loopback server, in this mode, API and kind."""

    def sync_call(**kwargs: Any) -> Any:
        kwargs.setdefault("api", api)
        kwargs.setdefault("model", "gpt-4o")
        client = server.client(api_key=CANARY_KEY)
        if kind == "call":
            return openai_structured_call(client=client, **kwargs)
        with openai_structured_events(client=client, **kwargs) as events:
            return [event for event in events][-1].result

    def async_call(**kwargs: Any) -> Any:
        kwargs.setdefault("api", api)
        kwargs.setdefault("model", "gpt-4o")

        async def run() -> Any:
            async with server.async_client(api_key=CANARY_KEY) as client:
                if kind == "call":
                    return await async_openai_structured_call(client=client, **kwargs)
                async with async_openai_structured_events(client=client, **kwargs) as events:
                    return [event async for event in events][-1].result

        return asyncio.run(run())

    return sync_call if mode == "sync" else async_call


# --- the CLI ------------------------------------------------------------------------------------

# Environment variables that would make a run pick a real provider or the embedded model.
_PROVIDER_VARS = (
    "OPENAI_BASE_URL",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_AD_TOKEN",
    "OPENAI_STRUCTURED_SERVER",
)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The canary key, no other provider, the embedded model off."""
    for name in _PROVIDER_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    monkeypatch.setenv("OPENAI_STRUCTURED_LOCAL", "0")
    monkeypatch.setenv("COLUMNS", "160")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_env: None) -> Path:
    """A working directory with ``prompt.j2`` and ``schema.json``; the cwd during the test."""
    (tmp_path / "prompt.j2").write_text("Who is {{ who }}?\n", encoding="utf-8")
    (tmp_path / "schema.json").write_text(json.dumps(PERSON_SCHEMA), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def ostruct(cli_env: None) -> Callable[..., CliOutcome]:
    """Invoke the CLI in-process: ``ostruct("run", "prompt.j2", ...)``."""
    runner = CliRunner()

    def invoke(*args: str) -> CliOutcome:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        return CliOutcome(result.exit_code, result.stdout, result.stderr)

    return invoke
