"""The incremental parser gives exactly the one-shot parse under any chunking, keeps the partial
value in place, and discards broken values whole."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openai_structured.errors import StreamParseError
from openai_structured.streaming.json_parser import (
    JSONParseError,
    JSONStreamParser,
    ParsedItem,
    ParsedValue,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
documents = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)
containers = documents.filter(lambda d: isinstance(d, (list, dict)))


def encode(value: Any, draw_style: int) -> str:
    if draw_style == 0:
        return json.dumps(value)
    if draw_style == 1:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(value, indent=2)


def feed_split(parser: JSONStreamParser, text: str, cuts: list[int]) -> list[Any]:
    events: list[Any] = []
    previous = 0
    for cut in [*sorted(set(cuts)), len(text)]:
        events += parser.feed(text[previous:cut])
        previous = cut
    return events + parser.close()


@SETTINGS
@given(documents, st.integers(0, 2), st.lists(st.integers(0, 10_000), max_size=12))
def test_any_chunking_gives_json_loads(value: Any, style: int, cuts: list[int]) -> None:
    text = encode(value, style)
    cuts = [c % (len(text) + 1) for c in cuts]
    events = feed_split(JSONStreamParser(lenient=False), text, cuts)
    (done,) = [e for e in events if isinstance(e, ParsedValue)]
    assert done.value == json.loads(text)
    assert repr(done.value) == repr(json.loads(text))
    assert (done.start, done.end) == (0, len(text)) or text[done.start : done.end].strip()


@SETTINGS
@given(
    st.lists(containers, min_size=1, max_size=4),
    st.lists(
        st.sampled_from(["", " ", "Here is the JSON:\n", "```json\n", "\n```\n", "ok."]),
        min_size=5,
        max_size=5,
    ),
    st.lists(st.integers(0, 10_000), max_size=15),
)
def test_several_values_with_junk_between_come_out_one_by_one(
    values: list[Any], junk: list[str], cuts: list[int]
) -> None:
    text = junk[0] + "".join(json.dumps(v) + junk[(i + 1) % 5] for i, v in enumerate(values))
    cuts = [c % (len(text) + 1) for c in cuts]
    parser = JSONStreamParser()
    events = feed_split(parser, text, cuts)
    got = [e.value for e in events if isinstance(e, ParsedValue)]
    assert got == values
    assert parser.parse_errors == 0
    for event in events:
        assert json.loads(text[event.start : event.end]) == event.value


@SETTINGS
@given(containers, st.lists(st.integers(0, 10_000), max_size=10))
def test_item_events_match_a_post_order_walk_whatever_the_chunking(
    value: Any, cuts: list[int]
) -> None:
    text = json.dumps(value)
    whole = [
        e for e in feed_split(JSONStreamParser(items=True), text, []) if isinstance(e, ParsedItem)
    ]
    split = [
        e
        for e in feed_split(JSONStreamParser(items=True), text, [c % (len(text) + 1) for c in cuts])
        if isinstance(e, ParsedItem)
    ]
    assert split == whole
    for item in whole:
        target = value
        for step in item.path:
            target = target[step]
        assert target == item.value


def test_item_paths_at_nested_depths() -> None:
    parser = JSONStreamParser(items=True)
    text = '{"a": [{"b": [1, [2]]}, 3], "c": {"d": ["x"]}}'
    events = [e for c in text for e in parser.feed(c)]
    items = [(e.path, e.value) for e in events if isinstance(e, ParsedItem)]
    assert items == [
        (("a", 0, "b", 0), 1),
        (("a", 0, "b", 1, 0), 2),
        (("a", 0, "b", 1), [2]),
        (("a", 0), {"b": [1, [2]]}),
        (("a", 1), 3),
        (("c", "d", 0), "x"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        '"\\ud83d\\ude00 caf\\u00e9 \\"q\\" \\\\ \\/ \\b\\f\\n\\r\\t"',
        '"\\ud800x"',
        '"\\udc00\\ud800"',
        '"\\ud83d\\u0041"',
        '"\U0001f600"',
    ],
)
def test_escapes_and_surrogates_split_anywhere(text: str) -> None:
    doc = "[" + text + "]"
    expected = json.loads(doc)
    for a in range(len(doc) + 1):
        for b in range(a, len(doc) + 1):
            parser = JSONStreamParser(lenient=False)
            events = parser.feed(doc[:a]) + parser.feed(doc[a:b]) + parser.feed(doc[b:])
            events += parser.close()
            assert [e.value for e in events] == [expected], (a, b)


@pytest.mark.parametrize("number", ["0", "-0", "12", "-1.5e-3", "1E400", "3.25", "1e+2", "-0.0"])
def test_top_level_number_ends_only_at_a_delimiter_or_close(number: str) -> None:
    parser = JSONStreamParser(lenient=False)
    for ch in number:
        assert parser.feed(ch) == []
    (event,) = parser.close()
    assert repr(event.value) == repr(json.loads(number))
    parser = JSONStreamParser(lenient=False)
    assert [e.value for e in parser.feed(number + " ")] == [json.loads(number)]


@pytest.mark.parametrize("literal", ["true", "false", "null"])
def test_literals_split_anywhere(literal: str) -> None:
    doc = f'{{"k": {literal}}}'
    for cut in range(len(doc) + 1):
        parser = JSONStreamParser()
        events = parser.feed(doc[:cut]) + parser.feed(doc[cut:])
        assert [e.value for e in events] == [json.loads(doc)]


def test_deep_nesting_has_no_recursion_limit() -> None:
    depth = 50_000
    doc = "[" * depth + "1" + "]" * depth
    for chunk in (len(doc), 997):
        parser = JSONStreamParser(lenient=False)
        events = []
        for start in range(0, len(doc), chunk):
            events += parser.feed(doc[start : start + chunk])
        (event,) = events
        value = event.value
        for _ in range(depth - 1):
            value = value[0]
        assert value == [1]


def test_nan_and_infinity_are_not_json() -> None:
    for doc in ("[NaN]", "[Infinity]", "[-Infinity]", '{"a": NaN}'):
        with pytest.raises(JSONParseError):
            JSONStreamParser(lenient=False).feed(doc)


def test_broken_value_is_discarded_whole_and_parser_resyncs() -> None:
    parser = JSONStreamParser(items=True)
    events = parser.feed('Sure! {"a": [1, 2], "b": oops} then {"ok": true} ')
    values = [e.value for e in events if isinstance(e, ParsedValue)]
    assert values == [{"ok": True}]
    assert parser.parse_errors == 1
    assert parser.last_error is not None and parser.last_error.pos == 25
    assert parser.skipped > 0


def test_too_many_errors_raise_stream_parse_error() -> None:
    parser = JSONStreamParser(max_parse_errors=3)
    parser.feed("{x} [y] ")
    assert parser.parse_errors == 2
    with pytest.raises(StreamParseError) as info:
        parser.feed("{z}")
    assert info.value.attempts == 3
    assert isinstance(info.value.last_error, JSONParseError)


def test_partial_value_is_built_in_place_and_snapshot_adds_the_trailing_string() -> None:
    parser = JSONStreamParser()
    parser.defer = False  # token by token, so the live value shows every member at once
    parser.feed('{"title": "Hel')
    live = parser.value
    assert live == {}
    assert parser.snapshot() == {"title": "Hel"}
    parser.feed('lo", "tags": ["a", "b')
    assert parser.value is live  # same object, filled in place
    assert parser.snapshot() == {"title": "Hello", "tags": ["a", "b"]}
    assert parser.partial_string() == "b"
    parser.feed('c"], "n": 12')
    assert parser.snapshot() == {"title": "Hello", "tags": ["a", "bc"]}  # numbers wait
    snap = parser.snapshot()
    parser.feed("}")
    assert snap == {"title": "Hello", "tags": ["a", "bc"]}  # a snapshot is a copy
    assert parser.value is None


def test_snapshot_drops_a_cut_escape() -> None:
    parser = JSONStreamParser()
    parser.feed('["ab\\u00')
    assert parser.snapshot() == ["ab"]
    parser.feed("e9\\ud83d")
    assert parser.snapshot() == ["abé"]
    parser.feed("\\ude00")
    assert parser.snapshot() == ["abé\U0001f600"]


def test_truncated_value_is_noted_in_lenient_mode_and_raises_in_strict_mode() -> None:
    parser = JSONStreamParser()
    parser.feed('{"a": [1, 2')
    assert parser.close() == []
    assert parser.truncated
    strict = JSONStreamParser(lenient=False)
    strict.feed('{"a": [1, 2')
    with pytest.raises(JSONParseError):
        strict.close()


def test_work_is_linear_in_chunk_count_for_one_long_string() -> None:
    """One string fed in many small pieces must not be re-scanned per piece."""
    import time

    def run(n: int) -> float:
        parser = JSONStreamParser()
        parser.feed('{"s": "')
        start = time.process_time()
        for _ in range(n):
            parser.feed("abcd")
        parser.feed('"}')
        return time.process_time() - start

    run(1000)
    small, large = run(20_000), run(80_000)
    assert large < small * 8  # linear would be 4x; quadratic 16x


def test_snapshot_includes_a_deferred_small_container() -> None:
    parser = JSONStreamParser(items=True)
    parser.feed('{"rows": [' + "".join(f'{{"id": {i}}}, ' for i in range(20)))
    parser.feed('{"id": 20, "name": "Ad')  # small and unfinished: kept as text for now
    rows = [{"id": i} for i in range(20)]
    assert parser.snapshot() == {"rows": [*rows, {"id": 20, "name": "Ad"}]}
    events = parser.feed('a"}]}')
    assert [e.path for e in events if isinstance(e, ParsedItem)] == [("rows", 20)]
