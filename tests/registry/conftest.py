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
