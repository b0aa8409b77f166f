"""The embedded model's prompt for a structured request: a document to continue, with the
schema's fields (pure: no model needed)."""

from __future__ import annotations

import datetime
import json
from typing import Any, Literal, Optional

import pytest
from pydantic import BaseModel, Field

from openai_structured.local._prompting import (
    ANSWER_CUE,
    EXAMPLE,
    RULES,
    STOP,
    STYLE_ENV,
    Style,
    completion_prompt,
    field_guide,
    normalise_text,
    schema_of,
    style_from_environment,
)


class Vendor(BaseModel):
    name: str = Field(description="The seller's company name.")
    vat_number: Optional[str] = None  # noqa: UP045 (the form users write)


class Item(BaseModel):
    description: str
    quantity: int


class Invoice(BaseModel):
    number: str
    vendor: Vendor
    issued: datetime.date
    currency: Literal["GBP", "EUR"]
    items: list[Item]
    tags: list[Literal["paid", "late"]]
    total: float = Field(description="Total due,\n  tax included")
    po: Optional[str] = Field(default=None, description="Purchase order")  # noqa: UP045
    kind: Literal["invoice"] = "invoice"
    sent: datetime.datetime
    notes: list[str]
    lines: list[int]
    paid: bool


INVOICE_GUIDE = [
    "- number: text",
    "- vendor: object with",
    "  - name: text (The seller's company name)",
    "  - vat_number: text or null",
    "- issued: date (YYYY-MM-DD)",
    '- currency: one of "GBP", "EUR"',
    "- items: list of objects, each with",
    "  - description: text",
    "  - quantity: whole number",
    '- tags: list of values, each one of "paid", "late"',
    "- total: number (Total due, tax included)",
    "- sent: date and time (YYYY-MM-DDTHH:MM:SS)",
    "- notes: list of texts",
    "- lines: list of whole numbers",
    "- paid: true or false",
    # The optional fields last: llama.cpp's grammar has the answer write them after the
    # required ones, and the guide follows the order the answer is written in.
    "- po: text or null (Purchase order)",
    '- kind: always "invoice"',
]


# --- the field guide -------------------------------------------------------------------------


def test_the_guide_lists_every_field_in_answer_order_with_types_and_descriptions() -> None:
    assert field_guide(Invoice.model_json_schema()).splitlines() == INVOICE_GUIDE


def test_null_enum_and_list_wording_for_hand_written_schemas() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "seat": {"type": ["string", "null"]},
            "until": {"type": ["string", "null"], "format": "date"},
            "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "size": {"enum": ["S", "M", None]},
            "any": {"type": ["null"]},
            "at": {"type": "string", "format": "time"},
            "mail": {"type": "string", "format": "email"},
            "odd": {"type": "string", "format": "uri"},
            "days": {"type": "array", "items": {"type": "string", "format": "date"}},
            "flags": {"type": "array", "items": {"type": "boolean"}},
            "blobs": {"type": "array", "items": {}},
            "ref": {"$ref": "#/$defs/Place"},
        },
        "$defs": {"Place": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }
    assert field_guide(schema).splitlines() == [
        "- seat: text or null",
        "- until: date (YYYY-MM-DD) or null",
        "- maybe: whole number or null",
        '- size: one of "S", "M" or null',
        "- any: value or null",
        "- at: time (HH:MM:SS)",
        "- mail: email address",
        "- odd: text",
        "- days: list of dates (YYYY-MM-DD)",
        "- flags: list of true/false values",
        "- blobs: list of values",
        "- ref: object with",
        "  - city: text",
    ]


def test_style_can_leave_out_descriptions_and_the_word_text() -> None:
    schema = Invoice.model_json_schema()
    plain = field_guide(schema, Style(descriptions=False)).splitlines()
    assert plain[2] == "  - name: text"
    assert plain[10] == "- total: number"
    untyped = field_guide(schema, Style(text_type=False)).splitlines()
    assert untyped[0] == "- number"
    assert untyped[3] == "  - vat_number: text or null"  # "or null" still needs a noun


