"""``ostruct run``: each failure class has its exit code and one clear message, never a traceback
(unless --verbose), and never the API key."""

from __future__ import annotations

import json
import socket
import sys

import pytest
from cli_support import ADA, CANARY, run_args

from openai_structured.testing import Fault, Reply

ECHO_KEY = f"Incorrect API key provided: {CANARY}. You can find your API key at ..."


def _first_line(stderr: str) -> str:
    return stderr.strip().splitlines()[0]


@pytest.mark.parametrize(
    ("item", "code", "label", "needle"),
    [
        (Fault.status(429), 6, "api", "Rate limited"),
        (Fault.rate_limit(retry_after=7), 6, "api", "wait 7 s"),
        (Fault.status(500), 6, "api", "try again later"),
        (Fault.status(401, message=ECHO_KEY), 6, "api", "Check the API key"),
        (Fault.status(404), 6, "api", "Check --model"),
        (Reply.refusal("I will not help."), 7, "response", "I will not help."),
        (Reply.text("not json"), 7, "response", "not valid JSON"),
        (Reply.empty(), 7, "response", "The model returned"),
        (Reply.content_filter(), 7, "response", "content filter"),
        (Reply.json({"name": "Ada"}), 7, "response", "'age' is a required property"),
        (Reply.length('{"name": "A'), 8, "token limit", "--max-output-tokens"),
    ],
    ids=[
        "429",
        "retry-after",
        "500",
        "401-echo",
        "404",
        "refusal",
        "not-json",
        "empty",
        "content-filter",
        "validation",
        "length",
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["call", "stream"])
def test_scripted_failures_map_to_their_exit_codes(
    ostruct, server, workdir, item, code, label, needle, stream
):
    server.queue(item)
    out = ostruct(*run_args(server, *(["--stream"] if stream else [])))
    assert out.code == code, out.stderr
    assert out.stdout == ""
    assert _first_line(out.stderr).startswith(f"Error ({label}): ")
    assert needle in out.stderr
    assert "Traceback" not in out.stderr


def test_the_key_echoed_by_the_server_is_masked_even_with_verbose(ostruct, server, workdir):
    server.queue(Fault.status(401, message=ECHO_KEY))
    out = ostruct(*run_args(server, "--verbose"))  # the fixture asserts the canary is absent
    assert out.code == 6
    assert "Traceback" in out.stderr
    assert "[REDACTED]" in out.stderr


def test_key_from_api_key_env_is_masked_too(ostruct, server, workdir, monkeypatch):
    other = "local-secret-token-9876543210"
    monkeypatch.setenv("MY_KEY", other)
    server.queue(Fault.status(401, message=f"bad key {other}"))
    out = ostruct(*run_args(server, "--api-key-env", "MY_KEY", "--verbose"))
    assert out.code == 6
    assert other not in out.stderr


def test_stream_broken_mid_way_is_an_api_error(ostruct, server, workdir):
    server.queue(Fault.disconnect(after_deltas=2, reply=Reply.json(ADA, chunk_size=2)))
    out = ostruct(*run_args(server, "--stream"))
    assert out.code == 6
    assert "stream broke after" in out.stderr


def test_unreachable_server_is_an_api_error(ostruct, workdir):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    out = ostruct("run", "prompt.j2", "schema.json", "-V", "who=x", "--max-retries", "0",
                  "--base-url", f"http://127.0.0.1:{port}/v1")  # fmt: skip
    assert out.code == 6
    assert "Could not reach the server" in out.stderr


# --- input, template and schema errors: nothing is sent -------------------------------------


def test_path_outside_the_allowed_directories_is_refused(ostruct, server, workdir):
    out = ostruct(*run_args(server, "-f", "secret=/etc/hostname"))
    assert out.code == 3
    line = _first_line(out.stderr)
    assert line.startswith("Error (input): ")
    assert "outside the allowed directories" in line
    assert "--allow" in out.stderr
    assert server.requests == []


def test_dotdot_escape_is_refused(ostruct, server, workdir):
    (workdir.parent / "sibling.txt").write_text("x")
    out = ostruct(*run_args(server, "-f", "x=../sibling.txt"))
    assert out.code == 3
    assert "outside the allowed directories" in out.stderr


@pytest.mark.parametrize(
    ("files", "args", "needle"),
    [
        ({}, ["-f", "x=missing.txt"], "missing.txt"),
        ({"big.txt": "x" * 2048}, ["-f", "x=big.txt", "--max-file-size", "1K"], "big.txt"),
        ({"a.txt": "x" * 800, "b.txt": "y" * 800},
         ["-f", "x=a.txt", "-f", "y=b.txt", "--max-total-size", "1K"], "1.0 KiB"),
        ({}, ["-V", "novalue"], "NAME=VALUE"),
        ({}, ["-J", "j={bad"], "-J"),
        ({"bin.dat": "\x00\x01"}, ["-f", "x=bin.dat"], "bin.dat"),
        ({}, ["-V", "x=1", "-V", "x=again"], "twice"),
    ],
    ids=["missing-file", "max-file-size", "max-total-size", "bad-var", "bad-json", "binary",
         "duplicate"],
)  # fmt: skip
def test_input_errors_exit_3(ostruct, server, workdir, files, args, needle):
    for name, text in files.items():
        (workdir / name).write_text(text)
    # Contents are read lazily: the template must use them for size and text checks to run.
    (workdir / "t.j2").write_text("{{ x }}{{ y|default('') }}")
    out = ostruct(*run_args(server, *args, template="t.j2"))
    assert out.code == 3, out.stderr
    assert needle in out.stderr
    assert server.requests == []


def test_template_errors_exit_3_with_the_location(ostruct, server, workdir):
    (workdir / "typo.j2").write_text("line one\n{{ nmae }}\n")
    out = ostruct(*run_args(server, template="typo.j2"))
    assert out.code == 3
    assert "typo.j2:2" in out.stderr and "nmae" in out.stderr
    out = ostruct(*run_args(server, template="nope.j2"))
    assert out.code == 3
    (workdir / "evil.j2").write_text("{{ ''.__class__.__mro__ }}")
    out = ostruct(*run_args(server, template="evil.j2"))
    assert out.code == 3
    assert server.requests == []


def test_system_prompt_file_missing_is_an_input_error(ostruct, server, workdir):
    out = ostruct(*run_args(server, "--system-prompt-file", "nope.txt"))
    assert out.code == 3
    assert "--system-prompt-file nope.txt" in out.stderr


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "file not found"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (
            json.dumps(
                {
                    "type": "object",
                    "properties": {"a": {"$ref": "https://example.com/other.json"}},
                    "required": ["a"],
                }
            ),
            "#/properties/a",
        ),
        (
            json.dumps({"type": "object", "properties": {"a": False}, "required": ["a"]}),
            "#/properties/a",
        ),
    ],
    ids=["missing", "not-json", "not-object", "remote-ref", "unsatisfiable"],
)
def test_schema_errors_exit_4(ostruct, server, workdir, content, needle):
    if content is None:
        (workdir / "schema.json").unlink()
    else:
        (workdir / "schema.json").write_text(content)
    out = ostruct(*run_args(server))
    assert out.code == 4, out.stderr
    assert _first_line(out.stderr).startswith("Error (schema): ")
    assert needle in out.stderr
    assert server.requests == []


