"""Render limits: every way a template could build something huge, loop for hours or compute a
million-digit number is refused with a typed error naming the limit and how to raise it.

Each attack here used to run (building 100-million-character strings or lists, or taking from
seconds to hours); the size checks happen before the value is built, so these tests are fast
and a subprocess test shows memory stays small while they run.
"""

from __future__ import annotations

import dataclasses
import json
import pprint
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2.utils import urlize

from openai_structured.templates import (
    DEFAULT_RENDER_LIMITS,
    MAX_DATA_DEPTH,
    RenderLimits,
    TemplateDataError,
    TemplateInputError,
    TemplateLimitError,
    TemplateSecurityError,
    TemplateSyntaxError,
    TemplateTimeoutError,
    create_environment,
    parse_json_spec,
    render_template,
    split_front_matter,
)
from openai_structured.templates import filters as f
from openai_structured.templates._limits import RenderState

BIG = "{% set s = 'x' * 9000000 %}"  # 9 M characters: allowed alone, not three times over

SIZE_ATTACKS = {
    "str.ljust": "{{ 'x'.ljust(10**8) }}",
    "str.rjust": "{{ 'x'.rjust(10**8) }}",
    "str.center": "{{ 'x'.center(10**8) }}",
    "str.zfill": "{{ 'x'.zfill(10**8) }}",
    "bytes.ljust": "{{ 'x'.encode().ljust(10**8) }}",
    "stored method": "{% set pad = 'x'.ljust %}{{ pad(10**8) }}",
    "format width": "{{ '{:>100000000}'.format(1) }}",
    "format precision": "{{ '{:.100000000f}'.format(1.0) }}",
    "format nested width": "{{ '{:>{}}'.format(1, 10**8) }}",
    "format repeated field": BIG + "{{ '{0}{0}{0}'.format(s) }}",
    "format_map": "{{ '{a:>100000000}'.format_map({'a': 1}) }}",
    "percent width": "{{ '%100000000s' % 'x' }}",
    "percent star width": "{{ '%*s' % (10**8, 'x') }}",
    "percent precision": "{{ '%.100000000f' % 1.0 }}",
    "percent repeated arg": BIG + "{{ '%s%s%s' % (s, s, s) }}",
    "percent mapping": BIG + "{{ '%(a)s%(a)s%(a)s' % {'a': s} }}",
    "format filter": "{{ '%100000000s'|format('x') }}",
    "center filter": "{{ 'x'|center(100000000) }}",
    "indent filter": "{{ ('x\\n' * 100000)|indent(1000) }}",
    "replace filter": "{{ ('x' * 10000)|replace('x', 'y' * 10000) }}",
    "replace method": "{{ ('x' * 10000).replace('x', 'y' * 10000) }}",
    "expandtabs": "{{ ('\\t' * 1000).expandtabs(1000000) }}",
    "translate": "{{ ('a' * 10000).translate({97: 'b' * 10000}) }}",
    "wordwrap wrapstring": "{{ ('x ' * 100000)|wordwrap(1, wrapstring='y' * 1000) }}",
    "concat ~ in a loop": (
        "{% set ns = namespace(s='x') %}{% for i in range(30) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
    ),
    "concat + in a loop": (
        "{% set ns = namespace(s='x') %}{% for i in range(30) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}"
    ),
    "list + in a loop": (
        "{% set ns = namespace(l=[1]) %}{% for i in range(30) %}"
        "{% set ns.l = ns.l + ns.l %}{% endfor %}"
    ),
    "list * in a loop": (
        "{% set ns = namespace(l=[1]) %}{% for i in range(30) %}"
        "{% set ns.l = ns.l * 2 %}{% endfor %}"
    ),
    # Two equal structures of 2**40 shared parts: comparing them visits every part (hours).
    "list literal doubling": (
        "{% set ns = namespace(a=[1], b=[1]) %}{% for i in range(40) %}"
        "{% set ns.a = [ns.a, ns.a] %}{% set ns.b = [ns.b, ns.b] %}{% endfor %}{{ ns.a == ns.b }}"
    ),
    "dict() doubling": (
        "{% set ns = namespace(a={}, b={}) %}{% for i in range(40) %}"
        "{% set ns.a = dict(x=ns.a, y=ns.a) %}{% set ns.b = dict(x=ns.b, y=ns.b) %}{% endfor %}"
        "{{ ns.a == ns.b }}"
    ),
    "string *": "{{ 'a' * 100000000 }}",
    "list *": "{{ [1] * 100000000 }}",
    "join filter": "{{ (['x' * 1000000] * 19)|join('-' * 1000000) }}",
    "join filter of shared lists": BIG + "{{ [[s], [s], [s]]|join }}",
    "join method": BIG + "{{ ''.join([s, s, s]) }}",
    "printing a shared list": BIG + "{{ [s, s, s] }}",
    "~ of a shared list": BIG + "{{ [s, s, s] ~ '' }}",
    "string filter": BIG + "{{ [s, s, s]|string }}",
    "upper filter of a list": BIG + "{{ [s, s, s]|upper }}",
    "tojson": BIG + "{{ [s, s, s]|tojson }}",
    "pprint": BIG + "{{ [s, s, s]|pprint }}",
    "table cells": BIG + "{{ table(['a'], [[s], [s], [s]]) }}",
    "table padding": "{{ table(['a'], [['x' * 100000]] + [['y']] * 1000) }}",
    "batch fill": "{{ [1]|batch(100000000, 'x')|list }}",
    "slice count": "{{ [1]|slice(100000000)|list }}",
    "sum of lists": "{{ ([[1] * 1000] * 10000)|sum(start=[]) }}",
    "set block of literals": (
        "{% set x %}{% for i in range(1000) %}" + "y" * 100000 + "{% endfor %}{% endset %}"
    ),
    "output of literals": "{% for i in range(1000) %}" + "y" * 100000 + "{% endfor %}",
    "macro output": (
        "{% macro m() %}{% for i in range(1000) %}" + "y" * 100000 + "{% endfor %}{% endmacro %}"
        "{{ m()|length }}"
    ),
}


