"""``ostruct run`` as a data person meets it (issue 16): nothing is asked when there is nothing
to ask, every offline check comes before anything is sent (dry run or not), a ``-d`` list used
as one file shows the loop to write, and swapped TEMPLATE/SCHEMA arguments are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import run_args

from openai_structured.testing import Reply

TICKET = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "priority": {"type": "string"}},
    "required": ["title", "priority"],
    "additionalProperties": False,
}
A_TICKET = {"title": "Printer on fire", "priority": "high"}


@pytest.fixture
def support(workdir: Path) -> Path:
    """Six support emails (.txt), a ticket schema, a loop template and a per-file template."""
    emails = workdir / "emails"
    emails.mkdir()
    for number in range(1, 7):
        (emails / f"mail{number}.txt").write_text(f"Email {number}: the printer is on fire.\n")
    (workdir / "ticket.json").write_text(json.dumps(TICKET))
    (workdir / "ticket.j2").write_text(
        "Make one ticket from these emails:\n"
        "{% for e in emails %}{{ e.name }}: {{ e.content }}\n{% endfor %}"
    )
    (workdir / "per_file.j2").write_text("Make a ticket from this email:\n{{ emails.content }}\n")
    return workdir


def _run(server, template: str, *extra: str) -> list[str]:
    return ["run", template, "ticket.json", "--base-url", server.base_url, "--max-retries", "0",
            *extra]  # fmt: skip


# --- 1. a -d that matches no file; a prompt with nothing in it --------------------------------


def _refused_unsent(ostruct_process, server, support, dry_run, *args):
    """Run the real ostruct (a real run or a dry run): an input error, nothing sent."""
    server.queue(Reply.json(A_TICKET))
    out = ostruct_process(*_run(server, *args, *(["--dry-run"] if dry_run else [])), cwd=support)
    assert out.code == 3, out.stderr
    assert out.stdout == ""
    assert "Traceback" not in out.stderr
    assert server.requests == []
    return out


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_a_dir_whose_glob_matches_no_file_is_an_input_error_and_nothing_is_sent(
    ostruct_process, server, support, dry_run
):
    out = _refused_unsent(ostruct_process, server, support, dry_run,
                          "ticket.j2", "-d", "emails=emails", "--glob", "*.md")  # fmt: skip
    first = out.stderr.splitlines()[0]
    assert first.startswith(
        "Error (input): -d emails=emails: no file in emails matches --glob '*.md'; it holds "
    )
    assert "mail1.txt" in first  # what the directory does hold
    assert "Nothing was sent." in first
    assert "--allow-empty" in out.stderr


def test_allow_empty_sends_the_empty_list(ostruct, server, support):
    server.queue(Reply.json(A_TICKET))
    out = ostruct(*_run(server, "ticket.j2", "-d", "emails=emails", "--glob", "*.md",
                        "--allow-empty"))  # fmt: skip
    assert out.code == 0, out.stderr
    assert out.json() == A_TICKET
    assert server.last_request.json["messages"][-1]["content"] == (
        "Make one ticket from these emails:\n"
    )


@pytest.mark.parametrize(
    ("layout", "needle"),
    [
        ({}, "no file to read in box; it is empty"),
        ({".hidden": "x"}, "it holds 1 hidden file (skipped, like hidden directories)"),
        ({"sub/deep.md": "x"}, "1 subdirectory (not searched without --recursive)"),
    ],
    ids=["empty", "hidden-only", "subdirectory"],
)
def test_the_message_says_what_the_directory_holds(ostruct, server, support, layout, needle):
    for name, text in layout.items():
        (support / "box" / name).parent.mkdir(parents=True, exist_ok=True)
        (support / "box" / name).write_text(text)
    (support / "box").mkdir(exist_ok=True)
    out = ostruct(*_run(server, "ticket.j2", "-d", "emails=box"))
    assert out.code == 3
    assert needle in out.stderr
    assert server.requests == []


def test_a_template_that_renders_to_whitespace_is_refused_and_nothing_is_sent(
    ostruct_process, server, support
):
    (support / "blank.j2").write_text("{% if urgent %}Make a ticket.{% endif %}\n  \n")
    out = ostruct_process(*_run(server, "blank.j2", "-J", "urgent=false"), cwd=support)
    assert out.code == 3, out.stderr
    assert out.stdout == ""
    assert out.stderr.startswith(
        "Error (input): TEMPLATE blank.j2 renders to an empty prompt: there is nothing to answer."
    )
    assert "--allow-empty" in out.stderr
    assert server.requests == []


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_a_prompt_of_only_punctuation_is_nearly_nothing(ostruct, server, support, dry_run):
    (support / "dash.j2").write_text("---\n---\n - {{ note }}\n")
    out = ostruct(*_run(server, "dash.j2", "-V", "note=:", *(["--dry-run"] if dry_run else [])))
    assert out.code == 3
    assert 'no letter or digit in it ("- :")' in out.stderr
    assert server.requests == []


def test_allow_empty_sends_an_empty_prompt_too(ostruct, server, support):
    (support / "blank.j2").write_text("\n")
    server.queue(Reply.json(A_TICKET))
    out = ostruct(*_run(server, "blank.j2", "--allow-empty"))
    assert out.code == 0, out.stderr
    assert len(server.requests) == 1


# --- 2. every offline check before sending, in the dry run too --------------------------------


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_an_output_file_in_a_missing_directory_stops_the_run_before_anything_is_sent(
    ostruct_process, server, support, dry_run
):
    out = _refused_unsent(ostruct_process, server, support, dry_run,
                          "ticket.j2", "-d", "emails=emails", "-o", "nodir/out.json")  # fmt: skip
    assert out.stderr.startswith(
        f"Error (input): --output-file nodir/out.json: cannot write in {support / 'nodir'}: "
        "no such directory."
    )
    assert not (support / "nodir").exists()


def test_the_dry_run_checks_the_output_file_without_creating_it(ostruct, server, support):
    out = ostruct(*_run(server, "ticket.j2", "-d", "emails=emails", "-o", "out.json",
                        "--dry-run"))  # fmt: skip
    assert out.code == 0, out.stderr
    assert "nothing was sent" in out.stdout
    assert not (support / "out.json").exists()
    # A link is written through: its target's directory must exist.
    (support / "link.json").symlink_to(support / "gone" / "out.json")
    out = ostruct(*_run(server, "ticket.j2", "-d", "emails=emails", "-o", "link.json",
                        "--dry-run"))  # fmt: skip
    assert out.code == 3
    assert f"--output-file link.json: cannot write in {support / 'gone'}" in out.stderr


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_a_first_request_over_the_token_budget_is_refused_dry_or_not(
    ostruct, server, support, dry_run
):
    server.queue(Reply.json(A_TICKET))
    out = ostruct(*_run(server, "ticket.j2", "-d", "emails=emails", "--max-total-tokens", "20",
                        *(["--dry-run"] if dry_run else [])))  # fmt: skip
    assert out.code == 8
    assert out.stdout == ""
    assert "--max-total-tokens 20 would be exceeded by attempt 1" in out.stderr
    assert server.requests == []


def test_the_dry_run_reports_a_budget_that_fits(ostruct, server, support):
    out = ostruct(*_run(server, "ticket.j2", "-d", "emails=emails", "--max-total-tokens",
                        "5000", "--dry-run"))  # fmt: skip
    assert out.code == 0, out.stderr
    assert "budget: ok (the first request fits --max-total-tokens 5000;" in out.stdout


def test_a_request_the_embedded_model_cannot_take_fails_before_it_is_started(
    ostruct_process, support
):
    from openai_structured.local import is_installed

    if not is_installed():
        pytest.skip("the embedded model ([local] extra) is not installed")
    out = ostruct_process(
        "run", "ticket.j2", "ticket.json", "-d", "emails=emails", "--api", "responses",
        cwd=support, env={"OPENAI_API_KEY": "", "OPENAI_STRUCTURED_LOCAL": "1"}, timeout=60,
    )  # fmt: skip
    assert out.code == 5, out.stderr
    assert out.stderr.startswith(
        "Error (config): The llama.cpp server has no Responses API. Use --api chat with it."
    )
    assert "local model" not in out.stderr  # never started: no start-up log


# --- 4. a per-file template with -d -------------------------------------------------------------


def test_a_per_file_template_with_a_dir_shows_the_loop_and_points_to_batch(
    ostruct_process, server, support
):
    server.queue(Reply.json(A_TICKET))
    out = ostruct_process(*_run(server, "per_file.j2", "-d", "emails=emails"), cwd=support)
    assert out.code == 3, out.stderr
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert lines[0] == (
        "Error (input): per_file.j2:2: emails is the list of the files of -d emails=emails, "
        "not one file: it has no attribute 'content'."
    )
    assert "-d puts every file in one prompt." in out.stderr
    assert "{% for f in emails %}{{ f.content }}{% endfor %}" in out.stderr
    assert "ostruct batch per_file.j2 ticket.json -i emails -o answers.jsonl" in out.stderr
    assert "{{ file.content }}" in out.stderr
    assert "FileInfoList" not in out.stderr
    assert server.requests == []


def test_the_hint_names_the_dir_the_template_uses(ostruct, server, support):
    (support / "notes").mkdir()
    (support / "notes" / "n.txt").write_text("a note")
    (support / "two.j2").write_text("{% for n in notes %}{{ n }}{% endfor %}{{ emails.name }}")
    out = ostruct(*_run(server, "two.j2", "-d", "notes=notes", "-d", "emails=emails"))
    assert out.code == 3
    assert "emails is the list of the files of -d emails=emails" in out.stderr
    assert "{% for f in emails %}{{ f.name }}{% endfor %}" in out.stderr


def test_the_template_library_says_a_file_list_is_a_list(tmp_path, monkeypatch):
    from openai_structured.templates import (
        PathPolicy,
        TemplateUndefinedError,
        collect_directory,
        render_template,
    )

    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("x")
    files = collect_directory("d", PathPolicy())
    with pytest.raises(TemplateUndefinedError) as caught:
        render_template("{{ docs.content }}", {"docs": files})
    assert caught.value.owner == "FileInfoList"
    assert "a list of files (a directory input) has no attribute 'content'" in str(caught.value)
    assert "{% for f in files %}{{ f.content }}{% endfor %}" in str(caught.value)
    with pytest.raises(TemplateUndefinedError) as caught:
        render_template("{{ docs.colour }}", {"docs": files})
    assert "(it has contents, names, paths)" in str(caught.value)
    with pytest.raises(TemplateUndefinedError) as caught:
        render_template("{{ nope }}", {})
    assert caught.value.owner is None


# --- 6. TEMPLATE and SCHEMA swapped -------------------------------------------------------------


def test_template_and_schema_in_the_wrong_order_suggests_the_swap(ostruct_process, server, support):
    out = ostruct_process(
        "run", "ticket.json", "ticket.j2", "-d", "emails=emails", "--base-url", server.base_url,
        cwd=support,
    )  # fmt: skip
    assert out.code == 4, out.stderr
    assert out.stdout == ""
    assert out.stderr.splitlines() == [
        "Error (schema): SCHEMA ticket.j2:1:1: not valid JSON: Expecting value.",
        "  TEMPLATE and SCHEMA look swapped: ticket.json is JSON and ticket.j2 is not. The "
        "template comes first: ostruct run ticket.j2 ticket.json ...",
    ]
    assert server.requests == []


def test_a_template_given_as_the_schema_is_named(ostruct, workdir):
    (workdir / "other.j2").write_text("Hello {{ who }}")
    out = ostruct(*run_args_for_schema("other.j2"))
    assert out.code == 4
    assert "other.j2 looks like a template. ostruct run takes TEMPLATE first" in out.stderr
    check = ostruct("schema", "check", "other.j2")
    assert check.code == 1
    assert "other.j2 looks like a template" in check.stderr


def run_args_for_schema(schema: str) -> list[str]:
    return ["run", "prompt.j2", schema, "-V", "who=Ada", "--dry-run"]


def test_a_schema_that_is_simply_broken_gets_no_swap_hint(ostruct, server, workdir):
    (workdir / "broken.json").write_text('{"type": "object",')
    out = ostruct(*run_args(server, "--dry-run")[:2], "broken.json", *run_args(server)[3:])
    assert out.code == 4
    assert "The schema must be a JSON Schema document in JSON." in out.stderr
    assert "swapped" not in out.stderr
