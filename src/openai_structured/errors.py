"""The exception tree (SPEC §2.3).

Everything the library raises itself derives from :class:`OpenAIClientError`::

    OpenAIClientError
    ├── ModelNotSupportedError                 (also ValueError)
    ├── ModelVersionError                      (also ValueError)
    │   ├── InvalidDateError
    │   └── VersionTooOldError
    ├── NoProviderError
    ├── TokenParameterError                    (also ValueError)
    ├── TokenLimitError                        (also ValueError)
    │   └── TokenBudgetError
    ├── SchemaError                            (also ValueError)
    ├── APIResponseError
    │   ├── InvalidResponseFormatError
    │   ├── EmptyResponseError
    │   ├── RefusalError
    │   ├── ContentFilterError
    │   ├── NoToolCallError
    │   ├── UnknownToolError
    │   └── ValidationError                    (also ValueError)
    ├── StreamStateError                       (also RuntimeError)
    ├── StreamBufferError
    │   └── BufferOverflowError
    └── StreamInterruptedError
        ├── StreamParseError
        ├── StreamProtocolError
        └── StreamServerError

The openai SDK's own errors on non-streaming calls pass through unchanged; during a stream they
are re-raised as a class that is *both* :class:`StreamInterruptedError` and the SDK class (see
:func:`interrupted`). Every error about an answer (the ``APIResponseError`` family and a cut-off
``TokenLimitError``) carries ``response_id``, ``content`` and ``usage``, whichever path (call,
value stream, event stream) raised it: one outcome table decides them all (``_outcome.py``).

With ``n > 1`` the error of a failing choice also carries ``choice_index`` and
``choice_results`` (the results of the choices that succeeded, by index). After
``max_validation_retries`` re-asks, ``attempts`` holds every attempt's error, oldest first.

Errors that the seed documented as ``ValueError`` (limits, versions, schema, validation) are also
``ValueError`` subclasses so that ``except ValueError`` keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._logging import redact, redact_text

__all__ = [
    "APIResponseError",
    "BufferOverflowError",
    "ContentFilterError",
    "EmptyResponseError",
    "InvalidDateError",
    "InvalidResponseFormatError",
    "ModelNotSupportedError",
    "ModelVersionError",
    "NoProviderError",
    "NoToolCallError",
    "OpenAIClientError",
    "RefusalError",
    "SchemaError",
    "StreamBufferError",
    "StreamInterruptedError",
    "StreamParseError",
    "StreamProtocolError",
    "StreamServerError",
    "StreamStateError",
    "TokenBudgetError",
    "TokenLimitError",
    "TokenParameterError",
    "UnknownToolError",
    "ValidationError",
    "VersionTooOldError",
    "interrupted",
]


class OpenAIClientError(Exception):
    """Base of every error this library raises itself.

    Its message is redacted (API keys, tokens, credentials: see ``redact_text``), so a key that
    a server or a file echoes back never reaches ``str(exc)``, a log or a traceback.
    """

    #: With ``n > 1``: which choice failed, and the results of the choices that did not.
    choice_index: int | None = None
    choice_results: dict[int, Any] | None = None

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact_text(a) if isinstance(a, str) else a for a in args))


# --- models and parameters -------------------------------------------------------------------


class ModelNotSupportedError(OpenAIClientError, ValueError):
    """The model name is not in the registry (and no custom server was given)."""

    def __init__(self, message: str, *, model: str | None = None) -> None:
        super().__init__(message)
        self.model = model


class ModelVersionError(OpenAIClientError, ValueError):
    """A dated model name (``base-YYYY-MM-DD``) cannot be used."""

    def __init__(self, message: str, *, model: str | None = None) -> None:
        super().__init__(message)
        self.model = model


class InvalidDateError(ModelVersionError):
    """The date in a dated model name is not a real date."""


class VersionTooOldError(ModelVersionError):
    """The dated model is older than the first version with structured outputs."""


class NoProviderError(OpenAIClientError):
    """No client was given and the environment names no server (and no embedded model)."""


class TokenParameterError(OpenAIClientError, ValueError):
    """More than one of ``max_output_tokens``/``max_completion_tokens``/``max_tokens`` was given."""


class TokenLimitError(OpenAIClientError, ValueError):
    """A token limit was exceeded: before the request (pre-flight) or by the model (cut-off).

    Pre-flight: ``requested_tokens`` and ``model_limit`` say by how much. Cut-off
    (``finish_reason="length"`` or a Responses ``incomplete`` status): ``content`` holds the
    partial text the model produced and ``usage`` the token usage, so nothing is lost.
    """

    #: After validation re-asks: the earlier attempts' errors, oldest first.
    attempts: tuple[OpenAIClientError, ...] = ()

    def __init__(
        self,
        message: str,
        *,
        requested_tokens: int | None = None,
        model_limit: int | None = None,
        content: str | None = None,
        usage: Mapping[str, Any] | None = None,
        response_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.requested_tokens = requested_tokens
        self.model_limit = model_limit
        self.content = content
        self.usage = dict(usage) if usage is not None else None
        self.response_id = response_id


class TokenBudgetError(TokenLimitError):
    """``max_total_tokens`` would be exceeded by the next request, so it was not sent.

    ``budget`` is the limit, ``spent`` the tokens the earlier attempts used, ``needed`` the
    estimate for the request not sent; ``usage`` the earlier attempts' usage summed and
    ``attempts`` their errors. The last attempt's error is the ``__cause__``.
    """

    def __init__(
        self,
        message: str,
        *,
        budget: int,
        spent: int,
        needed: int,
        usage: Mapping[str, Any] | None = None,
        attempts: Sequence[OpenAIClientError] = (),
    ) -> None:
        super().__init__(message, requested_tokens=spent + needed, usage=usage)
        self.budget = budget
        self.spent = spent
        self.needed = needed
        self.attempts = tuple(attempts)


# --- schemas ---------------------------------------------------------------------------------


class SchemaError(OpenAIClientError, ValueError):
    """A schema cannot be used in strict mode; ``path`` is the JSON pointer of the culprit."""

    def __init__(self, reason: str, *, path: str = "#", fix: str | None = None) -> None:
        self.path = path
        self.reason = reason
        self.fix = fix
        message = f"{path}: {reason}"
        if fix:
            message += f"\n  fix: {fix}"
        super().__init__(message)


# --- responses -------------------------------------------------------------------------------


class APIResponseError(OpenAIClientError):
    """The API answered, but not with something we can turn into the result."""

    #: After validation re-asks: the failed attempts' errors, oldest first (when the retries
    #: ran out, every attempt's; when another outcome ended the call, the ones before it).
    attempts: tuple[OpenAIClientError, ...] = ()
    #: For a tool call's failure: the call's ``index`` in the answer.
    tool_call_index: int | None = None

    def __init__(
        self,
        message: str,
        *,
        response_id: str | None = None,
        content: str | None = None,
        usage: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.response_id = response_id
        self.content = content
        self.usage = dict(usage) if usage is not None else None


class InvalidResponseFormatError(APIResponseError):
    """The content is not JSON; ``position``/``line``/``column`` locate the first bad character."""

    def __init__(
        self,
        message: str,
        *,
        response_id: str | None = None,
        content: str | None = None,
        usage: Mapping[str, Any] | None = None,
        position: int | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message, response_id=response_id, content=content, usage=usage)
        self.position = position
        self.line = line
        self.column = column


class EmptyResponseError(APIResponseError):
    """The model returned no content at all."""


class RefusalError(APIResponseError):
    """The model refused; ``refusal`` is its explanation."""

    def __init__(
        self,
        message: str,
        *,
        refusal: str,
        response_id: str | None = None,
        content: str | None = None,
        usage: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, response_id=response_id, content=content, usage=usage)
        self.refusal = refusal


class ContentFilterError(APIResponseError):
    """The provider's content filter stopped the answer."""


