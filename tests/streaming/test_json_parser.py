"""The incremental parser gives exactly the one-shot parse under any chunking, keeps the partial
value in place, and discards broken values whole."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openai_structured.errors import StreamParseError
from openai_structured.streaming import StreamBuffer
from openai_structured.streaming.json_parser import (
    JSONParseError,
    JSONStreamParser,
    ParsedItem,
    ParsedValue,
    _walk_iterative,
    _walk_recursive,
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


def splits(text: str, max_chunks: int = 3) -> list[list[str]]:
    """Every way to cut ``text`` into 1..``max_chunks`` non-empty chunks."""
    ways = [[text]]
    n = len(text)
    ways += [[text[:a], text[a:]] for a in range(1, n)]
    if max_chunks >= 3:
        ways += [[text[:a], text[a:b], text[b:]] for a in range(1, n) for b in range(a + 1, n)]
    return ways


def values_of(events: list[Any]) -> list[Any]:
    return [e.value for e in events if isinstance(e, ParsedValue)]


def buffer_values(chunks: list[str]) -> tuple[list[Any], int]:
    """Values a StreamBuffer returns for these chunks (``process_stream_chunk`` then ``close``
    until it has nothing more), and its parse error count."""
    buffer = StreamBuffer()
    got = [v for c in chunks if (v := buffer.process_stream_chunk(c)) is not None]
    while (v := buffer.close()) is not None:
        got.append(v)
    return got, buffer.parse_errors


def lenient_reference(text: str) -> tuple[list[Any], int | None]:
    """What lenient parsing of ``text`` must give, found without the incremental parser: the
    values, and the error count (None when it depends on how a value cut off by the end of the
    text would have gone on).

    Outside values, a value starts at each '{' or '['; it extends to the bracket that balances
    it (brackets inside strings do not count; mismatched ones count as closers). A value whose
    whole text ``json.loads`` accepts (NaN and Infinity refused) is returned; any other is one
    error, and discarded whole."""
    out: list[Any] = []
    errors = 0
    i, n = 0, len(text)
    while True:
        starts = [k for k in (text.find("{", i), text.find("[", i)) if k >= 0]
        if not starts:
            return out, errors
        start = min(starts)
        depth, j, in_string = 0, start, False
        while j < n:
            c = text[j]
            if in_string:
                if c == "\\":
                    j += 1
                elif c == '"':
                    in_string = False
            elif c == '"':
                in_string = True
            elif c in "{[":
                depth += 1
            elif c in "}]":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        if j >= n:
            return out, None  # cut off by the end: truncated or broken, the text cannot tell
        try:
            out.append(json.loads(text[start : j + 1], parse_constant=_no_constant))
        except ValueError:
            errors += 1
        i = j + 1


def _no_constant(name: str) -> Any:
    raise ValueError(name)


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


def test_nesting_up_to_the_limit_parses_and_deeper_is_a_parse_error() -> None:
    from openai_structured.streaming.json_parser import MAX_DEPTH

    ok = "[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH
    too_deep = "[" * 100_000 + "]" * 100_000  # a hostile answer
    for chunk in (len(ok), 997, 7):
        parser = JSONStreamParser(lenient=False)
        events = []
        for start in range(0, len(ok), chunk):
            events += parser.feed(ok[start : start + chunk])
        (event,) = events
        value = event.value
        for _ in range(MAX_DEPTH - 1):
            value = value[0]
        assert value == [1]
    for chunk in (len(too_deep), 997):
        parser = JSONStreamParser()
        events = []
        for start in range(0, len(too_deep), chunk):
            events += parser.feed(too_deep[start : start + chunk])
        assert events == []
        assert parser.parse_errors == 1
        assert f"deeper than {MAX_DEPTH}" in str(parser.first_error)
        strict = JSONStreamParser(lenient=False)
        with pytest.raises(JSONParseError, match="deeper than"):
            for start in range(0, len(too_deep), chunk):
                strict.feed(too_deep[start : start + chunk])


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


@pytest.mark.parametrize("chunks", splits("[3[4]]"), ids=repr)
def test_an_error_inside_a_value_discards_the_whole_value_in_any_chunking(
    chunks: list[str],
) -> None:
    """Issue 4's rule: `[3[4]]` is one broken value, so nothing of it comes out (not `[4]`)."""
    parser = JSONStreamParser(items=True)
    events = [e for c in chunks for e in parser.feed(c)] + parser.close()
    assert values_of(events) == []
    assert [e for e in events if isinstance(e, ParsedItem) and e.value == [4]] == []
    assert parser.parse_errors == 1
    assert parser.last_error is not None and parser.last_error.pos == 2
    assert not parser.truncated  # broken, not cut off


@pytest.mark.parametrize("chunks", splits("[3[4]]"), ids=repr)
def test_stream_buffer_returns_nothing_of_a_broken_value_in_any_chunking(
    chunks: list[str],
) -> None:
    assert buffer_values(chunks) == ([], 1)


