"""Fixtures for the fake server's own tests."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Until the package is installed into the virtualenv, import it from the source tree.
if importlib.util.find_spec("openai_structured") is None:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from openai_structured.testing import FakeOpenAIServer


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv
        assert srv.errors == [], "the fake server itself raised"
