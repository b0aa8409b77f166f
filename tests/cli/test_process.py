"""The real entry point in a subprocess: a representative set (each run costs ~1 s of start-up)."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_support import ADA, CANARY

from openai_structured.testing import FakeOpenAIServer, Fault, Reply


def test_run_with_file_and_piped_stdin(ostruct_process, server, workdir):
    (workdir / "note.txt").write_text("from a file")
    (workdir / "t.j2").write_text("---\nsystem_prompt: Be brief.\n---\n{{ note }} | {{ stdin }}")
    server.queue(Reply.json(ADA))
    out = ostruct_process(
        "run", "t.j2", "schema.json", "-f", "note=note.txt", "--base-url", server.base_url,
        "--temperature", "0", cwd=workdir, input="from stdin",
    )  # fmt: skip
    assert out.code == 0, out.stderr
    assert out.stdout == json.dumps(ADA, indent=2) + "\n"
    assert out.stderr == ""
    body = server.last_request.json
    assert body["temperature"] == 0
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "from a file | from stdin"},
    ]


def test_console_script_is_installed(server, workdir):
    script = shutil.which("ostruct", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the ostruct console script is not installed in this environment")
    proc = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0
    assert proc.stdout.startswith("ostruct, version")


@pytest.mark.parametrize("verbose", [False, True])
def test_echoed_key_never_reaches_the_terminal(ostruct_process, server, workdir, verbose):
    server.queue(Fault.status(401, message=f"Incorrect API key provided: {CANARY}"))
    out = ostruct_process(
        "run", "prompt.j2", "schema.json", "-V", "who=x", "--base-url", server.base_url,
        "--max-retries", "0", *(["--verbose"] if verbose else []), cwd=workdir,
    )  # fmt: skip
    assert out.code == 6  # the fixture checked the canary is absent from stdout and stderr
    assert out.stdout == ""
    assert out.stderr.count("Traceback") == (1 if verbose else 0)


def test_refusal_exit_code(ostruct_process, server, workdir):
    server.queue(Reply.refusal("No."))
    out = ostruct_process("run", "prompt.j2", "schema.json", "-V", "who=x",
                          "--base-url", server.base_url, cwd=workdir)  # fmt: skip
    assert out.code == 7
    assert out.stderr.startswith("Error (response): The model refused")


def test_path_outside_allowed_dirs_exit_code(ostruct_process, server, workdir):
    out = ostruct_process("run", "prompt.j2", "schema.json", "-V", "who=x", "-f",
                          "p=/etc/passwd", "--base-url", server.base_url, cwd=workdir)  # fmt: skip
    assert out.code == 3
    assert "outside the allowed directories" in out.stderr
    assert server.requests == []


def test_stream_to_a_pipe_prints_only_the_final_json(ostruct_process, server, workdir):
    server.queue(Reply.json(ADA, chunk_size=1))
    out = ostruct_process("run", "prompt.j2", "schema.json", "-V", "who=x", "--stream",
                          "--base-url", server.base_url, cwd=workdir)  # fmt: skip
    assert out.code == 0, out.stderr
    assert out.stdout == json.dumps(ADA, indent=2) + "\n"
    assert out.stderr == ""


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_stream_on_a_terminal_draws_the_partial_object_on_stderr_only(server, workdir):
    server.queue(Fault.delay(between_events=0.03, reply=Reply.json(ADA, chunk_size=2)))
    master, slave = os.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "openai_structured.cli", "run", "prompt.j2", "schema.json",
         "-V", "who=x", "--stream", "--base-url", server.base_url],
        cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=env,
    )  # fmt: skip
    os.close(slave)
    terminal = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            terminal += data
        elif proc.poll() is not None:
            break
    os.close(master)
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    assert proc.wait(timeout=10) == 0, terminal
    assert stdout == json.dumps(ADA, indent=2) + "\n"
    shown = terminal.decode("utf-8", "replace")
    assert "answer so far" in shown
    assert "name" in shown
    assert CANARY not in shown


def test_connection_refused_exit_code(ostruct_process, workdir):
    with FakeOpenAIServer() as gone:
        url = gone.base_url
    out = ostruct_process("run", "prompt.j2", "schema.json", "-V", "who=x", "--base-url", url,
                          "--max-retries", "0", cwd=workdir)  # fmt: skip
    assert out.code == 6
    assert "Could not reach the server" in out.stderr


def test_a_reader_that_closes_the_pipe_early_is_a_quiet_broken_pipe(server, workdir):
    # `ostruct run ... | head -c 1`: the reader takes one byte and goes away. Like any program
    # killed by SIGPIPE: exit 141 (documented), and nothing on stderr.
    server.queue(Reply.json({"name": "x" * 200_000, "age": 36}))
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-pipe"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "openai_structured.cli", "run", "prompt.j2", "schema.json",
         "-V", "who=Ada", "--base-url", server.base_url],
        cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(1) == b"{"
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=30) == 141, stderr
    assert stderr == ""
