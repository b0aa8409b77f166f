"""The environment: undefined names, include/import, front matter, error locations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openai_structured.errors import OpenAIClientError
from openai_structured.templates import (
    RenderedTemplate,
    TemplateError,
    TemplateNotFoundError,
    TemplateRenderError,
    TemplateSecurityError,
    TemplateSyntaxError,
    TemplateUndefinedError,
    render_template,
    split_front_matter,
)

# --- undefined -------------------------------------------------------------------------------


def test_undefined_variable_names_it_and_lists_available_variables(render: Any):
    with pytest.raises(TemplateUndefinedError) as info:
        render("Hi\n{{ nmae }}", name="x", city="y")
    error = info.value
    assert error.name == "nmae" and error.available == ["city", "name"]
    assert str(error) == (
        "<template>:2: variable 'nmae' is not defined; available variables: city, name"
    )


def test_missing_key_lists_the_keys_that_exist(render: Any):
    with pytest.raises(TemplateUndefinedError, match=r"key 'agee' does not exist.*age, name"):
        render("{{ u.agee }}", u={"name": "a", "age": 1})


def test_undefined_in_condition_and_loop_is_an_error(render: Any):
    with pytest.raises(TemplateUndefinedError):
        render("{% if flag %}x{% endif %}")
    with pytest.raises(TemplateUndefinedError):
        render("{% for x in items %}{% endfor %}")


def test_defined_test_and_default_filter_still_work(render: Any):
    assert render("{{ x|default('d') }}{% if y is defined %}!{% endif %}") == "d"


def test_template_errors_are_openai_client_errors(render: Any):
    with pytest.raises(OpenAIClientError):
        render("{{ nope }}")


# --- syntax and runtime errors ---------------------------------------------------------------


def test_syntax_error_has_file_and_line(tmp_path: Path):
    path = tmp_path / "t.j2"
    path.write_text("line 1\n{% if %}\n")
    with pytest.raises(TemplateSyntaxError) as info:
        render_template(path)
    assert info.value.filename == str(path) and info.value.lineno == 2
    assert str(info.value).startswith(f"{path}:2: ")


def test_python_error_in_expression_is_wrapped_with_location(render: Any):
    with pytest.raises(TemplateRenderError, match=r"<template>:1: ZeroDivisionError"):
        render("{{ 1 / 0 }}")


def test_wrong_filter_arguments_are_wrapped(render: Any):
    with pytest.raises(TemplateRenderError, match="sort_by"):
        render("{{ [1]|sort_by }}")


def test_unknown_filter_is_a_syntax_error(render: Any):
    with pytest.raises(TemplateSyntaxError, match="No filter named 'nosuch'"):
        render("{{ 1|nosuch }}")


def test_no_raw_jinja_exception_escapes(render: Any):
    for source in ("{{ x", "{% endfor %}", "{{ [1, 'a']|sum }}", "{{ none() }}"):
        with pytest.raises(TemplateError):
            render(source)


# --- include / import ------------------------------------------------------------------------


@pytest.fixture
def template_dir(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    (root / "parts").mkdir(parents=True)
    (root / "parts" / "header.j2").write_text("Header for {{ who }}")
    (root / "macros.j2").write_text("{% macro shout(s) %}{{ s|upper }}!{% endmacro %}")
    (root / "main.j2").write_text(
        "{% import 'macros.j2' as m %}{% include 'parts/header.j2' %}|{{ m.shout(who) }}"
    )
    return root


def test_include_and_import_from_template_directory(template_dir: Path):
    rendered = render_template(template_dir / "main.j2", {"who": "ann"})
    assert rendered.text == "Header for ann|ANN!"


def test_include_with_dotdot_is_refused(template_dir: Path):
    (template_dir.parent / "secret.txt").write_text("SECRET")
    (template_dir / "bad.j2").write_text("{% include '../secret.txt' %}")
    with pytest.raises(TemplateSecurityError, match=r"without '..'") as info:
        render_template(template_dir / "bad.j2")
    assert "SECRET" not in str(info.value)
    assert info.value.lineno == 1


def test_include_absolute_path_is_refused(template_dir: Path):
    (template_dir / "bad.j2").write_text("{% include '/etc/passwd' %}")
    with pytest.raises(TemplateSecurityError, match="/etc/passwd"):
        render_template(template_dir / "bad.j2")


def test_include_symlink_leaving_directory_is_refused(template_dir: Path):
    (template_dir.parent / "secret.txt").write_text("SECRET")
    (template_dir / "link.j2").symlink_to(template_dir.parent / "secret.txt")
    (template_dir / "bad.j2").write_text("{% include 'link.j2' %}")
    with pytest.raises(TemplateSecurityError, match="symlink"):
        render_template(template_dir / "bad.j2")


def test_include_missing_file_is_not_found_error(template_dir: Path):
    (template_dir / "bad.j2").write_text("\n{% include 'nope.j2' %}")
    with pytest.raises(TemplateNotFoundError, match=r"nope.j2") as info:
        render_template(template_dir / "bad.j2")
    assert info.value.lineno == 2


def test_string_template_cannot_include_without_base_dir(render: Any):
    with pytest.raises(TemplateNotFoundError, match="base_dir"):
        render("{% include 'x.j2' %}")


def test_string_template_with_base_dir_can_include(template_dir: Path):
    rendered = render_template(
        "{% include 'parts/header.j2' %}", {"who": "b"}, base_dir=template_dir
    )
    assert rendered.text == "Header for b"


def test_error_inside_included_template_names_that_file(template_dir: Path):
    (template_dir / "broken.j2").write_text("ok\n{{ missing_var }}")
    (template_dir / "main2.j2").write_text("{% include 'broken.j2' %}")
    with pytest.raises(TemplateUndefinedError) as info:
        render_template(template_dir / "main2.j2")
    assert info.value.filename is not None and info.value.filename.endswith("broken.j2")
    assert info.value.lineno == 2


def test_template_file_missing_or_binary(tmp_path: Path):
    with pytest.raises(TemplateNotFoundError, match="not found"):
        render_template(tmp_path / "nope.j2")
    (tmp_path / "bin.j2").write_bytes(b"a\0b")
    with pytest.raises(TemplateError, match="binary"):
        render_template(tmp_path / "bin.j2")


# --- front matter ----------------------------------------------------------------------------

FRONT = """---
# comment
system_prompt: |
  You are an analyst.
  Answer in {{ lang }}.