class NoToolCallError(APIResponseError):
    """Tools were given without an output schema, and the model answered with text instead of
    calling one; the text is in ``content``."""


class UnknownToolError(APIResponseError):
    """The model called a tool that was not given: ``tool_name`` is what it called, ``known``
    the names of the function tools of the request."""

    def __init__(
        self,
        message: str,
        *,
        tool_name: str,
        known: Sequence[str] = (),
        response_id: str | None = None,
        content: str | None = None,
        usage: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, response_id=response_id, content=content, usage=usage)
        self.tool_name = tool_name
        self.known = tuple(known)


class ValidationError(APIResponseError, ValueError):
    """The content is JSON but does not match the schema.

    ``errors()`` lists one entry per failing field, pydantic style: ``loc`` (a tuple path),
    ``path`` (dotted, e.g. ``items.3.price``), ``msg``, ``type`` and ``input``. For a tool
    call's arguments ``tool_name`` names the tool (and each entry has ``tool``); after re-asks
    each entry has ``attempt`` (1, 2, ...) and the list covers every attempt.
    """

    def __init__(
        self,
        message: str,
        *,
        errors: Sequence[Mapping[str, Any]] = (),
        response_id: str | None = None,
        content: str | None = None,
        usage: Mapping[str, Any] | None = None,
        tool_name: str | None = None,
    ) -> None:
        super().__init__(message, response_id=response_id, content=content, usage=usage)
        self._errors = [dict(e) for e in errors]
        self.tool_name = tool_name

    def errors(self) -> list[dict[str, Any]]:
        return [dict(e) for e in self._errors]


