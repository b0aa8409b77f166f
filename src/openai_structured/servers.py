"""Server profiles: the one place that knows how each kind of server takes structured output.

OpenAI and Azure get strict-mode schemas and the model registry's checks. OpenAI-compatible
servers (vLLM, Ollama, llama.cpp, our loopback test server) serve models the registry does not
know, so they get a permissive model profile, and the schema in the form they accept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

__all__ = ["PROFILES", "ServerProfile", "profile_for"]

ResponseFormatStyle = Literal["json_schema", "json_object_schema"]


@dataclass(frozen=True)
class ServerProfile:
    """How one kind of server wants its structured-output request."""

    name: str
    #: Check model names, parameters and limits against the registry before sending.
    uses_registry: bool
    #: Compile the schema to OpenAI strict mode (else send the plain JSON Schema).
    strict_schema: bool
    #: ``json_schema``: OpenAI's ``{"type": "json_schema", "json_schema": {...}}``;
    #: ``json_object_schema``: llama.cpp's ``{"type": "json_object", "schema": {...}}``.
    response_format: ResponseFormatStyle = "json_schema"
    supports_responses_api: bool = True

    def chat_response_format(self, name: str, schema: dict[str, Any], strict: bool) -> Any:
        if self.response_format == "json_object_schema":
            return {"type": "json_object", "schema": schema}
        return {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": strict},
        }

    def responses_text_format(self, name: str, schema: dict[str, Any], strict: bool) -> Any:
        return {"format": {"type": "json_schema", "name": name, "schema": schema, "strict": strict}}


PROFILES: dict[str, ServerProfile] = {
    profile.name: profile
    for profile in (
        ServerProfile("openai", uses_registry=True, strict_schema=True),
        ServerProfile("azure", uses_registry=True, strict_schema=True),
        # Any OpenAI-compatible server we know nothing more about: most accept strict
        # json_schema; its models are its own business.
        ServerProfile("compatible", uses_registry=False, strict_schema=True),
        # vLLM and Ollama enforce any JSON Schema with guided decoding: send it unchanged so
        # optional fields stay optional.
        ServerProfile("vllm", uses_registry=False, strict_schema=False),
        ServerProfile("ollama", uses_registry=False, strict_schema=False),
        # llama-cpp-python's server rejects type=json_schema (measured) and takes the schema
        # beside json_object, enforced by a grammar. It has no Responses API.
        ServerProfile(
            "llama.cpp",
            uses_registry=False,
            strict_schema=False,
            response_format="json_object_schema",
            supports_responses_api=False,
        ),
    )
}


def profile_for(client: Any, explicit: str | ServerProfile | None = None) -> ServerProfile:
    """The profile named ``explicit``, else the one guessed from the client's class and URL."""
    if isinstance(explicit, ServerProfile):
        return explicit
    if explicit is not None:
        try:
            return PROFILES[explicit]
        except KeyError:
            raise ValueError(
                f"Unknown server profile {explicit!r}. Known profiles: {', '.join(PROFILES)}."
            ) from None
    if type(client).__name__ in ("AzureOpenAI", "AsyncAzureOpenAI"):
        return PROFILES["azure"]
    base_url = str(getattr(client, "base_url", "") or "")
    host = (urlsplit(base_url).hostname or "").lower()
    if host == "api.openai.com" or host.endswith(".openai.com"):
        return PROFILES["openai"]
    if host.endswith(".openai.azure.com") or host.endswith(".cognitiveservices.azure.com"):
        return PROFILES["azure"]
    if urlsplit(base_url).port == 11434:
        return PROFILES["ollama"]
    return PROFILES["compatible"]
