"""JSONTestSuite: every y_ file parses exactly like json.loads under any chunking; every n_ file
is rejected as a parse error (never a crash, never a value); i_ files never crash."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from test_json_parser import lenient_reference

from openai_structured.streaming.json_parser import JSONParseError, JSONStreamParser, ParsedValue

SUITE = Path(__file__).resolve().parents[1] / "data" / "JSONTestSuite" / "test_parsing"
FILES = sorted(SUITE.glob("*.json"))


def parse_document(text: str, chunk: int) -> Any:
    """Strict single-document parse through the incremental parser, fed ``chunk`` chars at a
    time; raises JSONParseError unless the text is exactly one JSON value."""
    parser = JSONStreamParser(lenient=False)
    values = []
    for start in range(0, len(text), chunk):
        values += parser.feed(text[start : start + chunk])
    values += parser.close()
    done = [v for v in values if isinstance(v, ParsedValue)]
    if len(done) != 1:
        raise JSONParseError(f"expected one value, got {len(done)}", len(text))
    return done[0].value


def same(a: Any, b: Any) -> bool:
    """Equal including types and key order, floats nan-safe; iterative (deep documents)."""
    todo = [(a, b)]
    while todo:
        x, y = todo.pop()
        if type(x) is not type(y):
            return False
        if isinstance(x, float):
            if not ((math.isnan(x) and math.isnan(y)) or x == y):
                return False
        elif isinstance(x, list):
            if len(x) != len(y):
                return False
            todo.extend(zip(x, y, strict=True))
        elif isinstance(x, dict):
            if list(x) != list(y):
                return False
            todo.extend((x[k], y[k]) for k in x)
        elif x != y:
            return False
    return True


def test_suite_is_present() -> None:
    assert len(FILES) > 300


@pytest.mark.parametrize(
    "path", [p for p in FILES if p.name.startswith("y_")], ids=lambda p: p.name
)
def test_accepted_files_parse_like_json_loads(path: Path) -> None:
    text = path.read_bytes().decode("utf-8")
    expected = json.loads(text)
    for chunk in (1, 2, 3, 7, 1 << 20):
        assert same(parse_document(text, chunk), expected), chunk


@pytest.mark.parametrize(
    "path", [p for p in FILES if p.name.startswith("n_")], ids=lambda p: p.name
)
def test_rejected_files_raise_a_parse_error(path: Path) -> None:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return  # not UTF-8: rejected before parsing
    for chunk in (1, 3, 1 << 20):
        with pytest.raises(JSONParseError):
            parse_document(text, chunk)


@pytest.mark.parametrize(
    "path", [p for p in FILES if p.name.startswith("n_")], ids=lambda p: p.name
)
def test_rejected_files_in_lenient_mode_give_only_the_values_that_are_not_broken(
    path: Path,
) -> None:
    """In stream mode a broken value is discarded whole (``[3[4]]`` gives nothing, not ``[4]``):
    what comes out, whatever the chunking, is exactly what the rule gives (the reference finds
    each value's extent by counting brackets and keeps those that json.loads accepts)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return
    expected, errors = lenient_reference(text)
    for chunk in (1, 3, 1 << 20):
        parser = JSONStreamParser(max_parse_errors=None)
        events = []
        for start in range(0, len(text), chunk):
            events += parser.feed(text[start : start + chunk])
        events += parser.close()
        assert all(isinstance(event, ParsedValue) for event in events)
        assert same([event.value for event in events], expected), chunk
        for event in events:
            assert same(json.loads(text[event.start : event.end]), event.value)
        if errors is not None:
            assert parser.parse_errors == errors, chunk


@pytest.mark.parametrize(
    "path", [p for p in FILES if p.name.startswith("i_")], ids=lambda p: p.name
)
def test_implementation_defined_files_do_not_crash(path: Path) -> None:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return
    try:
        value = parse_document(text, 5)
    except JSONParseError:
        return
    try:
        expected = json.loads(text)
    except (ValueError, RecursionError):
        return
    assert same(value, expected)
