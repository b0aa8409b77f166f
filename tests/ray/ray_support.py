"""What the tests of the Ray Data integration hand to the actors, importable there by name.

Each row is ``{"id": N, "text": ...}`` and its prompt is ``record N: text``, so the server's
responder knows which row it answers (the first user message: a re-ask appends more). Rows
fail deterministically: N divisible by 7 gets text that is not JSON, N divisible by 11 an
answer that does not match the schema (with a re-ask, that is two attempts).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from openai_structured.testing import CapturedRequest, Reply

MODEL = "gpt-4o-mini"  # in the registry: prices and an offline tokenizer


class Answer(BaseModel):
    n: int
    text: str


def rows(count: int, start: int = 1) -> list[dict[str, Any]]:
    return [{"id": i, "text": f"row number {i}"} for i in range(start, start + count)]


def ask(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"user_prompt": f"record {row['id']}: {row['text']}"}


def prompt_of(request: CapturedRequest) -> str:
    return str(next(m["content"] for m in request.json["messages"] if m["role"] == "user"))


def record_of(request: CapturedRequest) -> int:
    match = re.match(r"record (\d+): (.*)", prompt_of(request), re.S)
    assert match is not None, prompt_of(request)
    return int(match.group(1))


def answer(request: CapturedRequest) -> Reply:
    n = record_of(request)
    text = prompt_of(request).split(": ", 1)[1]
    if n % 7 == 0:
        return Reply.text('{"n": ' + str(n) + ", oops")
    if n % 11 == 0:
        return Reply.json({"n": "eleven", "text": text})
    return Reply.json({"n": n, "text": text})


def expected(n: int) -> dict[str, Any] | None:
    """The result of row ``n``, or None when it fails."""
    if n % 7 == 0 or n % 11 == 0:
        return None
    return {"n": n, "text": f"row number {n}"}


def killing_ask(marker: str, victim: int) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """``ask``, except that the first time it sees row ``victim`` it kills its process (the
    marker file says it happened: the retry after the restart goes on normally)."""

    def request(row: Mapping[str, Any]) -> dict[str, Any]:
        if row["id"] == victim and not os.path.exists(marker):
            with open(marker, "w") as f:
                f.write(str(os.getpid()))
            os._exit(1)
        return ask(row)

    return request