MAP_SCHEMA = {
    "type": "object",
    "properties": {"scores": {"type": "object", "additionalProperties": {"type": "integer"}}},
    "required": ["scores"],
}


@pytest.mark.parametrize("stream", [False, True], ids=["call", "stream"])
def test_a_rewritten_schema_is_answered_in_the_declared_shape_or_exits_7(
    ostruct, server, workdir, stream
):
    (workdir / "schema.json").write_text(json.dumps(MAP_SCHEMA))
    entries = [{"key": "ann", "value": 3}, {"key": "bo", "value": 5}]
    server.queue(Reply.json({"scores": entries}))
    out = ostruct(*run_args(server, *(["--stream"] if stream else [])))
    assert out.code == 0, out.stderr
    assert out.json() == {"scores": {"ann": 3, "bo": 5}}
    sent = server.last_request.json["response_format"]["json_schema"]["schema"]
    assert sent["properties"]["scores"]["type"] == "array"

    server.queue(Reply.json({"scores": [*entries, {"key": "ann", "value": 4}]}))
    out = ostruct(*run_args(server, *(["--stream"] if stream else [])))
    assert out.code == 7, out.stderr
    assert _first_line(out.stderr).startswith("Error (response): ")
    assert "scores.ann" in out.stderr and "more than once" in out.stderr


