"""Valid every time, and fast: the embedded model's bounded grammar and its sampler (issue 15).

Three layers: the pure bounds (:mod:`openai_structured.local._bounds`, no extra needed), the
grammar and request shaping against llama-cpp-python itself (in this process, nothing patched
but the converter's rules), and the real server (one for the module). The sampler's own check
against llama-cpp-python's runs in a subprocess (``sampler_check.py``): installing it patches
``Llama`` for a whole process.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from local_support import grammar_admits, require_local_extra, run_check
from pydantic import BaseModel, Field

from openai_structured import (
    TokenLimitError,
    openai_structured_call,
    openai_structured_call_result,
)
from openai_structured.local import LocalModelServer
from openai_structured.local._bounds import (
    MAX_CHARS,
    MAX_ITEMS,
    MIN_CHARS,
    MIN_ITEMS,
    OBJECT_ITEMS,
    Caps,
    caps_for,
    grammar_schema,
    input_text,
    output_limit,
    safe_pattern,
    skeleton,
)
from openai_structured.local._server import server_command

SYSTEM = "Extract the requested information from the text."

# --- the bounds (pure) -----------------------------------------------------------------------


def test_caps_follow_the_input_and_stay_within_their_limits() -> None:
    assert caps_for("") == Caps(items=MIN_ITEMS, chars=MIN_CHARS)
    text = "Present: " + ", ".join(f"person{i}" for i in range(30)) + "."
    caps = caps_for(text)
    assert caps.items == 30  # 29 commas: one item more
    assert caps.chars == max(MIN_CHARS, len(text))
    huge = "a, b\n" * 5000
    assert caps_for(huge) == Caps(items=MAX_ITEMS, chars=MAX_CHARS)


def test_input_is_every_message_but_the_model_s_own_turns() -> None:
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": [{"type": "text", "text": "U1"}, {"type": "image_url"}]},
        {"role": "assistant", "content": '{"a": "an earlier answer"}'},
        {"role": "user", "content": "U2"},
    ]
    assert input_text(messages) == "S\nU1\nU2"


def test_lists_and_strings_are_capped_unless_the_schema_is_tighter() -> None:
    caps = Caps(items=10, chars=300)
    schema = {
        "type": "object",
        "properties": {
            "free": {"type": "string"},
            "short": {"type": "string", "maxLength": 20},
            "long": {"type": "string", "maxLength": 5000, "minLength": 2},
            "tags": {"type": "array", "items": {"type": "string"}},
            "few": {"type": "array", "items": {"type": "integer"}, "maxItems": 3},
            "many": {"type": "array", "items": {"type": "string"}, "minItems": 12},
            "kind": {"type": "string", "enum": ["a", "b"]},
            "day": {"type": "string", "format": "date"},
        },
        "required": ["free"],
    }
    out = grammar_schema(schema, caps)["properties"]
    assert out["free"] == {"type": "string", "minLength": 0, "maxLength": 300}
    assert out["short"]["maxLength"] == 20
    assert out["long"] == {"type": "string", "minLength": 2, "maxLength": 300}
    assert out["tags"]["maxItems"] == 10
    assert out["few"]["maxItems"] == 3
    assert out["many"]["minItems"] == out["many"]["maxItems"] == 12  # never below minItems
    assert out["kind"] == {"enum": ["a", "b"]}
    assert out["day"]["format"] == "date"
    assert schema["properties"]["free"] == {"type": "string"}  # the caller's schema is intact


def test_forms_the_converter_cannot_take_become_looser_ones_it_can() -> None:
    caps = Caps(items=10, chars=300)
    schema = {
        "$defs": {
            "Inner": {"type": "object", "properties": {"x": {"type": "integer"}}},
            "Root": {"$ref": "#/$defs/Inner"},
        },
        "$ref": "#/$defs/Root",
    }
    out = grammar_schema(schema, caps)
    # A root that is only a reference (a chain of them) is inlined: the converter cannot.
    assert out["type"] == "object" and "x" in out["properties"]
    nested = grammar_schema(
        {
            "type": "object",
            "properties": {
                "maybe": {"type": ["string", "null"], "maxLength": 9},
                "anything": {"description": "no type"},
                "remote": {"$ref": "https://example.com/x.json"},
                "merged": {"allOf": [{"type": "string"}, {"maxLength": 5}]},
                "code": {"type": "string", "pattern": r"^\d{4}$"},
                "loose": {"type": "string", "pattern": "contains"},
            },
        },
        caps,
    )["properties"]
    assert nested["maybe"] == {
        "anyOf": [{"type": "string", "minLength": 0, "maxLength": 9}, {"type": "null"}]
    }
    assert nested["anything"] == nested["remote"] == {"type": "value"}  # any JSON value
    assert nested["merged"] == {"type": "string", "minLength": 0, "maxLength": 5}
    assert nested["code"] == {"type": "string", "pattern": "^[0-9]{4}$"}
    assert nested["loose"]["maxLength"] == 300 and "pattern" not in nested["loose"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"^\d{4}-\d{2}$", "^[0-9]{4}-[0-9]{2}$"),
        (r"^[A-Z]{3}$", "^[A-Z]{3}$"),
        (r"^\w+\.\w+$", r"^[A-Za-z0-9_]+[\x2E][A-Za-z0-9_]+$"),
        (r"^[^@]+$", r'^[^@"\\\x00-\x1F\x7F]+$'),  # a negated class stays inside a string
        (r"^\(\d\)$", r"^\([0-9]\)$"),
        ("unanchored", None),
        (r"^(?=a)b$", None),
        (r"^\p{L}+$", None),
        (r"^a\\b$", None),
        ('^"quoted"$', None),
    ],
)
def test_patterns_are_made_safe_for_a_json_string_or_dropped(
    pattern: str, expected: str | None
) -> None:
    assert safe_pattern(pattern) == expected


def test_output_limit_grows_with_the_skeleton_and_the_input() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "kind": {"enum": ["short", "much longer value"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "when": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
    }
    assert json.loads(skeleton(schema)) == {
        "name": "",
        "kind": "much longer value",
        "tags": [""],
        "when": None,  # the longest branch: "null" is longer than ""
    }
    # A list of objects counts OBJECT_ITEMS items: each one writes its keys again.
    rows = {
        "type": "array",
        "items": {"type": "object", "properties": {"sku": {"type": "integer"}}},
    }
    assert json.loads(skeleton({"type": "object", "properties": {"rows": rows}})) == {
        "rows": [{"sku": 0}] * OBJECT_ITEMS
    }
    assert output_limit(skeleton_tokens=20, input_tokens=100) == 20 + 200 + 64
    assert output_limit(skeleton_tokens=20, input_tokens=200) > output_limit(
        skeleton_tokens=20, input_tokens=100
    )


def test_the_server_keeps_the_logits_of_the_last_token_only() -> None:
    command = server_command("/m.gguf", host="127.0.0.1", port=1)
    assert command[command.index("--logits_all") + 1] == "false"


# --- the grammar and the request, against llama-cpp-python ----------------------------------


def _admits(model: Any, gbnf: str, prefix: str, text: str) -> bool:
    """Does the grammar, after ``prefix``, admit the token(s) of ``text``?"""
    return grammar_admits(model, gbnf, text, prefix=prefix)


def test_llama_cpp_python_internals_are_where_the_pin_says(vocab_model: Any) -> None:
    """Fails loudly when llama-cpp-python moved something the server replaces: then update
    openai_structured/local/_decoding.py and the ``[local]`` pin in pyproject.toml."""
    from openai_structured.local._decoding import check_internals

    assert check_internals() == []


def test_a_string_admits_no_raw_control_character(vocab_model: Any) -> None:
    from openai_structured.local._decoding import to_gbnf

    caps = Caps(items=8, chars=40)
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    gbnf = to_gbnf(grammar_schema(schema, caps), caps)
    assert not _admits(vocab_model, gbnf, '{"a": "x', "\n")
    assert not _admits(vocab_model, gbnf, '{"a": "x', "\t")
    assert _admits(vocab_model, gbnf, '{"a": "x', "\\n")  # escaped: valid JSON
    assert _admits(vocab_model, gbnf, '{"a": "x', '\\u00e9"}')
    assert _admits(vocab_model, gbnf, '{"a": "', "x" * 40 + '"}')
    assert not _admits(vocab_model, gbnf, '{"a": "', "x" * 41)  # the cap
    # llama-cpp-python's own rule let them through:
    stock_gbnf = gbnf.replace(
        next(line for line in gbnf.splitlines() if line.startswith("char ::=")),
        r'char ::= [^"\\] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})',
    )
    assert _admits(vocab_model, stock_gbnf, '{"a": "x', "\n")


def test_lists_stop_at_the_cap_and_any_value_is_bounded_too(vocab_model: Any) -> None:
    from openai_structured.local._decoding import bound_repetitions, to_gbnf

    caps = Caps(items=3, chars=20)
    schema = {
        "type": "object",
        "properties": {"t": {"type": "array", "items": {"type": "integer"}}, "x": {}},
        "required": ["t", "x"],
    }
    gbnf = to_gbnf(grammar_schema(schema, caps), caps)
    assert bound_repetitions(gbnf, 7) == gbnf  # no unbounded * or + is left
    assert _admits(vocab_model, gbnf, '{"t": [1, 2', ", 3]")
    assert not _admits(vocab_model, gbnf, '{"t": [1, 2, 3', ",")
    assert _admits(vocab_model, gbnf, '{"t": [], "x": ', '["a", "b", "c"]}')
    assert not _admits(vocab_model, gbnf, '{"t": [], "x": ["a", "b", "c"', ",")


def test_the_request_gets_a_bounded_grammar_and_a_derived_max_tokens(vocab_model: Any) -> None:
    from openai_structured.local._decoding import shape_chat_request

    def count(text: str) -> int:
        return len(vocab_model.tokenize(text.encode(), add_bos=False, special=False))

    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Ann, 3."}]
    request = {"messages": messages, "response_format": {"type": "json_object", "schema": schema}}
    shaped = shape_chat_request(
        request, count_tokens=count, n_ctx=4096, parses=lambda g: True, copying=False
    )
    assert shaped["response_format"] is None
    assert "name-kv" in shaped["grammar"]._grammar
    bounded = grammar_schema(schema, caps_for(input_text(messages)))
    expected = output_limit(
        skeleton_tokens=count(skeleton(bounded)), input_tokens=count(input_text(messages))
    )
    assert shaped["max_tokens"] == expected
    assert expected < 150  # a short input, a short answer: not "until the context is full"
    # Copying values from the text (the default) changes the grammar, not the answer's
    # size: the skeleton counts the copy placeholder's text, a few tokens more at most.
    copying = shape_chat_request(request, count_tokens=count, n_ctx=4096, parses=lambda g: True)
    assert "copy-string" in copying["grammar"]._grammar
    assert expected <= copying["max_tokens"] <= expected + 16
    # The caller's own limit wins; a prompt that leaves no room for the limit gets none (the
    # server then stops at the end of the context rather than refusing the request).
    given = shape_chat_request(
        {**request, "max_tokens": 7}, count_tokens=count, n_ctx=4096, parses=lambda g: True
    )
    assert given["max_tokens"] == 7
    tight = shape_chat_request(request, count_tokens=count, n_ctx=60, parses=lambda g: True)
    assert tight["max_tokens"] is None
    # Requests without a schema's JSON mode, or with a grammar of their own, pass unchanged.
    free = {"messages": messages}
    assert shape_chat_request(free, count_tokens=count, n_ctx=4096, parses=bool) == free


def test_a_grammar_llama_cpp_rejects_is_a_clear_error_not_a_crash(vocab_model: Any) -> None:
    from openai_structured.local._decoding import GrammarError, shape_chat_request

    request = {
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_object", "schema": {"type": "object"}},
    }
    with pytest.raises(GrammarError, match="cannot follow this schema"):
        shape_chat_request(request, count_tokens=len, n_ctx=4096, parses=lambda g: False)


# --- the sampler: the same greedy answers as llama-cpp-python's, faster ---------------------


@pytest.mark.local
def test_grammar_sampler_gives_the_stock_greedy_output() -> None:
    """The correctness test of the speed-up: identical text on prompts whose answers take
    every path (first choice, top candidates, wider candidates, whole vocabulary). Also: the
    server's request defaults are greedy."""
    require_local_extra()
    report = run_check("sampler_check.py", timeout=600)
    for case in report["results"]:
        assert case["ours"] == case["stock"], case
    # A request without temperature / repeat_penalty is decoded greedily, without penalty.
    assert report["defaults"] == {"temperature": 0.0, "repeat_penalty": 1.0}
    counts = report["counts"]
    assert counts["first"] > 0 and counts["top"] > 0, counts
    assert counts["wide"] + counts["all"] > 0, counts
    # With a null bias no logit outweighs, the nullable city is null and the rest the same.
    biased = report["biased"]
    assert json.loads(biased["stock"])["city"] == "Valencia", biased
    assert json.loads(biased["ours"]) == {**json.loads(biased["stock"]), "city": None}, biased


