"""Provider selection, server profiles, the model cache and the server's start-up checks.

None of these start a model server: they run everywhere, with or without the ``[local]`` extra.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import socket
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import openai_structured.local as local_pkg
from openai_structured import _clients
from openai_structured._clients import NoProviderError, default_client, provider_from_env
from openai_structured.local import (
    LocalModelError,
    LocalModelNotInstalledError,
    LocalModelServer,
    ModelFileError,
    PortUnavailableError,
    _child,
    _model,
    _server,
)
from openai_structured.servers import PROFILE_HEADER, get_profile, profile_for

_PROVIDER_VARS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_AD_TOKEN",
    "OPENAI_API_VERSION",
    "OPENAI_STRUCTURED_SERVER",
    "OPENAI_STRUCTURED_LOCAL",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _PROVIDER_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# --- provider selection (SPEC §6) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "installed", "expected"),
    [
        ({"OPENAI_API_KEY": "sk-test"}, True, "openai"),
        (
            {"AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com", "AZURE_OPENAI_API_KEY": "k"},
            True,
            "azure",
        ),
        ({"AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com"}, False, None),
        ({"OPENAI_BASE_URL": "http://127.0.0.1:8000/v1"}, True, "base_url"),
        ({"OPENAI_BASE_URL": "http://h/v1", "OPENAI_API_KEY": "sk-test"}, True, "base_url"),
        ({}, True, "local"),
        ({}, False, None),
        ({"OPENAI_STRUCTURED_LOCAL": "0"}, True, None),
        ({"OPENAI_STRUCTURED_LOCAL": "1"}, True, "local"),
    ],
)
def test_provider_follows_the_environment_in_spec_order(
    env: dict[str, str], installed: bool, expected: str | None
) -> None:
    assert provider_from_env(env, local_installed=lambda: installed) == expected


def test_a_key_or_server_in_the_environment_never_starts_the_embedded_model() -> None:
    def must_not_be_asked() -> bool:
        raise AssertionError("the embedded model was considered although a provider is set")

    for env in ({"OPENAI_API_KEY": "sk-x"}, {"OPENAI_BASE_URL": "http://h/v1"}):
        assert provider_from_env(env, local_installed=must_not_be_asked) != "local"


def test_no_provider_and_no_extra_says_how_to_configure_one(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setattr(_clients, "_local_installed", lambda: False)
    with pytest.raises(NoProviderError) as info:
        default_client(asynchronous=False)
    message = str(info.value)
    for hint in (
        "OPENAI_API_KEY",
        "AZURE_OPENAI_ENDPOINT",
        "OPENAI_BASE_URL",
        "[local]",
        "10 minutes",
    ):
        assert hint in message


def test_disabled_fallback_says_how_to_enable_it(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OPENAI_STRUCTURED_LOCAL", "off")
    with pytest.raises(NoProviderError, match="unset OPENAI_STRUCTURED_LOCAL"):
        default_client(asynchronous=True)


@pytest.mark.parametrize("asynchronous", [False, True])
def test_embedded_fallback_uses_the_shared_server_client(
    clean_env: pytest.MonkeyPatch, asynchronous: bool
) -> None:
    class FakeShared:
        def client(self) -> str:
            return "sync-client"

        def async_client(self) -> str:
            return "async-client"

    clean_env.setattr(_clients, "_local_installed", lambda: True)
    clean_env.setattr(local_pkg, "shared_server", lambda: FakeShared())
    expected = "async-client" if asynchronous else "sync-client"
    assert default_client(asynchronous=asynchronous) == expected


def test_base_url_client_takes_the_profile_named_in_the_environment(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("OPENAI_BASE_URL", "http://10.0.0.5:8000/v1")
    assert profile_for(default_client(asynchronous=False)).name == "compatible"
    clean_env.setenv("OPENAI_STRUCTURED_SERVER", "llama-server")
    client = default_client(asynchronous=False)
    assert profile_for(client).name == "llama.cpp"
    assert client.api_key == "not-needed"


def test_unknown_profile_in_the_environment_names_the_variable(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("OPENAI_BASE_URL", "http://10.0.0.5:8000/v1")
    clean_env.setenv("OPENAI_STRUCTURED_SERVER", "tgi")
    with pytest.raises(NoProviderError, match="OPENAI_STRUCTURED_SERVER"):
        default_client(asynchronous=False)


def test_openai_and_azure_clients_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OPENAI_API_KEY", "sk-test")
    assert profile_for(default_client(asynchronous=False)).name == "openai"
    clean_env.delenv("OPENAI_API_KEY")
    clean_env.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
    clean_env.setenv("AZURE_OPENAI_API_KEY", "k")
    client = default_client(asynchronous=True)
    assert isinstance(client, openai.AsyncAzureOpenAI)
    assert profile_for(client).name == "azure"


# --- server profiles -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://api.openai.com/v1", "openai"),
        ("https://res.openai.azure.com/openai", "azure"),
        ("http://localhost:11434/v1", "ollama"),
        ("http://ollama:8080/v1", "ollama"),
        ("http://vllm.internal:8000/v1", "vllm"),
        ("http://llama-server:8080/v1", "llama.cpp"),
        ("http://llamacpp.lan/v1", "llama.cpp"),
        ("http://127.0.0.1:8000/v1", "compatible"),
        ("http://localhost:1234/v1", "compatible"),
    ],
)
def test_profile_is_guessed_from_the_base_url(base_url: str, expected: str) -> None:
    assert profile_for(openai.OpenAI(base_url=base_url, api_key="x")).name == expected


def test_profile_header_wins_over_the_url_and_survives_with_options() -> None:
    client = openai.OpenAI(
        base_url="http://127.0.0.1:9/v1", api_key="x", default_headers={PROFILE_HEADER: "vllm"}
    )
    assert profile_for(client).name == "vllm"
    assert profile_for(client.with_options(timeout=3)).name == "vllm"
    assert profile_for(client, "ollama").name == "ollama"  # explicit server= wins


@pytest.mark.parametrize("name", ["llama.cpp", "llama-server", "llama-cpp-python", "LLAMACPP"])
def test_llama_cpp_names_select_the_json_object_schema_form(name: str) -> None:
    profile = get_profile(name)
    assert profile.name == "llama.cpp"
    assert not profile.strict_schema
    assert not profile.supports_responses_api
    schema = {"type": "object"}
    assert profile.chat_response_format("x", schema, False) == {
        "type": "json_object",
        "schema": schema,
    }


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"llama\.cpp.*vllm|vllm.*llama\.cpp"):
        get_profile("nope")


def test_local_server_clients_carry_the_llama_cpp_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    server = LocalModelServer()
    server._port = 5
    monkeypatch.setattr(LocalModelServer, "running", property(lambda self: True))
    for client in (server.client(), server.async_client(), server.client().with_options()):
        assert profile_for(client).name == "llama.cpp"
        assert str(client.base_url) == "http://127.0.0.1:5/v1/"
        assert client.api_key == server.api_key
    assert server.profile is get_profile("llama.cpp")


def test_client_of_a_stopped_server_is_a_clear_error() -> None:
    with pytest.raises(LocalModelError, match="not running"):
        LocalModelServer().client()


# --- the server command and start-up checks --------------------------------------------------


def _options(argv: list[str]) -> dict[str, str]:
    """``--name value`` and ``--name=value`` pairs of a command line."""
    out: dict[str, str] = {}
    items = iter(argv)
    for item in items:
        name, eq, value = item.partition("=")
        out[name] = value if eq else next(items)
    return out


def test_server_command_turns_off_interrupting_and_pins_everything() -> None:
    command = _server.server_command(
        "/m.gguf", host="127.0.0.1", port=4321, n_threads=2, python="py"
    )
    assert command[:3] == ["py", "-m", "openai_structured.local._child"]
    args = _options(command[3:])
    assert args["--model"] == "/m.gguf"
    assert args["--port"] == "4321"
    assert args["--host"] == "127.0.0.1"
    assert args["--interrupt_requests"] == "false"
    assert args["--n_threads"] == "2"
    # The key never goes on a command line (every local user can read those): see the stdin.
    assert "--api_key" not in args
    assert not any("api_key" in arg for arg in command)


def test_the_child_reads_its_key_from_the_first_stdin_line_and_leaves_the_rest() -> None:
    read, write = os.pipe()
    try:
        os.write(write, b'{"api_key": "-starts-with-a-dash"}\nlifeline bytes')
        assert _child.read_private_config(read) == {"api_key": "-starts-with-a-dash"}
        assert os.read(read, 100) == b"lifeline bytes"  # still there for the lifeline thread
    finally:
        os.close(read)
        os.close(write)


def test_a_key_that_starts_with_a_dash_stays_the_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # secrets.token_urlsafe() starts with "-" one time in 64; argparse must not read it as an
    # option (the server then refused to start). The child appends it to its own sys.argv.
    import argparse

    seen: list[list[str]] = []
    for name in ("_clean_environment", "_register_gemma3", "_avoid_amx_crash"):
        monkeypatch.setattr(_child, name, lambda: None)
    monkeypatch.setattr(_child, "_add_proof_route", lambda key: None)
    monkeypatch.setattr(_child, "read_private_config", lambda: {"api_key": "-abc"})
    monkeypatch.setattr(_child, "_exit_when_parent_dies", lambda: None)
    monkeypatch.setattr("runpy.run_module", lambda *a, **k: seen.append(list(sys.argv)))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    _child.main(["--port", "1"])
    parser = argparse.ArgumentParser()
    parser.add_argument("--api_key")
    known, _ = parser.parse_known_args(seen[0][1:])
    assert known.api_key == "-abc"


def test_missing_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_server, "missing_packages", lambda need_model: ["llama_cpp"])
    with pytest.raises(LocalModelNotInstalledError) as info:
        LocalModelServer().start()
    assert "pip install 'openai-structured[local]'" in str(info.value)
    assert "10 minutes" in str(info.value)
    assert isinstance(info.value, ImportError)


def test_a_taken_port_is_reported_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    monkeypatch.setattr(_server, "missing_packages", lambda need_model: [])
    monkeypatch.setattr(_server.subprocess, "Popen", _no_popen)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortUnavailableError) as info:
            LocalModelServer(model, port=port).start()
    assert info.value.port == port
    assert "Leave port= out" in str(info.value)


def _no_popen(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a process was started")


def test_missing_model_file_is_a_model_file_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        _model.ensure_model(tmp_path / "absent.gguf")


# --- the model cache: assembled once, hashed once --------------------------------------------

_GGUF = b"GGUF" + bytes(range(256)) * 64


@pytest.fixture
def bundle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[types.SimpleNamespace]:
    """A stand-in for the model package: same API, a 16 KB 'model'."""
    calls = types.SimpleNamespace(assembled=0, corrupt=False)

    def assemble(output_path: Path, overwrite: bool = False) -> Path:
        calls.assembled += 1
        Path(output_path).write_bytes(b"bad" if calls.corrupt else _GGUF)
        if calls.corrupt:
            raise ValueError("Assembled file sha256 did not match expected value")
        return Path(output_path)

    module = types.ModuleType(_model.MODEL_PACKAGE)
    module.__spec__ = importlib.util.spec_from_loader(_model.MODEL_PACKAGE, loader=None)
    module.MODEL_NAME = "fake.gguf"  # type: ignore[attr-defined]
    module.EXPECTED_SHA256 = hashlib.sha256(_GGUF).hexdigest()  # type: ignore[attr-defined]
    module.assemble = assemble  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, _model.MODEL_PACKAGE, module)
    monkeypatch.setattr(_model, "cache_dir", lambda: tmp_path / "cache")
    monkeypatch.delenv(_model.MODEL_ENV_VAR, raising=False)
    yield calls


def test_model_is_assembled_once_and_then_trusted_without_rehashing(
    bundle: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _model.ensure_model()
    assert path.read_bytes() == _GGUF
    assert bundle.assembled == 1
    monkeypatch.setattr(_model, "_sha256", _no_hash)
    assert _model.ensure_model() == path
    assert bundle.assembled == 1
    assert not list(path.parent.glob("*.partial"))


def _no_hash(path: Path) -> str:
    raise AssertionError("the verified model was hashed again")


def test_a_changed_model_file_is_rehashed_and_replaced(bundle: types.SimpleNamespace) -> None:
    path = _model.ensure_model()
    path.write_bytes(b"truncated")
    assert _model.ensure_model().read_bytes() == _GGUF
    assert bundle.assembled == 2


def test_a_damaged_model_package_is_a_model_file_error(bundle: types.SimpleNamespace) -> None:
    bundle.corrupt = True
    with pytest.raises(ModelFileError, match="force-reinstall"):
        _model.ensure_model()
    assert not list((_model.cache_dir()).glob("*"))


def test_model_path_from_the_environment(
    bundle: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    own = tmp_path / "own.gguf"
    own.write_bytes(b"GGUF")
    monkeypatch.setenv(_model.MODEL_ENV_VAR, str(own))
    assert _model.ensure_model() == own
    assert bundle.assembled == 0


# --- partial files of a killed reassembly (issue 10) -------------------------------------------


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _plant_partial(pid: int) -> Path:
    partial = _model.cache_dir() / f"fake.gguf.{pid}.partial"
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"\0" * (1 << 20))  # what a kill half way through leaves behind
    return partial


@pytest.mark.skipif(sys.platform == "win32", reason="pids and flock are POSIX")
def test_a_killed_reassemblys_partial_file_is_removed_on_the_next_start(
    bundle: types.SimpleNamespace,
) -> None:
    stale = _plant_partial(_dead_pid())
    path = _model.ensure_model()
    assert not stale.exists()
    assert path.read_bytes() == _GGUF
    # Also when the model is already there (no reassembly): every start cleans up.
    stale = _plant_partial(_dead_pid())
    assert _model.ensure_model() == path
    assert not stale.exists()
    assert bundle.assembled == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["fake.gguf", "fake.gguf.verified.json"]


@pytest.mark.skipif(sys.platform == "win32", reason="pids and flock are POSIX")
def test_a_partial_file_another_process_may_be_writing_is_left_alone(
    bundle: types.SimpleNamespace,
) -> None:
    _model.ensure_model()
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = _plant_partial(writer.pid)  # its writer runs: maybe still reassembling
        assert _model.remove_stale_partials(_model.cache_dir() / "fake.gguf") == []
        _model.ensure_model()
        assert live.exists()
    finally:
        writer.kill()
        writer.wait()
    other = _plant_partial(_dead_pid())
    # Another process holds the cache lock (a second open file: flock treats it as another
    # process): it may be reassembling, so nothing is touched.
    fd = os.open(_model.cache_dir(), os.O_RDONLY)
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)
        assert _model.remove_stale_partials(_model.cache_dir() / "fake.gguf") == []
        assert other.exists() and live.exists()
    finally:
        os.close(fd)
    assert sorted(_model.remove_stale_partials(_model.cache_dir() / "fake.gguf")) == sorted(
        [live, other]
    )


@pytest.mark.skipif(sys.platform == "win32", reason="pids and flock are POSIX")
def test_waiting_too_long_for_another_reassembly_is_a_model_file_error(
    bundle: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_model, "ASSEMBLY_WAIT", 0.2)
    _model.cache_dir().mkdir(parents=True)
    fd = os.open(_model.cache_dir(), os.O_RDONLY)
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(ModelFileError, match="Another process has been reassembling"):
            _model.ensure_model()
    finally:
        os.close(fd)
    assert bundle.assembled == 0
    assert _model.ensure_model().read_bytes() == _GGUF  # once the lock is free
