"""List who attends a meeting, and when; runs on the embedded model with no key.

    python examples/local_meeting.py ["Some text about a meeting."]

Gemma 3 270M returned an empty attendee list for this task when asked with instructions
alone, and closed a JSON list after one or two names even with worked examples. What works
better (measured with measure_accuracy.py, see docs/local.md): three worked examples in the
messages, and the names asked for as one string copied exactly as the note writes them
("A, B and C"), which this script splits. Validators check the answer against the note (every
name and the weekday occur in it); ``retries=`` re-asks with the errors when one fails.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from typing import Any, ClassVar

from pydantic import BaseModel, Field, field_validator

from openai_structured import StructuredResult, openai_structured_call_result

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


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

    #: The note the answer is checked against; set by :meth:`for_text` (None: checks that
    #: need no note only). Not a field: it is not in the schema.
    source: ClassVar[str | None] = None

    @classmethod
    def for_text(cls, note: str) -> type[MeetingAnswer]:
        """``MeetingAnswer`` whose validators also check an answer against ``note``: the
        library validates with the class it is given, so each note gets its own (same schema)."""
        namespace = {"source": note, "__module__": cls.__module__, "__doc__": cls.__doc__}
        return type(cls.__name__, (cls,), namespace)

    # The rules the prompt asks for and the schema cannot say; a rejected answer is sent back
    # with these messages when max_validation_retries > 0.

    @field_validator("topic")
    @classmethod
    def _topic_from_note(cls, topic: str) -> str:
        words = re.findall(r"\w+", topic.lower())
        if not 1 <= len(words) <= 5:
            raise ValueError(f"{topic!r} is not a topic of one to five words")
        if cls.source is not None:
            note = set(re.findall(r"\w+", cls.source.lower()))
            if missing := [w for w in words if w not in note]:
                raise ValueError(f"the note does not say {', '.join(map(repr, missing))}")
        return topic

    @field_validator("day")
    @classmethod
    def _weekday_in_note(cls, day: str) -> str:
        if day.strip().capitalize() not in WEEKDAYS:
            raise ValueError(f"{day!r} is not a weekday (one of {', '.join(WEEKDAYS)})")
        day = day.strip().capitalize()
        if cls.source is not None and not _occurs(day, cls.source, ignore_case=True):
            raise ValueError(f"the note does not say {day!r}; give the weekday it names")
        return day

    @field_validator("attendees")
    @classmethod
    def _names_from_note(cls, attendees: str) -> str:
        names = split_names(attendees)
        if not names:
            raise ValueError("no names: give every person who attends, as the note lists them")
        if len(set(names)) != len(names):
            raise ValueError("a name is given twice")
        if cls.source is not None and (missing := [n for n in names if not _occurs(n, cls.source)]):
            # After the last name the model sometimes adds one from the worked examples
            # (measured: "Paul Roy and Mei Chen" came back with "Li Wei" appended).
            raise ValueError(
                f"{', '.join(map(repr, missing))} does not occur in the note; give only the "
                "names it lists, copied exactly"
            )
        return attendees

    def to_meeting(self) -> Meeting:
        """The names split (the validators have checked each occurs in the note)."""
        return Meeting(topic=self.topic, day=self.day, attendees=split_names(self.attendees))


def _occurs(words: str, text: str, *, ignore_case: bool = False) -> bool:
    """``words`` occur in ``text`` as whole words ("Li" does not occur in "Lisa")."""
    flags = re.IGNORECASE if ignore_case else 0
    return re.search(rf"\b{re.escape(words)}\b", text, flags) is not None


def split_names(attendees: str) -> list[str]:
    """ "A, B and C" -> ["A", "B", "C"]."""
    return [n for n in (n.strip() for n in re.split(r",\s*|\s+and\s+", attendees)) if n]


SYSTEM = (
    "You read a note about a meeting and answer with JSON: the topic, the weekday, and the "
    "names of all the people who attend."
)


def _shot(note: str, **fields: str) -> list[dict[str, str]]:
    """A worked example as a user turn and the assistant's JSON answer (fields in schema order),
    validated against its own note."""
    answer = MeetingAnswer.for_text(note)(**fields)
    return [
        {"role": "user", "content": f"Note: {note}"},
        {"role": "assistant", "content": json.dumps(answer.model_dump())},
    ]


FEW_SHOT: list[dict[str, str]] = [
    *_shot(
        "On Monday, Ravi Patel, Emma Stone and Li Wei will review the budget.",
        topic="budget review",
        day="Monday",
        attendees="Ravi Patel, Emma Stone and Li Wei",
    ),
    *_shot(
        "Friday: hiring interview. Attending: Olga Ivanova, Sam Cole, Jo Park and Ben Ito.",
        topic="hiring interview",
        day="Friday",
        attendees="Olga Ivanova, Sam Cole, Jo Park and Ben Ito",
    ),
    *_shot(
        "Kim Berg and Ali Khan meet on Sunday about the office move.",
        topic="office move",
        day="Sunday",
        attendees="Kim Berg and Ali Khan",
    ),
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


def extract(
    text: str, *, client: Any = None, model: str | None = None, retries: int = 0
) -> StructuredResult[Meeting]:
    """The meeting described in ``text`` (``.value``), with the attempts it took: an answer
    that breaks a rule is sent back with the errors up to ``retries`` times."""
    result = openai_structured_call_result(
        client=client,
        model=model or os.environ.get("OSTRUCT_MODEL", "gpt-4o-mini"),
        output_schema=MeetingAnswer.for_text(text),
        messages=[
            {"role": "system", "content": SYSTEM},
            *FEW_SHOT,
            {"role": "user", "content": f"Note: {text}"},
        ],
        temperature=0,
        max_output_tokens=120,
        max_validation_retries=retries,
    )
    return dataclasses.replace(result, value=result.value.to_meeting())


def main() -> None:
    text = " ".join(sys.argv[1:]) or CASES[0][0]
    print(extract(text).value.model_dump_json(indent=2))


if __name__ == "__main__":
    main()
