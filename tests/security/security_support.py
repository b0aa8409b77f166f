"""Secrets of every shape the redaction must catch, and an on_log recorder.

Each secret carries a marker (``LEAK``/``leak``) so that a test can check a whole output for it
without knowing how it was masked.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openai_structured import LogEvent

#: The API key of every client here.
CANARY_KEY = "sk-proj-CANARYsecurity0000canary1111"

# One of each key shape (fake values).
OPENAI_KEY = "sk-LEAKopenai0123456789abcdef"
OPENAI_PROJECT_KEY = "sk-proj-LEAKproject0123456789abcdefXYZ"
OPENAI_SERVICE_KEY = "sk-svcacct-LEAKservice0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-api03-LEAKanthropic0123456789abcdef"
GOOGLE_KEY = "AIzaSyLEAKgoogle0123456789abcdefghijk"
AWS_ACCESS_KEY_ID = "AKIALEAKAWS012345678"
AWS_SESSION_KEY_ID = "ASIALEAKAWS987654321"
GITHUB_TOKENS = (
    "ghp_LEAKgithub0123456789abcdefghijklmnop",
    "gho_LEAKgithub0123456789abcdefghijklmnop",
    "ghs_LEAKgithub0123456789abcdefghijklmnop",
    "github_pat_11LEAKgithub0123456789_abcdefghijklmnopqrstuv",
)
SLACK_TOKEN = "xoxb-1234567890-LEAKslack-abcdefghij"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJMRUFLIiwibmFtZSI6ImxlYWsifQ."
    "LEAKsignature0123456789abcdef_-"
)
#: Secrets with no recognisable shape: only their name gives them away.
AZURE_KEY = "0123456789abcdef0123456789abcdef"  # 32 hex digits (Azure, API Management)
AWS_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYLEAKKEY0123"
OPAQUE = "opaqueLEAKvalue42"
BASIC_CREDENTIAL = base64.b64encode(b"leakuser:LEAKpassword").decode()

SHAPED = (
    OPENAI_KEY,
    OPENAI_PROJECT_KEY,
    OPENAI_SERVICE_KEY,
    ANTHROPIC_KEY,
    GOOGLE_KEY,
    AWS_ACCESS_KEY_ID,
    AWS_SESSION_KEY_ID,
    *GITHUB_TOKENS,
    SLACK_TOKEN,
    JWT,
)


#: ``call(**kwargs)``: one structured call (see the ``call`` fixture).
Call = Callable[..., Any]


class Recorder:
    """An on_log callback that keeps every event."""

    def __init__(self) -> None:
        self.events: list[tuple[LogEvent, str]] = []

    def __call__(self, event: LogEvent, level: str) -> None:
        self.events.append((event, level))

    def types(self) -> list[str]:
        return [e.type for e, _ in self.events]

    def first(self, type: str) -> dict[str, Any]:
        return dict(next(e.data for e, _ in self.events if e.type == type))

    def text(self) -> str:
        """Everything the callback saw, as a user's logger would print it."""
        return "\n".join(f"{e.type} {level} {e.data!r}" for e, level in self.events)


def leaks(text: str, *secrets: str) -> list[str]:
    """The secrets (or a telling piece of them: the LEAK marker) that appear in ``text``."""
    found = [s for s in secrets if s in text]
    if "LEAK" in text or "leakuser" in text:
        found.append("a LEAK marker")
    return found


PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


@dataclass
class CliOutcome:
    """What one CLI invocation produced."""

    code: int
    stdout: str
    stderr: str