# --- the real server -------------------------------------------------------------------------


class Poem(BaseModel):
    poem: str


class Tags(BaseModel):
    tags: list[str] = Field(description="Every tag in the text, each one as it is written")


class Release(BaseModel):
    year: str = Field(pattern=r"^\d{4}$")
    title: str


@pytest.mark.local
def test_a_multi_line_string_comes_back_as_valid_json(local_server: LocalModelServer) -> None:
    """Asked to copy a poem line by line, the model wrote raw line breaks inside the string
    under llama-cpp-python's grammar (measured: invalid JSON); now the answer is valid JSON.
    (The poem's string is now copied from the text: its line breaks come back as spaces. The
    ordinary string rule's refusal of raw control characters is tested above.)"""
    poem = openai_structured_call(
        client=local_server.client(),
        model=local_server.model_name,
        output_schema=Poem,
        system_prompt="Copy the poem exactly, line by line.",
        user_prompt="Roses are red,\nViolets are blue,\nSugar is sweet,\nAnd so are you.",
    )
    assert "Roses" in poem.poem


@pytest.mark.local
def test_a_looping_list_stops_at_the_cap_well_before_30_s(local_server: LocalModelServer) -> None:
    """Fifty repeats of one tag invite a loop: the list ends at the cap as valid JSON (or the
    derived limit cuts it off as TokenLimitError with the partial answer). Counted in tokens,
    which other jobs on the machine do not change: a few hundred at most, seconds at the ~35
    tokens/s of 2 cores, where the stock server would write until its 4,096-token context
    was full."""
    text = "Tags: " + " ".join(["sale"] * 50)
    started = time.perf_counter()
    try:
        result = openai_structured_call_result(
            client=local_server.client(),
            model=local_server.model_name,
            output_schema=Tags,
            system_prompt=SYSTEM,
            user_prompt=text,
        )
    except TokenLimitError as exc:
        assert exc.content and exc.content.startswith("{")
        assert exc.usage is not None and exc.usage["completion_tokens"] < 400
    else:
        assert len(result.value.tags) <= caps_for(SYSTEM + "\n" + text).items
        assert result.usage.completion_tokens < 400
    assert time.perf_counter() - started < 300  # a loaded machine: only a runaway fails this


