"""Whose value a text's value is, and which clause a yes/no mention is in: a customer's
phone is not the letterhead's, a follow-up's date not the visit's, and "Serving staff not
required" answers ``staff_required`` even where "staff lunch" comes first."""

from __future__ import annotations

import pytest

from openai_structured.local._bounds import caps_for, grammar_schema
from openai_structured.local._copying import PROPER, CopySource, copy_kind, sentinel_kind
from openai_structured.local._naming import distinct_labels


def _kinds(node: dict[str, str], names: list[str]) -> dict[str, str]:
    """Each sibling field's copied kind, with its distinct labels and its siblings'."""
    labels = distinct_labels(names)
    kinds = {}
    for name in names:
        others = tuple(w for other in names if other != name for w in labels[other])
        kind = copy_kind(node, name, labels[name], others)
        assert kind is not None
        kinds[name] = kind
    return kinds


# --- yes/no: the mention whose clause holds the subject ------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "truth"),
    [
        # The clause with most of the name wins over an earlier mention of one word.
        ("Staff lunch is at noon. Serving staff not required.", "staff_required", False),
        ("Staff lunch is not served. Serving staff required.", "staff_required", True),
        # The mention holding the whole subject, not the first of its first word.
        ("It was renewed twice; it cannot be renewed online.", "can_renew_online", False),
        # A negation earlier in the clause, or right after the subject.
        ("Covers day fishing but does not cover netting or night fishing.", "night_fishing", False),
        ("Priority boarding is not included, lounge access is included.", "lounge_access", True),
        (
            "Priority boarding is not included, lounge access is included.",
            "priority_boarding",
            False,
        ),
        ("Password given: no", "password_given", False),  # "given" says yes or no
        ("Spare key: no", "spare_key", False),
        # "but" starts a new clause: its negation is not the subject's.
        ("Parking is free but no pets are allowed.", "parking_free", True),
        # Participles that say yes or no are not the subject: "provided", "permitted".
        ("Towels provided. Pets permitted on request.", "towels_provided", True),
        ("Towels not provided.", "towels_provided", False),
    ],
)
def test_a_yes_no_answer_is_read_in_the_clause_of_its_subject(
    text: str, name: str, truth: bool | None
) -> None:
    assert CopySource(text).truth(name) is truth


def test_a_subject_whose_words_are_never_together_is_the_model_s_to_answer() -> None:
    text = "Padlocks are sold at reception for a small fee.\n\nOpening hours of the store: 9-5."
    assert CopySource(text).truth("padlock_at_store") is None
    assert CopySource("A padlock from the store is provided.").truth("padlock_at_store") is True


# --- dates: a label right after a sibling's belongs to the sibling ---------------------------


def test_a_follow_up_visit_is_the_follow_up_s_date_not_the_visit_s() -> None:
    kinds = _kinds({"type": "string", "format": "date"}, ["visit_date", "follow_up_date"])
    source = CopySource("Visit: 3 May 2024, routine check.\nFollow-up visit: 10 May 2024")
    assert source.values(kinds["visit_date"]) == ['"2024-05-03"']
    assert source.values(kinds["follow_up_date"]) == ['"2024-05-10"']


def test_a_form_s_label_is_the_only_label_of_its_line_s_date() -> None:
    kinds = _kinds({"type": "string", "format": "date"}, ["sent_date", "meeting_date"])
    source = CopySource("Re: meeting\nSent: 4 November 2024\nWe meet on 12 November 2024.")
    assert source.values(kinds["sent_date"]) == ['"2024-11-04"']
    assert source.values(kinds["meeting_date"]) == ['"2024-11-12"']


def test_a_nullable_date_s_labels_are_a_date_sibling_s() -> None:
    # ``["string", "null"]`` with a date format is a date: its label ("follow") is one the
    # visit's date leaves to it.
    text = "Visit: 3 May 2024, routine check.\nFollow-up visit: 10 May 2024"
    schema = {
        "type": "object",
        "properties": {
            "visit_date": {"type": "string", "format": "date"},
            "follow_up_date": {"type": ["string", "null"], "format": "date"},
        },
        "required": ["visit_date", "follow_up_date"],
    }
    out = grammar_schema(schema, caps_for(text), copy_from=CopySource(text))["properties"]
    assert sentinel_kind(out["visit_date"]["const"]) == "date//visit/follow"
    assert sentinel_kind(out["follow_up_date"]["anyOf"][0]["const"]) == "date//follow/visit"


# --- names: a shared word stays the label of the one field it names ------------------------


def test_a_hotel_name_is_labelled_by_hotel_and_its_contact_is_not() -> None:
    kinds = _kinds({"type": "string"}, ["hotel_name", "hotel_contact"])
    assert kinds["hotel_name"].split("/")[2] == "hotel"
    assert kinds["hotel_contact"].split("/")[2] == "contact"


# --- someone else's phone or email ----------------------------------------------------------