def test_no_guide_for_schemas_that_are_not_objects_and_a_bounded_one_for_big_ones() -> None:
    assert field_guide({"type": "array", "items": {"type": "string"}}) == ""
    assert field_guide({"type": "object"}) == ""
    cyclic: dict[str, Any] = {
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
        "$ref": "#/$defs/Node",
    }
    assert field_guide(cyclic).splitlines()[:2] == ["- next: object with", "  - next: object with"]
    many = {"type": "object", "properties": {f"f{i}": {"type": "string"} for i in range(100)}}
    lines = field_guide(many).splitlines()
    assert len(lines) == 61 and lines[-1] == "- ..." and lines[-2] == "- f59: text"
    deep: dict[str, Any] = {"type": "string"}
    for name in "edcba":
        deep = {"type": "object", "properties": {name: deep}}
    assert field_guide(deep).splitlines() == [
        "- a: object with",
        "  - b: object with",
        "    - c: object with",
        "      - d: object",
    ]


# --- the document ----------------------------------------------------------------------------

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
}
GUIDE = "- name: text\n- age: whole number"
MESSAGES = [
    {"role": "system", "content": "Extract the person.  "},
    {"role": "user", "content": "  Maria Lopez is 34.\n"},
]


def test_the_document_is_system_text_rules_fields_then_text_then_an_open_code_block() -> None:
    result = completion_prompt(MESSAGES, SCHEMA)
    assert result is not None
    prompt, stop = result
    assert prompt == (
        "Extract the person.\n\n"
        f"{RULES}\n\n"
        f"Fields:\n{GUIDE}\n\n"
        "Text:\nMaria Lopez is 34.\n\n"
        "JSON:\n```json\n"
    )
    assert prompt.endswith(ANSWER_CUE)
    assert stop == STOP == ["```", "<end_of_turn>"]
    assert stop is not STOP  # the caller may change its copy


@pytest.mark.parametrize(
    ("fields", "order"),
    [
        ("before", ["Fields:", "Text:"]),
        ("after", ["Text:", "Fields:"]),
        ("both", ["Fields:", "Text:", "Fields:"]),
        ("none", ["Text:"]),
    ],
)
def test_the_fields_go_where_the_style_says(fields: str, order: list[str]) -> None:
    result = completion_prompt(MESSAGES, SCHEMA, Style(fields=fields))
    assert result is not None
    headings = [line for line in result[0].splitlines() if line in ("Fields:", "Text:")]
    assert headings == order


def test_developer_messages_and_text_parts_count_and_rules_can_be_left_out() -> None:
    messages = [
        {"role": "developer", "content": [{"type": "text", "text": "Be exact."}]},
        {"role": "system", "content": "Extract."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Ann, "}, {"type": "text", "text": "3."}],
        },
    ]
    result = completion_prompt(messages, SCHEMA, Style(rules=False))
    assert result is not None
    assert result[0] == (
        f"Be exact.\n\nExtract.\n\nFields:\n{GUIDE}\n\nText:\nAnn, 3.\n\n{ANSWER_CUE}"
    )
    bare = completion_prompt([{"role": "user", "content": "Ann, 3."}], SCHEMA, Style(rules=False))
    assert bare is not None and bare[0].startswith("Fields:\n")


def test_the_worked_example_comes_first_as_a_closed_block_when_asked_for() -> None:
    result = completion_prompt(MESSAGES, SCHEMA, Style(example=True))
    assert result is not None
    prompt = result[0]
    answer = json.dumps(EXAMPLE["answer"], ensure_ascii=False) + "\n```\n\n"
    example_at = prompt.index(EXAMPLE["text"])
    assert example_at < prompt.index(answer) < prompt.index("Maria Lopez")
    assert prompt.count(ANSWER_CUE) == 2 and prompt.endswith(ANSWER_CUE)
    assert "- renewals_left: whole number or null" in prompt  # the example's own fields
    default = completion_prompt(MESSAGES, SCHEMA)
    assert default is not None and EXAMPLE["text"] not in default[0]