@pytest.mark.parametrize("source", SIZE_ATTACKS.values(), ids=SIZE_ATTACKS.keys())
def test_oversized_value_is_refused_with_the_output_limit(source: str):
    started = time.monotonic()
    with pytest.raises(TemplateLimitError) as info:
        render_template(source)
    error = info.value
    assert error.limit == "max_output_size"
    assert error.value == DEFAULT_RENDER_LIMITS.max_output_size
    assert "20,000,000" in str(error) and "--template-limit max_output_size=N" in str(error)
    assert "RenderLimits(max_output_size=...)" in str(error)
    assert error.filename == "<template>"
    assert time.monotonic() - started < 5  # refused up front, not after building it


def test_limit_errors_are_security_errors_for_existing_callers():
    with pytest.raises(TemplateSecurityError):
        render_template("{{ 'x'.ljust(10**8) }}")


def test_nested_range_loops_stop_at_the_iteration_limit():
    source = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(TemplateLimitError) as info:
        render_template(source)
    assert info.value.limit == "max_loop_iterations"
    assert "1,000,000 iterations" in str(info.value)
    assert "--template-limit max_loop_iterations=N" in str(info.value)
    assert time.monotonic() - started < 5


def test_recursive_loops_count_their_iterations():
    tree = {"children": []}
    for _ in range(5):
        tree = {"children": [tree] * 10}  # 10**5 nodes when walked
    source = "{% for node in [tree] recursive %}{{ loop(node.children) }}{% endfor %}"
    with pytest.raises(TemplateLimitError) as info:
        render_template(source, {"tree": tree}, limits=RenderLimits(max_loop_iterations=1000))
    assert info.value.limit == "max_loop_iterations"


def test_iteration_limit_counts_all_loops_of_the_render_together():
    source = "{% for i in range(600) %}{% endfor %}{% for i in range(600) %}{% endfor %}"
    render_template(source, limits=RenderLimits(max_loop_iterations=1200))
    with pytest.raises(TemplateLimitError, match="max_loop_iterations"):
        render_template(source, limits=RenderLimits(max_loop_iterations=1000))