def _contact(name: str) -> str:
    kind = copy_kind({"type": "string"}, name)
    assert kind is not None
    return kind


@pytest.mark.parametrize(
    ("text", "name", "values"),
    [
        # The letterhead's number is the business's, not the patient's.
        (
            "FENWICK HEARING CENTRE · Tel 01632 960255\nPatient: Ann Lee, mobile 07700 900111",
            "patient_phone",
            ['"07700 900111"'],
        ),
        # The writer's, after a sign-off, is not the customer's.
        (
            "Dear Jo,\nWe called you on 07700 900111 today.\nKind regards,\nAmy\n07700 900999",
            "customer_phone",
            ['"07700 900111"'],
        ),
        # A line labelled for someone else ("Store contact:") is theirs.
        (
            "Hello\nStore contact: harwood@safekeep.example\nCustomer: Jo, jo@mail.example",
            "customer_email",
            ['"jo@mail.example"'],
        ),
        # An address at the business's own domain is the business's.
        (
            "FIXPOINT COMPUTER REPAIRS\nAsk jobs@fixpoint-repairs.example\nEmail: ann@mail.example",
            "customer_email",
            ['"ann@mail.example"'],
        ),
        # A line that names the party keeps its value, even in the letterhead's place.
        ("Customer phone 07700 900111\nThanks", "customer_phone", ['"07700 900111"']),
        # A label that only says how ("Mobile:") is no one else's.
        ("Booking for Jo\nMobile: 07700 900111", "customer_phone", ['"07700 900111"']),
    ],
)
def test_a_party_s_phone_or_email_is_not_someone_else_s(
    text: str, name: str, values: list[str]
) -> None:
    assert CopySource(text).values(_contact(name)) == values


def test_only_someone_else_s_numbers_leave_a_party_s_field_without_one() -> None:
    text = "SAFEKEEP STORAGE · Tel 01632 960255\nYour unit is ready.\nKind regards,\nAmy"
    kind = _contact("customer_phone")
    assert CopySource(text).values(kind) == []
    # A field that names no party takes any number the text has.
    assert CopySource(text).values(_contact("phone")) == ['"01632 960255"']


def test_a_text_of_one_line_has_no_letterhead() -> None:
    text = "VW Golf, 2018. Call Stefan on 0664 555 2871 or mail stefan.k@example.at."
    assert CopySource(text).values(_contact("seller_email")) == ['"stefan.k@example.at"']
    # Nor is a first line of sentences one: "We called you" is a letter's, not its heading's.
    text = "Dear Jo, your unit is ready. Call 07700 900111 to collect.\nThanks, Amy"
    assert CopySource(text).values(_contact("customer_phone")) == ['"07700 900111"']


# --- someone's name after a label: the label's first words ---------------------------------


@pytest.mark.parametrize(
    ("text", "starts"),
    [
        # A label whose first words are a number and an address labels no name.
        ("Salon: 01632 960913 - 22 Mill Lane, Carrowby", []),
        # A title or an opening quote comes before the name; the copy may start there or at it.
        ("Groomer: Ms Ada Finch, 2 Elm Row", ["Ms", "Ada"]),
        ('Vessel: "Sea Lavender" (berth 14)', ['"', "Sea"]),
    ],
)
def test_a_labelled_name_starts_at_the_label_s_first_words(text: str, starts: list[str]) -> None:
    source = CopySource(text)
    label = text.split(":")[0].lower()
    found = source._label_starts((label,), PROPER)
    assert [source.words[i][0] for i in found] == starts
    # A plain string may start anywhere on the labelled line.
    assert len(source.labelled_starts((label,))) > len(starts)


# --- someone the text speaks of but does not name -------------------------------------------


@pytest.mark.parametrize(
    ("text", "null"),
    [
        # The landlord is spoken of and no name is labelled or follows the word: null.
        ("Home: rented flat (landlord's written permission seen), no garden", True),
        # Named after its label, or after the word: a name to copy.
        ("Home: rented flat\nLandlord: Mr Ali Khan", False),
        ("Home: rented flat, landlord Ali Khan, no garden", False),
        # A name in the sentence that speaks of the landlord may be the landlord's.
        ("The flat is let by Ali Khan, the landlord.", False),
        # Not spoken of at all: the model's to answer (the name may be unlabelled).
        ("Home: rented flat, no garden\nSigned: Ali Khan", False),
    ],
)
def test_a_nullable_name_the_text_speaks_of_but_never_gives_is_null(text: str, null: bool) -> None:
    schema = {
        "type": "object",
        "properties": {
            "applicant": {"type": "string"},
            "landlord_name": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "required": ["applicant", "landlord_name"],
    }
    node = grammar_schema(schema, caps_for(text), copy_from=CopySource(text))["properties"]
    branches = node["landlord_name"].get("anyOf", [node["landlord_name"]])
    assert all(branch == {"type": "null"} for branch in branches) is null
