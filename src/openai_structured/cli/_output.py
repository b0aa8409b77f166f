"""Writing the result: JSON text, and ``--output-file`` written atomically."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any

from ._report import CliError
from .exit_codes import ExitCode

__all__ = ["to_json", "write_atomic"]


def to_json(value: Any, indent: int) -> str:
    """The result as JSON text; ``indent=0`` gives one compact line. Non-ASCII stays readable."""
    if indent == 0:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(value, ensure_ascii=False, indent=indent)


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one.

    A temporary file in the same directory is renamed over the target (``os.replace`` is
    atomic on one file system); an interrupted run never leaves half a JSON document.
    """
    target = os.path.abspath(path)
    directory = os.path.dirname(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".ostruct-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise CliError(
            f"--output-file {path}: cannot write in {directory}: {exc.strerror or exc}",
            ExitCode.INPUT,
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise CliError(
            f"--output-file {path}: cannot write: {exc.strerror or exc}", ExitCode.INPUT
        ) from None
