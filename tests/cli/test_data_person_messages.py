"""``ostruct run``'s messages in its own words (issue 16): a cut-off says which limit applied
and what to do with ostruct's flags; no library message leaks Python names (``.content``,
``max_output_tokens=``) into the CLI; an unknown model name on a permissive server gets a note
(on a terminal or with --verbose only: stderr stays silent in a pipe)."""

from __future__ import annotations

import re

import pytest
from cli_support import ADA, run_args

from openai_structured.testing import Fault, Reply

#: What the library says for Python callers, and ostruct must not.
PYTHON_WORDS = re.compile(
    r"\.(content|usage|results|attempts)\b|\b(max_output_tokens|max_completion_tokens|"
    r"max_tokens|max_total_tokens|max_validation_retries|timeout|api|model|reasoning_effort|"
    r"temperature|top_p|frequency_penalty)=|openai_structured_call|RenderLimits|StreamConfig|"
    r"catch \w+Error"
)


def _python_words(text: str) -> list[str]:
    return [m.group() for m in PYTHON_WORDS.finditer(text)]


# --- 3. the cut-off: which limit applied --------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "first", "advice"),
    [
        (
            ["--max-output-tokens", "5"],
            "The answer was cut off at --max-output-tokens 5 after 3 output tokens, before the "
            "JSON was complete.",
            "Raise --max-output-tokens, or ask for a shorter answer. --verbose prints the "
            "partial answer.",
        ),
        (
            [],
            "The answer was cut off at the model's output limit (16,384 tokens, from the model "
            "registry) after 3 output tokens, before the JSON was complete.",
            "No --max-output-tokens was given, so the model's own limit applied: ask for a "
            "shorter answer, or use a model with a larger output limit (ostruct models).",
        ),
        (
            ["--model", "my-local-model"],
            "The answer was cut off at the server's output limit after 3 output tokens, before "
            "the JSON was complete.",
            "No --max-output-tokens was given, so the server's default limit applied: give "
            "--max-output-tokens N above it, or ask for a shorter answer.",
        ),
    ],
    ids=["flag-given", "model-limit", "server-limit"],
)
def test_a_cut_off_says_which_limit_applied_in_the_clis_words(
    ostruct_process, server, workdir, extra, first, advice
):
    server.queue(Reply.length('{"name": "A'))
    out = ostruct_process(*run_args(server, *extra), cwd=workdir)
    assert out.code == 8, out.stderr
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert lines[0] == f"Error (token limit): {first}"
    assert lines[1].startswith(f"  {advice}")
    assert _python_words(out.stderr) == []
    if not extra:
        assert "Raise --max-output-tokens" not in out.stderr  # a flag that was never set


def test_verbose_prints_the_partial_answer_of_a_cut_off(ostruct, server, workdir):
    server.queue(Reply.length('{"name": "A'))
    out = ostruct(*run_args(server, "--verbose"))
    assert out.code == 8
    assert '--- raw answer ---\n{"name": "A' in out.stderr


# --- 3. every other library message, translated -------------------------------------------------


@pytest.mark.parametrize(
    ("item", "extra", "code", "expected"),
    [
        (None, ["-m", "o1", "--temperature", "0.5"], 5,
         ["--temperature is not supported by model 'o1'", "Supported parameters: "
          "--reasoning-effort, --max-output-tokens", "Remove --temperature (use "
          "--reasoning-effort"]),
        (None, ["-m", "gpt-4o", "--temperature", "5"], 5, ["Invalid value 5.0 for --temperature"]),
        (None, ["-m", "gpt-4o", "--max-output-tokens", "999999"], 8,
         ["output tokens (--max-output-tokens)", "Lower --max-output-tokens to 16,384"]),
        (None, ["-m", "o1", "--stream"], 5, ["Leave out --stream with this model"]),
        (None, ["--api", "responses", "--presence-penalty", "1"], 5,
         ["--presence-penalty is not supported by the Responses API", "Use --api chat"]),
        (None, ["--api", "responses", "--server", "llama.cpp"], 5, ["Use --api chat with it."]),
        (None, ["--max-total-tokens", "5"], 8,
         ["--max-total-tokens 5 would be exceeded", "Raise --max-total-tokens, lower "
          "--max-output-tokens or --max-validation-retries.", "--usage shows what a run spends"]),
        (Reply.json({"name": "Ada"}), [], 7,
         ["Make the schema's field descriptions clearer.", "--verbose prints the raw answer."]),
        (Reply.text("[1"), [], 7, ["not valid JSON", "--verbose prints the raw answer."]),
        (Reply.json([1, 2]), ["--server", "vllm"], 7, ["does not match the schema"]),
        (Reply.content_filter(), [], 7,
         ["Rephrase the prompt or the input.", "--verbose prints the raw answer."]),
        ("twice", ["--max-validation-retries", "1"], 7,
         ["No valid answer after 2 attempts", "Raise --max-validation-retries, or make the "
          "schema's field descriptions clearer."]),
        (Fault.disconnect(after_events=2), ["--stream"], 6, ["The stream broke after"]),
        (Fault.malformed_sse("truncated", reply=Reply.json(ADA, chunk_size=3)), ["--stream"], 6,
         ["The stream ended before the model finished", "--verbose prints the text received."]),
        (Fault.delay(between_events=0.3, reply=Reply.json(ADA, chunk_size=2)),
         ["--timeout", "0.5", "--stream"], 6, ["--timeout"]),
    ],
    ids=["o1-temperature", "range", "over-limit", "no-stream", "responses-penalty",
         "no-responses", "budget", "validation", "not-json", "not-object", "content-filter",
         "re-asks", "dropped-stream", "truncated-stream", "deadline"],
)  # fmt: skip
def test_library_messages_reach_the_cli_without_python_names(
    ostruct, server, workdir, item, extra, code, expected
):
    if item == "twice":
        server.queue(Reply.text("nope"), Reply.json({"x": 1}))
    elif item is not None:
        server.queue(item)
    out = ostruct(*run_args(server, *extra))
    assert out.code == code, out.stderr
    assert _python_words(out.stderr) == [], out.stderr
    for needle in expected:
        assert needle in out.stderr


