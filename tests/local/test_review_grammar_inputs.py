"""Review of the grammar pipeline on odd inputs: texts and schemas that made it raise.

The pipeline is the server's (``_decoding.shape_chat_request``) without the model: a
``CopySource`` of the user's text, ``outside_lists``, ``grammar_schema``, ``to_gbnf`` and
``closed_choices``. An exception there is an HTTP 500 for a legitimate request, and a grammar
llama.cpp rejects is a 400. Each bug found has a test (its comment says what raised and why;
all are fixed); the property tests at the end mutate the task texts of
``tests/data/extraction`` and check the pipeline neither raises nor takes long. Pure, and
grammar checks on the bundled model's vocabulary only (no weights, no server).
"""

from __future__ import annotations

import itertools
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from local_support import grammar_admits, grammar_parses

from openai_structured.local._bounds import caps_for, grammar_schema, outside_lists
from openai_structured.local._choosing import closed_choices
from openai_structured.local._copying import CopySource

TASKS_DIR = Path(__file__).resolve().parents[1] / "data" / "extraction"
TASKS: list[tuple[str, str, dict[str, Any]]] = [
    (path.stem, data["text"], data["schema"])
    for path in sorted(TASKS_DIR.glob("*.json"))
    for data in [json.loads(path.read_text(encoding="utf-8"))]
]
#: The one task whose own grammar llama.cpp rejected (see its test below).
BROKEN_TASK = "t76_school_report_card"


# --- helpers ---------------------------------------------------------------------------------


def _object(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


def _list_of(item: dict[str, Any], key: str = "items") -> dict[str, Any]:
    return _object(**{key: {"type": "array", "items": item}})


def _pipeline(schema: Any, text: str) -> str:
    """The grammar the server makes for ``schema`` and a user's ``text`` (closed choices too)."""
    from openai_structured.local._decoding import to_gbnf

    caps = caps_for(text)
    whole = CopySource(text)
    source = outside_lists(schema, caps, whole) if whole.usable else None
    bounded = grammar_schema(schema, caps, copy_from=source)
    gbnf = to_gbnf(bounded, caps, source)
    closed_choices(bounded, source)
    return gbnf


def _undefined_rules(gbnf: str) -> set[str]:
    """The rule names ``gbnf`` uses but does not define (llama.cpp rejects such a grammar)."""
    defined = set(re.findall(r"^([\w-]+) ::=", gbnf, re.MULTILINE))
    bodies = "\n".join(line.split("::=", 1)[1] for line in gbnf.splitlines() if "::=" in line)
    bodies = re.sub(r'"(?:\\.|[^"\\])*"', " ", bodies)
    bodies = re.sub(r"\[(?:\\.|[^\]\\])*\]", " ", bodies)
    return set(re.findall(r"[A-Za-z][\w-]*", bodies)) - defined


def _task(name: str) -> tuple[str, dict[str, Any]]:
    return next((text, schema) for stem, text, schema in TASKS if stem == name)


# --- bugs: exceptions (HTTP 500) -------------------------------------------------------------


# Was a bug (found in review, now fixed): KeyError in CopySource._dated: _MONTHS[...lower()] of a
# re.IGNORECASE match ('APRİL' matches 'april' but lowers to 'apri\\u0307l'; also 'Apr\u0131l',
# 'Augu\u017ft')
@pytest.mark.parametrize(
    "text", ["DUE APRİL 5, 2024", "Due 5 Apr\u0131l 2024", "7 Augu\u017ft 2024"]
)
def test_a_month_that_matches_only_case_insensitively(text: str) -> None:
    _pipeline(_object(due={"type": "string", "format": "date"}), text)


# Was a bug (found in review, now fixed): KeyError in _word_number: _NUMBER_WORDS[...lower()] of
# a re.IGNORECASE match ('NİNE' and 'n\u0131ne' match 'nine' but do not lower to it)
@pytest.mark.parametrize(
    "text", ["NİNE BOXES", "n\u0131ne boxes", "\u017fix boxes", "SEVENTY-NİNE boxes"]
)
def test_a_number_word_that_matches_only_case_insensitively(text: str) -> None:
    _pipeline(_object(count={"type": "integer"}), text)


# Was a bug (found in review, now fixed): KeyError in CopySource._numbers_in:
# _NUMBER_WORDS[parts['w'].lower()] of a re.IGNORECASE match ('NİNE KG')
def test_a_number_word_with_a_unit_that_matches_only_case_insensitively() -> None:
    from openai_structured.local._copying import CopySource

    CopySource("Parcel: NİNE KG")._numbers_in("kg", integers=False)


# Was a bug (found in review, now fixed): AttributeError in _Sanitizer._branches (via
# _rows_array): an item property whose schema is `true`/`false` is not a Mapping
@pytest.mark.parametrize("extra", [True, False])
def test_a_boolean_property_schema_in_a_list_written_one_item_per_row(extra: bool) -> None:
    text = (
        "Contents:\n"
        "1. Handwoven cotton scarf x2 - value INR 2,400 - weight 0.30 kg\n"
        "2. Assorted spice packets x6 - value INR 1,150 - weight 0.65 kg\n"
        "3. Paperback books x3 - value INR 900 - weight 1.10 kg\n"
    )
    item = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "quantity": {"type": "integer"},
            "weight_kg": {"type": "number"},
            "extra": extra,
        },
        "required": ["name", "quantity"],
    }
    _pipeline(_list_of(item), text)


