"""What the fake server answers: scripted replies and faults.

A `Reply` describes what the model said (content or refusal, tool calls, how it finished,
usage, how the stream is cut into deltas); it is endpoint-neutral, so the same reply works for
Chat Completions and Responses, streaming or not. `Choices` holds several replies answering
one request (Chat Completions' `n`). A `Fault` describes what goes wrong around or instead of
a reply (HTTP error, delay, disconnect, malformed SSE, in-stream error).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from typing_extensions import Unpack

__all__ = [
    "Choices",
    "Fault",
    "FinishReason",
    "MalformedKind",
    "Reply",
    "ReplyOptions",
    "ScriptItem",
    "ToolCallReply",
    "Usage",
    "item_from_dict",
    "reply_from_dict",
]

FinishReason = Literal["stop", "length", "content_filter", "tool_calls"]
MalformedKind = Literal["garbage", "invalid_json", "truncated"]

DEFAULT_CHUNK_SIZE = 4


@dataclass(frozen=True)
class Usage:
    """Token figures reported with a reply (both APIs' usage objects are built from these)."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion, as the API reports it."""
        return self.prompt_tokens + self.completion_tokens


class _OptionsWithoutId(TypedDict, total=False):
    """`ReplyOptions` but `id` (`Reply.tool_call`'s `id` is the call's: set the response's
    with `with_options(id=...)`)."""

    usage: Usage | None
    model: str | None
    chunk_size: int
    chunks: Sequence[str] | None


class ReplyOptions(_OptionsWithoutId, total=False):
    """Options every `Reply` builder accepts."""

    id: str | None


@dataclass(frozen=True)
class ToolCallReply:
    """One function call the model makes (Chat `tool_calls[i]`, a Responses `function_call`).

    `arguments` is the arguments JSON text when it is a `str`, sent exactly as given (it may be
    invalid or truncated on purpose); any other value is serialised as compact JSON. `id` None
    lets the server number calls (`call_1`, `call_2`, ...: unique per server).
    """

    name: str
    arguments: Any
    id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a tool call needs a non-empty name, got {self.name!r}")
        if self.id is not None and not isinstance(self.id, str):
            raise TypeError(f"a tool call id must be a str or None, got {self.id!r}")

    @property
    def arguments_text(self) -> str:
        """The arguments exactly as sent: the string itself, else compact JSON."""
        if isinstance(self.arguments, str):
            return self.arguments
        return _dumps(self.arguments, None)


class _DefaultContent(str):
    """The type of `Reply.content`'s default: "" normally, None for a reply with tool calls."""

    __slots__ = ()


_DEFAULT_CONTENT = _DefaultContent("")


@dataclass(frozen=True)
class Reply:
    """One model answer, rendered for whichever endpoint and mode the request asked for.

    `content` is the assistant text (any string: JSON, not JSON, several values, empty) or
    None; `refusal_text` makes it a refusal. `tool_calls` are function calls made after the
    text (content defaults to None, no text, when there are any). `finish_reason` "length" is
    a cut-off (Responses: status incomplete, reason max_output_tokens), "content_filter" a
    filtered answer; "stop" (or "tool_calls") with tool calls is Chat's "tool_calls".
    Streams split the text into `chunk_size`-character deltas, or exactly into `chunks`
    (`chunks` covers the text only: tool call arguments always go in `chunk_size` pieces);
    `interleave_tool_calls` streams the calls' arguments round-robin instead of one call
    after the other. `usage` None means: estimate from the request and reply sizes. `model`
    None echoes the request's model; `id` None lets the server number responses.
    """

    content: str | None = _DEFAULT_CONTENT
    refusal_text: str | None = None
    finish_reason: FinishReason = "stop"
    usage: Usage | None = None
    model: str | None = None
    id: str | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    chunks: Sequence[str] | None = None
    tool_calls: tuple[ToolCallReply, ...] = ()
    interleave_tool_calls: bool = False

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        calls = tuple(self.tool_calls)
        for call in calls:
            if not isinstance(call, ToolCallReply):
                raise TypeError(f"tool_calls holds ToolCallReply items, got {type(call).__name__}")
        object.__setattr__(self, "tool_calls", calls)
        if type(self.content) is _DefaultContent:
            object.__setattr__(self, "content", None if calls else "")
        if self.chunks is not None:
            chunks = tuple(self.chunks)
            object.__setattr__(self, "chunks", chunks)
            if "".join(chunks) != self.streamed_text:
                raise ValueError("chunks must join to exactly the reply's content (or refusal)")

    # -- builders -------------------------------------------------------------------------

    @classmethod
    def text(cls, content: str, **options: Unpack[ReplyOptions]) -> Reply:
        """A normal answer whose content is exactly `content` (need not be JSON)."""
        return cls(content=content, **options)

    @classmethod
    def json(
        cls, value: Any, *, indent: int | None = None, **options: Unpack[ReplyOptions]
    ) -> Reply:
        """A normal answer whose content is `value` serialised as JSON (compact by default)."""
        return cls(content=_dumps(value, indent), **options)

    @classmethod
    def json_values(
        cls, *values: Any, separator: str = "\n", **options: Unpack[ReplyOptions]
    ) -> Reply:
        """An answer holding several top-level JSON values in a row, joined by `separator`."""
        return cls(content=separator.join(_dumps(v, None) for v in values), **options)

    @classmethod
    def empty(cls, **options: Unpack[ReplyOptions]) -> Reply:
        """An answer with empty content ("")."""
        return cls(content="", **options)

    @classmethod
    def refusal(
        cls, text: str = "I'm sorry, I can't help with that.", **options: Unpack[ReplyOptions]
    ) -> Reply:
        """The model refused: `message.refusal` (Chat) or a `refusal` content part (Responses)."""
        return cls(content=None, refusal_text=text, **options)

    @classmethod
    def length(cls, partial: str, **options: Unpack[ReplyOptions]) -> Reply:
        """Cut off at the token limit after `partial` (Chat: finish_reason "length";
        Responses: status incomplete, reason max_output_tokens)."""
        return cls(content=partial, finish_reason="length", **options)

    @classmethod
    def content_filter(cls, partial: str | None = None, **options: Unpack[ReplyOptions]) -> Reply:
        """Stopped by the content filter, after `partial` text if given (else no content)."""
        return cls(content=partial, finish_reason="content_filter", **options)

    @classmethod
    def tools(
        cls,
        *calls: ToolCallReply,
        content: str | None = None,
        interleave: bool = False,
        finish_reason: FinishReason = "stop",
        **options: Unpack[ReplyOptions],
    ) -> Reply:
        """The model calls these tools (in parallel when several), after `content` if given.

        `interleave=True` streams the calls' arguments round-robin, so a client must put them
        back together by index. `finish_reason="length"` is a cut-off (pass the truncated
        argument text as a string).
        """
        if not calls:
            raise ValueError("Reply.tools needs at least one ToolCallReply")
        return cls(
            content=content,
            finish_reason=finish_reason,
            tool_calls=calls,
            interleave_tool_calls=interleave,
            **options,
        )

    @classmethod
    def tool_call(
        cls,
        name: str,
        arguments: Any,
        *,
        id: str | None = None,
        finish_reason: FinishReason = "stop",
        **options: Unpack[_OptionsWithoutId],
    ) -> Reply:
        """The model calls one tool: `arguments` is raw JSON text (str) or a value to serialise.

        `id` is the call's id (None: numbered by the server); to set the response id, use
        `.with_options(id=...)`.
        """
        call = ToolCallReply(name, arguments, id)
        return cls.tools(call, finish_reason=finish_reason, **options)

    @staticmethod
    def choices(*replies: Reply) -> Choices:
        """Several answers to one request (Chat Completions' `n`), choice i being `replies[i]`."""
        return Choices(replies)

    # -- modifiers ------------------------------------------------------------------------

    def with_options(self, **options: Unpack[ReplyOptions]) -> Reply:
        """A copy with some options changed (usage, model, id, chunk_size, chunks)."""
        return dataclasses.replace(self, **options)

    def with_usage(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        *,
        cached_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> Reply:
        """A copy reporting these token figures."""
        usage = Usage(prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens)
        return dataclasses.replace(self, usage=usage)

    # -- derived --------------------------------------------------------------------------

    @property
    def is_refusal(self) -> bool:
        """True when this reply is a refusal rather than content."""
        return self.refusal_text is not None

    @property
    def streamed_text(self) -> str:
        """The text a stream delivers in deltas: the refusal, else the content."""
        if self.refusal_text is not None:
            return self.refusal_text
        return self.content or ""

    def pieces(self) -> Sequence[str]:
        """The text deltas a stream sends, in order (tool call arguments: `argument_pieces`)."""
        if self.chunks is not None:
            return [c for c in self.chunks if c]
        return _split(self.streamed_text, self.chunk_size)

    @property
    def chat_finish_reason(self) -> str:
        """The Chat `finish_reason`: "tool_calls" for a finished reply with tool calls."""
        if self.finish_reason == "stop" and self.tool_calls:
            return "tool_calls"
        return self.finish_reason

    def argument_pieces(self, index: int) -> list[str]:
        """The argument deltas a stream sends for tool call `index` (`chunk_size` characters)."""
        return _split(self.tool_calls[index].arguments_text, self.chunk_size)

    @property
    def output_text_size(self) -> int:
        """Characters the model produced: text plus every call's arguments (for usage)."""
        return len(self.streamed_text) + sum(len(c.arguments_text) for c in self.tool_calls)


def _split(text: str, n: int) -> list[str]:
    return [text[i : i + n] for i in range(0, len(text), n)]


@dataclass(frozen=True)
class Choices:
    """Several answers to one Chat Completions request (`n`): choice i is `replies[i]`.

    Each choice is rendered like a lone reply (content, refusal, tool calls, finish reason);
    the completion's id and model come from the first reply, its usage sums the choices'
    completion tokens (prompt tokens counted once, from the first). The Responses API has no
    `n`: a Responses request that gets `Choices` is answered HTTP 400.
    """

    replies: Sequence[Reply]

    def __post_init__(self) -> None:
        replies = tuple(self.replies)
        if not replies:
            raise ValueError("Choices needs at least one Reply")
        for reply in replies:
            if not isinstance(reply, Reply):
                raise TypeError(f"Choices holds Reply items, got {type(reply).__name__}")
        object.__setattr__(self, "replies", replies)


def _dumps(value: Any, indent: int | None) -> str:
    if indent is None:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(value, ensure_ascii=False, indent=indent)


@dataclass(frozen=True)
class Fault:
    """Something going wrong, scripted for one request like a reply.

    Build with the class methods. Fields compose: a fault can delay, then send an HTTP
    error; or delay, then stream `reply` (the server's default reply, or a small JSON
    answer, when None) with pauses between events, injected garbage, an in-stream error,
    or an abrupt disconnect.
    """

    http_status: int | None = None
    message: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    retry_after: float | str | None = None
    headers: Mapping[str, str] | None = None
    delay_before: float = 0.0
    delay_between: float = 0.0
    disconnect_after_events: int | None = None
    disconnect_after_deltas: int | None = None
    disconnect_after_bytes: int | None = None
    reset: bool = False
    malformed: MalformedKind | None = None
    inject_after_deltas: int = 1
    stream_error_message: str | None = None
    reply: Reply | None = None

    # -- HTTP errors ----------------------------------------------------------------------

    @classmethod
    def status(
        cls,
        status: int,
        *,
        message: str | None = None,
        error_type: str | None = None,
        error_code: str | None = None,
        retry_after: float | str | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> Fault:
        """Answer with HTTP `status` and an OpenAI-shaped error body (and `Retry-After`)."""
        if not 400 <= status <= 599:
            raise ValueError(f"an error status must be 4xx or 5xx, got {status}")
        return cls(
            http_status=status,
            message=message,
            error_type=error_type,
            error_code=error_code,
            retry_after=retry_after,
            headers=headers,
            delay_before=delay,
        )

    @classmethod
    def rate_limit(
        cls, retry_after: float | str | None = 1, *, message: str | None = None
    ) -> Fault:
        """HTTP 429 with `Retry-After` (the SDK raises `openai.RateLimitError`)."""
        return cls.status(429, retry_after=retry_after, message=message)

    # -- timing and transport -------------------------------------------------------------

    @classmethod
    def delay(
        cls, seconds: float = 0.0, *, between_events: float = 0.0, reply: Reply | None = None
    ) -> Fault:
        """Wait `seconds` before answering, and `between_events` between SSE events."""
        return cls(delay_before=seconds, delay_between=between_events, reply=reply)

    @classmethod
    def disconnect(
        cls,
        *,
        after_events: int | None = None,
        after_deltas: int | None = None,
        after_bytes: int | None = None,
        reset: bool = False,
        reply: Reply | None = None,
    ) -> Fault:
        """Close the connection abruptly part-way.

        Streams: after `after_events` SSE events (all kinds counted), or after `after_deltas`
        deltas (text or tool call arguments), or after `after_bytes` bytes of the SSE body
        (which may cut an event in half). Non-streaming requests: after `after_bytes` bytes of
        the JSON body, or before any response at all when no count is given. `reset=True` sends
        a TCP RST instead of a clean FIN.
        """
        given = [x for x in (after_events, after_deltas, after_bytes) if x is not None]
        if len(given) > 1:
            raise ValueError("give at most one of after_events, after_deltas, after_bytes")
        if any(x < 0 for x in given):
            raise ValueError("disconnect counts must be >= 0")
        return cls(
            disconnect_after_events=after_events,
            disconnect_after_deltas=after_deltas,
            # No count at all: cut before anything is sent.
            disconnect_after_bytes=after_bytes if given else 0,
            reset=reset,
            reply=reply,
        )

    @classmethod
    def malformed_sse(
        cls, kind: MalformedKind = "garbage", *, after_deltas: int = 1, reply: Reply | None = None
    ) -> Fault:
        """Corrupt a stream after `after_deltas` deltas (text or tool call arguments).

        "garbage": a line that is not SSE (decoders ignore it; the stream goes on).
        "invalid_json": an event whose data is not JSON (the stream goes on after it).
        "truncated": half of the next event, then the body ends (no finish, no [DONE]).
        """
        return cls(malformed=kind, inject_after_deltas=after_deltas, reply=reply)

    @classmethod
    def stream_error(
        cls,
        message: str = "The server had an error while processing your request.",
        *,
        after_deltas: int = 1,
        error_code: str = "server_error",
        reply: Reply | None = None,
    ) -> Fault:
        """Report an API error inside a stream after `after_deltas` deltas, then end it.

        Chat: a `data: {"error": {...}}` event (the SDK raises `openai.APIError`).
        Responses: a `response.failed` event with `response.error`. Non-streaming requests
        get HTTP 500 with the same message.
        """
        return cls(
            stream_error_message=message,
            error_code=error_code,
            inject_after_deltas=after_deltas,
            reply=reply,
        )

    # -- content-level faults (plain replies, named here for discoverability) -------------

    @staticmethod
    def invalid_json(
        text: str = '{"name": "Ada", "age": ', **options: Unpack[ReplyOptions]
    ) -> Reply:
        """A normal-looking answer whose content is not valid JSON."""
        return Reply.text(text, **options)

    @staticmethod
    def refusal(
        text: str = "I'm sorry, I can't help with that.", **options: Unpack[ReplyOptions]
    ) -> Reply:
        """Same as `Reply.refusal`."""
        return Reply.refusal(text, **options)

    @staticmethod
    def length(partial: str, **options: Unpack[ReplyOptions]) -> Reply:
        """Same as `Reply.length`."""
        return Reply.length(partial, **options)

    @staticmethod
    def content_filter(partial: str | None = None, **options: Unpack[ReplyOptions]) -> Reply:
        """Same as `Reply.content_filter`."""
        return Reply.content_filter(partial, **options)

    # -- derived --------------------------------------------------------------------------

    @property
    def is_http_error(self) -> bool:
        """True when this fault answers with an HTTP error status instead of a reply."""
        return self.http_status is not None


ScriptItem = Reply | Fault | Choices


# -- JSON script form (for the command line and the control endpoints) ---------------------

_REPLY_KEYS = {
    "usage",
    "model",
    "id",
    "chunk_size",
    "chunks",
    "finish_reason",
    "interleave_tool_calls",
}


def _tool_call_from_dict(data: Any) -> ToolCallReply:
    if not isinstance(data, Mapping):
        raise TypeError(f"a tool call is an object with name/arguments/id, got {data!r}")
    unknown = set(data) - {"name", "arguments", "id"}
    if unknown:
        raise ValueError(f"unknown tool call keys {sorted(unknown)}")
    return ToolCallReply(data["name"], data.get("arguments", {}), data.get("id"))


def reply_from_dict(data: Mapping[str, Any]) -> Reply:
    """Build a Reply from its JSON form, e.g. {"json": {...}, "chunk_size": 4}.

    Tool calls: {"tool_calls": [{"name": "f", "arguments": {...} or "raw text", "id": ...}],
    "interleave_tool_calls": true}, with or without text.
    """
    opts: dict[str, Any] = {k: data[k] for k in _REPLY_KEYS if k in data}
    if isinstance(opts.get("usage"), Mapping):
        opts["usage"] = Usage(**opts["usage"])
    if "tool_calls" in data:
        calls = data["tool_calls"]
        if not isinstance(calls, list):
            raise TypeError("tool_calls is a list of tool calls")
        opts["tool_calls"] = tuple(_tool_call_from_dict(c) for c in calls)
    kinds = [k for k in ("json", "text", "content", "refusal", "file") if k in data]
    if len(kinds) > 1:
        raise ValueError(f"a reply has one of json/text/content/refusal/file, got {kinds}")
    if not kinds:
        return Reply(**opts)  # content "" (None when there are tool calls)
    kind = kinds[0]
    if kind == "json":
        return Reply(content=_dumps(data["json"], data.get("indent")), **opts)
    if kind == "refusal":
        return Reply(content=None, refusal_text=str(data["refusal"]), **opts)
    if kind == "file":
        with open(data["file"], encoding="utf-8") as f:
            return Reply(content=f.read(), **opts)
    content = data[kind]
    return Reply(content=None if content is None else str(content), **opts)


def item_from_dict(data: Mapping[str, Any]) -> ScriptItem:
    """Build a Reply, a Fault (the dict has a "fault" key) or Choices ("choices") from JSON.

    Faults: {"fault": "status", "status": 429, "retry_after": 1},
    {"fault": "disconnect", "after_deltas": 3}, {"fault": "delay", "seconds": 1},
    {"fault": "malformed_sse", "kind": "invalid_json"}, {"fault": "stream_error"};
    any of them may carry "reply": {...}. Choices: {"choices": [REPLY, REPLY, ...]}.
    """
    if "choices" in data and "fault" not in data:
        replies = data["choices"]
        if not isinstance(replies, list):
            raise TypeError("choices is a list of replies")
        return Choices(tuple(reply_from_dict(r) for r in replies))
    if "fault" not in data:
        return reply_from_dict(data)
    params = {k: v for k, v in data.items() if k != "fault"}
    if isinstance(params.get("reply"), Mapping):
        params["reply"] = reply_from_dict(params["reply"])
    builders: dict[str, Any] = {
        "status": Fault.status,
        "rate_limit": Fault.rate_limit,
        "delay": Fault.delay,
        "disconnect": Fault.disconnect,
        "malformed_sse": Fault.malformed_sse,
        "stream_error": Fault.stream_error,
    }
    name = data["fault"]
    if name not in builders:
        raise ValueError(f"unknown fault {name!r}; known: {sorted(builders)}")
    item: ScriptItem = builders[name](**params)
    return item
