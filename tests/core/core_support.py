"""Shared helpers for the core tests (imported by conftest and the test modules)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openai_structured._logging import LogEvent

#: Used as the API key by every test here; it must never show up in logs, errors or reprs.
CANARY_KEY = "sk-proj-CANARY0000canary1111CANARY2222"

Call = Callable[..., Any]


class Recorder:
    """An on_log callback that keeps every event."""

    def __init__(self) -> None:
        self.events: list[tuple[LogEvent, str]] = []

    def __call__(self, event: LogEvent, level: str) -> None:
        self.events.append((event, level))

    def types(self) -> list[str]:
        return [e.type for e, _ in self.events]
