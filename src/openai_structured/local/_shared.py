"""The process-wide embedded server used when a call gives no client and no provider is set.

Started lazily by the first such call (model load: a few seconds), then reused by every later
call in the process, and stopped at interpreter exit (the server's own finalizer). One server
for the whole process because each one holds the model in memory and takes seconds to start.

Starting it logs a notice ("using the embedded local model ...") on the
``openai_structured.local`` logger: as a WARNING (which Python prints on stderr when logging
is not configured) only when stderr is a terminal and the notice has not been shown in that
terminal session yet, else as INFO. So a script in a pipe or in CI gets a silent stderr, and a
person at a terminal learns once what is answering. The session is the terminal (``ttyname``)
and its session id (``getsid``), kept in a one-line marker file per terminal in the user cache
directory; if the marker cannot be read or written, the notice is shown.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from pathlib import Path
from typing import IO, Any

from ._model import missing_packages
from ._server import LocalModelServer

__all__ = ["is_installed", "notice_due", "shared_server", "stop_shared_server"]

_log = logging.getLogger("openai_structured.local")
_lock = threading.Lock()
_server: LocalModelServer | None = None


def is_installed() -> bool:
    """True when the ``[local]`` extra is installed (checked without importing it)."""
    return not missing_packages()


def _marker_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("openai-structured")) / "notices"


def _is_terminal(stream: IO[Any] | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def notice_due(stream: IO[Any] | None = None, *, marker_dir: Path | None = None) -> bool:
    """True when the embedded-model notice is to be shown: ``stream`` (stderr) is a terminal,
    and the notice was not shown yet in this terminal session (the marker is then written)."""
    stream = sys.stderr if stream is None else stream
    if not _is_terminal(stream):
        return False
    try:
        tty = os.ttyname(stream.fileno())
        session = str(os.getsid(0))
    except (AttributeError, OSError, ValueError):  # no ttyname/getsid (Windows): every time
        return True
    marker = (marker_dir or _marker_dir()) / ("local-" + re.sub(r"[^\w.-]", "_", tty.strip("/")))
    try:
        if marker.read_text(encoding="utf-8").strip() == session:
            return False
    except (OSError, UnicodeDecodeError):
        pass  # not shown yet on this terminal (or unreadable: show it)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        partial = marker.with_name(f"{marker.name}.{os.getpid()}.partial")
        partial.write_text(session + "\n", encoding="utf-8")
        os.replace(partial, marker)
    except OSError:
        pass  # shown every time rather than never
    return True


def _notice(server: LocalModelServer) -> None:
    level = logging.WARNING if notice_due() else logging.INFO
    _log.log(
        level,
        "No OPENAI_API_KEY, Azure variables or OPENAI_BASE_URL set: using the embedded local "
        "model (%s, a small model for offline use; context %s tokens). Every model= name is "
        "served by it.",
        server.model_name,
        f"{server.n_ctx:,}",
    )


def shared_server() -> LocalModelServer:
    """The running process-wide server, started on first use (thread-safe)."""
    global _server
    with _lock:
        if _server is None or not _server.running:
            server = LocalModelServer()
            _notice(server)
            _server = server.start()
        return _server


def stop_shared_server() -> None:
    """Stop the process-wide server if it runs (the next call starts a new one)."""
    global _server
    with _lock:
        server, _server = _server, None
    if server is not None:
        server.stop()
