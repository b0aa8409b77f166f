"""List who attends a meeting, and when; runs on the embedded model with no key.

    python examples/local_meeting.py ["Some text about a meeting."]

Gemma 3 270M returned an empty attendee list for this task when asked with instructions
alone, and closed a JSON list after one or two names even with worked examples. What works
better (measured with measure_accuracy.py, see docs/local.md): three worked examples in the
messages, and the names asked for as one string copied exactly as the note writes them
("A, B and C"), which this script splits, keeping only names that occur in the note.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from pydantic import BaseModel, Field

from openai_structured import openai_structured_call


class Meeting(BaseModel):
    topic: str
    day: str
    attendees: list[str]


class MeetingAnswer(BaseModel):
    """What the model fills in. Names as one string: asked for a JSON list, Gemma 3 270M
    closed it after one or two names (measured). Copying the text's own words ("A, B and C")
    is easier for it than rewriting them, so that is what the examples show."""

    topic: str = Field(description="What the meeting is about, in a few words")
    day: str = Field(description="The weekday of the meeting, e.g. Monday")
    attendees: str = Field(
        description="The names of all the people who attend, copied exactly as the note lists them"
    )

    def to_meeting(self, note: str) -> Meeting:
        """Split the names, and keep only those the note contains: after the last name, the
        model sometimes adds one from the worked examples (measured: "Paul Roy and Mei Chen"
        came back with "Li Wei" appended). The note is the ground truth for a copied field."""
        names = [n.strip() for n in re.split(r",\s*|\s+and\s+", self.attendees)]
        return Meeting(
            topic=self.topic, day=self.day, attendees=[n for n in names if n and n in note]
        )


SYSTEM = (
    "You read a note about a meeting and answer with JSON: the topic, the weekday, and the "
    "names of all the people who attend."
)

FEW_SHOT: list[dict[str, str]] = [
    {
        "role": "user",
        "content": "Note: On Monday, Ravi Patel, Emma Stone and Li Wei will review the budget.",
    },
    {
        "role": "assistant",
        "content": '{"topic": "budget review", "day": "Monday", '
        '"attendees": "Ravi Patel, Emma Stone and Li Wei"}',
    },
    {
        "role": "user",
        "content": "Note: Friday: hiring interview. Attending: Olga Ivanova, Sam Cole, "
        "Jo Park and Ben Ito.",
    },
    {
        "role": "assistant",
        "content": '{"topic": "hiring interview", "day": "Friday", '
        '"attendees": "Olga Ivanova, Sam Cole, Jo Park and Ben Ito"}',
    },
    {
        "role": "user",
        "content": "Note: Kim Berg and Ali Khan meet on Sunday about the office move.",
    },
    {
        "role": "assistant",
        "content": '{"topic": "office move", "day": "Sunday", '
        '"attendees": "Kim Berg and Ali Khan"}',
    },
]

#: Inputs and the answer a correct extraction gives (used by measure_accuracy.py).
CASES: list[tuple[str, dict[str, Any]]] = [
    (
        "Alice Johnson, Bob Smith and Carol White will meet on Tuesday to plan the product launch.",
        {
            "topic": "product launch",
            "day": "Tuesday",
            "attendees": ["Alice Johnson", "Bob Smith", "Carol White"],
        },
    ),
    (
        "Thursday: quarterly sales review with David Lee and Sara Kim.",
        {
            "topic": "quarterly sales review",
            "day": "Thursday",
            "attendees": ["David Lee", "Sara Kim"],
        },
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
    answer = openai_structured_call(
        client=client,
        model=model or os.environ.get("OSTRUCT_MODEL", "gpt-4o-mini"),
        output_schema=MeetingAnswer,
        messages=[
            {"role": "system", "content": SYSTEM},
            *FEW_SHOT,
            {"role": "user", "content": f"Note: {text}"},
        ],
        temperature=0,
        max_output_tokens=120,
    )
    return answer.to_meeting(text)


def main() -> None:
    text = " ".join(sys.argv[1:]) or CASES[0][0]
    print(extract(text).model_dump_json(indent=2))


if __name__ == "__main__":
    main()
