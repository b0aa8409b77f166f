"""Helpers of the ``ostruct batch`` end-to-end tests: the echoing server, the subprocess, the
output checks.

Every record's prompt carries ``record <ID> text <TEXT>``; :class:`Echo` (the fake server's
``default_reply``) answers ``{"rid": ID, "echo": TEXT}``, so each output line can be checked
against the record it belongs to, and counts the requests it saw per record id.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openai_structured.testing import CapturedRequest, FakeOpenAIServer, Fault, Reply

#: A distinctive key: it must never be seen in any file or stream the run writes.
KEY = "sk-test-SECRET-123456"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"rid": {"type": "string"}, "echo": {"type": "string"}},
    "required": ["rid", "echo"],
    "additionalProperties": False,
}
TEMPLATE = "record <{{ id }}> text <{{ text }}>\n"
_MARK = re.compile(r"record <(.*?)> text <(.*?)>", re.DOTALL)

# Environment variables that would make a run pick another provider or the embedded model.
_PROVIDER_VARS = (
    "OPENAI_BASE_URL",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_AD_TOKEN",
    "OPENAI_STRUCTURED_SERVER",
)


def mark_of(request: CapturedRequest) -> tuple[str, str] | None:
    """(record id, text) from the request's last message, None if it has none."""
    body = request.json if isinstance(request.json, Mapping) else {}
    messages = body.get("messages") or []
    content = messages[-1].get("content") if messages else None
    found = _MARK.search(content) if isinstance(content, str) else None
    return None if found is None else (found.group(1), found.group(2))


class Echo:
    """A ``default_reply``: the record's id and text back. Thread-safe (it is called on the
    server's handler threads, concurrently).

    ``bad`` ids get an answer that is JSON but not the schema's; ``faults`` maps ids to what
    they get instead. ``delay``: seconds each answer takes, spent here so that :attr:`peak`
    (the most answers being prepared at once) shows the client's concurrency. ``hold``: answers
    (only those of the ``held`` ids, if given) wait until the event is set, or ``hold_timeout``
    seconds (a guard: :attr:`expired` counts the answers sent because it ran out). ``times``:
    ``(time.monotonic(), id)`` of each call; without latency, when the request was admitted.
    """

    def __init__(
        self,
        bad: Iterable[str] = (),
        faults: Mapping[str, Fault] | None = None,
        delay: float = 0.0,
        hold: threading.Event | None = None,
        hold_timeout: float = 30.0,
        held: Iterable[str] | None = None,
    ) -> None:
        self.bad = set(bad)
        self.faults = dict(faults or {})
        self.delay = delay
        self.hold = hold
        self.hold_timeout = hold_timeout
        self.held = None if held is None else set(held)
        self.peak = 0
        self.expired = 0
        self.times: list[tuple[float, str]] = []
        self._active = 0
        self._lock = threading.Lock()

    def __call__(self, request: CapturedRequest) -> Reply | Fault:
        mark = mark_of(request)
        if mark is None:
            # A client killed while sending leaves a request without its body; nobody reads
            # the answer.
            assert request.body == b"" or request.json is None, request
            return Fault.status(400, message="the request has no body")
        rid, text = mark
        with self._lock:
            self.times.append((time.monotonic(), rid))
            self._active += 1
            self.peak = max(self.peak, self._active)
        held = self.hold is not None and (self.held is None or rid in self.held)
        try:
            if held and self.hold is not None and not self.hold.wait(self.hold_timeout):
                with self._lock:
                    self.expired += 1
            if self.delay:
                time.sleep(self.delay)
        finally:
            with self._lock:
                self._active -= 1
        if rid in self.faults:
            return self.faults[rid]
        if rid in self.bad:
            return Reply.json({"rid": rid})  # "echo" is required: a schema mismatch
        return Reply.json({"rid": rid, "echo": text})


def requested(server: FakeOpenAIServer) -> Counter[str]:
    """Requests that reached the server per record id (429s included)."""
    counts: Counter[str] = Counter()
    for request in server.requests:
        mark = mark_of(request)
        if mark is not None:
            counts[mark[0]] += 1
    return counts


# --- inputs ------------------------------------------------------------------------------------


def ids(n: int) -> list[str]:
    return [f"r{i:04d}" for i in range(n)]


def text_of(rid: str) -> str:
    return f"text of {rid}"


def write_jsonl(path: Path, n: int) -> list[str]:
    """``n`` records ``{"id": "r0000", "text": "text of r0000"}``; their ids."""
    names = ids(n)
    path.write_text("".join(json.dumps({"id": r, "text": text_of(r)}) + "\n" for r in names))
    return names


