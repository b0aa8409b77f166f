"""Arguments -> request (pure): prompt forms, parameters, schema, and the pre-flight checks.

Nothing here does I/O. Every check that can fail fails here, before a request is paid for:
argument forms, token-parameter conflicts, the model registry's rules (for servers that use
it), and the schema compiler's verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic

from ._apis import ApiSpec, get_api
from ._outcome import OutputLimit
from ._tools import ToolSet, prepare_tools
from ._validation import ResultValidator, is_model_class
from .errors import OpenAIClientError, TokenParameterError
from .registry import TOKEN_PARAMETERS
from .schema import CompiledSchema, compile_schema
from .servers import ServerProfile
from .tokens import validate_token_limits

__all__ = ["SAMPLING_PARAMETERS", "OutputType", "PreparedCall", "prepare_call"]

#: Every sampling parameter an API takes, checked against the model's rules before sending.
SAMPLING_PARAMETERS = get_api("chat").sampling_parameters

#: What ``output_schema=`` takes: anything pydantic's ``TypeAdapter`` takes.
OutputType = Any


@dataclass(frozen=True)
class PreparedCall:
    """Everything the transport needs, and everything the decoder needs afterwards."""

    api: ApiSpec
    model: str
    kwargs: dict[str, Any]
    #: None for a tools-only request (no output schema: the answer must be tool calls).
    validator: ResultValidator | None
    compiled: CompiledSchema | None
    #: The caller's type (pydantic model, dataclass, TypedDict, ...) or JSON Schema dict.
    output: OutputType | Mapping[str, Any] | None
    stream: bool
    #: The output-token limit the request runs under (for the words of a cut-off).
    limit: OutputLimit
    tools: ToolSet | None = None
    #: Choices asked for (``n``); a call returns one result per choice when it is above 1.
    n: int = 1


def prepare_call(
    *,
    model: str,
    profile: ServerProfile,
    api: str | ApiSpec = "chat",
    stream: bool = False,
    output_schema: OutputType | None = None,
    schema: Mapping[str, Any] | None = None,
    system_prompt: str | None = None,
    user_prompt: str | None = None,
    messages: Sequence[Mapping[str, Any]] | None = None,
    validate_schema: bool = True,
    strict: bool | None = None,
    timeout: float | None = None,
    params: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    tools: Sequence[Any] | None = None,
    n: int | None = None,
) -> PreparedCall:
    """Check the arguments and build the keyword arguments for the SDK's ``create()``.

    ``params`` holds the sampling and token parameters the caller gave (None = not given: not
    sent). ``extra`` is passed through to the SDK untouched (``seed``, ``stop``, ``metadata``,
    ``extra_headers``, ...).
    """
    spec = get_api(api)
    if not isinstance(model, str) or not model:
        raise TypeError("model= must be a model name such as 'gpt-4o'.")
    output = _output(output_schema, schema, tools_given=tools is not None)
    choices = _choices(n, stream)
    chat_messages = _messages(system_prompt, user_prompt, messages)
    given = {k: v for k, v in (params or {}).items() if v is not None}

    caps = profile.capabilities(model)
    spec.check_parameters({**given, **(extra or {}), "n": n if choices > 1 else None})
    # Token-parameter conflicts, unsupported parameters, ranges/enums and the output limit.
    caps.validate_parameters(given)
    token_limit = _token_limit(given)
    caps.check_api(spec.name)
    if stream:
        caps.check_streaming()
    if not caps.permissive_profile:
        # Prompt + output within the context window, counted with the model's tokenizer.
        validate_token_limits(
            model,
            messages=chat_messages,
            max_output_tokens=token_limit,
            registry=caps,
        )

    if not spec.supported_by(profile):
        raise OpenAIClientError(
            f"The {profile.name} server has no {spec.title} API. Use api='chat' with it."
        )
    use_strict = profile.strict_schema if strict is None else strict
    compiled: CompiledSchema | None = None
    validator: ResultValidator | None = None
    if output is not None:
        compiled = compile_schema(output, strict=use_strict)
        validator = ResultValidator(
            output_schema=output_schema,
            schema=schema,
            validate_schema=validate_schema,
            restore=compiled.restore if compiled.needs_restore else None,
        )
    toolset = (
        prepare_tools(tools, strict=use_strict, validate_schema=validate_schema)
        if tools is not None
        else None
    )

    kwargs: dict[str, Any] = {"model": model}
    kwargs.update(
        spec.request(
            messages=chat_messages,
            profile=profile,
            compiled=compiled,
            given=given,
            stream=stream,
            tools=toolset,
        )
    )
    if choices > 1:
        kwargs["n"] = choices
    parameter = spec.token_parameter(caps)
    if token_limit is not None:
        kwargs[parameter] = token_limit
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
        api=spec,
        model=model,
        kwargs=kwargs,
        validator=validator,
        compiled=compiled,
        output=output,
        stream=stream,
        limit=OutputLimit(
            parameter=parameter if token_limit is not None else None,
            requested=token_limit,
            model_limit=None if caps.permissive_profile else caps.max_output_tokens,
        ),
        tools=toolset,
        n=choices,
    )


def _choices(n: Any, stream: bool) -> int:
    if n is None:
        return 1
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise TypeError(f"n= must be a positive integer (the number of choices), got {n!r}.")
    if n > 1 and stream:
        raise OpenAIClientError(
            f"n={n} is not supported on streams: a stream decodes one answer, and would pay for "
            f"{n}. Use openai_structured_call(..., n={n}) for one result per choice, or start "
            f"{n} streams."
        )
    return n


def _output(
    output_schema: OutputType | None, schema: Mapping[str, Any] | None, *, tools_given: bool
) -> Any:
    if output_schema is not None and schema is not None:
        raise TypeError(
            "Give either output_schema= (a pydantic model or another type pydantic can "
            "validate) or schema= (a JSON Schema dict), not both."
        )
    if output_schema is not None:
        if isinstance(output_schema, Mapping):
            raise TypeError(
                "output_schema= takes a type (a pydantic model, dataclass, TypedDict, "
                "list[Model], ...); for a JSON Schema dict use schema=."
            )
        if not is_model_class(output_schema):
            try:
                pydantic.TypeAdapter(output_schema)
            except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError) as exc:
                raise TypeError(
                    f"output_schema= must be a type pydantic can validate (a BaseModel "
                    f"subclass, dataclass, TypedDict, list[Model], ...), got "
                    f"{output_schema!r}: {exc}"
                ) from None
        return output_schema
    if schema is not None:
        if not isinstance(schema, Mapping):
            raise TypeError(
                f"schema= must be a JSON Schema dict, got {type(schema).__name__}. "
                "For a pydantic model use output_schema=."
            )
        return schema
    if tools_given:
        return None  # tools only: the answer is a list of tool calls
    raise TypeError(
        "Give the shape of the answer: output_schema= (a pydantic model class) or schema= "
        "(a JSON Schema dict), or tools= for an answer made of tool calls."
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


def _token_limit(given: Mapping[str, Any]) -> int | None:
    """The one token limit given (conflicts were rejected by the registry)."""
    for name in TOKEN_PARAMETERS:
        if name in given:
            value = given[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TokenParameterError(f"{name} must be a positive integer, got {value!r}.")
            return value
    return None
