"""Errors of the embedded local model: each one says what went wrong and what to do."""

from __future__ import annotations

from ..errors import OpenAIClientError

__all__ = [
    "LocalModelError",
    "LocalModelNotInstalledError",
    "ModelFileError",
    "PortUnavailableError",
    "ServerStartError",
]

INSTALL_HINT = (
    "Install it with: pip install 'openai-structured[local]'\n"
    "(this builds llama-cpp-python from source the first time: about 10 minutes on 2 cores; "
    "pip caches the wheel afterwards)."
)


class LocalModelError(OpenAIClientError):
    """Base of the embedded local model's errors."""


class LocalModelNotInstalledError(LocalModelError, ImportError):
    """The ``[local]`` extra (llama-cpp-python's server or the model package) is missing.

    Also an ``ImportError``, since that is what it is at heart.
    """

    def __init__(self, missing: list[str]) -> None:
        self.missing = list(missing)
        super().__init__(
            f"The embedded local model is not installed (missing: {', '.join(missing)}).\n"
            + INSTALL_HINT
        )


class ModelFileError(LocalModelError):
    """The GGUF model file is missing, unreadable, or does not have the expected sha256."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class PortUnavailableError(LocalModelError, OSError):
    """The loopback port for the server cannot be bound (taken, or not allowed)."""

    def __init__(self, message: str, *, host: str, port: int) -> None:
        super().__init__(message)
        self.host = host
        self.port = port


class ServerStartError(LocalModelError):
    """The server process exited or did not answer in time; ``output`` is its last output."""

    def __init__(self, message: str, *, returncode: int | None, output: str) -> None:
        tail = output.strip()
        if tail:
            message += "\n--- server output (last lines) ---\n" + tail
        super().__init__(message)
        self.returncode = returncode
        self.output = output
