"""Fixtures for template tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from openai_structured.templates import render_template

Render = Callable[..., str]


@pytest.fixture
def render() -> Render:
    """Render template text with keyword variables and return the output text."""

    def _render(source: str, **variables: Any) -> str:
        return render_template(source, variables).text

    return _render


@pytest.fixture
def records() -> list[dict[str, Any]]:
    """A small data set with a missing key, a None and two categories."""
    return [
        {"name": "pen", "category": "office", "amount": 3, "rating": 4.5},
        {"name": "lamp", "category": "home", "amount": 10, "rating": None},
        {"name": "clip", "category": "office", "amount": 1},
        {"name": "mug", "category": "home", "amount": 7, "rating": 3.0},
    ]
