"""List who attends a meeting, and when; runs on the embedded model with no key.

    python examples/local_meeting.py ["Some text about a meeting."]

Gemma 3 270M returned an empty attendee list for this task when asked with instructions
alone. What made it right (measured with measure_accuracy.py, see docs/local.md): two worked
examples in the messages (one with several people, one with a single person), a field
description that says what belongs in the list, and a flat schema (a list of plain names rather
than a list of objects).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from pydantic import BaseModel, Field

from openai_structured import openai_structured_call


class Meeting(BaseModel):
    topic: str = Field(description="What the meeting is about, in a few words")
    day: str = Field(description="The weekday of the meeting, e.g. Monday")
    attendees: list[str] = Field(description="Full name of every person who attends")


SYSTEM = (
    "You read a note about a meeting and answer with JSON: the topic, the weekday, and the "
    "names of all the people who attend."
)

FEW_SHOT: list[dict[str, str]] = [
    {
        "role": "user",
        "content": "Note: On Monday, Ravi Patel and Emma Stone will review the budget.",
    },
    {
        "role": "assistant",
        "content": '{"topic": "budget review", "day": "Monday", '
        '"attendees": ["Ravi Patel", "Emma Stone"]}',
    },
    {
        "role": "user",
        "content": "Note: Friday's hiring interview is run by Olga Ivanova alone.",
    },
    {
        "role": "assistant",
        "content": '{"topic": "hiring interview", "day": "Friday", "attendees": ["Olga Ivanova"]}',
    },
]

#: Inputs and the answer a correct extraction gives (used by measure_accuracy.py).
CASES: list[tuple[str, dict[str, Any]]] = [
    (
        "Alice Johnson, Bob Smith and Carol White will meet on Tuesday to plan the product "
        "launch.",
        {
            "topic": "product launch",
            "day": "Tuesday",
            "attendees": ["Alice Johnson", "Bob Smith", "Carol White"],
        },
    ),
    (
        "Thursday: quarterly sales review with David Lee and Sara Kim.",
        {"topic": "quarterly sales review", "day": "Thursday", "attendees": ["David Lee", "Sara Kim"]},
    ),
    (
        "Reminder: the design workshop is on Wednesday. Attending: Tom Brown, Lisa Green, "
        "Mark Black and Nina Gray.",
        {
            "topic": "design workshop",
            "day": "Wednesday",
            "attendees": ["Tom Brown", "Lisa Green", "Mark Black", "Nina Gray"],
        },
    ),
]


def extract(text: str, *, client: Any = None, model: str | None = None) -> Meeting:
    """The meeting described in ``text``."""
    return openai_structured_call(
        client=client,
        model=model or os.environ.get("OSTRUCT_MODEL", "gpt-4o-mini"),
        output_schema=Meeting,
        messages=[
            {"role": "system", "content": SYSTEM},
            *FEW_SHOT,
            {"role": "user", "content": f"Note: {text}"},
        ],
        temperature=0,
        max_output_tokens=120,
    )


def main() -> None:
    text = " ".join(sys.argv[1:]) or CASES[0][0]
    print(extract(text).model_dump_json(indent=2))


if __name__ == "__main__":
    main()
