"""``ostruct run`` on a terminal (issue 16): Ctrl-C during ``--stream`` leaves nothing of the
live panel on screen, and a model name the registry does not know gets its note there.

The real program runs on a pseudo-terminal that is its controlling terminal, so a ``\\x03``
written to it is what a keyboard's Ctrl-C is: the terminal echoes ``^C`` and sends SIGINT. What
the screen shows at the end is worked out from the bytes written, by :func:`screen`.
"""

from __future__ import annotations

import os
import re
import select
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_support import ADA, CANARY

from openai_structured.testing import Fault, Reply

termios = pytest.importorskip("termios")
fcntl = pytest.importorskip("fcntl")
pytestmark = pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")

COLUMNS, LINES = 100, 30
_CSI = re.compile(r"\x1b\[([?0-9;]*)([A-Za-z])")


def screen(output: str, columns: int = COLUMNS) -> list[str]:
    """The rows a terminal shows after ``output``: printable text with automatic margins (a
    character in the last column leaves the cursor there until the next one wraps it), CR, LF,
    cursor up/down (CSI A/B) and erase in line (CSI K); other sequences change no text."""
    rows: list[list[str]] = [[]]
    row = col = 0
    pending_wrap = False
    i = 0
    while i < len(output):
        found = _CSI.match(output, i) if output[i] == "\x1b" else None
        if found is not None:
            arg, command = found.groups()
            count = int(arg) if arg.isdigit() else 1
            if command == "A":
                row = max(0, row - count)
            elif command == "B":
                row += count
            elif command == "K":
                rows[row][col if arg in ("", "0") else 0 :] = []
            pending_wrap = pending_wrap and command not in "AB"
            i = found.end()
        else:
            char = output[i]
            i += 1
            if char == "\r":
                col, pending_wrap = 0, False
            elif char == "\n":
                row, pending_wrap = row + 1, False
            elif char >= " ":
                if pending_wrap:
                    row, col, pending_wrap = row + 1, 0, False
                rows.extend([] for _ in range(row + 1 - len(rows)))
                line = rows[row]
                line.extend(" " for _ in range(col + 1 - len(line)))
                line[col] = char
                if col == columns - 1:
                    pending_wrap = True
                else:
                    col += 1
        rows.extend([] for _ in range(row + 1 - len(rows)))
    return ["".join(r).rstrip() for r in rows]


def test_the_screen_model_wraps_like_a_terminal():
    assert screen("ab\r\x1b[2Kc") == ["c"]
    assert screen("x" * COLUMNS + "^C") == ["x" * COLUMNS, "^C"]  # the echo wraps
    assert screen("x" * COLUMNS + "\r\n") == ["x" * COLUMNS, ""]  # no wrap, then a new line
    assert screen("a\r\nb\r\n\x1b[1A\x1b[2K\x1b[1A\x1b[2K") == ["", "", ""]


def _on_terminal(
    args: list[str], cwd: Path, *, ctrl_c_after: str | None = None, wait: float = 0.5
) -> tuple[int, str, str]:
    """Run ``ostruct ARGS`` with stdin and stderr on a new pseudo-terminal (its controlling
    terminal), stdout a pipe; type Ctrl-C ``wait`` s after ``ctrl_c_after`` shows up."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(LINES)}
    env.pop("NO_COLOR", None)

    def controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [sys.executable, "-m", "openai_structured.cli", *args],
        cwd=cwd, stdin=slave, stdout=subprocess.PIPE, stderr=slave, env=env,
        preexec_fn=controlling_terminal,
    )  # fmt: skip
    os.close(slave)
    shown = b""
    seen_at: float | None = None
    typed = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the program has closed the terminal
                break
            if not data:
                break
            shown += data
        elif proc.poll() is not None:
            break
        if ctrl_c_after is not None and not typed:
            if seen_at is None and ctrl_c_after.encode() in shown:
                seen_at = time.monotonic()
            if seen_at is not None and time.monotonic() - seen_at >= wait:
                os.write(master, b"\x03")
                typed = True
    os.close(master)
    assert proc.stdout is not None
    stdout = proc.stdout.read().decode()
    return proc.wait(timeout=30), shown.decode("utf-8", "replace"), stdout


def test_ctrl_c_during_stream_leaves_nothing_of_the_panel_on_screen(server, workdir):
    # A long, slow answer: the panel is on screen (and has been redrawn) when Ctrl-C comes.
    slow = Reply.json({"name": "A" * 400, "age": 36}, chunk_size=2)
    server.queue(Fault.delay(between_events=0.02, reply=slow))
    code, shown, stdout = _on_terminal(
        ["run", "prompt.j2", "schema.json", "-V", "who=Ada", "--stream", "--base-url",
         server.base_url, "--max-retries", "0"],
        workdir, ctrl_c_after='"name"',
    )  # fmt: skip
    assert code == 130, shown
    assert stdout == ""
    assert "^C" in shown  # the terminal did echo it
    assert "answer so far" in shown  # the panel was drawn
    rows = [row for row in screen(shown) if row]
    assert rows == ["ostruct: interrupted"], "\n".join(screen(shown))
    assert CANARY not in shown


def test_the_panel_leaves_room_for_the_echo_and_fits_the_screen(server, workdir):
    server.queue(Fault.delay(between_events=0.01, reply=Reply.json(ADA, chunk_size=2)))
    code, shown, stdout = _on_terminal(
        ["run", "prompt.j2", "schema.json", "-V", "who=Ada", "--stream", "--base-url",
         server.base_url],
        workdir,
    )  # fmt: skip
    assert code == 0, shown
    assert stdout.startswith("{")
    borders = [line for line in shown.split("\n") if "╭" in line]
    assert borders
    for line in borders:
        top = _CSI.sub("", line).strip("\r").split("\r")[-1]
        assert len(top) == COLUMNS - 2
    assert [row for row in screen(shown) if row] == []  # cleared at the end


def test_an_unknown_model_name_gets_its_note_on_a_terminal(server, workdir):
    server.queue(Reply.json(ADA))
    code, shown, stdout = _on_terminal(
        ["run", "prompt.j2", "schema.json", "-V", "who=Ada", "--model", "gpt-4o-mni",
         "--base-url", server.base_url],
        workdir,
    )  # fmt: skip
    assert code == 0, shown
    assert stdout.startswith("{")
    assert (
        "ostruct: note: the model registry does not know 'gpt-4o-mni': the server (profile "
        "compatible) decides what it means; did you mean gpt-4o-mini?"
    ) in "".join(screen(shown))  # one line, wrapped by the terminal
