"""Isolate every registry test from the user's environment and cache directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from openai_structured.registry import ENV_VAR, reset_registry


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No user registry file, an empty cache dir, and a fresh shared registry per test."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    reset_registry()
    yield cache
    reset_registry()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any non-loopback connection fail, as on a machine without network."""
    import socket

    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and (host.startswith("127.") or host in ("::1", "localhost")):
            real_connect(self, address)  # type: ignore[arg-type]
            return
        raise OSError(f"network disabled in this test (tried {address!r})")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "create_connection", _refuse)


def _refuse(*args: object, **kwargs: object) -> None:
    raise OSError("network disabled in this test")