@pytest.mark.parametrize(
    "source",
    [
        "{{ range(1000001) }}",
        "{{ range(10**100) }}",
        "{% for i in range(0, 10**9, 2) %}{% endfor %}",
    ],
)
def test_range_is_capped(source: str):
    with pytest.raises(TemplateLimitError, match="range too big") as info:
        render_template(source)
    assert info.value.limit == "max_range"


@pytest.mark.parametrize(
    "source",
    [
        "{{ 10 ** 100000 }}",
        "{{ 9 ** 999999 }}",
        "{{ 2 ** (9 ** 9) }}",
        "{{ 2 ** (10 ** 400) }}",
        "{% set ns = namespace(n=10) %}{% for i in range(40) %}"
        "{% set ns.n = ns.n * ns.n %}{% endfor %}",
        "{% set ns = namespace(n=7 ** 4000) %}{{ ns.n * ns.n }}",
        "{% set ns = namespace(n=2 ** 14000) %}{% for i in range(1000) %}"
        "{% set ns.n = ns.n + ns.n %}{% endfor %}",
    ],
)
def test_big_integer_arithmetic_is_refused_at_the_digit_limit(source: str):
    started = time.monotonic()
    with pytest.raises(TemplateLimitError) as info:
        render_template(source)
    assert info.value.limit == "max_int_digits"
    assert "4,300 digits" in str(info.value)
    assert time.monotonic() - started < 2


def test_integer_arithmetic_within_the_limit_works(render: Any):
    assert render("{{ 2 ** 64 }} {{ (10 ** 40) // 10 ** 39 }} {{ 7 * 6 }}") == (
        "18446744073709551616 10 42"
    )


def test_deadline_stops_a_long_render_with_a_timeout_error():
    source = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    limits = RenderLimits(timeout=0.3, max_loop_iterations=10**12)
    started = time.monotonic()
    with pytest.raises(TemplateTimeoutError) as info:
        render_template(source, limits=limits)
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 3
    assert info.value.limit == "timeout" and info.value.value == 0.3
    assert "--template-timeout SECONDS" in str(info.value)
    assert "RenderLimits(timeout=...)" in str(info.value)


def test_deadline_covers_recursion_through_macros():
    source = (
        "{% macro m(n) %}{% if n %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(40) }}"
    )
    with pytest.raises(TemplateTimeoutError):
        render_template(source, limits=RenderLimits(timeout=0.3))


def test_deadline_covers_the_system_prompt_too():
    source = (
        '---\nsystem_prompt: "{% for i in range(100000) %}{% for j in range(100000) %}'
        '{% endfor %}{% endfor %}"\n---\nbody'
    )
    limits = RenderLimits(timeout=0.3, max_loop_iterations=10**12)
    with pytest.raises(TemplateTimeoutError) as info:
        render_template(source, limits=limits)
    assert "system_prompt" in str(info.value.filename)


def test_no_deadline_when_timeout_is_none():
    assert RenderLimits(timeout=None).timeout is None
    render_template("{% for i in range(1000) %}{% endfor %}", limits=RenderLimits(timeout=None))


def test_build_budget_bounds_many_values_that_are_each_allowed():
    source = "{% for i in range(30) %}{% set x = 'x' * 9000000 %}{% endfor %}"
    with pytest.raises(TemplateLimitError) as info:
        render_template(source)
    assert info.value.limit == "max_build_size"
    assert "200,000,000" in str(info.value)
    render_template(source, limits=RenderLimits(max_build_size=300_000_000))


def test_raising_a_limit_allows_what_it_refused():
    source = "{{ 'x'.ljust(30000000)|length }}"
    with pytest.raises(TemplateLimitError):
        render_template(source)
    bigger = RenderLimits(max_output_size=40_000_000)
    assert render_template(source, limits=bigger).text == "30000000"


