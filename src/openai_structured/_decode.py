"""Response -> result (pure): the outcome table of SPEC §2.2 for non-streaming calls.

Takes the SDK's parsed response object and the call's validator, returns the typed result or
raises the typed error. No I/O, so the sync and async entry points share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._validation import ResultValidator
from .errors import (
    APIResponseError,
    ContentFilterError,
    EmptyResponseError,
    RefusalError,
    TokenLimitError,
)

__all__ = ["Answer", "decode_chat", "decode_responses", "usage_dict"]


@dataclass(frozen=True)
class Answer:
    """What one response said, in API-neutral terms."""

    response_id: str | None
    content: str | None
    refusal: str | None
    #: "stop", "length", "content_filter", or another finish reason the server gave.
    finish_reason: str | None
    usage: dict[str, Any] | None


def usage_dict(usage: Any) -> dict[str, Any] | None:
    if usage is None:
        return None
    if isinstance(usage, dict):
        return usage
    dumped: dict[str, Any] = usage.model_dump(exclude_none=True)
    return dumped


def chat_answer(completion: Any) -> Answer:
    choices = completion.choices or []
    if not choices:
        return Answer(completion.id, None, None, None, usage_dict(completion.usage))
    choice = choices[0]
    message = choice.message
    return Answer(
        completion.id,
        message.content if message is not None else None,
        getattr(message, "refusal", None) if message is not None else None,
        choice.finish_reason,
        usage_dict(completion.usage),
    )


def responses_answer(response: Any) -> Answer:
    texts: list[str] = []
    refusals: list[str] = []
    for item in response.output or []:
        if getattr(item, "type", None) != "message":
            continue
        for part in item.content or []:
            kind = getattr(part, "type", None)
            if kind == "output_text":
                texts.append(part.text)
            elif kind == "refusal":
                refusals.append(part.refusal)
    status = response.status
    finish: str | None = "stop"
    if status == "incomplete":
        reason = getattr(response.incomplete_details, "reason", None)
        finish = "content_filter" if reason == "content_filter" else "length"
    elif status == "failed":
        error = response.error
        message = getattr(error, "message", None) or "the response failed"
        code = getattr(error, "code", None)
        raise APIResponseError(
            f"The Responses API reported a failed response ({code}): {message}",
            response_id=response.id,
            content="".join(texts) or None,
        )
    elif status not in (None, "completed"):
        finish = status
    return Answer(
        response.id,
        "".join(texts) if texts else None,
        "".join(refusals) if refusals else None,
        finish,
        usage_dict(response.usage),
    )


def decode_answer(answer: Answer, validator: ResultValidator) -> Any:
    """The result for ``answer``, or the typed error the outcome table prescribes."""
    rid = answer.response_id
    if answer.refusal:
        raise RefusalError(
            f"The model refused to answer: {answer.refusal}",
            refusal=answer.refusal,
            response_id=rid,
            content=answer.content,
        )
    if answer.finish_reason == "length":
        raise TokenLimitError(
            "The answer was cut off at the output token limit before the JSON was complete. "
            "Raise max_output_tokens, or shorten the expected output. The partial text is in "
            ".content and the usage in .usage.",
            content=answer.content,
            usage=answer.usage,
            response_id=rid,
            requested_tokens=(answer.usage or {}).get("completion_tokens")
            or (answer.usage or {}).get("output_tokens"),
        )
    if answer.finish_reason == "content_filter":
        raise ContentFilterError(
            "The provider's content filter stopped the answer. Rephrase the prompt or the "
            "input; any partial text is in .content.",
            response_id=rid,
            content=answer.content,
        )
    if answer.content is None or not answer.content.strip():
        raise EmptyResponseError(
            "The model returned an empty answer. Check the prompt asks for the data, and that "
            "the server supports structured output.",
            response_id=rid,
            content=answer.content,
        )
    return validator.validate_json(answer.content, response_id=rid)


def decode_chat(completion: Any, validator: ResultValidator) -> tuple[Any, Answer]:
    answer = chat_answer(completion)
    return decode_answer(answer, validator), answer


def decode_responses(response: Any, validator: ResultValidator) -> tuple[Any, Answer]:
    answer = responses_answer(response)
    return decode_answer(answer, validator), answer