model: gpt-4o-mini
temperature: 0.2
max_output_tokens: 1_000
stream: true
stop: null
tags: ["a", "b"]
options: {"x": 1}
title: "Quoted: \\"yes\\""
note: 'it''s fine'
plain: hello world # trailing comment
---
Body in {{ lang }}
"""


def test_front_matter_parsed_and_kept_out_of_the_body(tmp_path: Path):
    path = tmp_path / "t.j2"
    path.write_text(FRONT)
    rendered = render_template(path, {"lang": "French"})
    assert isinstance(rendered, RenderedTemplate)
    assert rendered.text == "Body in French\n"
    assert rendered.system_prompt == "You are an analyst.\nAnswer in French.\n"
    assert rendered.front_matter == {
        "system_prompt": "You are an analyst.\nAnswer in {{ lang }}.\n",
        "model": "gpt-4o-mini",
        "temperature": 0.2,
        "max_output_tokens": 1000,
        "stream": True,
        "stop": None,
        "tags": ["a", "b"],
        "options": {"x": 1},
        "title": 'Quoted: "yes"',
        "note": "it's fine",
        "plain": "hello world",
    }


def test_no_front_matter_means_empty_dict_and_no_system_prompt(render: Any):
    rendered = render_template("Hello")
    assert (rendered.text, rendered.front_matter, rendered.system_prompt) == ("Hello", {}, None)


def test_block_scalar_chomping_and_folding():
    data, body, offset = split_front_matter(
        "---\na: |-\n  x\n  y\n\nb: >\n  one\n  two\n\n  three\nc: |+\n  k\n\n---\nB"
    )
    assert data == {"a": "x\ny", "b": "one two\nthree\n", "c": "k\n\n"}
    assert (body, offset) == ("B", 14)


def test_error_lines_count_front_matter(tmp_path: Path):
    path = tmp_path / "t.j2"
    path.write_text("---\nmodel: x\n---\nfine\n{{ oops }}\n")
    with pytest.raises(TemplateUndefinedError) as info:
        render_template(path)
    assert info.value.lineno == 5


@pytest.mark.parametrize(
    ("source", "line", "message"),
    [
        ("---\nmodel: x\n", 1, "never closed"),
        ("---\na:\n  b: 1\n---\n", 3, "nested values"),
        ("---\n- x\n---\n", 2, "lists are not supported"),
        ("---\nnot a pair\n---\n", 2, "expected 'key: value'"),
        ("---\na: 1\na: 2\n---\n", 3, "given twice"),
        ("---\na: [1,\n---\n", 2, "JSON"),
        ("---\na: &anchor x\n---\n", 2, "not supported"),
        ("---\na: 'x\n---\n", 2, "not closed"),
        ('---\na: "x\n---\n', 2, "double-quoted"),
        ("---\na: |\n    x\n  y\n---\n", 4, "indented less"),
        ("---\na: |\n\tx\n---\n", 3, "tabs"),
    ],
)
def test_front_matter_errors_name_the_line(source: str, line: int, message: str):
    with pytest.raises(TemplateSyntaxError, match=message) as info:
        split_front_matter(source, "t.j2")
    assert (info.value.filename, info.value.lineno) == ("t.j2", line)


def test_system_prompt_must_be_text():
    with pytest.raises(TemplateSyntaxError, match="system_prompt must be text"):
        render_template("---\nsystem_prompt: 3\n---\nx")


def test_system_prompt_errors_are_located(render: Any):
    with pytest.raises(TemplateUndefinedError, match=r"\(system_prompt\)"):
        render_template("---\nsystem_prompt: Hi {{ who }}\n---\nx")


def test_markdown_rule_later_in_file_is_not_front_matter():
    assert split_front_matter("Title\n---\nx")[0] == {}


def test_trailing_newline_is_kept_and_output_not_escaped(render: Any):
    assert render("<{{ x }}>\n", x="a&b") == "<a&b>\n"


def test_loop_controls_available(render: Any):
    assert (
        render("{% for i in range(5) %}{% if i == 2 %}{% break %}{% endif %}{{ i }}{% endfor %}")
        == "01"
    )


def test_docs_example_renders():
    doc = (Path(__file__).parents[2] / "docs" / "templates.md").read_text()
    block = doc.split("```jinja\n", 1)[1].split("```", 1)[0]
    data = [
        {"category": "a", "amount": 3, "date": "2024-01-02"},
        {"category": "b", "amount": 5, "date": "2024-01-01"},
    ]
    text = render_template(block, {"data": data}).text
    assert "Total 8 over 2 orders (average 4.0)." in text
    assert "| 2024-01-02 | 3      |" in text