@pytest.mark.local
def test_a_pattern_with_a_digit_class_is_followed_not_a_crash(
    local_server: LocalModelServer,
) -> None:
    """``^\\d{4}$`` made llama-cpp-python's grammar unparseable and its server segfault."""
    release = openai_structured_call(
        client=local_server.client(),
        model=local_server.model_name,
        output_schema=Release,
        system_prompt=SYSTEM,
        user_prompt="The album Blue Hours came out in 1998.",
        max_output_tokens=40,
    )
    assert len(release.year) == 4 and release.year.isdigit()
    assert local_server.running


@pytest.mark.local
def test_the_running_server_sends_a_derived_limit_and_keeps_one_row_of_logits(
    local_server: LocalModelServer,
) -> None:
    cmdline = Path(f"/proc/{local_server.pid}/cmdline")
    if cmdline.exists():
        argv = cmdline.read_bytes().split(b"\0")
        assert argv[argv.index(b"--logits_all") + 1] == b"false"
    client = local_server.client()
    schema = {"type": "object", "properties": {"words": {"type": "string"}}}
    response = client.chat.completions.create(
        model=local_server.model_name,
        messages=[{"role": "user", "content": "Write the word 'la' two thousand times."}],
        response_format={"type": "json_object", "schema": schema},
    )
    # No max_tokens was sent: the server derived one from the schema and this short input
    # (the stock server would have written until its 4,096-token context was full).
    assert response.usage.completion_tokens < 200
    if response.choices[0].finish_reason == "stop":
        json.loads(response.choices[0].message.content)
    else:
        assert response.choices[0].finish_reason == "length"
