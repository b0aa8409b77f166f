"""User registry files (argument and environment variable), the cache layer and refresh."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import openai_structured.registry as registry_pkg
from openai_structured.errors import ModelNotSupportedError, OpenAIClientError
from openai_structured.registry import (
    ENV_VAR,
    ModelRegistry,
    get_registry,
    refresh_registry,
    registry_cache_path,
    reset_registry,
)


def write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


USER_MODEL = {
    "models": {
        "my-finetune": {
            "dated_versions": ["2025-06-01"],
            "min_version": "2025-06-01",
            "context_window": 32_000,
            "max_output_tokens": 4_000,
            "encoding": "o200k_base",
            "prices": {"input": 1.0, "output": 2.0},
        }
    }
}


def test_user_file_adds_a_model_with_standard_sampling(tmp_path: Path) -> None:
    reg = ModelRegistry(write(tmp_path / "r.json", USER_MODEL), use_cache=False)
    c = reg.get_capabilities("my-finetune-2025-07-01")
    assert (c.canonical, c.context_window, c.max_output_tokens) == ("my-finetune", 32_000, 4_000)
    c.validate_parameter("temperature", 1.2)
    assert sorted(c.parameters) == [
        "frequency_penalty", "presence_penalty", "temperature", "top_p",
    ]  # fmt: skip
    assert reg.get_capabilities("gpt-4o").context_window == 128_000  # packaged data kept
    assert "my-finetune-2025-06-01" in reg.dated_names()


def test_user_file_overrides_single_fields_and_keeps_the_rest(tmp_path: Path) -> None:
    doc = {"models": {"o3": {"supports_streaming": True}}}
    reg = ModelRegistry(write(tmp_path / "r.json", doc), use_cache=False)
    o3 = reg.get_capabilities("o3")
    assert o3.supports_streaming is True
    assert o3.max_output_tokens == 100_000
    with pytest.raises(OpenAIClientError):
        o3.validate_parameter("temperature", 0.1)


def test_replace_true_replaces_the_whole_entry(tmp_path: Path) -> None:
    doc = {"models": {"gpt-4o": {"replace": True, "context_window": 1000, "parameters": {}}}}
    reg = ModelRegistry(write(tmp_path / "r.json", doc), use_cache=False)
    c = reg.get_capabilities("gpt-4o")
    assert c.context_window == 1000
    assert c.max_output_tokens is None
    assert c.min_version is None
    assert c.prices is None
    assert reg.get_capabilities("gpt-4o-2020-01-01").canonical == "gpt-4o"  # no minimum now


def test_user_file_can_add_aliases(tmp_path: Path) -> None:
    doc = {"models": {"gpt-4o": {"aliases": ["my-default"]}}}
    reg = ModelRegistry(write(tmp_path / "r.json", doc), use_cache=False)
    assert reg.get_capabilities("my-default").canonical == "gpt-4o"
    assert reg.get_capabilities("my-default-2024-11-20").canonical == "gpt-4o"
    assert "my-default" in reg.aliases()


def test_environment_variable_names_the_user_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "env.json", USER_MODEL)
    monkeypatch.setenv(ENV_VAR, str(path))
    reset_registry()
    assert get_registry().get_capabilities("my-finetune").context_window == 32_000
    assert str(path) in get_registry().layers
    assert "my-finetune" not in ModelRegistry(use_env=False, use_cache=False)


def test_path_argument_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, str(write(tmp_path / "env.json", USER_MODEL)))
    other = {"models": {"other-model": {"context_window": 10, "max_output_tokens": 5}}}
    reg = ModelRegistry(write(tmp_path / "arg.json", other), use_cache=False)
    assert "other-model" in reg
    assert "my-finetune" not in reg


def test_unknown_model_is_still_unknown_after_overrides(tmp_path: Path) -> None:
    reg = ModelRegistry(write(tmp_path / "r.json", USER_MODEL), use_cache=False)
    with pytest.raises(ModelNotSupportedError, match="my-finetune-2025-06-01"):
        reg.get_capabilities("nope")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must be a JSON object with a 'models' object"),
        (json.dumps({"models": {"x": 3}}), "model 'x' must be an object"),
        (json.dumps({"models": {"x": {"context_windw": 3}}}), "unknown field(s) context_windw"),
        (json.dumps({"models": {"x": {"parameters": {"logit_bias": {}}}}}), "unknown parameter"),
        (json.dumps({"models": {"x": {"context_window": -1}}}), "positive integer"),
        (json.dumps({"models": {"x": {"min_version": "2024-13-01"}}}), "not a YYYY-MM-DD"),
        (json.dumps({"models": {"x": {"prices": {"input": 1}}}}), "USD per 1M tokens"),
        (json.dumps({"models": {"x": {"supports_streaming": "yes"}}}), "true or false"),
        (json.dumps({"models": {"x": {"chat_token_parameter": "n"}}}), "max_completion_tokens"),
    ],
)
def test_bad_user_files_are_reported_clearly(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(OpenAIClientError) as info:
        ModelRegistry(path, use_cache=False)
    assert message in str(info.value)


def test_missing_user_file_names_the_path_and_the_variable(tmp_path: Path) -> None:
    with pytest.raises(OpenAIClientError) as info:
        ModelRegistry(tmp_path / "missing.json", use_cache=False)
    assert "missing.json" in str(info.value)
    assert ENV_VAR in str(info.value)


def test_loading_never_writes_into_the_package(tmp_path: Path) -> None:
    pkg_dir = Path(registry_pkg.__file__).parent

    def snapshot() -> dict[str, float]:
        return {p.name: p.stat().st_mtime for p in pkg_dir.iterdir() if p.is_file()}

    before = snapshot()
    ModelRegistry(write(tmp_path / "r.json", USER_MODEL))
    get_registry().get_capabilities("gpt-4o")
    assert snapshot() == before


def test_cached_refresh_file_is_merged_and_can_be_ignored(isolated_registry: Path) -> None:
    cached = registry_cache_path()
    assert str(cached).startswith(str(isolated_registry))
    cached.parent.mkdir(parents=True)
    write(cached, {"models": {"cached-model": {"context_window": 100, "max_output_tokens": 10}}})
    assert "cached-model" in ModelRegistry()
    assert "cached-model" not in ModelRegistry(use_cache=False)


# --- refresh over loopback HTTP ------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, bytes]] = {}

    def do_GET(self) -> None:
        status, body = self.routes.get(self.path, (404, b"not found"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_refresh_downloads_into_the_cache_dir_and_later_registries_use_it(
    server: str, isolated_registry: Path
) -> None:
    doc = {"models": {"gpt-4o": {"prices": {"input": 9.0, "output": 9.0}}}}
    _Handler.routes = {"/models.json": (200, json.dumps(doc).encode())}
    path = refresh_registry(server + "/models.json", timeout=5)
    assert path == registry_cache_path()
    assert str(path).startswith(str(isolated_registry))
    assert json.loads(path.read_text())["models"]["gpt-4o"]["prices"]["input"] == 9.0
    prices = ModelRegistry().get_capabilities("gpt-4o").prices
    assert prices is not None and prices.input == 9.0


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ((200, b"{broken"), "not valid JSON"),
        ((200, b'{"no": "models"}'), "not a registry file"),
        ((200, b'{"models": {"x": {"context_window": "big"}}}'), "positive integer"),
        ((404, b"gone"), "Could not download"),
    ],
)
def test_refresh_failures_leave_the_cached_file_untouched(
    server: str, route: tuple[int, bytes], message: str
) -> None:
    cached = registry_cache_path()
    cached.parent.mkdir(parents=True)
    cached.write_text('{"models": {}}')
    _Handler.routes = {"/r.json": route}
    with pytest.raises(OpenAIClientError, match=message):
        refresh_registry(server + "/r.json", timeout=5)
    assert cached.read_text() == '{"models": {}}'
    assert [p.name for p in cached.parent.iterdir()] == ["models.json"]


def test_refresh_refuses_non_http_urls(tmp_path: Path) -> None:
    with pytest.raises(OpenAIClientError, match="http"):
        refresh_registry((tmp_path / "x.json").as_uri())


def test_refresh_reports_an_unreachable_server() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens on this port now
    with pytest.raises(OpenAIClientError, match="Could not download"):
        refresh_registry(f"http://127.0.0.1:{port}/r.json", timeout=2)
