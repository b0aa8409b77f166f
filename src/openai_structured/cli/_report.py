"""Turn any failure into one clear stderr message and an exit code, with secrets masked.

The SDK's error text can quote the API key back (``Incorrect API key provided: sk-...``), so
everything printed here goes through :func:`openai_structured._logging.redact_text`: the
library's patterns (key shapes, bearer/basic credentials, URL passwords, secret-named values)
plus the secrets this process knows about (:class:`Secrets`: the API keys in the environment,
passwords and secret query parameters of the server URL, ``-V``/``-J`` variables with a
secret-like name).

The library's messages are written for Python callers: they name exception attributes
(``.content``), keyword arguments (``max_output_tokens=``) and classes to catch. ostruct says
the same in its own words, its flags, in one place: :data:`_CLI_WORDS` and :func:`in_cli_words`
(the words), :func:`describe` (what to do next, with ostruct).
"""

from __future__ import annotations

import json
import os
import re
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import click

from .._logging import is_secret_name, redact_text
from .exit_codes import EXIT_CODE_HELP, ExitCode, classify, is_context_overflow

__all__ = ["CliError", "Secrets", "describe", "in_cli_words", "report"]

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


_CONTEXT_HINT = (
    "The prompt does not fit the server's context. Shorten the input (--dry-run counts its "
    "tokens), or start the server with a larger context: for the embedded local model, "
    "OPENAI_STRUCTURED_LOCAL_CONTEXT=N (see ostruct models for its largest)."
)


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
        elif is_context_overflow(exc):
            hint = _CONTEXT_HINT
        else:
            hint = "The server rejected the request."
        return f"{text}\n{hint}"
    return text


#: The flag of each request parameter or call argument the library's messages name.
_FLAGS = {
    "temperature": "--temperature",
    "top_p": "--top-p",
    "frequency_penalty": "--frequency-penalty",
    "presence_penalty": "--presence-penalty",
    "reasoning_effort": "--reasoning-effort",
    "seed": "--seed",
    "max_output_tokens": "--max-output-tokens",
    "max_completion_tokens": "--max-output-tokens",
    "max_tokens": "--max-output-tokens",
    "max_validation_retries": "--max-validation-retries",
    "max_total_tokens": "--max-total-tokens",
    "timeout": "--timeout",
    "api": "--api",
    "model": "--model",
}
_NAMES = "|".join(sorted(_FLAGS, key=len, reverse=True))
#: Names that are English words too: translated only when quoted or followed by ``=``.
_WORDS = frozenset(name for name in _FLAGS if "_" not in name)


def _assignment(match: re.Match[str]) -> str:
    """``max_total_tokens=5`` -> ``--max-total-tokens 5``, ``api='chat'`` -> ``--api chat``."""
    value = match["quoted"] if match["quoted"] is not None else match["bare"]
    return f"{_FLAGS[match['name']]} {value}"


def _bare(match: re.Match[str]) -> str:
    name = match["name"]
    return match[0] if name in _WORDS else _FLAGS[name]


def _parameter_list(match: re.Match[str]) -> str:
    """``Supported parameters: reasoning_effort, max_output_tokens`` in flags (others kept)."""
    names = [name.strip() for name in match["names"].split(",")]
    return match["head"] + ", ".join(_FLAGS.get(name, name) for name in names)


#: The library's words and ostruct's, in order (earlier rules see the text first). Where the
#: library says which attribute holds what it received, ostruct prints it with --verbose, and
#: :func:`describe` says so; where it names a keyword argument, ostruct names its flag.
_CLI_WORDS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        # Attributes of the exception.
        (r" ?The partial text is in \.content and the usage in \.usage\.", ""),
        (r" ?The text received is in \.content and the values completed so far in \.results\.", ""),
        (r" ?The (?:raw )?text is\s+in \.content\.", ""),
        (r"; any partial text is in \.content\.", "."),
        (r", or catch ValidationError and read \.content for the raw answer\.", "."),
        (
            r", make the schema's field descriptions clearer, or read \.attempts for each "
            r"answer\.",
            ", or make the schema's field descriptions clearer.",
        ),
        (r", or read \.attempts for each answer\.", "."),
        # The library's way next to ostruct's: keep ostruct's.
        (r" or RenderLimits\([^)]*\) \(Python\)", ""),
        (r" \(ostruct\)", ""),
        (r"\b\w+=(?:'[^']*'|\S*)? \(ostruct: ([^)]+)\)", r"\1"),
        (
            r"Use the non-streaming call \([^)]*\) with this model",
            "Leave out --stream with this model",
        ),
        # Limits no ostruct option changes.
        (r"max_response_bytes=(\d+) bytes", r"ostruct's limit of \1 bytes"),
        (
            r" Raise max_response_bytes= if such large answers are expected\.",
            " No ostruct option raises it.",
        ),
        (
            r"StreamConfig\.max_buffer_size \((\d+) bytes\)\. Raise the limit if answers this "
            r"large are expected\.",
            r"the limit of a streamed answer (\1 bytes). Without --stream an answer may take up to "
            "16 MiB.",
        ),
        (r"StreamConfig\.max_buffer_size", "the limit of a streamed answer"),
        # Parameter and argument names: the flags.
        (r"(?P<head>Supported parameters: )(?P<names>[\w, ]+)", _parameter_list),
        (
            rf"\b(?P<name>{_NAMES})=(?:'(?P<quoted>[^']*)'|(?P<bare>[^\s,;)']*[^\s,;)'.]))",
            _assignment,
        ),
        (rf"\b[Pp]arameter '(?P<name>{_NAMES})'", lambda m: _FLAGS[m["name"]]),
        (rf"'(?P<name>{_NAMES})'", lambda m: _FLAGS[m["name"]]),
        (rf"(?<![\w.'-])(?P<name>{_NAMES})(?![\w=-])", _bare),
    )
)