@dataclass
class Workdir:
    """A directory holding ``t.j2``, ``s.json`` and the run's files; the runs' cwd."""

    path: Path

    @property
    def out(self) -> Path:
        return self.path / "out.jsonl"

    @property
    def journal(self) -> Path:
        return self.path / "out.jsonl.ostruct-journal"


def workdir(tmp_path: Path, template: str = TEMPLATE) -> Workdir:
    (tmp_path / "t.j2").write_text(template, encoding="utf-8")
    (tmp_path / "s.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    return Workdir(tmp_path)


# --- the subprocess ----------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one ``ostruct batch`` process produced."""

    code: int
    stdout: str
    stderr: str


def batch_args(
    server: FakeOpenAIServer, *extra: str, input: str = "in.jsonl", base_url: str | None = None
) -> list[str]:
    """``batch t.j2 s.json -i IN -o out.jsonl --base-url URL -m gpt-4o`` plus ``extra``; the URL
    is the server's unless ``base_url`` is given."""
    return [
        "batch",
        "t.j2",
        "s.json",
        "-i",
        input,
        "-o",
        "out.jsonl",
        "--base-url",
        base_url or server.base_url,
        "-m",
        "gpt-4o",
        *extra,
    ]


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _PROVIDER_VARS}
    env.update(OPENAI_API_KEY=KEY, OPENAI_STRUCTURED_LOCAL="0", COLUMNS="160")
    return env


def _command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "openai_structured.cli", *args]


def no_key(*texts: str | bytes) -> None:
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        assert KEY.encode() not in data
        assert b"SECRET-123456" not in data  # nor a recognisable piece of it


def run(args: list[str], cwd: Path, *, input: str | None = None, timeout: float = 60) -> Outcome:
    """Run ``ostruct ARGS`` to its end; the key is never in its stdout or stderr."""
    proc = subprocess.run(
        _command(args),
        cwd=cwd,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=timeout,
    )
    no_key(proc.stdout, proc.stderr)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


class Process:
    """``ostruct ARGS`` running in the background, to be killed or interrupted mid-run."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            _command(args),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_environment(),
        )

    def signal(self, signum: signal.Signals) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 60) -> Outcome:
        try:
            stdout, stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise
        no_key(stdout, stderr)
        return Outcome(self.proc.returncode, stdout, stderr)

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.proc.poll() is None:  # a failed assertion must not leave it running
            self.proc.kill()
        self.proc.communicate()


def wait_until(
    condition: Callable[[], bool], proc: Process, timeout: float = 30, what: str = ""
) -> None:
    """Poll ``condition()`` until it holds; fail if the process ends first or time runs out
    (a generous limit that only stops a hung test: nothing is asserted about speed)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.proc.poll() is not None:
            _, err = proc.proc.communicate()
            code = proc.proc.returncode
            raise AssertionError(f"ostruct ended (exit {code}) before {what}: {err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


# --- the output --------------------------------------------------------------------------------


def line_count(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def has_lines(path: Path, count: float) -> Callable[[], bool]:
    """A condition for :func:`wait_until`: the output has at least ``count`` lines."""
    return lambda: line_count(path) >= count


def lines_of(path: Path, *, complete: bool = True) -> list[dict[str, Any]]:
    """The output's lines, parsed. ``complete``: it must end with a newline (no torn line);
    otherwise a torn last line (a kill mid-write) is left out."""
    data = path.read_bytes() if path.exists() else b""
    if complete:
        assert data == b"" or data.endswith(b"\n"), data[-120:]
    return [json.loads(line) for line in data.split(b"\n")[:-1]]


Expected = Mapping[str, str] | Iterable[str]


def assert_each_once(path: Path, expected: Expected) -> dict[str, dict[str, Any]]:
    """Exactly one line per expected id and no other; each result is its own record's answer
    (``expected``: id -> text, or ids whose text is :func:`text_of`). Returns the lines by id."""
    texts = dict(expected) if isinstance(expected, Mapping) else {r: text_of(r) for r in expected}
    lines = lines_of(path)
    counts = Counter(line["id"] for line in lines)
    repeated = {rid: n for rid, n in counts.items() if n > 1}
    assert not repeated, repeated
    missing, extra = set(texts) - set(counts), set(counts) - set(texts)
    assert not missing and not extra, (sorted(missing)[:20], sorted(extra)[:20])
    by_id = {line["id"]: line for line in lines}
    for rid, line in by_id.items():
        if "result" in line:
            assert line["result"] == {"rid": rid, "echo": texts[rid]}, line
    return by_id


def assert_all_ok(path: Path, expected: Expected) -> None:
    by_id = assert_each_once(path, expected)
    failed = {rid: line["error"] for rid, line in by_id.items() if "result" not in line}
    assert not failed, failed