def test_environment_limits_apply_to_its_templates():
    env = create_environment(limits=RenderLimits(max_output_size=100))
    with pytest.raises(TemplateLimitError):
        env.from_string("{{ 'x' * 101 }}").render()
    with pytest.raises(TemplateLimitError):
        render_template("{{ 'x' * 101 }}", environment=env)
    assert env.from_string("{{ 'x' * 100 }}").render() == "x" * 100
    assert "".join(env.from_string("{% for i in range(3) %}{{ i }}{% endfor %}").generate()) == (
        "012"
    )
    with pytest.raises(TemplateLimitError):
        "".join(env.from_string("{% for i in range(200) %}x{% endfor %}").generate())


def test_render_limits_reject_invalid_values():
    for bad in ({"timeout": 0}, {"timeout": -1}, {"max_output_size": 0}, {"max_range": True}):
        with pytest.raises(ValueError, match="RenderLimits"):
            RenderLimits(**bad)


def test_with_specs_parses_the_cli_form():
    limits = DEFAULT_RENDER_LIMITS.with_specs(
        ["max_loop_iterations=5_000_000", "max-output-size=1e8", "timeout=0", "max_range=10"]
    )
    assert limits == RenderLimits(
        timeout=None, max_output_size=10**8, max_loop_iterations=5_000_000, max_range=10
    )
    assert DEFAULT_RENDER_LIMITS.with_specs(["timeout=2.5"]).timeout == 2.5
    for bad in ["nope=1", "max_range", "max_range=ten", "max_range=0", "max_range=1.5"]:
        with pytest.raises(TemplateInputError, match="--template-limit"):
            DEFAULT_RENDER_LIMITS.with_specs([bad])


def test_docs_list_every_limit_with_its_default():
    doc = (Path(__file__).parents[2] / "docs" / "templates.md").read_text()
    section = doc.split("## Limits", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip(" `"): line for line in section.splitlines() if "| `" in line}
    for field in dataclasses.fields(RenderLimits):
        assert field.name in rows, field.name
        default = getattr(DEFAULT_RENDER_LIMITS, field.name)
        shown = "10 seconds" if field.name == "timeout" else f"{default or 200_000_000:,}"
        assert shown in rows[field.name], field.name
    assert "--template-timeout SECONDS" in section and "--template-limit NAME=VALUE" in section


# --- normal templates keep working --------------------------------------------------------


def test_loops_keep_their_loop_variable(render: Any):
    source = (
        "{% for a, b in pairs %}{{ loop.index }}/{{ loop.length }}{{ '.' if loop.last }}"
        "{{ a }}{{ b }} {% endfor %}|{% for x in gen %}{{ loop.length }}{% endfor %}"
    )
    assert render(source, pairs=[(1, 2), (3, 4)], gen=(i for i in range(2))) == ("1/212 2/2.34 |22")


def test_literals_filters_and_formatting_give_the_same_output(render: Any):
    source = (
        "{{ [1, (2,), {'a': 'b'}] }}|{{ (1, 2) }}|{{ 'a' ~ 1 ~ [2] }}|{{ '%s-%05d-%r' % ('a', 3, "
        "'q') }}|{{ '{0}{x!r:>4}'.format(1, x='q') }}|{{ [1, 2]|join(',') }}|{{ [[1], [2]]|sum("
        "start=[]) }}|{{ 'ab cd'|wordwrap(2) }}|{{ [1, 2, 3]|batch(2, 0)|list }}|{{ [3, 1]|sort"
        "|list }}|{{ 'x'|center(5) }}|{{ 'a\\nb'|indent(2) }}|{{ {'a': 1}.items() }}"
    )
    assert render(source) == (
        "[1, (2,), {'a': 'b'}]|(1, 2)|a1[2]|a-00003-'q'|1 'q'|1,2|[1, 2]|ab\ncd|[[1, 2], [3, 0]]"
        "|[1, 3]|  x  |a\n  b|dict_items([('a', 1)])"
    )


def test_autoescape_blocks_still_escape(render: Any):
    source = "{% autoescape true %}{{ '<b>' ~ x }}|{{ [x]|join }}{% endautoescape %}"
    assert render(source, x="&") == "&lt;b&gt;&amp;|&amp;"


