"""The files the user names are safe: ``--output-file`` never replaces a link, a device or a FIFO
and keeps permissions; TEMPLATE, SCHEMA and ``--system-prompt-file`` get the checks of ``-f``.

No test here can touch a system file, even if the code under test regressed: ``/dev/null`` is
written only with ``os.replace``/``os.rename`` fenced in to the test's directory, and the
``/dev/stdout`` case uses a link of the test's own to ``/proc/self/fd/1``.
"""

from __future__ import annotations

import json
import os
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_support import ADA, run_args

from openai_structured.testing import Reply

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/fd/1"), reason="needs /proc/self/fd")


@pytest.fixture
def fenced(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Renames may only land inside the test's directory (a regression fails, harmlessly)."""
    real_replace, real_rename = os.replace, os.rename

    def guard(real):  # type: ignore[no-untyped-def]
        def move(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
            if not os.path.abspath(dst).startswith(str(workdir) + os.sep):
                raise PermissionError(13, f"test fence: refusing to rename over {dst}")
            return real(src, dst, *args, **kwargs)

        return move

    monkeypatch.setattr(os, "replace", guard(real_replace))
    monkeypatch.setattr(os, "rename", guard(real_rename))
    return workdir


def _leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".ostruct-")]


# --- --output-file --------------------------------------------------------------------------


def test_output_file_symlink_is_written_through_and_stays_a_link(ostruct, server, fenced):
    (fenced / "real").mkdir()
    target = fenced / "real" / "result.json"
    target.write_text("old content\n")
    link = fenced / "link.json"
    link.symlink_to(target)
    server.queue(Reply.json(ADA))
    out = ostruct(*run_args(server, "-o", "link.json"))
    assert out.code == 0, out.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text()) == ADA
    assert _leftovers(fenced) == [] and _leftovers(target.parent) == []


def test_output_file_chain_of_links_and_dangling_link(ostruct, server, fenced):
    # link1 -> link2 -> missing.json: the file is created where the chain ends.
    (fenced / "link2").symlink_to(fenced / "missing.json")
    (fenced / "link1").symlink_to("link2")
    server.queue(Reply.json(ADA))
    out = ostruct(*run_args(server, "-o", "link1"))
    assert out.code == 0, out.stderr
    assert (fenced / "link1").is_symlink() and (fenced / "link2").is_symlink()
    assert json.loads((fenced / "missing.json").read_text()) == ADA


def test_output_file_keeps_a_private_files_mode(ostruct, server, fenced):
    target = fenced / "secret.json"
    target.write_text("{}")
    target.chmod(0o600)
    server.queue(Reply.json(ADA))
    out = ostruct(*run_args(server, "-o", "secret.json"))
    assert out.code == 0, out.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert json.loads(target.read_text()) == ADA


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_new_output_file_gets_the_umasks_default_mode(ostruct, server, fenced, umask, mode):
    old = os.umask(umask)
    try:
        server.queue(Reply.json(ADA))
        out = ostruct(*run_args(server, "-o", "new.json"))
    finally:
        os.umask(old)
    assert out.code == 0, out.stderr
    assert stat.S_IMODE((fenced / "new.json").stat().st_mode) == mode


def test_output_file_with_hard_links_updates_every_name(ostruct, server, fenced):
    first = fenced / "a.json"
    first.write_text("old")
    os.link(first, fenced / "b.json")
    server.queue(Reply.json(ADA))
    out = ostruct(*run_args(server, "-o", "a.json"))
    assert out.code == 0, out.stderr
    assert json.loads((fenced / "b.json").read_text()) == ADA
    assert first.stat().st_ino == (fenced / "b.json").stat().st_ino


def test_output_to_dev_null_writes_it_and_leaves_the_device(ostruct, server, fenced):
    server.queue(Reply.json(ADA))
    out = ostruct(*run_args(server, "-o", os.devnull))
    assert out.code == 0, out.stderr
    assert out.stdout == ""
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert server.requests  # the call was made, its result went to /dev/null


@needs_fifo
def test_output_to_a_fifo_writes_into_it_and_leaves_the_fifo(ostruct, server, fenced):
    fifo = fenced / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader, so the writer can open
    try:
        server.queue(Reply.json(ADA))
        out = ostruct(*run_args(server, "-o", "pipe"))
        ready, _, _ = select.select([reader], [], [], 5)
        data = os.read(reader, 65536) if ready else b""
    finally:
        os.close(reader)
    assert out.code == 0, out.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert json.loads(data) == ADA


