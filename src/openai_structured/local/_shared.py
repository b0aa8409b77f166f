"""The process-wide embedded server used when a call gives no client and no provider is set.

Started lazily by the first such call (model load: a few seconds), then reused by every later
call in the process, and stopped at interpreter exit (the server's own finalizer). One server
for the whole process because each one holds the model in memory and takes seconds to start.
"""

from __future__ import annotations

import logging
import threading

from ._model import missing_packages
from ._server import LocalModelServer

__all__ = ["is_installed", "shared_server", "stop_shared_server"]

_log = logging.getLogger("openai_structured.local")
_lock = threading.Lock()
_server: LocalModelServer | None = None


def is_installed() -> bool:
    """True when the ``[local]`` extra is installed (checked without importing it)."""
    return not missing_packages()


def shared_server() -> LocalModelServer:
    """The running process-wide server, started on first use (thread-safe)."""
    global _server
    with _lock:
        if _server is None or not _server.running:
            server = LocalModelServer()
            _log.warning(
                "No OPENAI_API_KEY, Azure variables or OPENAI_BASE_URL set: using the embedded "
                "local model (%s, a small model for offline use). Every model= name is served "
                "by it.",
                server.model_name,
            )
            _server = server.start()
        return _server


def stop_shared_server() -> None:
    """Stop the process-wide server if it runs (the next call starts a new one)."""
    global _server
    with _lock:
        server, _server = _server, None
    if server is not None:
        server.stop()
