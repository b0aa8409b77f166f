"""Validation re-ask (``max_validation_retries``) against the embedded model, and the examples'
validators (issue 11, item 7).

The validator tests need no model: every expected answer in an example's ``CASES`` (and every
worked example) must pass that example's rules, and the wrong answers the model was measured
giving must not. The re-ask tests make four short model calls.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import openai
import pydantic
import pytest
from pydantic import BaseModel, Field, field_validator

from openai_structured import (
    ValidationError,
    openai_structured_call,
    openai_structured_call_result,
)
from openai_structured.local import LocalModelServer

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES_DIR))

import local_meeting  # noqa: E402
import local_person  # noqa: E402
import local_review  # noqa: E402

# --- the examples' validators accept every expected answer -------------------------------------


def _answer_class(module: Any) -> type[BaseModel]:
    return {
        local_person: local_person.Person,
        local_meeting: local_meeting.MeetingAnswer,
        local_review: local_review.Review,
    }[module]


def _as_answer(module: Any, text: str, expected: dict[str, Any]) -> dict[str, Any]:
    """An expected answer in the form the model fills in: attendees as one string the way the
    notes list them ("A, B and C"); the review's unscored ``rating_text`` as the review
    states the rating."""
    if module is local_meeting:
        names = expected["attendees"]
        joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        return {**expected, "attendees": joined}
    if module is local_review:
        stated = local_review.STATED_RATING.search(text)
        assert stated, text
        return {**expected, "rating_text": stated.group(0)}
    return expected


CASES = [
    pytest.param(module, text, expected, id=f"{module.__name__}-{i}")
    for module in (local_person, local_meeting, local_review)
    for i, (text, expected) in enumerate(module.CASES)
]


@pytest.mark.parametrize(("module", "text", "expected"), CASES)
def test_every_expected_answer_passes_the_examples_validators(
    module: Any, text: str, expected: dict[str, Any]
) -> None:
    answer = _answer_class(module).for_text(text).model_validate(_as_answer(module, text, expected))
    if module is local_meeting:
        assert answer.to_meeting().model_dump() == expected
    else:
        assert {k: getattr(answer, k) for k in expected} == expected


@pytest.mark.parametrize("module", [local_person, local_meeting, local_review])
def test_worked_examples_pass_and_the_per_input_class_sends_the_same_schema(module: Any) -> None:
    cls = _answer_class(module)
    shots = module.FEW_SHOT
    for user, assistant in zip(shots[::2], shots[1::2], strict=True):
        text = user["content"].split(": ", 1)[1]
        cls.for_text(text).model_validate_json(assistant["content"])
    # Validators change what is accepted, never what the model is asked for.
    assert cls.for_text("any text").model_json_schema() == cls.model_json_schema()


@pytest.mark.parametrize(
    ("module", "index", "wrong", "path"),
    [
        # Measured answers of Gemma 3 270M that break the examples' rules.
        pytest.param(local_person, 3, {"occupation": "chef"}, "occupation", id="job-not-said"),
        pytest.param(local_person, 0, {"age": 43}, "age", id="age-not-stated"),
        pytest.param(local_person, 1, {"name": "Kenji Satou"}, "name", id="name-not-copied"),
        pytest.param(
            local_meeting,
            1,
            {"attendees": "David Lee, Sara Kim and Li Wei"},
            "attendees",
            id="name-from-a-worked-example",
        ),
        pytest.param(local_meeting, 0, {"day": "Monday"}, "day", id="day-not-said"),
        pytest.param(local_review, 3, {"rating_text": "5 stars"}, "rating_text", id="not-copied"),
        pytest.param(local_review, 1, {"stars": 2}, "stars", id="stars-not-as-stated"),
        pytest.param(local_review, 2, {"sentiment": "negative"}, "sentiment", id="unfit"),
    ],
)
def test_the_validators_reject_answers_that_break_the_rules(
    module: Any, index: int, wrong: dict[str, Any], path: str
) -> None:
    text, expected = module.CASES[index]
    data = {**_as_answer(module, text, expected), **wrong}
    with pytest.raises(pydantic.ValidationError) as info:
        _answer_class(module).for_text(text).model_validate(data)
    assert [e["loc"] for e in info.value.errors()] == [(path,)]


# --- re-ask for real, on the embedded model ----------------------------------------------------


class Person(BaseModel):
    name: str = Field(description="The person's full name")
    age: int = Field(description="Age in years")


def _rejecting(reject: int) -> type[Person]:
    """``Person`` whose name validator rejects the first ``reject`` answers, whatever they say
    (the model cannot fix it), and accepts the rest."""
    seen: list[str] = []

    class Checked(Person):
        @field_validator("name")
        @classmethod
        def _not_yet(cls, name: str) -> str:
            seen.append(name)
            if len(seen) <= reject:
                raise ValueError(f"rejected by the test (answer {len(seen)})")
            return name

    return Checked


def _recording_client(server: LocalModelServer) -> tuple[Any, list[dict[str, Any]]]:
    """A client for ``server`` and the JSON body of every request it sends."""
    bodies: list[dict[str, Any]] = []

    def record(request: Any) -> None:
        bodies.append(json.loads(request.read()))

    http = openai.DefaultHttpxClient(trust_env=False, event_hooks={"request": [record]})
    return server.client(http_client=http), bodies


ASK: dict[str, Any] = {
    "system_prompt": "Extract the person's name and age as JSON.",
    "user_prompt": "Maria Lopez is 34 years old and lives in Madrid.",
    "temperature": 0,
    "max_output_tokens": 40,
}


@pytest.mark.local
def test_reask_sends_the_errors_and_runs_out_after_one_plus_retries_attempts(
    local_server: LocalModelServer,
) -> None:
    client, bodies = _recording_client(local_server)
    events: list[Any] = []
    with pytest.raises(ValidationError) as info:
        openai_structured_call(
            client=client,
            model=local_server.model_name,
            output_schema=_rejecting(reject=99),
            max_validation_retries=1,
            on_log=lambda event, level: events.append(event),
            **ASK,
        )
    error = info.value
    assert len(error.attempts) == 1 + 1
    assert all(isinstance(a, ValidationError) for a in error.attempts)
    assert [e["attempt"] for e in error.errors()] == [1, 2]
    assert all(e["path"] == "name" for e in error.errors())

    retries = [e for e in events if e.type == "retry"]
    assert len(retries) == 1
    assert retries[0].data["attempt"] == 1
    assert retries[0].data["max_validation_retries"] == 1
    assert "rejected by the test (answer 1)" in str(retries[0].data["error"])

    # The second request is the first one plus the model's answer and the errors.
    assert len(bodies) == 2
    first, second = bodies[0]["messages"], bodies[1]["messages"]
    assert second[: len(first)] == first
    answer, feedback = second[len(first) :]
    assert answer["role"] == "assistant"
    assert json.loads(answer["content"])["name"] == "Maria Lopez"
    assert feedback["role"] == "user"
    assert "name" in feedback["content"]
    assert "rejected by the test (answer 1)" in feedback["content"]


@pytest.mark.local
def test_an_answer_fixed_on_the_reask_is_returned_with_its_attempts(
    local_server: LocalModelServer,
) -> None:
    client, bodies = _recording_client(local_server)
    events: list[Any] = []
    result = openai_structured_call_result(
        client=client,
        model=local_server.model_name,
        output_schema=_rejecting(reject=1),
        max_validation_retries=2,
        on_log=lambda event, level: events.append(event),
        **ASK,
    )
    assert result.attempts == 2
    assert len(result.response_ids) == 2
    assert result.value.name == "Maria Lopez"
    assert result.usage.requests == 2
    assert [e.data["attempt"] for e in events if e.type == "retry"] == [1]
    assert len(bodies) == 2
