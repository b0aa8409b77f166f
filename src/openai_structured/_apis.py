"""The two OpenAI APIs, one object each: everything that differs between Chat Completions and
the Responses API lives here, the way :mod:`.servers` holds what differs between servers.

An :class:`ApiSpec` knows its endpoint on an SDK client, how a request is built (prompt form,
where the schema goes, which sampling parameters it takes, how streaming is asked for), which
field carries the output-token limit, how a finished response is read into an :class:`Answer`,
and which stream protocol decodes its events. Adding an API (or a request feature such as tool
calls) means changing this module, not ``if api == ...`` branches across the code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import jiter

from ._outcome import Answer, RawToolCall
from .errors import APIResponseError, OpenAIClientError
from .streaming.protocol import ChatProtocol, Protocol, ResponsesProtocol

if TYPE_CHECKING:  # the registry and the server profiles read the API names from here
    from ._tools import FunctionTool, ToolSet
    from .registry import ModelCapabilities
    from .schema import CompiledSchema
    from .servers import ServerProfile

__all__ = [
    "APIS",
    "API_NAMES",
    "ApiSpec",
    "ChatCompletionsApi",
    "Feedback",
    "ResponsesApi",
    "get_api",
]


class ApiSpec:
    """One OpenAI API. Instances are stateless singletons (see :data:`APIS`)."""

    #: The name users pass as ``api=``.
    name: ClassVar[str]
    #: The name people know it by, for messages.
    title: ClassVar[str]
    #: The request field that carries the schema (for reports such as ``--dry-run``).
    format_field: ClassVar[str]
    #: Sampling parameters this API takes, in the order they are documented.
    sampling_parameters: ClassVar[tuple[str, ...]]
    #: Parameters the API does not have: giving one is an error before sending.
    rejected_parameters: ClassVar[tuple[str, ...]] = ()
    #: The sans-I/O decoder of this API's stream events.
    protocol: ClassVar[type[Protocol]]
    #: The ``url`` of this API's requests in a Batch API input file (and its batch endpoint).
    batch_url: ClassVar[str]

    def endpoint(self, client: Any) -> Any:
        """The SDK resource whose ``create()`` sends a request (``with_streaming_response`` too)."""
        raise NotImplementedError

    def supported_by(self, profile: ServerProfile) -> bool:
        return True

    def token_parameter(self, capabilities: ModelCapabilities) -> str:
        """The request field for the output-token limit of this model on this API."""
        raise NotImplementedError

    def request(
        self,
        *,
        messages: Sequence[Mapping[str, Any]],
        profile: ServerProfile,
        compiled: CompiledSchema | None,
        given: Mapping[str, Any],
        stream: bool,
        tools: ToolSet | None = None,
    ) -> dict[str, Any]:
        """The request fields besides ``model``, the token limit and pass-through extras.
        ``compiled`` None: no output schema (a tools-only request)."""
        raise NotImplementedError

    def tool_entry(self, tool: FunctionTool) -> dict[str, Any]:
        """A function tool in this API's form."""
        raise NotImplementedError

    def _tools(self, tools: ToolSet) -> list[Any]:
        return [
            dict(entry) if isinstance(entry, Mapping) else self.tool_entry(entry)
            for entry in tools.entries
        ]

    def reask(
        self, kwargs: Mapping[str, Any], answer: Answer, feedback: Feedback
    ) -> dict[str, Any]:
        """The request kwargs of the next attempt: the conversation so far, the model's answer
        and the feedback on it as the next turn."""
        raise NotImplementedError

    def read_answer(self, body: bytes) -> Answer:
        """What a finished (non-streamed) response body said (its first choice)."""
        return self.read_answers(body)[0]

    def read_answers(self, body: bytes) -> list[Answer]:
        """What a finished response body said, one :class:`Answer` per choice."""
        try:
            obj = jiter.from_json(body)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            raise APIResponseError(
                f"The server's {self.title} response is not a JSON object: "
                f"{body[:200].decode('utf-8', 'replace')!r}. Check the base URL points at an "
                "OpenAI-compatible API."
            )
        return self.answers(obj)

    def answer(self, response: Mapping[str, Any]) -> Answer:
        """What a finished response (its JSON object) said (its first choice)."""
        return self.answers(response)[0]

    def answers(self, response: Mapping[str, Any]) -> list[Answer]:
        """What a finished response said, one :class:`Answer` per choice (at least one)."""
        raise NotImplementedError

    def check_parameters(self, given: Mapping[str, Any]) -> None:
        for name in self.rejected_parameters:
            if given.get(name) is not None:
                other = next(a for a in APIS.values() if a is not self).name
                raise OpenAIClientError(
                    f"Parameter '{name}' is not supported by the {self.title} API.\n"
                    f"Use api={other!r} to send it, or leave it out."
                )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} api={self.name!r}>"