def test_pprint_matches_pformat(render: Any):
    data = {"key": list(range(30)), "nested": [{"a": "b" * 50}] * 3}
    assert render("{{ d|pprint }}", d=data) == pprint.pformat(data)


def test_urlize_in_pieces_matches_urlize_on_the_whole_text(render: Any):
    text = " ".join(f"see www.example{i}.com, (mail a{i}@x.org) now\n" for i in range(8000))
    assert len(text) > 200_000
    assert render("{{ t|urlize }}", t=text) == urlize(text, rel="noopener")


def test_wordwrap_of_a_5_mb_word_is_fast_and_right(render: Any):
    started = time.monotonic()
    out = render("{{ s|wordwrap(1) }}", s="x" * 5_000_000)
    assert time.monotonic() - started < 5
    assert out == "\n".join("x" * 5_000_000)


def test_wordwrap_of_long_hyphenated_words_matches_textwrap_and_is_linear(render: Any):
    small = "ab-" * 2000 + "x" * 3000 + " tail " + "-x" * 500
    assert render("{{ s|wordwrap(7) }}", s=small) == "\n".join(textwrap.wrap(small, 7))
    big = "ab-" * 200_000 + "x" * 300_000
    started = time.monotonic()
    out = render("{{ s|wordwrap(7) }}", s=big)
    assert time.monotonic() - started < 10
    assert out.replace("\n", "") == big
    assert all(len(line) <= 7 for line in out.split("\n"))


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet="ab- \t\n", max_size=120),
    width=st.integers(min_value=1, max_value=12),
    break_long=st.booleans(),
    hyphens=st.booleans(),
)
def test_wordwrap_gives_textwraps_output(text: str, width: int, break_long: bool, hyphens: bool):
    env = create_environment()
    wrapped = env.filters["wordwrap"]
    context = env.from_string("").new_context()
    expected = "\n".join(
        "\n".join(
            textwrap.wrap(
                line,
                width=width,
                expand_tabs=False,
                replace_whitespace=False,
                break_long_words=break_long,
                break_on_hyphens=hyphens,
            )
        )
        for line in text.splitlines()
    )
    assert wrapped(context, text, width, break_long, None, hyphens) == expected


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(value=_JSONISH)
def test_measured_text_size_is_the_real_size(value: Any):
    state = RenderState(DEFAULT_RENDER_LIMITS)
    assert state.text_size(value, mode="repr") == len(repr(value))
    assert state.text_size(value) == len(str(value))
    for indent in (None, 2):
        assert state.json_size(value, indent) >= len(
            json.dumps(value, indent=indent, ensure_ascii=False)
        )


def test_shared_structure_is_measured_once_per_object():
    state = RenderState(DEFAULT_RENDER_LIMITS)
    value: list[Any] = [1]
    for _ in range(60):  # 2**60 items when expanded
        value = [value, value]
    started = time.monotonic()
    assert state.data_size(value) == DEFAULT_RENDER_LIMITS.max_output_size + 1
    assert state.text_size(value) == DEFAULT_RENDER_LIMITS.max_output_size + 1
    assert time.monotonic() - started < 1


def test_filters_called_from_python_apply_the_value_limits():
    shared = ["x" * 9_000_000] * 3
    with pytest.raises(TemplateLimitError):
        f.to_json(shared)
    with pytest.raises(TemplateLimitError):
        f.table(["a"], [[s] for s in shared])


# --- data in front matter, -J and from_json ----------------------------------------------


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (_nested(3000), "nested 3,000 levels deep"),
        ('{"a": ' + _nested(100_000) + "}", "nested 100,001 levels deep"),
        ("9" * 5001, "5,001 digits"),
        ("[" + "9" * 5001 + "]", "5,001 digits"),
        ("-" + "9" * 5001, "5,001 digits"),
    ],
)
def test_front_matter_data_over_the_limits_is_a_syntax_error(value: str, message: str):
    with pytest.raises(TemplateSyntaxError, match=message) as info:
        split_front_matter(f"---\nmodel: x\ndata: {value}\n---\nbody\n", "t.j2")
    assert info.value.lineno == 3


