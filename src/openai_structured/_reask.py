"""Validation re-ask (``max_validation_retries``): which failures are sent back to the model,
the words that go with them, the error when the retries run out, and the token budget across
attempts (``max_total_tokens``). Pure: the loops that send live in ``client.py`` and
``_stream.py``; each API object turns a :class:`~._apis.Feedback` into its next turn.

Only answers the model can fix are re-asked: content that is not JSON, JSON that fails
validation (a pydantic validator the schema cannot express, ``jsonschema`` on servers without
strict mode), a tool's invalid arguments, a call of a tool that does not exist, text where a
tool call was required. Refusals, cut-offs, content filters and HTTP errors are not (the SDK
retries HTTP itself).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ._apis import ApiSpec, Feedback
from ._logging import LogSink
from ._outcome import Answer
from ._usage import TokenUsage
from .errors import (
    APIResponseError,
    InvalidResponseFormatError,
    NoToolCallError,
    OpenAIClientError,
    TokenBudgetError,
    UnknownToolError,
    ValidationError,
)
from .tokens import count_message_tokens

__all__ = ["RETRYABLE", "Budget", "check_retries", "exhausted", "feedback", "reask"]

#: The failures a re-ask may fix.
RETRYABLE: tuple[type[APIResponseError], ...] = (
    ValidationError,
    InvalidResponseFormatError,
    UnknownToolError,
    NoToolCallError,
)
_MAX_LISTED = 20  # errors quoted back to the model
_MAX_INPUT = 60  # characters of a bad value quoted


def check_retries(value: Any, name: str = "max_validation_retries") -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"{name}= must be a non-negative integer, got {value!r}.")
    return value


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= _MAX_INPUT else text[: _MAX_INPUT - 3] + "..."


def _lines(errors: Sequence[Mapping[str, Any]]) -> str:
    shown = [
        f"- {e.get('path') or '<root>'}: {e.get('msg')} (got {_short(e.get('input'))})"
        for e in errors[:_MAX_LISTED]
    ]
    if len(errors) > _MAX_LISTED:
        shown.append(f"- ... and {len(errors) - _MAX_LISTED} more")
    return "\n".join(shown)


def _words(error: APIResponseError) -> str:
    """What is wrong, in a few lines the model can act on."""
    if isinstance(error, ValidationError):
        return "It does not match the required schema:\n" + _lines(error.errors())
    if isinstance(error, InvalidResponseFormatError):
        first = str(error).split(". The raw text", 1)[0]
        return f"It is not valid JSON ({first})."
    if isinstance(error, UnknownToolError):
        known = ", ".join(error.known) or "none"
        return f"There is no tool named {error.tool_name!r}; the tools are: {known}."
    if isinstance(error, NoToolCallError):
        return "It is text, but a tool call was required. Call one of the tools."
    return str(error)


def feedback(error: APIResponseError, answer: Answer) -> Feedback:
    """The words sent back after ``error``, the failure of ``answer``."""
    words = _words(error)
    if not answer.tool_calls:
        return Feedback(
            f"Your previous answer was rejected. {words}\n"
            "Answer again with the complete, corrected JSON and nothing else."
        )
    index = error.tool_call_index
    if index is None:  # not about one call (text where a call was required): every call
        return Feedback(words, other=f"Error: {words}")
    calls = {
        index: f"Error: the call was rejected. {words}\nCall the tool again with corrected "
        "arguments."
    }
    return Feedback(
        words,
        calls,
        other="Not run: another call in the same answer was rejected. Make all the calls again.",
    )


def reask(
    api: ApiSpec,
    kwargs: Mapping[str, Any],
    answer: Answer,
    error: APIResponseError,
    *,
    attempt: int,
    retries: int,
    log: LogSink,
) -> dict[str, Any]:
    """The next attempt's request after ``error`` (attempt ``attempt`` failed), logged as a
    ``retry`` event."""
    if log:
        log.emit(
            "retry",
            "warning",
            reason="validation",
            attempt=attempt,
            max_validation_retries=retries,
            response_id=answer.response_id,
            error=error,
        )
    return api.reask(kwargs, answer, feedback(error, answer))


def exhausted(errors: Sequence[APIResponseError]) -> APIResponseError:
    """The error raised when the retries run out: the last one, carrying every attempt's error
    in ``attempts``; a ``ValidationError`` lists every attempt's field errors."""
    last = errors[-1]
    if len(errors) == 1:
        return last
    if isinstance(last, ValidationError):
        merged: list[dict[str, Any]] = []
        lines = [f"No valid answer after {len(errors)} attempts:"]
        for number, error in enumerate(errors, 1):
            entries = error.errors() if isinstance(error, ValidationError) else []
            merged += [{**e, "attempt": number} for e in entries]
            first = str(error).splitlines()[0]
            lines.append(f"  attempt {number}: {type(error).__name__}: {first}")
            lines += [f"    {e['path']}: {e['msg']}" for e in entries[:_MAX_LISTED]]
        lines.append(
            "Raise max_validation_retries, make the schema's field descriptions clearer, or "
            "read .attempts for each answer."
        )
        final: APIResponseError = ValidationError(
            "\n".join(lines),
            errors=merged,
            response_id=last.response_id,
            content=last.content,
            usage=last.usage,
            tool_name=last.tool_name,
        )
    else:
        final = last
    final.attempts = tuple(errors)
    return final


class Budget:
    """``max_total_tokens`` across the attempts of one call: :meth:`check` before each request
    raises :class:`TokenBudgetError` (nothing sent) when the tokens spent so far plus the
    request's estimate would pass it. The estimate is the prompt's tokens (the model's
    tokenizer when the registry knows it, else ~4 characters a token) plus the output limit
    sent (0 when none: set ``max_output_tokens`` to make the bound hard)."""

    def __init__(self, limit: int | None, model: str, output_limit: int | None) -> None:
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise TypeError(f"max_total_tokens= must be a positive integer, got {limit!r}.")
        self.limit = limit
        self.model = model
        self.output_limit = output_limit or 0
        self.spent = TokenUsage()

    def add(self, usage: Mapping[str, Any] | None) -> None:
        self.spent = self.spent + TokenUsage.from_api(usage)

    def check(self, kwargs: Mapping[str, Any], errors: Sequence[APIResponseError]) -> None:
        if self.limit is None:
            return
        needed = self._estimate(kwargs) + self.output_limit
        spent = self.spent.total_tokens
        if spent + needed <= self.limit:
            return
        attempt = len(errors) + 1
        error = TokenBudgetError(
            f"max_total_tokens={self.limit} would be exceeded by attempt {attempt}: "
            f"{spent} tokens spent so far + about {needed} for the next request. Nothing was "
            "sent. Raise max_total_tokens, lower max_output_tokens or max_validation_retries.",
            budget=self.limit,
            spent=spent,
            needed=needed,
            usage=self.spent.as_dict() if self.spent.requests else None,
            attempts=errors,
        )
        raise error from (errors[-1] if errors else None)

    def _estimate(self, kwargs: Mapping[str, Any]) -> int:
        turns = kwargs.get("messages", kwargs.get("input")) or []
        extra = sum(
            len(json.dumps(kwargs[k], default=str))
            for k in ("response_format", "text", "tools")
            if k in kwargs
        )
        try:
            prompt = count_message_tokens(turns, self.model)
        except OpenAIClientError:  # a model the registry does not know (a custom server)
            prompt = len(json.dumps(turns, default=str)) // 4
        return prompt + extra // 4
