"""Which server ``ostruct run`` talks to, and which server profile it will use.

The profile is worked out offline by :func:`server_target`, from the options and the
environment, without building the default client (which may start the embedded model): a dry
run, the pre-flight checks of a real run and ``ostruct schema check`` all use it, so they judge
the request as the server a real run would talk to takes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .._clients import SERVER_ENV_VAR, default_client, provider_from_env
from ..servers import ServerProfile, get_profile, profile_for
from ._report import CliError, Secrets
from .exit_codes import ExitCode

__all__ = ["ClientOptions", "ServerTarget", "build_client", "dry_run_target", "server_target"]

DEFAULT_KEY_VAR = "OPENAI_API_KEY"


@dataclass(frozen=True)
class ClientOptions:
    """The connection options of ``ostruct run``."""

    base_url: str | None = None
    api_key_env: str | None = None
    server: str | None = None
    max_retries: int | None = None


def _explicit_key(options: ClientOptions) -> str | None:
    """The key named by --api-key-env (which must be set), else OPENAI_API_KEY if set."""
    if options.api_key_env:
        value = os.environ.get(options.api_key_env)
        if not value:
            raise CliError(
                f"--api-key-env {options.api_key_env}: that environment variable is not set.\n"
                f"Export it (export {options.api_key_env}=...) or drop --api-key-env.",
                ExitCode.CONFIG,
            )
        return value
    return os.environ.get(DEFAULT_KEY_VAR) or None


def check_server(options: ClientOptions) -> ServerProfile | None:
    """The profile named by --server, or None; an unknown name is a configuration error."""
    if not options.server:
        return None
    try:
        return get_profile(options.server)
    except ValueError as exc:
        raise CliError(f"--server: {exc}", ExitCode.CONFIG) from None


def build_client(options: ClientOptions, secrets: Secrets, *, asynchronous: bool = False) -> Any:
    """An ``openai.OpenAI`` (``AsyncOpenAI``) for --base-url / --api-key-env, else the
    environment's default."""
    import openai

    check_server(options)
    secrets.add_env(options.api_key_env)
    retries: dict[str, Any] = {}
    if options.max_retries is not None:
        retries["max_retries"] = options.max_retries
    kind = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    if options.base_url:
        # Local servers usually need no key, but the SDK insists on one.
        key = _explicit_key(options) or "not-needed"
        client = kind(base_url=options.base_url, api_key=key, **retries)
    elif options.api_key_env:
        client = kind(api_key=_explicit_key(options), **retries)
    else:
        client = default_client(asynchronous=asynchronous)
        if retries:
            client = client.with_options(**retries)
    secrets.add(getattr(client, "api_key", None))
    return client


@dataclass(frozen=True)
class ServerTarget:
    """The server a run would use, found offline: its profile and where it comes from."""

    profile: ServerProfile
    #: For messages: ``--base-url URL``, ``OpenAI (OPENAI_API_KEY)``, ...
    where: str
    #: False when nothing is configured: a real run stops with "no server configured" (exit
    #: 5), and ``profile`` is OpenAI's, for checking as if.
    configured: bool = True
    #: True when the embedded local model answers (no key, no base URL, [local] installed).
    embedded: bool = False

    def label(self, *, from_option: bool = False) -> str:
        """``where (profile NAME)``, as the dry run and ``schema check`` print it."""
        source = ", from --server" if from_option else ""
        return f"{self.where} (profile {self.profile.name}{source})"


def server_target(options: ClientOptions) -> ServerTarget:
    """The server profile a real run would use, and where it comes from; no network, no
    embedded-model start."""
    import openai

    explicit = check_server(options)
    # The key itself is not needed, but a real run would stop on an unset --api-key-env.
    _explicit_key(options)
    if options.base_url:
        where = f"--base-url {options.base_url}"
        if explicit is not None:
            return ServerTarget(explicit, where)
        # Building a client object sends nothing; it only lets profile_for read the URL.
        probe = openai.OpenAI(base_url=options.base_url, api_key="dry-run")
        return ServerTarget(profile_for(probe), where)
    provider = provider_from_env()
    if provider == "base_url":
        where = f"OPENAI_BASE_URL {os.environ.get('OPENAI_BASE_URL', '')}"
        named = os.environ.get(SERVER_ENV_VAR, "").strip()
        if explicit is None and named:
            try:
                explicit = get_profile(named)
            except ValueError as exc:
                raise CliError(f"{SERVER_ENV_VAR}: {exc}", ExitCode.CONFIG) from None
        if explicit is not None:
            return ServerTarget(explicit, where)
        probe = openai.OpenAI(api_key="dry-run")
        return ServerTarget(profile_for(probe), where)
    if provider is None and options.api_key_env:
        provider = "openai"
    where = {
        "openai": "OpenAI (OPENAI_API_KEY)",
        "azure": "Azure OpenAI (AZURE_OPENAI_ENDPOINT)",
        "local": "the embedded local model (not started: nothing is sent)",
        None: "no server configured (a real run would fail); checked as for OpenAI",
    }[provider]
    if explicit is None:
        name = {"azure": "azure", "local": "llama.cpp"}.get(provider or "", "openai")
        explicit = get_profile(name)
    return ServerTarget(
        explicit, where, configured=provider is not None, embedded=provider == "local"
    )


def dry_run_target(options: ClientOptions) -> tuple[ServerProfile, str]:
    """:func:`server_target` as ``(profile, where)``."""
    target = server_target(options)
    return target.profile, target.where
