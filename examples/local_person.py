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
import re
import sys
from typing import Any, ClassVar

from pydantic import BaseModel, Field, field_validator, model_validator

from openai_structured import StructuredResult, openai_structured_call_result


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

    #: The input the answer is checked against; set by :meth:`for_text` (None: checks that
    #: need no text only). Not a field: it is not in the schema.
    source: ClassVar[str | None] = None

    @classmethod
    def for_text(cls, text: str) -> type[Person]:
        """``Person`` whose validators also check an answer against ``text``: the library
        validates with the class it is given, so each input gets its own (same schema)."""
        namespace = {"source": text, "__module__": cls.__module__, "__doc__": cls.__doc__}
        return type(cls.__name__, (cls,), namespace)

    # The rules below are the ones the prompt asks for and the schema cannot say. A rejected
    # answer is sent back with these messages when max_validation_retries > 0.

    @field_validator("name", "city")
    @classmethod
    def _copied(cls, value: str) -> str:
        if cls.source is not None and not re.search(rf"\b{re.escape(value)}\b", cls.source):
            raise ValueError(f"{value!r} does not occur in the text; copy it as the text writes it")
        return value

    @field_validator("age")
    @classmethod
    def _plausible_and_stated(cls, age: int) -> int:
        if not 1 <= age <= 120:
            raise ValueError(f"{age} is not a plausible age in years")
        if cls.source is not None and not re.search(rf"(?<!\d){age}(?!\d)", cls.source):
            raise ValueError(f"the text does not state the age {age}; give the age it states")
        return age

    @field_validator("occupation")
    @classmethod
    def _job_title(cls, occupation: str) -> str:
        if not 1 <= len(occupation.split()) <= 3:
            raise ValueError(f"{occupation!r} is not a job title of one to three words")
        if cls.source is not None:
            # Stated, not guessed: some word of the title shares its stem (5 letters) with a
            # word of the text ("teacher" for "teaches", "taxi driver" for "drives a taxi").
            said = re.findall(r"\w+", cls.source.lower())
            stems = [w[:5] for w in re.findall(r"\w+", occupation.lower())]
            if not any(word.startswith(stem) for stem in stems for word in said):
                raise ValueError(
                    f"the text does not say {occupation!r}; give the job the text states"
                )
        return occupation

    @model_validator(mode="after")
    def _job_title_alone(self) -> Person:
        """Across fields (the error's path is the root): the title without the subject or place."""
        other = {w.lower() for w in f"{self.name} {self.city}".split()}
        if other & {w.lower() for w in self.occupation.split()}:
            raise ValueError(
                f"occupation {self.occupation!r} repeats the name or the city; give the job "
                "title alone"
            )
        return self


SYSTEM = "You extract facts about a person from a text. Answer with JSON only."


def _shot(text: str, **fields: Any) -> list[dict[str, str]]:
    """A worked example as a user turn and the assistant's JSON answer (fields in schema order,
    the order the grammar makes the model write them in), validated against its own text."""
    answer = Person.for_text(text)(**fields)
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
        name="Tom Becker",
        occupation="taxi driver",
        age=52,
        city="Hamburg",
    ),
    *_shot(
        "The pharmacist at the station, Sofia Rossi, is 45; she lives in Turin.",
        name="Sofia Rossi",
        occupation="pharmacist",
        age=45,
        city="Turin",
    ),
    *_shot(
        "Lars Holm (38) lectures on physics at the university in Oslo.",
        name="Lars Holm",
        occupation="lecturer",
        age=38,
        city="Oslo",
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


def extract(
    text: str, *, client: Any = None, model: str | None = None, retries: int = 0
) -> StructuredResult[Person]:
    """The person described in ``text`` (``.value``), with the attempts it took: an answer
    that breaks a rule is sent back with the errors up to ``retries`` times."""
    return openai_structured_call_result(
        client=client,
        model=model or os.environ.get("OSTRUCT_MODEL", "gpt-4o-mini"),
        output_schema=Person.for_text(text),
        messages=[
            {"role": "system", "content": SYSTEM},
            *FEW_SHOT,
            {"role": "user", "content": f"Text: {text}"},
        ],
        temperature=0,
        max_output_tokens=80,
        max_validation_retries=retries,
    )


def main() -> None:
    text = " ".join(sys.argv[1:]) or CASES[0][0]
    print(extract(text).value.model_dump_json(indent=2))


if __name__ == "__main__":
    main()
