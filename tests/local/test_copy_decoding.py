"""The embedded model on values it must copy (issue 15), against the real server (one for the
module): dates and numbers come back in their JSON form, strings are runs of the text's words,
a list the model would repeat ends, and null stays possible.

Greedy decoding: the same request gets the same answer, so these are exact where the grammar
leaves the model no other choice, and say what it may do where it does not.
"""

from __future__ import annotations

import datetime
import re
from typing import Optional

import pytest
from pydantic import BaseModel, Field

from openai_structured import openai_structured_call, openai_structured_call_result
from openai_structured.local import LocalModelServer

pytestmark = pytest.mark.local

SYSTEM = "Extract the requested information from the text."


def _runs_of_words(text: str) -> str:
    """The text as copied spans are written: whitespace between words as one space."""
    return re.sub(r"\s+", " ", text)


class Booking(BaseModel):
    guest: str = Field(description="The guest's full name")
    arrival: datetime.date


class Payment(BaseModel):
    payer: str
    amount: float


class Meeting(BaseModel):
    present: list[str] = Field(description="Everyone present, each name once")


class Contact(BaseModel):
    name: str
    phone: Optional[str]  # noqa: UP045 (the form users write)


BOOKING_TEXT = "Booking confirmed for Priya Shah,\narriving on 7 June  2024 for two nights."


@pytest.mark.local
def test_a_written_date_comes_back_in_iso_form_and_a_name_as_a_run_of_words(
    local_server: LocalModelServer,
) -> None:
    booking = openai_structured_call(
        client=local_server.client(),
        model=local_server.model_name,
        output_schema=Booking,
        system_prompt=SYSTEM,
        user_prompt=BOOKING_TEXT,
    )
    # The grammar admits one date, the one the text writes: never an invented one.
    assert booking.arrival == datetime.date(2024, 6, 7)
    # Words of the text as written (a run of them: whitespace between words as one space).
    assert booking.guest in _runs_of_words(BOOKING_TEXT)
    assert booking.guest.startswith("Priya")


@pytest.mark.local
def test_a_number_with_separators_comes_back_as_that_number(
    local_server: LocalModelServer,
) -> None:
    text = "Kofi Mensah paid 1,234.50 EUR on 2 May."
    payment = openai_structured_call(
        client=local_server.client(),
        model=local_server.model_name,
        output_schema=Payment,
        system_prompt=SYSTEM,
        user_prompt=text,
    )
    # The text's numbers are 1234.50 and 2: the model may write only one of them, as digits.
    # (With a third, "invoice 88", this model prefers 88: its logits, not the grammar's.)
    assert payment.amount == 1234.5
    assert payment.payer in _runs_of_words(text)


@pytest.mark.local
def test_a_list_the_model_would_repeat_ends_instead_of_looping(
    local_server: LocalModelServer,
) -> None:
    text = "Present: Ann, Bob, Ann, Bob, Ann, Bob, Ann, Bob, Ann, Bob, Ann, Bob, Ann, Bob."
    result = openai_structured_call_result(
        client=local_server.client(),
        model=local_server.model_name,
        output_schema=Meeting,
        system_prompt=SYSTEM,
        user_prompt=text,
    )
    present = result.value.present
    assert set(present) <= {"Ann", "Bob"}
    # An item equal to an earlier one ends the list: at most that one repeat, right at the end.
    assert len(present) - len(set(present)) <= 1
    assert present[:-1] == list(dict.fromkeys(present[:-1]))
    assert result.usage.completion_tokens < 40


@pytest.mark.local
def test_a_nullable_string_may_be_null_though_the_text_has_words_to_copy(
    local_server: LocalModelServer,
) -> None:
    text = "Name: Lena Park. Phone: null."
    contact = openai_structured_call(
        client=local_server.client(),
        model=local_server.model_name,
        output_schema=Contact,
        system_prompt=SYSTEM,
        user_prompt=text,
    )
    assert contact.name == "Lena Park"
    # Copying admits the string "null" (a word of the text), and JSON's null stays allowed:
    # the model writes null.
    assert contact.phone is None


class Car(BaseModel):
    year: int = Field(description="Year of first registration")
    price: float = Field(description="Asking price")
    mileage_km: int


CAR_TEXT = (
    "2018 Volkswagen Golf 1.5 TSI Life - EUR 14,900\n\n"
    "Petrol, 6-speed manual, 86,500 km, metallic grey. Two previous owners."
)


PLAIN = "by_name=false,draft_keys=false"


@pytest.mark.local
def test_a_number_from_a_short_list_is_chosen_whole_not_by_its_first_digit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Token by token the model writes 14900 for the year too (the logits of the first digits
    # are within 0.1); chosen whole (Style.choose_whole, off by default: it costs time), each
    # value is the one the text gives for the field.
    from openai_structured.local._prompting import STYLE_ENV

    # by_name=false: the fields' names would narrow each copy to one number (_naming);
    # draft_keys=false: with the keys drafted, the model's context differs (_drafting).
    answers = {}
    for style in (PLAIN, PLAIN + ",choose_whole=true"):
        monkeypatch.setenv(STYLE_ENV, style)
        with LocalModelServer() as server:
            car = openai_structured_call(
                client=server.client(),
                model=server.model_name,
                output_schema=Car,
                system_prompt=SYSTEM,
                user_prompt=CAR_TEXT,
            )
        answers[style] = (car.year, car.price, car.mileage_km)
    assert answers[PLAIN + ",choose_whole=true"] == (2018, 14900.0, 86500)
    # What choosing whole changes:
    assert answers[PLAIN] != answers[PLAIN + ",choose_whole=true"]
