"""Shared helpers of the CLI tests (constants, outcome type, argument builder)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openai_structured.testing import FakeOpenAIServer

CANARY = "sk-proj-CANARY0123456789abcdefXYZ"

PERSON_SCHEMA: dict[str, Any] = {
    "title": "person",
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
ADA = {"name": "Ada", "age": 36}


@dataclass
class Outcome:
    """What one CLI invocation produced."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_args(server: FakeOpenAIServer, *extra: str, template: str = "prompt.j2") -> list[str]:
    """``run TEMPLATE schema.json --base-url URL --max-retries 0 -V who=Ada`` plus ``extra``."""
    return [
        "run",
        template,
        "schema.json",
        "--base-url",
        server.base_url,
        "--max-retries",
        "0",
        *_with_default_who(extra),
    ]


def _with_default_who(extra: Sequence[str]) -> list[str]:
    given = any(a.startswith("who=") for a in extra)
    return [*extra] if given else ["-V", "who=Ada", *extra]