# --- configuration errors (exit 5) ----------------------------------------------------------


def test_unset_api_key_env_is_a_config_error(ostruct, server, workdir):
    out = ostruct(*run_args(server, "--api-key-env", "NOT_SET_ANYWHERE"))
    assert out.code == 5
    assert "NOT_SET_ANYWHERE" in out.stderr


def test_seed_with_the_responses_api_is_refused(ostruct, server, workdir):
    out = ostruct(*run_args(server, "--api", "responses", "--seed", "1"))
    assert out.code == 5
    assert "--api chat" in out.stderr


def test_chat_only_penalty_with_the_responses_api_is_refused(ostruct, server, workdir):
    out = ostruct(*run_args(server, "--api", "responses", "--frequency-penalty", "0.5"))
    assert out.code == 5
    assert "--frequency-penalty is not supported by the Responses API" in out.stderr
    assert "Use --api chat" in out.stderr
    assert server.requests == []


def test_no_provider_configured_is_a_config_error(ostruct, workdir, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    out = ostruct("run", "prompt.j2", "schema.json", "-V", "who=x")
    assert out.code == 5
    assert "No model server is configured" in out.stderr


def test_unknown_model_for_openai_is_rejected_before_sending(ostruct, server, workdir):
    # --server openai makes the registry apply to this (fake) server.
    out = ostruct(*run_args(server, "--server", "openai", "--model", "unknown-model"))
    assert out.code == 5
    assert "unknown-model" in out.stderr
    assert server.requests == []


def test_sampling_flag_the_model_does_not_accept_is_rejected(ostruct, server, workdir):
    out = ostruct(*run_args(server, "--server", "openai", "--model", "o1", "--temperature", "1"))
    assert out.code == 5
    assert "temperature" in out.stderr
    assert server.requests == []


def test_output_limit_above_the_models_is_a_token_limit_error(ostruct, server, workdir):
    out = ostruct(*run_args(server, "--server", "openai", "--model", "gpt-4o",
                            "--max-output-tokens", "999999"))  # fmt: skip
    assert out.code == 8
    assert server.requests == []


@pytest.mark.parametrize(
    "args",
    [["--server", "nonsense"], ["--api", "soap"], ["--indent", "-1"], ["--max-file-size", "0"],
     ["--max-output-tokens", "0"], ["--temperature", "hot"], ["--unknown-flag"]],
)  # fmt: skip
def test_bad_command_lines_are_usage_errors(ostruct, server, workdir, args):
    out = ostruct(*run_args(server, *args))
    assert out.code == 2
    assert server.requests == []


# --- internal errors --------------------------------------------------------------------------


def test_internal_error_is_one_line_without_traceback_unless_verbose(
    ostruct, server, workdir, monkeypatch
):
    run_module = sys.modules["openai_structured.cli.run"]

    def boom(**_: object) -> None:
        raise RuntimeError(f"boom with {CANARY}")

    monkeypatch.setattr(run_module, "_collect_variables", boom)
    out = ostruct(*run_args(server))
    assert out.code == 1
    assert _first_line(out.stderr) == "Error (internal): RuntimeError: boom with [REDACTED]"
    assert "Traceback" not in out.stderr
    out = ostruct(*run_args(server, "--verbose"))
    assert out.code == 1
    assert "Traceback" in out.stderr
