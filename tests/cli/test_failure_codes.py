"""Every failure of the real ``ostruct`` process is typed, with its documented exit code and a
message, never "bug in ostruct" or a traceback; each case runs the entry point in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cli_support import ADA, CANARY, Outcome, run_args

from openai_structured.testing import Reply


def _cli(
    *args: str,
    cwd: Path,
    stdout: Any = subprocess.PIPE,
    preexec_fn: Callable[[], None] | None = None,
    timeout: float = 30,
) -> Outcome:
    """Run ``python -m openai_structured.cli`` with ``stdout`` as given; stderr captured."""
    proc = subprocess.run(
        [sys.executable, "-m", "openai_structured.cli", *args],
        cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE,
        preexec_fn=preexec_fn, timeout=timeout,
    )  # fmt: skip
    out = Outcome(proc.returncode, (proc.stdout or b"").decode(), proc.stderr.decode())
    assert CANARY not in out.stdout + out.stderr
    return out


def _typed(out: Outcome, code: int, label: str) -> None:
    """Exit ``code``; stderr is one ``Error (label):`` message, not a bug report."""
    assert out.code == code, out.stderr
    assert out.stderr.startswith(f"Error ({label}): "), out.stderr
    assert "bug in ostruct" not in out.stderr
    assert "Traceback" not in out.stderr


# --- sizes -------------------------------------------------------------------------------------


def test_absurd_max_file_size_is_a_usage_error(server, workdir):
    out = _cli(*run_args(server, "--max-file-size", "99999999999999999999999G"), cwd=workdir)
    assert out.code == 2, out.stderr
    assert "Invalid value for '--max-file-size'" in out.stderr
    assert "more than the largest size allowed, 1G" in out.stderr
    assert "bug in ostruct" not in out.stderr and "Traceback" not in out.stderr
    assert server.requests == []


# --- stdout --------------------------------------------------------------------------------


def test_reader_gone_before_the_run_is_a_quiet_broken_pipe(server, workdir):
    reader, writer = os.pipe()
    os.close(reader)  # `ostruct run ... | true` where true has already exited
    server.queue(Reply.json(ADA))
    try:
        out = _cli(*run_args(server), cwd=workdir, stdout=writer)
    finally:
        os.close(writer)
    assert out.code == 141
    assert out.stderr == ""
    assert server.requests == []  # no answer paid for that nobody would read


@pytest.mark.parametrize("command", [["models", "--json"], ["models"]])
def test_other_commands_report_a_broken_pipe_the_same_way(workdir, command):
    proc = subprocess.Popen(
        [sys.executable, "-m", "openai_structured.cli", *command],
        cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before it prints anything
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=30) == 141, stderr
    assert stderr == ""


def test_stdout_on_a_full_disk_is_an_output_error(server, workdir):
    server.queue(Reply.json(ADA))
    with open("/dev/full", "wb") as full:
        out = _cli(*run_args(server), cwd=workdir, stdout=full)
    _typed(out, 9, "output")
    assert "cannot write to stdout: No space left on device" in out.stderr


@pytest.mark.parametrize("command", [["models", "--json"], ["schema", "check", "schema.json"]])
def test_other_commands_on_a_full_disk_exit_9(workdir, command):
    with open("/dev/full", "wb") as full:
        out = _cli(*command, cwd=workdir, stdout=full)
    _typed(out, 9, "output")


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_closed_stdout_is_an_output_error_before_the_call(server, workdir, dry_run):
    server.queue(Reply.json(ADA))
    out = _cli(
        *run_args(server, *(["--dry-run"] if dry_run else [])),
        cwd=workdir,
        stdout=None,
        preexec_fn=lambda: os.close(1),  # `ostruct run ... >&-`
    )
    _typed(out, 9, "output")
    assert "stdout is closed" in out.stderr
    assert "--output-file" in out.stderr
    assert server.requests == []


def test_closed_stdout_with_output_file_is_fine(server, workdir):
    server.queue(Reply.json(ADA))
    out = _cli(*run_args(server, "-o", "r.json"), cwd=workdir, stdout=None,
               preexec_fn=lambda: os.close(1))  # fmt: skip
    assert out.code == 0, out.stderr
    assert json.loads((workdir / "r.json").read_text()) == ADA


# --- configuration --------------------------------------------------------------------------


def test_dry_run_with_an_unset_api_key_env_exits_as_the_real_run(server, workdir):
    args = run_args(server, "--api-key-env", "OSTRUCT_TEST_UNSET_KEY")
    real = _cli(*args, cwd=workdir)
    dry = _cli(*args, "--dry-run", cwd=workdir)
    _typed(real, 5, "config")
    _typed(dry, 5, "config")
    assert dry.stderr == real.stderr
    assert "OSTRUCT_TEST_UNSET_KEY" in dry.stderr
    assert dry.stdout == ""
    assert server.requests == []


# --- a failed Responses answer ----------------------------------------------------------------


def _response(status: str, error: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": "resp_failed1", "object": "response", "created_at": 1, "model": "gateway-model",
        "status": status, "error": error, "incomplete_details": None, "output": [],
        "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "usage": None,
    }  # fmt: skip


_FAILURE = {"code": "server_error", "message": "The model crashed while answering."}


class _FailedResponses(BaseHTTPRequestHandler):
    """Answers every Responses call with ``status: "failed"``: as JSON, or as the stream's
    ``response.created`` then ``response.failed`` events."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body.get("stream"):
            events = [
                ("response.created", _response("in_progress", None)),
                ("response.failed", _response("failed", _FAILURE)),
            ]
            payload = "".join(
                f"event: {kind}\ndata: "
                f"{json.dumps({'type': kind, 'sequence_number': i, 'response': obj})}\n\n"
                for i, (kind, obj) in enumerate(events)
            ).encode()
            content_type = "text/event-stream"
        else:
            payload = json.dumps(_response("failed", _FAILURE)).encode()
            content_type = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def failing_responses_url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _FailedResponses)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_failed_responses_answer_has_one_exit_code_streamed_or_not(failing_responses_url, workdir):
    outcomes = {}
    for stream in (False, True):
        outcomes[stream] = out = _cli(
            "run", "prompt.j2", "schema.json", "-V", "who=x", "--api", "responses",
            "-m", "gateway-model", "--base-url", failing_responses_url, "--max-retries", "0",
            *(["--stream"] if stream else []), cwd=workdir,
        )  # fmt: skip
        _typed(out, 6, "api")
        assert "The model crashed while answering." in out.stderr
    assert outcomes[False].code == outcomes[True].code


