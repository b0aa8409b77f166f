"""Turn any failure into one clear stderr message and an exit code, with secrets masked.

The SDK's error text can quote the API key back (``Incorrect API key provided: sk-...``), so
everything printed here goes through :func:`openai_structured._logging.redact_text`: the
library's patterns (key shapes, bearer/basic credentials, URL passwords, secret-named values)
plus the secrets this process knows about (:class:`Secrets`: the API keys in the environment,
passwords and secret query parameters of the server URL, ``-V``/``-J`` variables with a
secret-like name).
"""

from __future__ import annotations

import json
import os
import traceback
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import click

from .._logging import is_secret_name, redact_text
from .exit_codes import EXIT_CODE_HELP, ExitCode, classify

__all__ = ["CliError", "Secrets", "describe", "report"]

#: Environment variables whose values are always treated as secrets.
_KEY_VARS = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN")
#: Environment variables holding a server URL, which may carry a password or a key.
_URL_VARS = ("OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT")
#: Query parameters that are secrets whatever the name rule says (Azure SAS ``sig``, OAuth).
_QUERY_SECRETS = frozenset({"sig", "code"})
#: Values too short or too common to be a key; masking them would garble messages.
_NOT_SECRET = frozenset({"", "not-needed", "dummy", "none", "sk-no-key-required"})


class CliError(Exception):
    """A failure ostruct detects itself (unreadable file, conflicting options), with its code."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


class Secrets:
    """The strings that must never reach stdout or stderr in clear."""

    def __init__(self, values: Iterable[str | None] = ()) -> None:
        self._values: set[str] = set()
        for name in _KEY_VARS:
            self.add(os.environ.get(name))
        for name in _URL_VARS:
            self.add_url(os.environ.get(name))
        for value in values:
            self.add(value)

    def add(self, value: object) -> None:
        """Mask ``value`` wherever it appears (unless too short or a placeholder)."""
        if isinstance(value, str) and value.strip().lower() not in _NOT_SECRET and len(value) >= 8:
            self._values.add(value)

    def add_env(self, name: str | None) -> None:
        """Mask the value of the environment variable ``name``."""
        if name:
            self.add(os.environ.get(name))

    def add_url(self, url: str | None) -> None:
        """Mask the password and the secret query parameters of a server URL."""
        if not url:
            return
        try:
            parts = urlsplit(url)
            password = parts.password
        except ValueError:  # not a URL: the patterns still mask user:password@ in the text
            return
        if password:
            self.add(password)
            self.add(unquote(password))
        for name, value in parse_qsl(parts.query, keep_blank_values=False):
            if is_secret_name(name) or name.lower() in _QUERY_SECRETS:
                self.add(value)

    def add_variables(self, values: Iterable[str] = (), json_values: Iterable[str] = ()) -> None:
        """Mask the template variables with a secret-like name: ``-V NAME=VALUE`` and
        ``-J NAME=JSON`` (there, every string under a secret-like name, at any depth)."""
        for item in values:
            name, sep, value = item.partition("=")
            if sep and is_secret_name(name.strip()):
                self.add(value)
        for item in json_values:
            name, sep, text = item.partition("=")
            if not sep:
                continue
            try:
                doc = json.loads(text)
            except ValueError:
                if is_secret_name(name.strip()):
                    self.add(text)
                continue
            self._add_strings(doc, secret=is_secret_name(name.strip()))

    def _add_strings(self, value: Any, *, secret: bool, depth: int = 0) -> None:
        if depth > 64:
            return
        if isinstance(value, str):
            if secret:
                self.add(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                named = secret or (isinstance(key, str) and is_secret_name(key))
                self._add_strings(item, secret=named, depth=depth + 1)
        elif isinstance(value, list):
            for item in value:
                self._add_strings(item, secret=secret, depth=depth + 1)

    def redact(self, text: str) -> str:
        """``text`` with the known secrets and anything shaped like one masked."""
        return redact_text(text, self._values)


_LABELS = {code: label for code, label, _ in EXIT_CODE_HELP}


def _sdk_message(exc: BaseException) -> str:
    """A readable line and a hint for an openai SDK error (or a stream interrupted by one)."""
    import openai

    status = getattr(exc, "status_code", None)
    text = str(getattr(exc, "message", None) or exc)
    if isinstance(exc, openai.APITimeoutError):
        return f"{text}\nThe request timed out: raise --timeout, or try again later."
    if isinstance(exc, openai.APIConnectionError):
        return f"{text}\nCould not reach the server: check --base-url (or OPENAI_BASE_URL)."
    if isinstance(status, int):
        if status in (401, 403):
            hint = (
                "Check the API key (OPENAI_API_KEY, or the variable named by --api-key-env) "
                "and that it may use this model."
            )
        elif status == 404:
            hint = "Check --model and --base-url."
        elif status == 429:
            response = getattr(exc, "response", None)
            after = response.headers.get("retry-after") if response is not None else None
            wait = f" (the server asks to wait {after} s)" if after else ""
            hint = f"Rate limited or out of quota{wait}: wait and retry, or raise --max-retries."
        elif status >= 500:
            hint = "The server failed; try again later (or raise --max-retries)."
        else:
            hint = "The server rejected the request."
        return f"{text}\n{hint}"
    return text


def describe(exc: BaseException) -> str:
    """What to tell the user about ``exc``: the library's message plus CLI-specific guidance."""
    import openai

    from .. import errors

    if isinstance(exc, errors.StreamInterruptedError) and isinstance(exc, openai.APIError):
        received = len(exc.content or "")
        return f"{_sdk_message(exc)}\nThe stream broke after {received} characters of the answer."
    if isinstance(exc, openai.APIError):
        return _sdk_message(exc)
    if isinstance(exc, errors.TokenBudgetError):
        return (
            f"{exc}\nWith ostruct: raise --max-total-tokens, or lower --max-output-tokens or "
            "--max-validation-retries (--usage shows what a run spends)."
        )
    if isinstance(exc, errors.TokenLimitError) and exc.content is not None:
        return (
            f"{exc}\nWith ostruct: raise --max-output-tokens (--verbose prints the partial text)."
        )
    if isinstance(exc, errors.APIResponseError) and not isinstance(exc, errors.RefusalError):
        return f"{exc}\nWith ostruct: --verbose prints the raw answer."
    return str(exc) or type(exc).__name__


def report(exc: BaseException, *, secrets: Secrets, verbose: bool) -> ExitCode:
    """Print ``exc`` on stderr (one line, then guidance; a traceback only when verbose)."""
    code = exc.code if isinstance(exc, CliError) else classify(exc)
    if code is ExitCode.INTERRUPTED:
        click.echo("ostruct: interrupted", err=True)
        return code
    if verbose:
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        click.echo(secrets.redact(trace).rstrip(), err=True)
    if code is ExitCode.INTERNAL:
        text = f"{type(exc).__name__}: {exc}"
        if not verbose:
            text += "\nThis is a bug in ostruct; rerun with --verbose for the traceback."
    else:
        text = describe(exc)
    first, _, rest = secrets.redact(text).strip().partition("\n")
    click.echo(f"Error ({_LABELS[code]}): {first}", err=True)
    for line in rest.splitlines():
        click.echo(f"  {line.strip()}" if line.strip() else "", err=True)
    if verbose:
        raw = getattr(exc, "content", None)
        if isinstance(raw, str) and raw:
            click.echo("--- raw answer ---", err=True)
            click.echo(secrets.redact(raw), err=True)
    return code
