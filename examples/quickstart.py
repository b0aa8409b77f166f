"""The main job until the CLI and the embedded model land: one structured call.

With OPENAI_API_KEY (or OPENAI_BASE_URL) set, it asks that server. Without, it starts the
project's loopback test server and scripts the model's answer, so it runs anywhere offline.

    python examples/quickstart.py
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, Field

from openai_structured import openai_structured_call
from openai_structured.testing import FakeOpenAIServer, Reply


class Person(BaseModel):
    name: str = Field(description="The person's full name")
    born: int = Field(description="Year of birth")
    occupations: list[str]


TEXT = "Ada Lovelace (born 1815) was an English mathematician and writer."


@contextlib.contextmanager
def model_server() -> Iterator[Any]:
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        yield None  # the library builds the client from the environment
        return
    answer = {"name": "Ada Lovelace", "born": 1815, "occupations": ["mathematician", "writer"]}
    with FakeOpenAIServer(default_reply=Reply.json(answer)) as server:
        yield server.client()


def main() -> None:
    with model_server() as client:
        person = openai_structured_call(
            client=client,
            model=os.environ.get("OSTRUCT_MODEL", "gpt-4o-mini"),
            output_schema=Person,
            system_prompt="Extract the person described in the text.",
            user_prompt=TEXT,
        )
    print(person.model_dump_json(indent=2))


if __name__ == "__main__":
    main()