class ChatCompletionsApi(ApiSpec):
    """Chat Completions: ``client.chat.completions``, ``messages``, ``response_format``."""

    name = "chat"
    title = "Chat Completions"
    batch_url = "/v1/chat/completions"
    format_field = "response_format"
    sampling_parameters = (
        "temperature",
        "top_p",
        "frequency_penalty",
        "presence_penalty",
        "reasoning_effort",
    )
    protocol = ChatProtocol

    def endpoint(self, client: Any) -> Any:
        return client.chat.completions

    def token_parameter(self, capabilities: ModelCapabilities) -> str:
        return capabilities.chat_token_parameter

    def request(
        self,
        *,
        messages: Sequence[Mapping[str, Any]],
        profile: ServerProfile,
        compiled: CompiledSchema | None,
        given: Mapping[str, Any],
        stream: bool,
        tools: ToolSet | None = None,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"messages": [dict(m) for m in messages]}
        if compiled is not None:
            kwargs["response_format"] = profile.chat_response_format(
                compiled.name, compiled.schema, compiled.strict
            )
        if tools is not None:
            kwargs["tools"] = self._tools(tools)
        for key in self.sampling_parameters:
            if key in given:
                kwargs[key] = given[key]
        if stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {"include_usage": True}
        return kwargs

    def tool_entry(self, tool: FunctionTool) -> dict[str, Any]:
        function: dict[str, Any] = {"name": tool.name}
        if tool.description is not None:
            function["description"] = tool.description
        function["parameters"] = tool.parameters
        function["strict"] = tool.strict
        return {"type": "function", "function": function}

    def answers(self, response: Mapping[str, Any]) -> list[Answer]:
        usage = _dict(response.get("usage"))
        rid = _text(response.get("id"))
        choices = response.get("choices")
        if not isinstance(choices, list) or not choices:
            return [Answer(rid, None, None, None, usage)]
        ordered = sorted(
            (c for c in choices if isinstance(c, dict)),
            key=lambda c: c["index"] if isinstance(c.get("index"), int) else 0,
        )
        return [self._choice(choice, rid, usage) for choice in ordered] or [
            Answer(rid, None, None, None, usage)
        ]

    @staticmethod
    def _choice(choice: Mapping[str, Any], rid: str | None, usage: Any) -> Answer:
        message = _dict(choice.get("message")) or {}
        calls = []
        given = message.get("tool_calls")
        for index, call in enumerate(given if isinstance(given, list) else []):
            function = _dict(call.get("function")) if isinstance(call, dict) else None
            if function is None:
                continue  # not a function call (a custom tool): nothing of ours to parse
            calls.append(
                RawToolCall(
                    index,
                    _text(call.get("id")),
                    _text(function.get("name")) or "",
                    _text(function.get("arguments")) or "",
                )
            )
        return Answer(
            rid,
            _text(message.get("content")),
            _text(message.get("refusal")),
            _text(choice.get("finish_reason")),
            usage,
            tool_calls=tuple(calls),
        )

    def reask(
        self, kwargs: Mapping[str, Any], answer: Answer, feedback: Feedback
    ) -> dict[str, Any]:
        turn: list[dict[str, Any]] = []
        if answer.tool_calls:
            turn.append(
                {
                    "role": "assistant",
                    "content": answer.content or None,
                    "tool_calls": [
                        {
                            "id": call.id or f"call_{call.index}",
                            "type": "function",
                            "function": {"name": call.name, "arguments": call.arguments},
                        }
                        for call in answer.tool_calls
                    ],
                }
            )
            turn += [
                {
                    "role": "tool",
                    "tool_call_id": call.id or f"call_{call.index}",
                    "content": feedback.for_call(call),
                }
                for call in answer.tool_calls
            ]
        else:
            turn.append({"role": "assistant", "content": answer.content or ""})
            turn.append({"role": "user", "content": feedback.text})
        return {**kwargs, "messages": [*kwargs["messages"], *turn]}


_INCOMPLETE_TO_FINISH = {"max_output_tokens": "length", "content_filter": "content_filter"}


