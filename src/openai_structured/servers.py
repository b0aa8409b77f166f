"""Server profiles: the one place that knows how each kind of server takes structured output.

OpenAI and Azure get strict-mode schemas and the model registry's checks. Local servers (vLLM,
Ollama, llama.cpp) serve models the registry does not know, so they get a permissive model
profile, and the schema in the form they accept. A server we know nothing more about
(``compatible``: gateways and proxies in front of OpenAI such as LiteLLM or Azure API Management,
our loopback test server) gets the registry's checks for names the registry knows and the
permissive profile for any other name. :meth:`ServerProfile.capabilities` is the one place that
decides this.

How a call finds its profile (:func:`profile_for`), first match wins:

1. ``server=`` given to the call (a name, an alias such as ``"llama-server"``, or a profile);
2. the client's ``X-OpenAI-Structured-Server`` default header (:data:`PROFILE_HEADER`): the
   embedded model's clients carry it, and so can any client a user builds
   (``OpenAI(base_url=..., default_headers={PROFILE_HEADER: "vllm"})``). A header rides along
   with the client through ``with_options()`` copies, unlike a registry of URLs that a client
   built by hand would miss;
3. the client's class and base URL: Azure classes and hosts, ``api.openai.com``, Ollama's port
   11434, and host names that say what they are (``ollama``, ``vllm``, ``llama-server``,
   ``llamacpp``, as in container set-ups);
4. ``compatible``: strict ``json_schema``, which most OpenAI-compatible servers accept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from .registry import ModelCapabilities, ModelRegistry, get_registry

__all__ = [
    "PROFILES",
    "PROFILE_ALIASES",
    "PROFILE_HEADER",
    "RegistryMode",
    "ServerProfile",
    "get_profile",
    "profile_for",
]

ResponseFormatStyle = Literal["json_schema", "json_object_schema"]
#: How a profile applies the model registry (see :attr:`ServerProfile.registry`).
RegistryMode = Literal["required", "known", "off"]


@dataclass(frozen=True)
class ServerProfile:
    """How one kind of server wants its structured-output request."""

    name: str
    #: How model names meet the registry before anything is sent:
    #:
    #: * ``"required"`` (OpenAI, Azure): every name must be in the registry; an unknown name
    #:   raises :class:`ModelNotSupportedError`, and parameters, streaming and limits are checked;
    #: * ``"known"`` (gateways, proxies, the loopback test server): a name the registry knows (an
    #:   alias, or a dated name whose base it knows) gets the same checks; any other name passes
    #:   unchecked with :meth:`ModelCapabilities.permissive`;
    #: * ``"off"`` (vLLM, Ollama, llama.cpp): nothing is checked, whatever the name.
    registry: RegistryMode
    #: Compile the schema to OpenAI strict mode (else send the plain JSON Schema).
    strict_schema: bool
    #: ``json_schema``: OpenAI's ``{"type": "json_schema", "json_schema": {...}}``;
    #: ``json_object_schema``: llama.cpp's ``{"type": "json_object", "schema": {...}}``.
    response_format: ResponseFormatStyle = "json_schema"
    supports_responses_api: bool = True
    #: Requests a bulk run keeps in flight by default (None: the runner's default). llama.cpp's
    #: server answers one at a time unless started with ``--parallel``: more would only queue.
    bulk_concurrency: int | None = None
    #: The server has OpenAI's Files and Batch APIs (``/v1/files``, ``/v1/batches``): what
    #: ``BulkRun(backend=OpenAIBatch())`` needs. vLLM runs batch files offline instead
    #: (``vllm run-batch``: ``BatchFiles``).
    supports_batch_api: bool = True

    def __post_init__(self) -> None:
        if self.registry not in ("required", "known", "off"):
            raise ValueError(
                f"ServerProfile.registry must be 'required', 'known' or 'off', not "
                f"{self.registry!r}."
            )

    @property
    def uses_registry(self) -> bool:
        """True when every model name must be in the registry (``registry == "required"``).

        Kept for older callers. It does not say whether a given name is checked on a
        ``"known"`` profile: ask :meth:`capabilities` and read ``permissive_profile``.
        """
        return self.registry == "required"

    def capabilities(
        self, model: str, *, registry: ModelRegistry | None = None
    ) -> ModelCapabilities:
        """What ``model`` accepts on this kind of server: the registry's entry, or permissive.

        The result's ``permissive_profile`` is False exactly when the registry's rules apply
        (then the request builder also checks prompt + output against the context window).
        Raises what :meth:`ModelRegistry.get_capabilities` raises for a name the registry must
        or does know: :class:`ModelNotSupportedError` (``"required"`` only),
        :class:`InvalidDateError`, :class:`VersionTooOldError`. ``registry`` defaults to the
        shared :func:`get_registry`.
        """
        if self.registry == "off":
            return ModelCapabilities.permissive(model)
        reg = get_registry() if registry is None else registry
        if self.registry == "known" and not reg.knows(model):
            return ModelCapabilities.permissive(model)
        return reg.get_capabilities(model)

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
        ServerProfile("openai", registry="required", strict_schema=True),
        ServerProfile("azure", registry="required", strict_schema=True),
        # Any OpenAI-compatible server we know nothing more about: most accept strict
        # json_schema. Gateways and proxies in front of OpenAI (LiteLLM, Azure API Management,
        # corporate proxies) serve OpenAI's models under OpenAI's names, so a name the registry
        # knows is checked as on OpenAI; any other name is the server's own business.
        ServerProfile("compatible", registry="known", strict_schema=True),
        # vLLM and Ollama enforce any JSON Schema with guided decoding: send it unchanged so
        # optional fields stay optional. Their model names are their own, even when one is
        # called "gpt-4o" by whoever deployed it: nothing is checked.
        ServerProfile("vllm", registry="off", strict_schema=False, supports_batch_api=False),
        ServerProfile("ollama", registry="off", strict_schema=False, supports_batch_api=False),
        # llama-cpp-python's server rejects type=json_schema (measured) and takes the schema
        # beside json_object, enforced by a grammar. It has no Responses API.
        ServerProfile(
            "llama.cpp",
            registry="off",
            strict_schema=False,
            response_format="json_object_schema",
            supports_responses_api=False,
            bulk_concurrency=1,
            supports_batch_api=False,
        ),
    )
}


#: Other names a profile answers to (lower case).
PROFILE_ALIASES: dict[str, str] = {
    "llama-server": "llama.cpp",  # llama.cpp's own C++ server
    "llama-cpp-python": "llama.cpp",  # the Python server the embedded model runs
    "llama_cpp": "llama.cpp",
    "llamacpp": "llama.cpp",
    "llama-cpp": "llama.cpp",
    "azure-openai": "azure",
}

#: Default header that names a client's profile; set on the embedded model's clients.
PROFILE_HEADER = "X-OpenAI-Structured-Server"


def get_profile(name: str) -> ServerProfile:
    """The profile called ``name`` or one of its aliases (case-insensitive)."""
    key = name.strip().lower()
    key = PROFILE_ALIASES.get(key, key)
    try:
        return PROFILES[key]
    except KeyError:
        known = ", ".join([*PROFILES, *PROFILE_ALIASES])
        raise ValueError(f"Unknown server profile {name!r}. Known profiles: {known}.") from None


def profile_for(client: Any, explicit: str | ServerProfile | None = None) -> ServerProfile:
    """The profile named ``explicit``, else the client's header, else a guess from its URL."""
    if isinstance(explicit, ServerProfile):
        return explicit
    if explicit is not None:
        return get_profile(explicit)
    tagged = _header_profile(client)
    if tagged is not None:
        return get_profile(tagged)
    if type(client).__name__ in ("AzureOpenAI", "AsyncAzureOpenAI"):
        return PROFILES["azure"]
    return PROFILES[_profile_from_url(str(getattr(client, "base_url", "") or ""))]


def _header_profile(client: Any) -> str | None:
    # The SDK keeps the caller's default headers in ``_custom_headers``; the public
    # ``default_headers`` property would also build the auth headers on every call.
    headers = getattr(client, "_custom_headers", None)
    if not isinstance(headers, Mapping):
        return None
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == PROFILE_HEADER.lower() and value:
            return str(value)
    return None


def _profile_from_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if host == "api.openai.com" or host.endswith(".openai.com"):
        return "openai"
    if host.endswith((".openai.azure.com", ".cognitiveservices.azure.com")):
        return "azure"
    try:
        port = parts.port
    except ValueError:
        port = None
    # "ollama" contains "llama": test it before the llama.cpp names.
    if port == 11434 or "ollama" in host:
        return "ollama"
    if "vllm" in host:
        return "vllm"
    if any(word in host for word in ("llama-server", "llamacpp", "llama-cpp", "llama_cpp")):
        return "llama.cpp"
    return "compatible"