def in_cli_words(text: str) -> str:
    """A library message in ostruct's words: its flags, not Python's attributes and keywords."""
    for pattern, replacement in _CLI_WORDS:
        text = pattern.sub(replacement, text)
    return text


def _speaks_python(exc: BaseException) -> bool:
    """Whether ``exc``'s text is the library's (to translate), not a server's, nor ostruct's
    own, nor one quoting the user's template (a variable may be called ``max_tokens``)."""
    import openai

    from .. import errors
    from ..templates import TemplateError, TemplateLimitError

    if isinstance(exc, (CliError, openai.APIStatusError)):
        return False
    if isinstance(exc, TemplateError):
        return isinstance(exc, TemplateLimitError)
    return isinstance(exc, (errors.OpenAIClientError, openai.APITimeoutError))


def _cut_off(exc: Any) -> str:
    """An answer cut off at a token limit: which limit it was, and what to do about it with
    ostruct's flags (raising --max-output-tokens only helps when it was the limit)."""
    from .._usage import TokenUsage

    usage = TokenUsage.from_api(exc.usage)
    after = "" if usage.unreported else f" after {usage.completion_tokens:,} output tokens"
    if exc.requested_tokens is not None:
        where = f"--max-output-tokens {exc.requested_tokens}"
        fix = "Raise --max-output-tokens, or ask for a shorter answer."
    elif exc.model_limit is not None:
        where = f"the model's output limit ({exc.model_limit:,} tokens, from the model registry)"
        fix = (
            "No --max-output-tokens was given, so the model's own limit applied: ask for a "
            "shorter answer, or use a model with a larger output limit (ostruct models)."
        )
    else:
        where = "the server's output limit"
        fix = (
            "No --max-output-tokens was given, so the server's default limit applied: give "
            "--max-output-tokens N above it, or ask for a shorter answer."
        )
    return (
        f"The answer was cut off at {where}{after}, before the JSON was complete.\n{fix} "
        "--verbose prints the partial answer."
    )


def _is_cut_off(exc: BaseException) -> bool:
    from .. import errors

    # A pre-flight TokenLimitError (prompt too long, a limit over the model's) has no answer.
    return (
        isinstance(exc, errors.TokenLimitError)
        and not isinstance(exc, errors.TokenBudgetError)
        and any(x is not None for x in (exc.content, exc.usage, exc.response_id))
    )


def _advice(exc: BaseException) -> str | None:
    """What ostruct adds to a library error: where to see what was received or spent."""
    from .. import errors

    table: tuple[tuple[type[BaseException], str | None], ...] = (
        (errors.TokenBudgetError, "--usage shows what a run spends."),
        (errors.StreamInterruptedError, "--verbose prints the text received."),
        (errors.RefusalError, None),
        (errors.APIResponseError, "--verbose prints the raw answer."),
    )
    return next((hint for kind, hint in table if isinstance(exc, kind)), None)


def describe(exc: BaseException) -> str:
    """What to tell the user about ``exc``: the message in ostruct's words, and what to do."""
    import openai

    from .. import errors

    if isinstance(exc, errors.StreamInterruptedError) and isinstance(exc, openai.APIError):
        received = len(exc.content or "")
        text = in_cli_words(_sdk_message(exc)) if _speaks_python(exc) else _sdk_message(exc)
        return f"{text}\nThe stream broke after {received} characters of the answer."
    if isinstance(exc, openai.APIError):
        text = _sdk_message(exc)
        return in_cli_words(text) if _speaks_python(exc) else text
    if _is_cut_off(exc):
        return _cut_off(exc)
    text = str(exc) or type(exc).__name__
    if _speaks_python(exc):
        text = in_cli_words(text)
    advice = _advice(exc)
    return f"{text}\n{advice}" if advice else text


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