class ResponsesApi(ApiSpec):
    """Responses: ``client.responses``, ``input``, ``text.format``."""

    name = "responses"
    title = "Responses"
    batch_url = "/v1/responses"
    format_field = "text"
    sampling_parameters = ("temperature", "top_p", "reasoning_effort")
    rejected_parameters = ("frequency_penalty", "presence_penalty", "seed", "n")
    protocol = ResponsesProtocol

    def endpoint(self, client: Any) -> Any:
        return client.responses

    def supported_by(self, profile: ServerProfile) -> bool:
        return profile.supports_responses_api

    def token_parameter(self, capabilities: ModelCapabilities) -> str:
        return "max_output_tokens"

    def request(
        self,
        *,
        messages: Sequence[Mapping[str, Any]],
        profile: ServerProfile,
        compiled: CompiledSchema | None,
        given: Mapping[str, Any],
        stream: bool,
        tools: ToolSet | None = None,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"input": [_responses_message(m) for m in messages]}
        if compiled is not None:
            kwargs["text"] = profile.responses_text_format(
                compiled.name, compiled.schema, compiled.strict
            )
        if tools is not None:
            kwargs["tools"] = self._tools(tools)
        for key in ("temperature", "top_p"):  # reasoning_effort goes into ``reasoning``
            if key in given:
                kwargs[key] = given[key]
        if "reasoning_effort" in given:
            kwargs["reasoning"] = {"effort": given["reasoning_effort"]}
        if stream:
            kwargs["stream"] = True
        return kwargs

    def tool_entry(self, tool: FunctionTool) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "function", "name": tool.name}
        if tool.description is not None:
            entry["description"] = tool.description
        entry["parameters"] = tool.parameters
        entry["strict"] = tool.strict
        return entry

    def reask(
        self, kwargs: Mapping[str, Any], answer: Answer, feedback: Feedback
    ) -> dict[str, Any]:
        turn: list[dict[str, Any]] = []
        if answer.tool_calls:
            for call in answer.tool_calls:
                turn.append(
                    {
                        "type": "function_call",
                        "call_id": call.id,
                        "name": call.name,
                        "arguments": call.arguments,
                    }
                )
            turn += [
                {"type": "function_call_output", "call_id": c.id, "output": feedback.for_call(c)}
                for c in answer.tool_calls
            ]
        else:
            turn.append({"role": "assistant", "content": answer.content or ""})
            turn.append({"role": "user", "content": feedback.text})
        return {**kwargs, "input": [*kwargs["input"], *turn]}

    def answers(self, response: Mapping[str, Any]) -> list[Answer]:
        texts: list[str] = []
        refusals: list[str] = []
        calls: list[RawToolCall] = []
        output = response.get("output")
        for item in output if isinstance(output, list) else []:
            if isinstance(item, dict) and item.get("type") == "function_call":
                calls.append(
                    RawToolCall(
                        len(calls),
                        _text(item.get("call_id")) or _text(item.get("id")),
                        _text(item.get("name")) or "",
                        _text(item.get("arguments")) or "",
                    )
                )
                continue
            if not isinstance(item, dict) or item.get("type") != "message":
                continue
            parts = item.get("content")
            for part in parts if isinstance(parts, list) else []:
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
                    refusals.append(part["refusal"])
        usage = _dict(response.get("usage"))
        rid = _text(response.get("id"))
        status = response.get("status")
        finish: str | None = "stop"
        reason: str | None = None
        if status == "incomplete":
            reason = _text((_dict(response.get("incomplete_details")) or {}).get("reason"))
            finish = _INCOMPLETE_TO_FINISH.get(reason or "", "length")
        elif status == "failed":
            error = _dict(response.get("error")) or {}
            message = _text(error.get("message")) or "the response failed"
            raise APIResponseError(
                f"The Responses API reported a failed response ({error.get('code')}): {message}",
                response_id=rid,
                content="".join(texts) or None,
                usage=usage,
            )
        elif status not in (None, "completed"):
            finish = _text(status)
        return [
            Answer(
                rid,
                "".join(texts) if texts else None,
                "".join(refusals) if refusals else None,
                finish,
                usage,
                incomplete_reason=reason,
                tool_calls=tuple(calls),
            )
        ]


class Feedback:
    """What the next attempt tells the model about its failed answer (see :mod:`._reask`):
    ``text`` for a content answer, and per tool call the words for that call."""

    def __init__(self, text: str, calls: Mapping[int, str] | None = None, other: str = "") -> None:
        self.text = text
        self._calls = dict(calls or {})
        self._other = other or text

    def for_call(self, call: RawToolCall) -> str:
        return self._calls.get(call.index, self._other)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


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


#: Every API by the name users pass as ``api=``.
APIS: dict[str, ApiSpec] = {api.name: api for api in (ChatCompletionsApi(), ResponsesApi())}
API_NAMES = tuple(APIS)


def get_api(name: str | ApiSpec) -> ApiSpec:
    """The API called ``name`` (``"chat"`` or ``"responses"``)."""
    if isinstance(name, ApiSpec):
        return name
    try:
        return APIS[name]
    except (KeyError, TypeError):
        known = " or ".join(repr(n) for n in APIS)
        raise ValueError(f"api must be {known}, not {name!r}.") from None