# Was a bug (found in review, now fixed): TypeError in _merge (via _Sanitizer._resolved): a $ref
# with siblings to a definition that is `true` spreads a bool ({**True})
def test_a_reference_with_siblings_to_a_boolean_definition() -> None:
    schema = {
        "type": "object",
        "properties": {"x": {"$ref": "#/$defs/X", "description": "anything"}},
        "required": ["x"],
        "$defs": {"X": True},
    }
    _pipeline(schema, "Order 12 widgets.")


# Was a bug (found in review, now fixed): OverflowError/ValueError in _bounds._count: int() of
# maxItems/maxLength Infinity or NaN (json.loads accepts both) is not caught
@pytest.mark.parametrize(
    "schema",
    [
        _object(tags={"type": "array", "items": {"type": "string"}, "maxItems": float("inf")}),
        _object(note={"type": "string", "maxLength": float("nan")}),
        _object(note={"type": "string", "minLength": float("inf")}),
    ],
    ids=["maxItems-inf", "maxLength-nan", "minLength-inf"],
)
def test_a_non_finite_bound(schema: dict[str, Any]) -> None:
    _pipeline(schema, "Order 12 widgets, 3 bolts.")


# --- bugs: grammars llama.cpp rejects (HTTP 400 for a valid request) ---------------------------


# Was a bug (found in review, now fixed): CopySource.rules: a row's cell string with labels
# starts at source._start(i, rules) with step 'w', but span_rules(cells=True) defines only 'c'
# rules
def test_a_table_row_text_field_named_like_a_column_heading(vocab_model: Any) -> None:
    text = (
        "Subject     Attainment         Effort (1-5)\n"
        "English     Expected           4\n"
        "Maths       Exceeding          5\n"
        "Science     Expected           3\n"
    )
    item = _object(subject={"type": "string"}, effort={"type": "integer"})
    gbnf = _pipeline(_list_of(item, "subjects"), text)
    assert not _undefined_rules(gbnf)
    assert grammar_parses(vocab_model, gbnf)


# Was a bug (found in review, now fixed): CopySource.rules: the one text field of ' - '-separated
# rows ('size M') starts at a 'w' rule the row's cell rules (span_rules(cells=True)) do not
# define
def test_a_row_text_field_named_by_a_word_of_the_row(vocab_model: Any) -> None:
    text = (
        "Order 1:\n"
        "1. Merino crew jumper, size M, colour slate, qty 1 - too small\n"
        "2. Waxed canvas hat, size L, qty 2 - torn brim\n"
    )
    item = _object(size={"type": "string"}, quantity={"type": "integer"})
    gbnf = _pipeline(_list_of(item), text)
    assert not _undefined_rules(gbnf)
    assert grammar_parses(vocab_model, gbnf)


# Was a bug (found in review, now fixed): the task's own grammar uses copy-at238-281-w54,
# undefined (CopySource.rules starts a labelled cell string at a 'w' rule, span_rules(cells=True)
# makes 'c' rules)
def test_the_school_report_task_gets_a_grammar_llama_cpp_parses(vocab_model: Any) -> None:
    text, schema = _task(BROKEN_TASK)
    gbnf = _pipeline(schema, text)
    assert not _undefined_rules(gbnf)
    assert grammar_parses(vocab_model, gbnf)


# Was a bug (found in review, now fixed): CopySource._numbers keeps non-ASCII digits (re's \\d):
# the integer rule is
@pytest.mark.parametrize("digits", ["١٢٣", "\uff11\uff12\uff13"])
def test_a_number_in_other_digits_is_copied_as_a_json_number(vocab_model: Any, digits: str) -> None:
    gbnf = _pipeline(_object(items={"type": "integer"}), f"Total: {digits} items")
    assert grammar_admits(vocab_model, gbnf, '{"items": 123}')
    assert not grammar_admits(vocab_model, gbnf, f'{{"items": {digits}}}')


# --- odd inputs that behave ------------------------------------------------------------------

