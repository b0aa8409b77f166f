"""How the sampler notices a repeating answer (issue 15): :mod:`openai_structured.local._repeats`
fed token ids and JSON text (pure), plus legitimate answers as the bundled model's tokenizer
splits them (vocabulary only, no weights).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from openai_structured.local._repeats import (
    BLOCK_PERIOD,
    HISTORY,
    LOOP_PERIOD,
    LOOP_RUN,
    ListRepeats,
    loop_continuation,
)

# Tokens that never repeat, to put in front of a loop.
LEAD = list(range(1000, 1030))


# --- loop_continuation -----------------------------------------------------------------------


@pytest.mark.parametrize("period", range(1, LOOP_PERIOD + 1))
def test_a_short_cycle_repeated_to_the_run_gives_the_token_that_continues_it(period: int) -> None:
    cycle = [7, 8, 9, 10][:period]
    run = (cycle * LOOP_RUN)[: LOOP_RUN - 1]  # one more token would make LOOP_RUN
    assert loop_continuation(LEAD + run) == cycle[(LOOP_RUN - 1) % period]
    # The continuation is the token after the run's last one, whatever the phase.
    shifted = (cycle * LOOP_RUN)[1:LOOP_RUN]
    assert loop_continuation(LEAD + shifted) == cycle[LOOP_RUN % period]


def test_a_four_token_cycle_is_a_loop_at_the_run_not_before() -> None:
    # A period of 4 is not caught by the block rule (2 x 8 tokens) before LOOP_RUN - 1 tokens.
    cycle = [7, 8, 9, 10]
    assert loop_continuation(LEAD + (cycle * 4)[: LOOP_RUN - 2]) is None
    assert loop_continuation(LEAD + (cycle * 4)[: LOOP_RUN - 1]) == 10


def test_one_token_repeated_is_a_loop_only_at_the_run() -> None:
    # Not a block written twice: a number may hold ten zeros ([5, 5, 5, 5, 5] is a list).
    assert loop_continuation(LEAD + [5] * 10) is None
    assert loop_continuation(LEAD + [5] * (LOOP_RUN - 2)) is None
    assert loop_continuation(LEAD + [5] * (LOOP_RUN - 1)) == 5


@pytest.mark.parametrize("period", [LOOP_PERIOD + 1, 12, BLOCK_PERIOD])
def test_a_block_written_twice_in_a_row_gives_its_first_token(period: int) -> None:
    block = list(range(100, 100 + period))
    assert loop_continuation(LEAD + block + block) == 100
    assert loop_continuation(LEAD + block + block[:-1]) is None  # not yet twice
    assert loop_continuation(LEAD + block + [1] + block) is None  # not in a row
    assert 2 * period <= HISTORY  # the sampler keeps enough history to see it


def test_a_block_longer_than_the_longest_period_is_not_a_loop() -> None:
    block = list(range(100, 100 + BLOCK_PERIOD + 1))
    assert loop_continuation(LEAD + block + block) is None


def test_short_or_varied_histories_are_not_loops() -> None:
    assert loop_continuation([]) is None
    assert loop_continuation([3]) is None
    assert loop_continuation(LEAD) is None
    assert loop_continuation([*LEAD, 1, 2, 1, 2, 1, 3, 1, 2, 1, 2, 1, 2, 1, 3, 1]) is None


def _toy_tokens(text: str) -> list[int]:
    """A word-and-punctuation tokenizer: one id per distinct piece."""
    ids: dict[str, int] = {}
    return [ids.setdefault(p, len(ids)) for p in re.findall(r"\w+|\s+|[^\w\s]", text)]


LEGIT = [
    '{"attendees": ["Ann Lee", "Bob Stone", "Chen Wu", "Dana Ross"], "topic": "roadmap"}',
    '{"items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 3}, {"sku": "C-3", "qty": 1}]}',
    '{"grid": [["a", "b"], ["a", "c"], ["b", "c"]], "total": 1234.5, "ok": true}',
    '{"quote": "He said \\"no\\", then \\"yes\\".", "path": "C:\\\\temp\\\\new"}',
    '{"notes": ["a, b, c", "[x]", "{y}", "a, b", "\\"a\\", \\"b\\""]}',
    '{"a": null, "b": null, "c": "x", "d": "x", "e": 1, "f": 2}',
]


@pytest.mark.parametrize("answer", LEGIT)
def test_legitimate_json_is_never_taken_for_a_loop(answer: str) -> None:
    tokens = _toy_tokens(answer)
    assert all(loop_continuation(tokens[:n]) is None for n in range(len(tokens) + 1))


def test_legitimate_json_in_the_model_s_own_tokens_is_never_taken_for_a_loop(
    vocab_model: Any,
) -> None:
    for answer in LEGIT:
        tokens = vocab_model.tokenize(answer.encode(), add_bos=False, special=False)
        loops = [n for n in range(len(tokens) + 1) if loop_continuation(tokens[:n]) is not None]
        assert loops == [], answer
    # The model's own runaway is one: a name written again and again (4 tokens a copy:
    # 'Luis', ' Ferreira', '",', ' "'; the list rule already ends it at the second copy).
    runaway = '{"names": ["Luis Ferreira"' + ', "Luis Ferreira"' * 4
    tokens = vocab_model.tokenize(runaway.encode(), add_bos=False, special=False)
    [close_and_comma] = vocab_model.tokenize(b'",', add_bos=False, special=False)
    assert loop_continuation(tokens[:-1]) == close_and_comma  # ... "Luis Ferreira[",]


# --- ListRepeats -----------------------------------------------------------------------------


def _flags(text: str) -> list[bool]:
    """``repeated`` after each character of ``text``, fed one at a time."""
    repeats = ListRepeats()
    flags = []
    for char in text:
        repeats.feed(char)
        flags.append(repeats.repeated)
    return flags


@pytest.mark.parametrize(
    "text",
    [
        '["Ann", "Bob", "Ann"',
        '{"present": ["Ann", "Bob", "Ann"',
        '{"p": [{"n": "A", "k": 1}, {"n": "A", "k": 1}',
        '[["a", "b"], ["a", "b"]',
        '["a\\\\", "a\\\\"',  # an escaped backslash ends the string
        '["say \\"hi\\"", "say \\"hi\\""',
        '["a, b", "a, b"',
        '["Ann" , "Bob" ,"Ann"  ',  # whitespace around items does not matter
    ],
)
def test_an_item_equal_to_an_earlier_one_of_its_list_is_a_repeat(text: str) -> None:
    repeats = ListRepeats()
    repeats.feed(text)
    assert repeats.repeated
    assert repeats.would_continue(",")
    assert repeats.would_continue(', "Chen"]')
    assert not repeats.would_continue("]")
    assert not repeats.would_continue("  ]}")


@pytest.mark.parametrize(
    "text",
    [
        '{"present": ["Ann", "Bob", "Chen"], "absent": ["Ann", "Bob"]}',  # lists are apart
        '{"a": "x", "b": "x", "c": "x"}',  # an object's values are not a list
        '[["a", "b"], ["a", "c"], ["b", "a"]]',  # nested lists, each distinct
        '[{"n": "A", "k": 1}, {"n": "A", "k": 2}, {"n": "B", "tags": ["A"]}]',
        '["say \\"hi\\"", "say \\"hi\\" again", "say"]',
        '["a\\\\", "a\\\\b", "a\\"", "a"]',
        '["a, b", "a", " b", "[", "]", "{", "}", "\\",", ","]',
        '{"rows": [[1, 1], [1, 2]], "ids": [1, 1, 1]}',  # numbers are never compared
    ],
)
def test_distinct_items_and_their_look_alikes_are_never_a_repeat(text: str) -> None:
    assert not any(_flags(text))
    repeats = ListRepeats()
    repeats.feed(text)
    assert not repeats.would_continue(",")


def test_would_continue_sees_an_item_ending_inside_the_token() -> None:
    repeats = ListRepeats()
    repeats.feed('{"present": ["Ann", "Bob", "Ann')  # inside the third item's string
    assert not repeats.repeated
    assert repeats.would_continue('",')
    assert repeats.would_continue('", "')
    assert not repeats.would_continue('"]')
    assert not repeats.would_continue('"')
    assert not repeats.would_continue("a,")  # "Anna, ..." is a new item: the comma is text
    assert not repeats.would_continue(" ,")  # still inside the string
    objects = ListRepeats()
    objects.feed('{"p": [{"n": "A"}, {"n": "A')
    assert objects.would_continue('"},')
    assert objects.would_continue('"} ,')
    assert not objects.would_continue('"}]')
    assert not objects.would_continue('"}')
    assert not objects.would_continue('B"},')


def test_would_continue_leaves_the_state_as_it_was() -> None:
    repeats = ListRepeats()
    repeats.feed('["Ann", "Ann')
    assert repeats.would_continue('",')
    assert not repeats.repeated
    repeats.feed('a", "Bob')  # "Anna": the probe above changed nothing
    assert not repeats.repeated
    repeats.feed('"')
    assert not repeats.repeated
    repeats.feed(', "Ann"')
    assert repeats.repeated


def test_the_repeat_is_over_once_the_list_ends_or_goes_on() -> None:
    repeats = ListRepeats()
    repeats.feed('{"a": ["x", "x"')
    assert repeats.repeated
    repeats.feed("]")
    assert not repeats.repeated
    repeats.feed(', "b": ["x"')
    assert not repeats.repeated  # a new list: its first item
    repeats.feed(', "x"')
    assert repeats.repeated
    repeats.feed(', "y"')  # written anyway (the grammar allowed nothing else)
    assert not repeats.repeated