# --- streams ---------------------------------------------------------------------------------


class StreamBufferError(OpenAIClientError):
    """The stream buffer could not hold or clean up the incoming text."""


class BufferOverflowError(StreamBufferError):
    """The buffer grew past ``StreamConfig.max_buffer_size`` and cleanup could not shrink it."""

    def __init__(self, message: str, *, size: int | None = None, limit: int | None = None) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class StreamInterruptedError(OpenAIClientError):
    """The stream stopped before the model finished.

    ``content`` is the text received so far and ``results`` the values already completed, so
    nothing received is lost. When the cause is an openai SDK error, the raised object is also an
    instance of that SDK class (``except RateLimitError`` works) and ``__cause__`` is the original.
    """

    content: str | None = None
    results: list[Any]

    def __init__(
        self, message: str = "", *, content: str | None = None, results: Sequence[Any] = ()
    ) -> None:
        super().__init__(message)
        self.content = content
        self.results = list(results)


class StreamParseError(StreamInterruptedError):
    """Too many parse errors in a stream (``attempts``); ``last_error`` is the final one."""

    def __init__(
        self,
        message: str,
        *,
        attempts: int,
        last_error: BaseException | None = None,
        content: str | None = None,
        results: Sequence[Any] = (),
    ) -> None:
        super().__init__(message, content=content, results=results)
        self.attempts = attempts
        self.last_error = last_error


class StreamStateError(OpenAIClientError, RuntimeError):
    """``StreamDecoder.feed()`` or ``close()`` called in a state that does not allow it: after
    ``close()``, or after the stream already failed (``error`` is that first failure;
    ``state`` the decoder's ``StreamState``)."""

    def __init__(self, message: str, *, state: Any, error: BaseException | None = None) -> None:
        super().__init__(message)
        self.state = state
        self.error = error


_EXCERPT = 200


class StreamProtocolError(StreamInterruptedError):
    """The server sent an event that is not valid for the API (e.g. data that is not JSON).

    ``data`` is the offending event data (at most 200 bytes). ``content``/``results`` hold what
    the stream had produced before it.
    """

    def __init__(self, message: str, *, data: bytes = b"") -> None:
        super().__init__(message)
        self.data: bytes = redact(data[:_EXCERPT])


class StreamServerError(StreamInterruptedError):
    """The server reported an error inside the stream (an ``error`` payload/event, or a
    Responses ``response.failed``).

    ``body`` is the error object as sent (``message``, ``code``, ``type``, ``param``), with any
    key the server echoed back masked; the client loop turns it into the openai SDK's
    ``APIError`` with :func:`interrupted`.
    """

    def __init__(self, message: str, *, body: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.body: dict[str, Any] = redact(dict(body)) if body else {}
        self.code: Any = self.body.get("code")
        self.type: Any = self.body.get("type")
        self.param: Any = self.body.get("param")


_dual_classes: dict[type[BaseException], type[StreamInterruptedError]] = {}


def interrupted(
    cause: BaseException, *, content: str | None = None, results: Sequence[Any] = ()
) -> StreamInterruptedError:
    """Wrap ``cause`` (usually an openai SDK error) as a ``StreamInterruptedError`` that is also
    an instance of ``cause``'s class, carrying what the stream had received.

    The caller should ``raise interrupted(exc, ...) from exc``.
    """
    cls = type(cause)
    if isinstance(cause, StreamInterruptedError):
        return cause
    dual = _dual_classes.get(cls)
    if dual is None:
        dual = type(f"StreamInterrupted{cls.__name__}", (StreamInterruptedError, cls), {})
        dual.__module__ = __name__
        _dual_classes[cls] = dual
    # SDK exceptions have required constructor arguments; build without calling __init__ and
    # copy the original's state (status_code, response, body, request, ...).
    err = dual.__new__(dual)
    err.__dict__.update(getattr(cause, "__dict__", {}))
    # The SDK's text can quote the key back ("Incorrect API key provided: sk-..."): the copy's
    # message and body are redacted (the original stays the ``__cause__``, untouched).
    for name in ("message", "body"):
        if name in err.__dict__:
            err.__dict__[name] = redact(err.__dict__[name])
    err.args = (redact_text(f"stream interrupted: {cause}"),)
    err.content = content
    err.results = list(results)
    return err