@needs_proc
@pytest.mark.parametrize("stdout_kind", ["pipe", "appended file"])
def test_output_to_a_link_to_stdout_reaches_stdout(server, workdir, tmp_path, stdout_kind):
    # What `-o /dev/stdout` does, on a link of our own: /dev/stdout itself is never at risk.
    link = workdir / "my-stdout"
    link.symlink_to("/proc/self/fd/1")
    server.queue(Reply.json(ADA))
    log = tmp_path / "log.jsonl"
    log.write_text("earlier line\n")
    with open(log, "ab") as appended:
        proc = subprocess.run(
            [sys.executable, "-m", "openai_structured.cli", *run_args(server, "-o", str(link))],
            cwd=workdir, stdin=subprocess.DEVNULL, capture_output=False,
            stdout=subprocess.PIPE if stdout_kind == "pipe" else appended,
            stderr=subprocess.PIPE, timeout=30,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink()
    expected = json.dumps(ADA, indent=2) + "\n"
    if stdout_kind == "pipe":
        assert proc.stdout.decode() == expected
    else:  # appended to, not replaced: the earlier line is still there
        assert log.read_text() == "earlier line\n" + expected


def test_output_file_in_a_missing_directory_is_refused_before_the_call(ostruct, server, fenced):
    server.queue(Reply.json(ADA))
    out = ostruct(*run_args(server, "-o", "missing/dir/result.json"))
    assert out.code == 3
    assert "--output-file missing/dir/result.json" in out.stderr
    assert "no such directory" in out.stderr
    assert server.requests == []  # nothing was paid for a result that could not be kept


# --- TEMPLATE, SCHEMA, --system-prompt-file: the checks of -f files ---------------------------


def _cli(*args: str, cwd: Path, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """The real entry point with its address space capped at 2 GiB: a regression that reads
    /dev/zero fails with MemoryError instead of taking the machine's memory."""

    import resource  # POSIX only, like the FIFOs and devices these tests use

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run(
        [sys.executable, "-m", "openai_structured.cli", *args],
        cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
        preexec_fn=cap,
    )  # fmt: skip


@needs_fifo
@pytest.mark.parametrize(
    ("role", "code"),
    [("TEMPLATE", 3), ("SCHEMA", 4), ("--system-prompt-file", 3)],
)
def test_a_fifo_as_a_file_argument_fails_fast(server, workdir, role, code):
    os.mkfifo(workdir / "fifo")  # no writer will ever come: opening it would block forever
    args = {
        "TEMPLATE": run_args(server, template="fifo"),
        "SCHEMA": ["run", "prompt.j2", "fifo", *run_args(server)[3:]],
        "--system-prompt-file": run_args(server, "--system-prompt-file", "fifo"),
    }[role]
    started = time.monotonic()
    proc = _cli(*args, cwd=workdir)
    assert time.monotonic() - started < 15
    assert proc.returncode == code, proc.stderr
    assert "is a FIFO (named pipe), not a regular file" in proc.stderr
    assert f"{role} fifo" in proc.stderr
    assert server.requests == []


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize(("role", "code"), [("SCHEMA", 4), ("TEMPLATE", 3)])
def test_dev_zero_as_a_file_argument_fails_fast(server, workdir, role, code):
    args = run_args(server, template="/dev/zero") if role == "TEMPLATE" else [
        "run", "prompt.j2", "/dev/zero", *run_args(server)[3:]]  # fmt: skip
    started = time.monotonic()
    proc = _cli(*args, cwd=workdir)
    assert time.monotonic() - started < 15
    assert proc.returncode == code, proc.stderr
    assert f"{role} /dev/zero is a character device, not a regular file" in proc.stderr
    assert "bug in ostruct" not in proc.stderr


@pytest.mark.parametrize(
    ("role", "code"),
    [("TEMPLATE", 3), ("SCHEMA", 4), ("--system-prompt-file", 3)],
)
def test_file_arguments_obey_max_file_size(ostruct, server, workdir, role, code):
    (workdir / "big.j2").write_text("{# padding #}" * 200 + "Who is {{ who }}?")
    (workdir / "big.json").write_text(json.dumps({**json.loads((workdir / "schema.json")
                                      .read_text()), "description": "x" * 3000}))  # fmt: skip
    (workdir / "big.txt").write_text("Be brief. " * 300)
    args = {
        "TEMPLATE": run_args(server, template="big.j2"),
        "SCHEMA": ["run", "prompt.j2", "big.json", *run_args(server)[3:]],
        "--system-prompt-file": run_args(server, "--system-prompt-file", "big.txt"),
    }[role]
    out = ostruct(*args, "--max-file-size", "1K")
    assert out.code == code, out.stderr
    assert "over the per-file limit of 1.0 KiB" in out.stderr
    assert server.requests == []
    server.queue(Reply.json(ADA))  # within a larger limit, the same file is fine
    assert ostruct(*args, "--max-file-size", "8K").code == 0


def test_system_prompt_file_outside_the_allowed_dirs_is_refused(ostruct, server, workdir):
    out = ostruct(*run_args(server, "--system-prompt-file", "/etc/hostname"))
    assert out.code == 3
    assert out.stderr.startswith("Error (input): --system-prompt-file: access denied: ")
    assert "outside the allowed directories" in out.stderr
    assert "--allow /etc" in out.stderr
    assert server.requests == []


def test_system_prompt_file_through_a_link_out_is_refused(
    ostruct, server, workdir, tmp_path_factory
):
    outside = tmp_path_factory.mktemp("outside") / "system.txt"
    outside.write_text("secret system prompt")
    (workdir / "system.txt").symlink_to(outside)
    out = ostruct(*run_args(server, "--system-prompt-file", "system.txt"))
    assert out.code == 3
    assert "outside the allowed directories" in out.stderr
    server.queue(Reply.json(ADA))  # --allow makes it readable, as for -f
    out = ostruct(*run_args(server, "--system-prompt-file", "system.txt",
                            "--allow", str(outside.parent)))  # fmt: skip
    assert out.code == 0, out.stderr
    assert server.last_request.json["messages"][0] == {
        "role": "system", "content": "secret system prompt"}  # fmt: skip


def test_template_outside_the_working_directory_is_still_allowed(
    ostruct, server, workdir, tmp_path_factory
):
    # TEMPLATE and SCHEMA are the program, not data: they are not confined.
    elsewhere = tmp_path_factory.mktemp("templates")
    (elsewhere / "t.j2").write_text("Hi {{ who }}")
    (workdir / "t.j2").symlink_to(elsewhere / "t.j2")
    server.queue(Reply.json(ADA), Reply.json(ADA))
    assert ostruct(*run_args(server, template=str(elsewhere / "t.j2"))).code == 0
    assert ostruct(*run_args(server, template="t.j2")).code == 0
    assert server.last_request.json["messages"][-1]["content"] == "Hi Ada"