# --- schema files the JSON parser or UTF-8 cannot take ----------------------------------------

_SURROGATE_SCHEMA = (
    '{"type": "object", "properties": {"\\ud800": {"type": "string"}},'
    ' "required": ["\\ud800"], "additionalProperties": false}'
)
_DEEP = '{"type": "array", "items": ' * 3000 + '{"type": "string"}' + "}" * 3000
_BIG = '{"type": "object", "properties": {"n": {"type": "integer", "maximum": ' + "9" * 5001


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (_SURROGATE_SCHEMA, 'the property name "\\ud800" in #/properties holds a lone surrogate'),
        (_DEEP, "nested too deeply"),
        (_BIG + "}}}", "more than 4,300 digits"),
    ],
    ids=["lone-surrogate-name", "3000-levels", "5001-digits"],
)
@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_unusable_schema_files_are_schema_errors(server, workdir, text, needle, dry_run):
    (workdir / "odd.json").write_text(text, encoding="utf-8")
    args = ["run", "prompt.j2", "odd.json", *run_args(server)[3:]]
    out = _cli(*args, *(["--dry-run"] if dry_run else []), cwd=workdir)
    _typed(out, 4, "schema")
    assert needle in out.stderr
    assert server.requests == []
    check = _cli("schema", "check", "odd.json", cwd=workdir)
    assert check.code == 1
    assert check.stderr.startswith("FAILED: odd.json: ")
    assert needle in check.stderr


def test_lone_surrogate_in_a_command_line_value_is_an_input_error(server, workdir):
    proc = subprocess.run(
        [sys.executable.encode(), b"-m", b"openai_structured.cli",
         *[b"who=\xff" if a == "who=X" else a.encode()
           for a in run_args(server, "-V", "who=X")]],
        cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
    )  # fmt: skip
    out = Outcome(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
    _typed(out, 3, "input")
    assert "the rendered prompt holds U+DCFF" in out.stderr
    assert server.requests == []


def test_json_output_writes_a_lone_surrogate_as_its_escape():
    # The library refuses such answers today (exit 7); should one reach the output anyway,
    # it is printed as the escape it came as, not a UnicodeEncodeError.
    from openai_structured.cli._output import to_json

    for indent in (0, 2):
        text = to_json({"name": "\ud800 \u00e9"}, indent)
        assert "\\ud800 \u00e9" in text
        assert json.loads(text.encode("utf-8")) == {"name": "\ud800 \u00e9"}
