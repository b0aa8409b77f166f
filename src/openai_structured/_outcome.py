"""The outcome table of SPEC §2.2, once, for calls, value streams and event streams.

A finished answer is reduced to an :class:`Answer` (what the API said, in API-neutral terms: the
per-API extraction lives in :mod:`._apis`, the streamed one in the stream protocols); then
:func:`check_answer` decides whether it is a refusal, a cut-off, a content-filter stop, a dropped
stream or empty, and raises the typed error with the same attributes and words whichever path
produced the answer. What is left is JSON to validate, and :func:`invalid_json_error` is the one
description of an answer that is not JSON. No I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import (
    APIResponseError,
    ContentFilterError,
    EmptyResponseError,
    InvalidResponseFormatError,
    NoToolCallError,
    RefusalError,
    StreamInterruptedError,
    TokenLimitError,
)

if TYPE_CHECKING:
    from ._tools import ToolSet
    from ._validation import ResultValidator

__all__ = [
    "Answer",
    "OutputLimit",
    "RawToolCall",
    "check_answer",
    "invalid_json_error",
    "no_tool_call_error",
    "resolve",
]


@dataclass(frozen=True)
class RawToolCall:
    """A tool call as the API reported it, before its arguments are parsed."""

    index: int
    id: str | None
    name: str
    arguments: str


@dataclass(frozen=True)
class OutputLimit:
    """The output-token limit a request ran under, for the words of a cut-off error."""

    #: The request field that carried it (``max_completion_tokens``...), None when not sent.
    parameter: str | None = None
    #: The value sent, None when the caller gave none (the model's or server's limit applied).
    requested: int | None = None
    #: The model's own output limit from the registry, None when unknown.
    model_limit: int | None = None


NO_LIMIT = OutputLimit()


@dataclass(frozen=True)
class Answer:
    """What one response said, in API-neutral terms."""

    response_id: str | None
    content: str | None
    refusal: str | None
    #: "stop", "length", "content_filter", or another finish reason the server gave.
    finish_reason: str | None
    usage: dict[str, Any] | None
    #: The Responses API's ``incomplete_details.reason`` (``max_output_tokens``...).
    incomplete_reason: str | None = None
    #: False when a stream ended without a finish reason or end event (dropped connection).
    finished: bool = True
    #: False when ``content`` is only the tail of the answer (a stream dropped the text of
    #: completed values to bound memory): then an empty ``content`` is not an empty answer.
    content_complete: bool = True
    #: The function calls the model made, in the answer's order.
    tool_calls: tuple[RawToolCall, ...] = ()


def check_answer(answer: Answer, limit: OutputLimit = NO_LIMIT) -> None:
    """Raise the typed error the outcome table prescribes, or return when the content is to be
    parsed and validated."""
    rid = answer.response_id
    content = answer.content
    usage = answer.usage
    if not answer.finished:
        raise StreamInterruptedError(
            "The stream ended before the model finished (the connection closed without a "
            "finish reason or end event). The text received is in .content and the values "
            "completed so far in .results.",
            content=content,
        )
    if answer.refusal:
        raise RefusalError(
            f"The model refused to answer: {answer.refusal}",
            refusal=answer.refusal,
            response_id=rid,
            content=content or None,
            usage=usage,
        )
    if answer.finish_reason == "length":
        if not content and answer.tool_calls:  # cut off in a call: its arguments are the text
            content = answer.tool_calls[-1].arguments
        raise TokenLimitError(
            _cut_off_message(answer, limit),
            requested_tokens=limit.requested,
            model_limit=limit.model_limit,
            content=content or None,
            usage=usage,
            response_id=rid,
        )
    if answer.finish_reason == "content_filter":
        raise ContentFilterError(
            "The provider's content filter stopped the answer. Rephrase the prompt or the "
            "input; any partial text is in .content.",
            response_id=rid,
            content=content or None,
            usage=usage,
        )
    if answer.tool_calls:
        return
    if answer.content_complete and (content is None or not content.strip()):
        raise EmptyResponseError(
            "The model returned an empty answer. Check that the prompt asks for the data and "
            "that the server supports structured output.",
            response_id=rid,
            content=content,
            usage=usage,
        )


def resolve(
    answer: Answer,
    limit: OutputLimit,
    *,
    validator: ResultValidator | None,
    tools: ToolSet | None,
) -> Any:
    """The result of a whole (non-streamed) answer, or its typed error: the outcome table, then
    the tool calls (``list[ToolCall]``) or the content validated."""
    check_answer(answer, limit)
    usage = answer.usage
    if answer.tool_calls:
        if tools is None:
            from ._tools import ToolSet

            tools = ToolSet((), {})
        return tools.calls(answer.tool_calls, response_id=answer.response_id, usage=usage)
    if validator is None:
        raise no_tool_call_error(answer, tools)
    try:
        return validator.validate_json(answer.content or "", response_id=answer.response_id)
    except APIResponseError as exc:  # not JSON, or not the schema: the usage was paid for
        exc.usage = dict(usage) if usage is not None else None
        raise


def no_tool_call_error(answer: Answer, tools: ToolSet | None) -> NoToolCallError:
    names = ", ".join(repr(n) for n in (tools.functions if tools else ()))
    return NoToolCallError(
        f"The model answered with text instead of calling a tool ({names or 'no function tools'}"
        "). Pass tool_choice='required' (or name a tool), or give output_schema= as well to "
        "accept a structured answer. The text is in .content.",
        response_id=answer.response_id,
        content=answer.content,
        usage=answer.usage,
    )


def _cut_off_message(answer: Answer, limit: OutputLimit) -> str:
    used = _output_tokens(answer.usage)
    at = f" after {used} output tokens" if used is not None else ""
    if limit.requested is not None:
        which = f"the limit you set ({limit.parameter or 'max_output_tokens'}={limit.requested})"
        fix = "Raise max_output_tokens, or ask for a shorter answer."
    elif limit.model_limit is not None:
        which = f"the model's output limit ({limit.model_limit} tokens)"
        fix = "Ask for a shorter answer, or use a model with a larger output limit."
    else:
        which = "the server's output limit"
        fix = "Set max_output_tokens higher than the server's default, or ask for less."
    reason = f" ({answer.incomplete_reason})" if answer.incomplete_reason else ""
    return (
        f"The answer was cut off at {which}{reason}{at}, before the JSON was complete. {fix} "
        "The partial text is in .content and the usage in .usage."
    )


def _output_tokens(usage: Mapping[str, Any] | None) -> int | None:
    if not usage:
        return None
    for key in ("completion_tokens", "output_tokens"):
        value = usage.get(key)
        if isinstance(value, int):
            return value
    return None


def _beyond_limits(
    content: str,
    exc: BaseException,
    response_id: str | None,
    usage: Mapping[str, Any] | None,
    what: str,
) -> InvalidResponseFormatError:
    why = (
        "it is nested too deeply"
        if isinstance(exc, RecursionError)
        else f"it holds a number too long to read ({exc})"
    )
    return InvalidResponseFormatError(
        f"{what} is JSON beyond what is accepted: {why}. The raw text is in .content.",
        response_id=response_id,
        content=content,
        usage=usage,
    )


def invalid_json_error(
    content: str,
    *,
    response_id: str | None,
    usage: Mapping[str, Any] | None = None,
    what: str = "The model's answer",
) -> InvalidResponseFormatError:
    """An ``InvalidResponseFormatError`` locating the first bad character of ``content``."""
    try:
        value = json.loads(content)
    except (ValueError, RecursionError) as exc:
        if not isinstance(exc, json.JSONDecodeError):
            return _beyond_limits(content, exc, response_id, usage, what)
        excerpt = content[max(0, exc.pos - 20) : exc.pos + 20]
        return InvalidResponseFormatError(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} "
            f"(char {exc.pos}), near {excerpt!r}. The raw text is in .content.",
            response_id=response_id,
            content=content,
            usage=usage,
            position=exc.pos,
            line=exc.lineno,
            column=exc.colno,
        )
    if not isinstance(value, (dict, list)):
        return InvalidResponseFormatError(
            f"{what} is a JSON {type(value).__name__}, not an object or array. The raw text is "
            "in .content.",
            response_id=response_id,
            content=content,
            usage=usage,
            position=0,
            line=1,
            column=1,
        )
    # json accepts it but the strict parser did not (e.g. NaN, or lone surrogates).
    return InvalidResponseFormatError(
        f"{what} is not strict JSON (NaN, Infinity or an invalid escape). The raw text is in "
        ".content.",
        response_id=response_id,
        content=content,
        usage=usage,
    )