def test_a_re_ask_closes_the_answer_s_code_block_and_opens_a_new_one() -> None:
    messages = [
        *MESSAGES,
        {"role": "assistant", "content": '{"name": "Maria", "age": "34"}'},
        {"role": "user", "content": "age: must be an integer. Answer again."},
    ]
    result = completion_prompt(messages, SCHEMA)
    assert result is not None
    prompt = result[0]
    first = completion_prompt(MESSAGES, SCHEMA)
    assert first is not None
    assert prompt == (
        first[0]
        + '{"name": "Maria", "age": "34"}\n```\n\n'
        + "age: must be an integer. Answer again.\n\n"
        + ANSWER_CUE
    )
    assert prompt.count("Maria Lopez") == 1  # the text once; later user turns are as written
    # A conversation that ends on the model's answer still ends on an open block.
    ended = completion_prompt(messages[:3], SCHEMA)
    assert ended is not None
    assert ended[0].endswith('"34"}\n```\n\n' + ANSWER_CUE)


def test_no_document_without_an_object_schema_or_with_document_off() -> None:
    assert completion_prompt(MESSAGES, None) is None
    assert completion_prompt(MESSAGES, {"type": "array", "items": {}}) is None
    assert completion_prompt(MESSAGES, {"type": "object"}) is None
    assert completion_prompt(MESSAGES, SCHEMA, Style(document=False)) is None
    alone = completion_prompt([], SCHEMA)
    assert alone is not None
    assert alone[0] == f"{RULES}\n\nFields:\n{GUIDE}\n\n{ANSWER_CUE}"


# --- the style -------------------------------------------------------------------------------


def test_the_default_style_is_the_measured_choice() -> None:
    style = Style()
    assert (style.example, style.fields, style.copy_values, style.document) == (
        False,
        "before",
        True,
        True,
    )


def test_style_parse_reads_settings_over_the_defaults() -> None:
    assert Style.parse("") == Style()
    assert Style.parse(" , ") == Style()
    assert Style.parse("fields=after, example=true,copy_values=false") == Style(
        fields="after", example=True, copy_values=False
    )
    assert Style.parse("null_bias=1.5").null_bias == 1.5
    assert Style.parse("null_bias=0").null_bias == 0.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour=blue", "unknown or empty style setting 'colour=blue'"),
        ("example", "unknown or empty style setting 'example'"),
        ("fields=", "unknown or empty style setting 'fields='"),
        ("example=yes", "example takes true or false, not 'yes'"),
        ("document=True", "document takes true or false, not 'True'"),
        ("null_bias=high", "null_bias takes a number, not 'high'"),
    ],
)
def test_style_parse_names_a_bad_setting(text: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        Style.parse(text)
    assert str(raised.value) == message


def test_style_parse_refuses_an_unknown_fields_value() -> None:
    with pytest.raises(ValueError):
        Style.parse("fields=afer")


def test_the_style_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STYLE_ENV, raising=False)
    assert style_from_environment() == Style()
    monkeypatch.setenv(STYLE_ENV, "document=false")
    assert style_from_environment() == Style(document=False)
    monkeypatch.setenv(STYLE_ENV, "nonsense")
    with pytest.raises(ValueError):
        style_from_environment()


# --- the text as shown, and the schema of a request -----------------------------------------

DATED: dict[str, Any] = {
    "type": "object",
    "properties": {"day": {"type": "string", "format": "date"}, "total": {"type": "number"}},
}


def test_by_default_the_text_is_shown_with_plain_numbers_and_dates_as_written() -> None:
    text = "Paid 1,234.50 on 7 June 2024."
    # The grammar makes the model write 1234.50: the text shows it that way.
    assert normalise_text(text, DATED) == "Paid 1234.50 on 7 June 2024."
    result = completion_prompt([{"role": "user", "content": text}], DATED)
    assert result is not None and "Text:\nPaid 1234.50 on 7 June 2024.\n" in result[0]
    undated = {"type": "object", "properties": {"name": {"type": "string"}}}
    assert normalise_text(text, undated) == text  # no number field: as written
    assert normalise_text(text, DATED, Style(plain_numbers=False)) == text


def test_schema_of_reads_both_response_format_forms() -> None:
    schema = {"type": "object"}
    assert schema_of({"type": "json_object", "schema": schema}) is schema
    wrapped = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    assert schema_of(wrapped) is schema
    assert schema_of({"type": "json_object"}) is None
    assert schema_of({"type": "json_object", "schema": "not a schema"}) is None
    assert schema_of(None) is None
