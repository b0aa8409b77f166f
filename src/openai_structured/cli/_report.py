"""Turn any failure into one clear stderr message and an exit code, with secrets masked.

The SDK's error text can quote the API key back (``Incorrect API key provided: sk-...``), so
everything printed here goes through :func:`openai_structured.events.redact_text` with the
keys this process knows about.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterable

import click

from ..events import redact_text
from .exit_codes import EXIT_CODE_HELP, ExitCode, classify

__all__ = ["CliError", "Secrets", "describe", "report"]

#: Environment variables whose values are always treated as secrets.
_KEY_VARS = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN")
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
        for value in values:
            self.add(value)

    def add(self, value: object) -> None:
        if isinstance(value, str) and value.strip().lower() not in _NOT_SECRET and len(value) >= 8:
            self._values.add(value)

    def add_env(self, name: str | None) -> None:
        if name:
            self.add(os.environ.get(name))

    def redact(self, text: str) -> str:
        # Longest first, so a key that contains another is masked whole.
        return redact_text(text, sorted(self._values, key=len, reverse=True))


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