@pytest.mark.parametrize("chunks", splits('[3[4]] {"a":1}'), ids=repr)
def test_the_value_after_a_broken_one_is_still_returned(chunks: list[str]) -> None:
    parser = JSONStreamParser()
    events = [e for c in chunks for e in parser.feed(c)] + parser.close()
    assert values_of(events) == [{"a": 1}]
    (event,) = events
    assert (event.start, event.end) == (7, 14)
    assert parser.parse_errors == 1
    assert buffer_values(chunks) == ([{"a": 1}], 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # brackets and quotes inside the broken value's strings do not end it
        ('{"a": oops, "b": "}]\\"{"} {"c": 1}', [{"c": 1}]),
        ('["x" "]", [1]] [2]', [[2]]),
        ('{"k": tru]} {"ok": 1}', [{"ok": 1}]),  # a mismatched bracket closes it too
        ('[1, 2 3, [4], {"a": [5]}] [6]', [[6]]),
        ('[{"a": 1} {"b": 2}] {"c": 3}', [{"c": 3}]),
        ('{"a": "bad \\x escape", "b": [1]} [7]', [[7]]),
    ],
)
def test_a_broken_value_ends_at_its_own_closing_bracket(text: str, expected: list[Any]) -> None:
    for chunk in (1, 2, 5, len(text)):
        parser = JSONStreamParser()
        events = feed_split(parser, text, list(range(chunk, len(text), chunk)))
        assert values_of(events) == expected, chunk
        assert parser.parse_errors == 1, chunk


FRAGMENTS = [
    "{", "}", "[", "]", ",", ":", " ", '"', "\\", '"a"', '"}"', '"[\\""', "1", "-2.5e3", "01",
    "true", "tru", "nul", "null", "x", "Here: ", "```json\n", '"k": ', "\\u00e9", "NaN",
]  # fmt: skip


@SETTINGS
@given(
    st.lists(
        st.sampled_from(FRAGMENTS) | containers.map(lambda v: json.dumps(v, ensure_ascii=False)),
        max_size=25,
    ),
    st.lists(st.integers(0, 10_000), max_size=12),
)
def test_any_text_in_any_chunking_gives_the_one_shot_parse_and_the_reference(
    pieces: list[str], cuts: list[int]
) -> None:
    """Broken values included: splitting never changes what comes out, and what comes out is
    what the rule says (every value not broken; nothing of a broken one)."""
    text = "".join(pieces)
    one_shot = JSONStreamParser(items=True, max_parse_errors=None)
    whole = feed_split(one_shot, text, [])
    split = JSONStreamParser(items=True, max_parse_errors=None)
    chunked = feed_split(split, text, [c % (len(text) + 1) for c in cuts])
    assert chunked == whole
    assert (split.parse_errors, split.skipped, split.truncated) == (
        one_shot.parse_errors,
        one_shot.skipped,
        one_shot.truncated,
    )
    expected, errors = lenient_reference(text)
    assert repr(values_of(whole)) == repr(expected)
    if errors is not None:
        assert one_shot.parse_errors == errors
        assert not one_shot.truncated


def test_giving_up_leaves_the_parser_usable_for_what_follows() -> None:
    parser = JSONStreamParser(max_parse_errors=1)
    with pytest.raises(StreamParseError):
        parser.feed("[1 [2]")
    assert values_of(parser.feed('] {"a": 1}')) == [{"a": 1}]  # the rest of [1 [2]] skipped


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
    assert parser.path == ()
    parser.feed('lo", "tags": ["a", "b')
    assert parser.value is live  # same object, filled in place
    assert parser.path == ("tags",)
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


def test_snapshot_of_a_string_that_will_be_an_error_is_still_text() -> None:
    parser = JSONStreamParser()
    parser.feed('["a\x01b')  # a raw control character: an error once the string closes
    assert parser.snapshot() == ["a\x01b"]
    parser = JSONStreamParser()
    parser.feed('["ok\\x\\y\\z')  # invalid escapes: nothing decodable
    assert parser.snapshot() == [""]


def test_item_walk_falls_back_to_its_own_stack_past_the_recursion_limit() -> None:
    """On Python >= 3.12 the C scanner nests deeper than Python frames may: the item events of
    such a value come from the iterative walk, identical to the recursive one."""
    import sys

    depth = sys.getrecursionlimit() + 100
    value: Any = ["leaf"]
    for _ in range(depth - 1):
        value = [value, 0]
    out: list[Any] = []
    JSONStreamParser(items=True)._walk(value, out)
    assert len(out) == 2 * depth - 1
    assert out[0] == ParsedItem((0,) * depth, "leaf")
    assert out[-1] == ParsedItem((1,), 0)
    assert [e.path for e in out[:3]] == [
        (0,) * depth,
        (0,) * (depth - 1),
        (0,) * (depth - 2) + (1,),
    ]


@SETTINGS
@given(containers, st.lists(st.sampled_from(["k", 0, 3]), max_size=3))
def test_iterative_and_recursive_item_walks_agree(value: Any, base: list[Any]) -> None:
    recursive: list[Any] = []
    iterative: list[Any] = []
    _walk_recursive(value, tuple(base), recursive)
    _walk_iterative(value, tuple(base), iterative)
    assert iterative == recursive


def test_max_parse_errors_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_parse_errors"):
        JSONStreamParser(max_parse_errors=0)


@pytest.mark.parametrize("number", ["1e", "-", "1.", "01"])
def test_an_invalid_top_level_number_ending_the_text_raises_in_strict_mode(number: str) -> None:
    parser = JSONStreamParser(lenient=False)
    assert parser.feed(number) == []
    with pytest.raises(JSONParseError, match="invalid number"):
        parser.close()


def test_an_invalid_number_cut_off_inside_a_value_is_an_error_in_lenient_mode() -> None:
    parser = JSONStreamParser()
    parser.feed("[1, 2-")
    assert parser.close() == []
    assert parser.parse_errors == 1
    assert not parser.truncated