def test_front_matter_data_within_the_limits_is_kept():
    data, _, _ = split_front_matter(
        f"---\ndeep: {_nested(MAX_DATA_DEPTH)}\nbig: {'9' * 4300}\n---\n", "t.j2"
    )
    assert data["big"] == int("9" * 4300)
    assert json.dumps(data["deep"]) == _nested(MAX_DATA_DEPTH).replace("][", "], [")


@pytest.mark.parametrize("value", [_nested(3000), "9" * 5001, '{"a": [' + "1" * 5001 + "]}"])
def test_json_option_data_over_the_limits_is_an_input_error(value: str):
    with pytest.raises(TemplateInputError, match=r"-J cfg: .*(levels|digits)"):
        parse_json_spec(f"cfg={value}")


@pytest.mark.parametrize("value", [_nested(3000), "9" * 5001])
def test_from_json_data_over_the_limits_is_a_data_error(value: str):
    with pytest.raises(TemplateDataError, match=r"levels|digits"):
        render_template("{{ v|from_json }}", {"v": value})


def test_deep_front_matter_exits_with_the_input_code(tmp_path: Path, monkeypatch: Any):
    from openai_structured.cli import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.j2").write_text(f"---\ndata: {_nested(3000)}\n---\nhello\n")
    (tmp_path / "s.json").write_text(
        json.dumps({"type": "object", "properties": {"a": {"type": "string"}}})
    )
    result = CliRunner().invoke(cli, ["run", "t.j2", "s.json", "--dry-run"])
    assert result.exit_code == 3, result.output
    assert "3,000 levels" in result.output
    assert "Traceback" not in result.output


# --- memory: refused before it is built ------------------------------------------------------

_MEMORY_PROBE = """
import resource, sys
from openai_structured.templates import TemplateLimitError, render_template
sources = sys.argv[1:]
render_template("{{ 1 }}")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for source in sources:
    try:
        render_template(source)
    except TemplateLimitError:
        pass
    else:
        raise SystemExit(f"not refused: {source}")
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
"""


def test_attacks_are_refused_before_they_use_memory():
    attacks = [
        "{{ 'x'.ljust(10**9) }}",
        "{{ 'x'|center(10**9) }}",
        "{{ '{:>1000000000}'.format(1) }}",
        "{{ '%1000000000s' % 'x' }}",
        "{{ [1] * 10**9 }}",
        "{{ ([1] * 1000)|batch(10**9, 0)|list }}",
        "{{ ('x' * 1000000)|replace('x', 'y' * 1000) }}",
        BIG + "{{ [s] * 1000 }}",
        BIG + "{{ ([s] * 1000)|tojson }}",
        BIG + "{{ ([s] * 1000)|join }}",
    ]
    probe = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, *attacks],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr + probe.stdout
    # The 9 MB string itself (UCS-1) and Python's overhead; a 10**9-character string would
    # be 1000 MB.
    assert int(probe.stdout) < 100


def test_data_depth_ignores_brackets_and_escaped_quotes_inside_strings() -> None:
    from openai_structured.templates._limits import DataLimitError, loads_bounded

    inside = "[" * (MAX_DATA_DEPTH + 5)
    text = json.dumps({"text": inside + '\\" still inside ' + inside, "list": [[1]]})
    assert loads_bounded(text)["list"] == [[1]]
    with pytest.raises(DataLimitError, match="nested"):
        loads_bounded(_nested(MAX_DATA_DEPTH + 1))


def test_an_unclosed_run_of_escaped_quotes_is_refused_in_one_pass() -> None:
    # Hostile -J / front matter data: deep brackets, then a quote that never closes followed
    # by 200,000 escaped quotes (a string-matching regex rescanned the rest at every quote).
    from openai_structured.templates._limits import DataLimitError, loads_bounded

    with pytest.raises(DataLimitError, match="nested 201 levels"):
        loads_bounded("[" * 201 + '"' + '\\"' * 200_000)
