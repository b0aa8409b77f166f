"""The server process: ``python -m llama_cpp.server`` behind a lifeline to its parent.

Run as ``python -m openai_structured.local._child [llama_cpp.server arguments]`` by
:class:`~openai_structured.local.LocalModelServer`, never by users.

Why a wrapper instead of starting ``llama_cpp.server`` directly:

* **No orphans, even if the parent is SIGKILLed.** The parent holds the write end of a pipe
  connected to our stdin and never writes to it. When the parent dies for any reason the kernel
  closes that end, our read returns EOF and we exit at once. Linux's ``PR_SET_PDEATHSIG`` would
  fire when the *thread* that started us exits (a worker thread, ``asyncio.to_thread``), killing
  a healthy server; the pipe is tied to the process and also works on macOS and Windows.
* **A predictable configuration.** llama-cpp-python's settings are pydantic-settings models that
  also read environment variables named like their fields (``API_KEY``, ``N_CTX``, ``HOST``,
  ``CHAT_FORMAT``, ``CONFIG_FILE``...). Such variables in a user's shell would silently change the
  server, so they are removed here; everything is given on the command line instead.
"""

from __future__ import annotations

import importlib
import os
import runpy
import sys
import threading

__all__ = ["main"]


def _exit_when_parent_dies() -> None:
    """Block on stdin; EOF (or any error) means the parent is gone: exit immediately."""
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    # os._exit: no clean-up handlers to wait for, the server holds nothing worth flushing.
    os._exit(0)


def _clean_environment() -> None:
    # Imported by name: mypy must pass whether or not the extra is installed.
    settings = importlib.import_module("llama_cpp.server.settings")
    names = {str(name).upper() for name in settings.Settings.model_fields} | {"CONFIG_FILE"}
    for key in list(os.environ):
        if key.upper() in names:
            del os.environ[key]


def main(argv: list[str]) -> None:
    """Start the lifeline, then run llama-cpp-python's server with ``argv``."""
    threading.Thread(target=_exit_when_parent_dies, name="parent-lifeline", daemon=True).start()
    _clean_environment()
    sys.argv = ["llama_cpp.server", *argv]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
