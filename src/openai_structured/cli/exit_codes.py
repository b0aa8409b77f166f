"""Exit codes of ``ostruct``: one per failure class, so scripts can react without parsing text.

The mapping from exceptions to codes lives here and nowhere else; ``docs/cli.md`` and the
``ostruct run --help`` epilog are generated from (or checked against) :data:`EXIT_CODE_HELP`.
"""

from __future__ import annotations

import re
from enum import IntEnum

__all__ = ["EXIT_CODE_HELP", "ExitCode", "classify", "epilog", "is_context_overflow"]


class ExitCode(IntEnum):
    """What went wrong, as the process exit status."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    INPUT = 3
    SCHEMA = 4
    CONFIG = 5
    API = 6
    RESPONSE = 7
    TOKEN_LIMIT = 8
    OUTPUT = 9
    #: ``ostruct batch``: the run finished, and some records failed (their error lines are in
    #: the output; ``--retry-failed`` reruns them).
    PARTIAL = 10
    INTERRUPTED = 130
    #: 128 + SIGPIPE: what a shell reports for a program its pipe reader went away from.
    BROKEN_PIPE = 141


#: (code, label, when) for the help epilog and docs/cli.md.
EXIT_CODE_HELP: tuple[tuple[ExitCode, str, str], ...] = (
    (ExitCode.OK, "ok", "result printed (or written to --output-file)"),
    (ExitCode.INTERNAL, "internal", "a bug in ostruct; --verbose shows the traceback"),
    (ExitCode.USAGE, "usage", "bad command line (unknown option, missing argument)"),
    (
        ExitCode.INPUT,
        "input",
        "template, input file, stdin, disallowed path, --output-file; "
        "a -d matching no file or an empty prompt",
    ),
    (ExitCode.SCHEMA, "schema", "SCHEMA unreadable, not JSON, or unusable in strict mode"),
    (ExitCode.CONFIG, "config", "model, parameter or server rejected before sending"),
    (ExitCode.API, "api", "HTTP, network, auth or rate-limit error; broken stream"),
    (ExitCode.RESPONSE, "response", "refusal, content filter, empty, not JSON, schema mismatch"),
    (
        ExitCode.TOKEN_LIMIT,
        "token limit",
        "prompt too long for the model (or its server's context), or answer cut off",
    ),
    (ExitCode.OUTPUT, "output", "result not written: stdout closed, disk full, I/O error"),
    (ExitCode.PARTIAL, "partial", "batch: done, but some records failed (error lines in OUT)"),
    (ExitCode.INTERRUPTED, "interrupted", "Ctrl-C"),
    (ExitCode.BROKEN_PIPE, "broken pipe", "stdout's reader went away (| head); no message"),
)


def epilog() -> str:
    """The exit-code table as click help text (``\\b`` keeps click from rewrapping it)."""
    lines = ["\b", "Exit codes:"]
    lines += [f"  {int(code):>3}  {label:<12} {when}" for code, label, when in EXIT_CODE_HELP]
    return "\n".join(lines)


def classify(exc: BaseException) -> ExitCode:
    """The exit code for an exception raised while running a command.

    Order matters: several library errors have two bases (``TokenLimitError`` is a
    ``ValueError``; a stream failure is both ``StreamInterruptedError`` and the SDK's class),
    so the most specific class is tested first.
    """
    import openai

    from .. import errors
    from ..templates import TemplateError

    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    from ..bulk import (
        BatchCancelledError,
        BatchFailedError,
        BatchSubmitError,
        BudgetExhaustedError,
        BulkStopped,
        JournalError,
    )

    if isinstance(exc, BulkStopped):
        return classify(exc.cause)
    if isinstance(exc, (BatchSubmitError, BatchFailedError)):
        return ExitCode.API  # the Batch API refused the work; nothing recorded as done
    if isinstance(exc, BatchCancelledError):
        return ExitCode.PARTIAL
    if isinstance(exc, BudgetExhaustedError):
        return ExitCode.TOKEN_LIMIT  # a budget, like --max-total-tokens
    if isinstance(exc, JournalError):
        return ExitCode.OUTPUT
    if isinstance(exc, TemplateError):
        return ExitCode.INPUT
    if isinstance(exc, errors.TokenLimitError) or is_context_overflow(exc):
        return ExitCode.TOKEN_LIMIT
    if isinstance(exc, errors.SchemaError):
        return ExitCode.SCHEMA
    if isinstance(exc, errors.StreamParseError):
        # Too many unparseable chunks: the model's output is the problem, not the network.
        return ExitCode.RESPONSE
    if isinstance(exc, (errors.StreamInterruptedError, openai.APIError)):
        return ExitCode.API
    if type(exc) is errors.APIResponseError:
        # No subclass names a problem with the answer: the server reported the response as
        # failed (Responses API ``status: "failed"``). Streamed, the same failure arrives as a
        # ``response.failed`` event, a stream server error (above): both are server failures.
        return ExitCode.API
    if isinstance(exc, (errors.APIResponseError, errors.StreamBufferError)):
        return ExitCode.RESPONSE
    if _is_local_config_error(exc):
        return ExitCode.CONFIG
    if _is_local_runtime_error(exc):
        return ExitCode.API
    if isinstance(exc, errors.OpenAIClientError):
        # Model names and versions, parameters, token-parameter conflicts, no provider.
        return ExitCode.CONFIG
    return ExitCode.INTERNAL


#: How servers word "the prompt does not fit the context" in an HTTP 400: OpenAI
#: (``code: context_length_exceeded``), llama-cpp-python ("This model's maximum context length
#: is 4096 tokens"), vLLM, llama.cpp's C++ server ("exceeds the available context size").
_CONTEXT_OVERFLOW = re.compile(
    r"maximum context length|context_length_exceeded|exceeds? the (?:available )?context|"
    r"context (?:window|size) (?:is )?exceeded",
    re.IGNORECASE,
)


def is_context_overflow(exc: BaseException) -> bool:
    """True for a server's refusal of a prompt too long for its context (HTTP 400): a token
    limit, as when ostruct's own pre-flight finds it, not an API failure."""
    import openai

    if not isinstance(exc, openai.BadRequestError):
        return False
    code = getattr(exc, "code", None)
    return code == "context_length_exceeded" or bool(_CONTEXT_OVERFLOW.search(str(exc)))


def _is_local_config_error(exc: BaseException) -> bool:
    """The embedded model's settings are unusable (``OPENAI_STRUCTURED_LOCAL_CONTEXT``)."""
    import sys

    local = sys.modules.get("openai_structured.local")
    return local is not None and isinstance(exc, local.LocalContextError)


def _is_local_runtime_error(exc: BaseException) -> bool:
    """The embedded model's server failed to start or died: a server problem (not config),
    except when it is simply not installed."""
    import sys

    # Not imported means not raised: the error reporter never imports the embedded model's
    # package (a failing import there would turn a clear error into a traceback).
    local = sys.modules.get("openai_structured.local")
    if local is None:
        return False
    return isinstance(exc, local.LocalModelError) and not isinstance(
        exc, local.LocalModelNotInstalledError
    )