def test_a_variable_named_like_a_parameter_is_quoted_as_written(ostruct, server, workdir):
    # The translation is for the library's words, never for the user's template.
    (workdir / "t.j2").write_text("{{ max_tokens }}")
    out = ostruct(*run_args(server, template="t.j2"))
    assert out.code == 3
    assert "variable 'max_tokens' is not defined" in out.stderr


def test_a_template_limit_names_only_the_clis_option(ostruct, server, workdir):
    (workdir / "t.j2").write_text("{% for i in range(10) %}{% for j in range(10) %}x{% endfor %}"
                                  "{% endfor %}")  # fmt: skip
    out = ostruct(*run_args(server, "--template-limit", "max_loop_iterations=5", template="t.j2"))
    assert out.code == 3
    assert "--template-limit max_loop_iterations=N" in out.stderr
    assert "RenderLimits" not in out.stderr and "(Python)" not in out.stderr


def test_a_re_ask_line_of_verbose_is_in_the_clis_words(ostruct, server, workdir):
    server.queue(Reply.text("nope"), Reply.json(ADA))
    out = ostruct(*run_args(server, "--max-validation-retries", "1", "--verbose"))
    assert out.code == 0, out.stderr
    retry = next(line for line in out.stderr.splitlines() if "retry 1 of 1" in line)
    assert "not valid JSON" in retry
    assert ".content" not in retry


def test_the_stream_limit_advice_matches_the_libraries_limit_without_stream():
    from openai_structured._transport import DEFAULT_MAX_RESPONSE_BYTES
    from openai_structured.cli._report import in_cli_words
    from openai_structured.streaming.buffer import overflow_error

    text = in_cli_words(str(overflow_error(2_000_000, 1_048_576)))
    assert "StreamConfig" not in text
    assert f"up to {DEFAULT_MAX_RESPONSE_BYTES // 2**20} MiB" in text


# --- 6. a model name the registry does not know, on a permissive server -------------------------


def test_an_unknown_model_on_a_permissive_server_gets_a_note_with_verbose_only(
    ostruct_process, server, workdir
):
    server.default_reply = Reply.json(ADA)
    quiet = ostruct_process(*run_args(server, "--model", "gpt-4o-mni"), cwd=workdir)
    assert quiet.code == 0, quiet.stderr
    assert quiet.stderr == ""  # a pipe's stderr stays silent on success
    out = ostruct_process(*run_args(server, "--model", "gpt-4o-mni", "--verbose"), cwd=workdir)
    assert out.code == 0, out.stderr
    assert out.json() == ADA
    notes = [line for line in out.stderr.splitlines() if line.startswith("ostruct: note:")]
    assert notes == [
        "ostruct: note: the model registry does not know 'gpt-4o-mni': the server (profile "
        "compatible) decides what it means; did you mean gpt-4o-mini?"
    ]
    assert [r.json["model"] for r in server.requests] == ["gpt-4o-mni", "gpt-4o-mni"]


def test_the_dry_run_report_carries_the_note(ostruct, server, workdir):
    out = ostruct(*run_args(server, "--model", "gpt-4o-mni", "--server", "vllm", "--dry-run"))
    assert out.code == 0, out.stderr
    assert out.stdout.splitlines()[1] == (
        "model:   gpt-4o-mni (note: the model registry does not know 'gpt-4o-mni': the server "
        "(profile vllm) decides what it means; did you mean gpt-4o-mini?)"
    )
    assert out.stderr == ""


@pytest.mark.parametrize(
    ("model", "extra"),
    [("gpt-4o-mini", []), ("gpt-4o", ["--server", "vllm"]), ("Qwen/Qwen2.5-7B", [])],
    ids=["known", "known-on-vllm", "no-close-name"],
)
def test_no_note_for_known_names_and_no_guess_without_a_close_name(
    ostruct, server, workdir, model, extra
):
    out = ostruct(*run_args(server, "--model", model, "--dry-run", *extra))
    assert out.code == 0, out.stderr
    model_line = out.stdout.splitlines()[1]
    if model == "Qwen/Qwen2.5-7B":
        assert model_line.endswith("decides what it means)")
    else:
        assert model_line == f"model:   {model}"