ODD_LINES = [
    "0.00",
    "1,2",
    "12:60",
    "31/02/2024",
    "29 February 2023",
    "£",
    "x",
    "2x",
    "-",
    "→",
    "London ->",
    "١٢:٣٠ on ٣١/١٢/٢٠٢٤",
    "\uff11\uff12:\uff13\uff10 on \uff12\uff10\uff12\uff14-\uff11\uff12-\uff13\uff11",
    "😀 🎉",
    "\t\t",
    "",
    ":",
    "Label:",
    "Price: £",
    "- ",
    "* ",
    "1.",
    "1. \n2. \n3.",
    "!!!...---",
    "a | b | c\n1 | 2\n3 | 4 | 5 | 6",
    "Qty 0   thing   @ 0.00   = 0.00",
    "x" * 400,
    "24:00 - 25:99",
    "13 pm, 0 am, 7.60pm",
    "2024-00-10, 2024-13-45, 00/00/0000",
]

ODD_SCHEMAS: list[dict[str, Any]] = [
    _object(
        year={"type": "integer"},
        phone={"type": "string"},
        email={"type": "string"},
        price={"type": "number"},
        quantity={"type": "integer", "minimum": 1},
        position={"type": "integer"},
        start_time={"type": "string", "format": "time"},
        end_date={"type": "string", "format": "date"},
        origin={"type": "string"},
        destination={"type": "string"},
        currency={"type": "string"},
        unit_price={"anyOf": [{"type": "number"}, {"type": "null"}]},
        count={"type": "integer", "minimum": 0},
        when={"type": "string", "format": "date-time"},
        opens={"type": "string", "description": "Opening time, HH:MM"},
    ),
    {
        "$defs": {
            "Line": _object(
                position={"type": "integer"},
                name={"type": "string"},
                quantity={"anyOf": [{"type": "integer"}, {"type": "null"}]},
                unit_price={"type": "number"},
                start_time={"type": "string", "description": "HH:MM"},
                tags={"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
            )
        },
        **_object(
            lines={"type": "array", "items": {"$ref": "#/$defs/Line"}},
            notes={"type": "array", "items": {"type": "string"}},
            total={"anyOf": [{"type": "number"}, {"type": "null"}]},
        ),
    },
]


@pytest.mark.parametrize("schema", ODD_SCHEMAS, ids=["flat", "rows"])
def test_odd_lines_alone_and_in_pairs_do_not_raise(schema: dict[str, Any]) -> None:
    texts = [*ODD_LINES]
    texts += [f"{a}\n{b}" for a, b in itertools.pairwise(ODD_LINES)]
    texts += [line.replace("\n", "\r\n") + "\r\n" for line in ODD_LINES]
    for text in texts:
        assert not _undefined_rules(_pipeline(schema, text)), text


# --- properties: mutated task texts ----------------------------------------------------------

INSERTS = [
    "0.00",
    "1,2",
    "12:60",
    "31/02/2024",
    "£",
    "x",
    "2x",
    "-",
    "→",
    " ->",
    "١٢",
    "\uff11\uff12",
    "😀",
    "\t",
    "\r\n",
    "\n\n",
    ":",
    "Label:",
    "\n- ",
    "\n* ",
    "\n1. ",
    " | ",
    "€",
    "%",
    "00:00",
    "2024-13-45",
    "½",
    "²",
    "-0",
    "twelve",
    "70th",
    "1.234,56",
    "\u00a0",
    "\u200b",
]


@st.composite
def mutated_tasks(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    name, text, schema = draw(st.sampled_from([t for t in TASKS if t[0] != BROKEN_TASK]))
    for _ in range(draw(st.integers(1, 5))):
        op = draw(st.sampled_from(["insert", "delete", "swap", "crlf", "line"]))
        at = draw(st.integers(0, max(len(text), 1)))
        lines = text.split("\n")
        line = draw(st.integers(0, len(lines) - 1))
        if op == "insert":
            text = text[:at] + draw(st.sampled_from(INSERTS)) + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 12)) :]
        elif op == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[line], lines[other] = lines[other], lines[line]
            text = "\n".join(lines)
        elif op == "crlf":
            text = text.replace("\n", "\r\n")
        else:
            lines.insert(line, draw(st.sampled_from(["", "-", "*", "1.", ":", "Total:", "|||"])))
            text = "\n".join(lines)
    return name, text, schema


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_tasks())
def test_a_mutated_task_text_does_not_raise_nor_take_long(
    task: tuple[str, str, dict[str, Any]],
) -> None:
    _, text, schema = task
    started = time.monotonic()
    gbnf = _pipeline(schema, text)
    assert time.monotonic() - started < 5
    assert not _undefined_rules(gbnf)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(task=mutated_tasks())
def test_a_mutated_task_text_gets_a_grammar_llama_cpp_parses(
    vocab_model: Any, task: tuple[str, str, dict[str, Any]]
) -> None:
    _, text, schema = task
    assert grammar_parses(vocab_model, _pipeline(schema, text))


@pytest.mark.parametrize("name", [t[0] for t in TASKS if t[0] != BROKEN_TASK])
def test_every_other_task_gets_a_grammar_llama_cpp_parses(vocab_model: Any, name: str) -> None:
    text, schema = _task(name)
    assert grammar_parses(vocab_model, _pipeline(schema, text))
