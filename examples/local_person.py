"""Extract a flat person record from a sentence; runs on the embedded model with no key.

    python examples/local_person.py ["Some text about a person."]

With no OPENAI_API_KEY / OPENAI_BASE_URL / Azure variables set, the library starts the
embedded local model (the ``[local]`` extra); otherwise it asks that server. Prompts are tuned
for Gemma 3 270M: a worked example in the messages and a description on every field matter
more to a model this small than the instructions do.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from pydantic import BaseModel, Field

from openai_structured import openai_structured_call


class Person(BaseModel):
    """``occupation`` right after ``name``, as texts tend to give them: the grammar makes the
    model write the fields in this order, and with ``occupation`` last it answered "chef" for
    "The baker on Rue Cler, Pierre Martin" (measured); right after the name it copies the job."""

    name: str = Field(description="The person's full name, as written")
    occupation: str = Field(
        description="The person's job title alone, without the subject, employer or place"
    )
    age: int = Field(description="Age in years")
    city: str = Field(description="The city where the person lives")


SYSTEM = "You extract facts about a person from a text. Answer with JSON only."


def _shot(text: str, answer: Person) -> list[dict[str, str]]:
    """A worked example as a user turn and the assistant's JSON answer (fields in schema order,
    the order the grammar makes the model write them in)."""
    return [
        {"role": "user", "content": f"Text: {text}"},
        {"role": "assistant", "content": json.dumps(answer.model_dump())},
    ]


# Worked examples: the model copies their shape and their habits more than it follows the
# instructions. Each shows one way a text states a job: a verb ("drives a taxi"), a title
# before the name, and a verb with a subject, which the job title leaves out.
FEW_SHOT: list[dict[str, str]] = [
    *_shot(
        "Tom Becker, 52, drives a taxi in Hamburg.",
        Person(name="Tom Becker", occupation="taxi driver", age=52, city="Hamburg"),
    ),
    *_shot(
        "The pharmacist at the station, Sofia Rossi, is 45; she lives in Turin.",
        Person(name="Sofia Rossi", occupation="pharmacist", age=45, city="Turin"),
    ),
    *_shot(
        "Lars Holm (38) lectures on physics at the university in Oslo.",
        Person(name="Lars Holm", occupation="lecturer", age=38, city="Oslo"),
    ),
]

#: Inputs and the answer a correct extraction gives (used by measure_accuracy.py).
CASES: list[tuple[str, dict[str, Any]]] = [
    (
        "Maria Lopez is 34 years old. She works as a nurse in Madrid.",
        {"name": "Maria Lopez", "age": 34, "city": "Madrid", "occupation": "nurse"},
    ),
    (
        "Born 41 years ago, Kenji Sato now teaches mathematics at a school in Osaka.",
        {"name": "Kenji Sato", "age": 41, "city": "Osaka", "occupation": "teacher"},
    ),
    (
        "Our new colleague, Anna Novak (29), is a software engineer based in Prague.",
        {"name": "Anna Novak", "age": 29, "city": "Prague", "occupation": "software engineer"},
    ),
    (
        "The baker on Rue Cler, Pierre Martin, turned 60 this spring; he has lived in Paris "
        "all his life.",
        {"name": "Pierre Martin", "age": 60, "city": "Paris", "occupation": "baker"},
    ),
]


def extract(text: str, *, client: Any = None, model: str | None = None) -> Person:
    """The person described in ``text``."""
    return openai_structured_call(
        client=client,
        model=model or os.environ.get("OSTRUCT_MODEL", "gpt-4o-mini"),
        output_schema=Person,
        messages=[
            {"role": "system", "content": SYSTEM},
            *FEW_SHOT,
            {"role": "user", "content": f"Text: {text}"},
        ],
        temperature=0,
        max_output_tokens=80,
    )


def main() -> None:
    text = " ".join(sys.argv[1:]) or CASES[0][0]
    print(extract(text).model_dump_json(indent=2))


if __name__ == "__main__":
    main()
