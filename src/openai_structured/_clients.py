"""Which server to talk to when the caller gives no client (SPEC §6).

``OPENAI_API_KEY`` -> OpenAI; Azure variables -> Azure OpenAI; ``OPENAI_BASE_URL`` -> that
server; otherwise the embedded local model if installed; else an error that says how to set one
up. The key itself is never put into an error message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .errors import OpenAIClientError

__all__ = ["NoProviderError", "default_client", "provider_from_env"]


class NoProviderError(OpenAIClientError):
    """No client was given and the environment names no server."""


_AZURE_KEYS = ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN")


def provider_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The provider the environment selects: 'openai', 'azure', 'base_url', or None."""
    env = os.environ if env is None else env
    if env.get("OPENAI_BASE_URL"):
        # An explicit base URL wins over a key: the key is then that server's key.
        return "base_url"
    if env.get("OPENAI_API_KEY"):
        return "openai"
    if env.get("AZURE_OPENAI_ENDPOINT") and any(env.get(k) for k in _AZURE_KEYS):
        return "azure"
    return None


def default_client(*, asynchronous: bool) -> Any:
    """Build an SDK client from the environment, or explain how to configure one."""
    import openai

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
        key = os.environ.get("OPENAI_API_KEY") or "not-needed"
        return openai.AsyncOpenAI(api_key=key) if asynchronous else openai.OpenAI(api_key=key)
    raise NoProviderError(
        "No model server is configured. Do one of:\n"
        "  - pass client=OpenAI(...) (or AsyncOpenAI, AzureOpenAI) to the call;\n"
        "  - set OPENAI_API_KEY for OpenAI;\n"
        "  - set AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY (and OPENAI_API_VERSION) "
        "for Azure OpenAI;\n"
        "  - set OPENAI_BASE_URL to an OpenAI-compatible server (vLLM, Ollama, llama.cpp)."
    )
