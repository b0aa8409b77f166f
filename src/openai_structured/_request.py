"""Arguments -> request (pure): prompt forms, parameters, schema, and the pre-flight checks.

Nothing here does I/O. Every check that can fail fails here, before a request is paid for:
argument forms, token-parameter conflicts, the model registry's rules (for servers that use
it), and the schema compiler's verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pydantic

from ._validation import ResultValidator
from .errors import OpenAIClientError, TokenParameterError
from .registry import TOKEN_PARAMETERS, ModelCapabilities, get_registry
from .schema import CompiledSchema, compile_schema
from .servers import ServerProfile
from .tokens import validate_token_limits

__all__ = ["SAMPLING_PARAMETERS", "PreparedCall", "prepare_call"]

Api = Literal["chat", "responses"]

#: Sampling parameters checked against the model's rules; in the order they are documented.
SAMPLING_PARAMETERS = (
    "temperature",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "reasoning_effort",
)
_CHAT_ONLY = ("frequency_penalty", "presence_penalty")


@dataclass(frozen=True)
class PreparedCall:
    """Everything the transport needs, and everything the decoder needs afterwards."""

    api: Api
    model: str
    kwargs: dict[str, Any]
    validator: ResultValidator
    compiled: CompiledSchema
    capabilities: ModelCapabilities
    #: The caller's type: a pydantic model class or a JSON Schema dict (for item events).
    output: type[pydantic.BaseModel] | Mapping[str, Any]
    stream: bool


def prepare_call(
    *,
    model: str,
    profile: ServerProfile,
    api: Api = "chat",
    stream: bool = False,
    output_schema: type[pydantic.BaseModel] | None = None,
    schema: Mapping[str, Any] | None = None,
    system_prompt: str | None = None,
    user_prompt: str | None = None,
    messages: Sequence[Mapping[str, Any]] | None = None,
    validate_schema: bool = True,
    strict: bool | None = None,
    timeout: float | None = None,
    params: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> PreparedCall:
    """Check the arguments and build the keyword arguments for the SDK's ``create()``.

    ``params`` holds the sampling and token parameters the caller gave (None = not given: not
    sent). ``extra`` is passed through to the SDK untouched (``seed``, ``stop``, ``metadata``,
    ``extra_headers``, ...).
    """
    if api not in ("chat", "responses"):
        raise ValueError(f"api must be 'chat' or 'responses', not {api!r}.")
    if not isinstance(model, str) or not model:
        raise TypeError("model= must be a model name such as 'gpt-4o'.")
    output = _output(output_schema, schema)
    chat_messages = _messages(system_prompt, user_prompt, messages)
    given = {k: v for k, v in (params or {}).items() if v is not None}

    caps = _capabilities(model, profile)
    if api == "responses":
        for name in _CHAT_ONLY:
            if name in given:
                raise OpenAIClientError(
                    f"Parameter '{name}' is not supported by the Responses API.\n"
                    "Use api='chat' to send it, or leave it out."
                )
    # Token-parameter conflicts, unsupported parameters, ranges/enums and the output limit.
    caps.validate_parameters(given)
    token_limit = _token_limit(given)
    if stream:
        caps.check_streaming()
    if profile.uses_registry:
        # Prompt + output within the context window, counted with the model's tokenizer.
        validate_token_limits(
            model,
            messages=chat_messages,
            max_output_tokens=token_limit[1] if token_limit is not None else None,
            registry=caps,
        )

    if api == "responses" and not profile.supports_responses_api:
        raise OpenAIClientError(
            f"The {profile.name} server has no Responses API. Use api='chat' with it."
        )
    use_strict = profile.strict_schema if strict is None else strict
    compiled = compile_schema(output, strict=use_strict)
    validator = ResultValidator(
        output_schema=output_schema,
        schema=schema,
        validate_schema=validate_schema,
        restore=compiled.restore if compiled.needs_restore else None,
    )

    kwargs: dict[str, Any] = {"model": model}
    if api == "chat":
        kwargs["messages"] = chat_messages
        kwargs["response_format"] = profile.chat_response_format(
            compiled.name, compiled.schema, compiled.strict
        )
        for name in SAMPLING_PARAMETERS:
            if name in given:
                kwargs[name] = given[name]
        if stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {"include_usage": True}
    else:
        kwargs["input"] = [_responses_message(m) for m in chat_messages]
        kwargs["text"] = profile.responses_text_format(
            compiled.name, compiled.schema, compiled.strict
        )
        for name in ("temperature", "top_p"):
            if name in given:
                kwargs[name] = given[name]
        if "reasoning_effort" in given:
            kwargs["reasoning"] = {"effort": given["reasoning_effort"]}
        if stream:
            kwargs["stream"] = True
    if token_limit is not None:
        kwargs[caps.token_parameter(api)] = token_limit[1]
    if timeout is not None:
        kwargs["timeout"] = timeout
    for key, value in (extra or {}).items():
        if key in kwargs:
            raise TypeError(
                f"{key}= is set by openai-structured itself; pass it through the documented "
                "argument instead."
            )
        kwargs[key] = value
    return PreparedCall(
        api=api,
        model=model,
        kwargs=kwargs,
        validator=validator,
        compiled=compiled,
        capabilities=caps,
        output=output,
        stream=stream,
    )


def _output(
    output_schema: type[pydantic.BaseModel] | None, schema: Mapping[str, Any] | None
) -> type[pydantic.BaseModel] | Mapping[str, Any]:
    if output_schema is not None and schema is not None:
        raise TypeError(
            "Give either output_schema= (a pydantic model class) or schema= (a JSON Schema "
            "dict), not both."
        )
    if output_schema is not None:
        if not (isinstance(output_schema, type) and issubclass(output_schema, pydantic.BaseModel)):
            raise TypeError(
                f"output_schema= must be a pydantic model class, got {output_schema!r}. "
                "For a JSON Schema dict use schema=."
            )
        return output_schema
    if schema is not None:
        if not isinstance(schema, Mapping):
            raise TypeError(
                f"schema= must be a JSON Schema dict, got {type(schema).__name__}. "
                "For a pydantic model use output_schema=."
            )
        return schema
    raise TypeError(
        "Give the shape of the answer: output_schema= (a pydantic model class) or schema= "
        "(a JSON Schema dict)."
    )


def _messages(
    system_prompt: str | None,
    user_prompt: str | None,
    messages: Sequence[Mapping[str, Any]] | None,
) -> list[dict[str, Any]]:
    if messages is not None:
        if system_prompt is not None or user_prompt is not None:
            raise TypeError(
                "Give either messages= or system_prompt=/user_prompt=, not both: put the "
                "system prompt into messages as {'role': 'system', 'content': ...}."
            )
        if isinstance(messages, (str, bytes)) or not messages:
            raise TypeError("messages= must be a non-empty list of {'role', 'content'} dicts.")
        out = []
        for index, message in enumerate(messages):
            if not isinstance(message, Mapping) or "role" not in message:
                raise TypeError(
                    f"messages[{index}] must be a dict with 'role' and 'content', got {message!r}."
                )
            out.append(dict(message))
        return out
    if user_prompt is None:
        raise TypeError(
            "Give the prompt: user_prompt= (and optionally system_prompt=) or messages=."
        )
    out = []
    if system_prompt is not None:
        out.append({"role": "system", "content": system_prompt})
    out.append({"role": "user", "content": user_prompt})
    return out


def _capabilities(model: str, profile: ServerProfile) -> ModelCapabilities:
    if profile.uses_registry:
        return get_registry().get_capabilities(model)
    return ModelCapabilities.permissive(model)


def _token_limit(given: Mapping[str, Any]) -> tuple[str, int] | None:
    """The one token-limit parameter given (conflicts were rejected by the registry)."""
    for name in TOKEN_PARAMETERS:
        if name in given:
            value = given[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TokenParameterError(f"{name} must be a positive integer, got {value!r}.")
            return name, value
    return None


def _responses_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A Chat Completions message in the Responses API's input form."""
    content = message.get("content")
    if isinstance(content, list):
        output_role = message.get("role") == "assistant"
        content = [_responses_part(part, output_role) for part in content]
    out = {k: v for k, v in message.items() if k != "content"}
    out["content"] = content
    return out


def _responses_part(part: Any, output_role: bool) -> Any:
    if not isinstance(part, Mapping):
        return part
    kind = part.get("type")
    if kind == "text":
        return {"type": "output_text" if output_role else "input_text", "text": part.get("text")}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        converted: dict[str, Any] = {"type": "input_image", "image_url": url}
        if isinstance(image, Mapping) and "detail" in image:
            converted["detail"] = image["detail"]
        return converted
    return dict(part)
