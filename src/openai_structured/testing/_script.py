"""What the fake server answers: scripted replies and faults.

A `Reply` describes what the model said (content or refusal, how it finished, usage, how the
stream is cut into deltas); it is endpoint-neutral, so the same reply works for Chat
Completions and Responses, streaming or not. A `Fault` describes what goes wrong around or
instead of a reply (HTTP error, delay, disconnect, malformed SSE, in-stream error).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from typing_extensions import Unpack

__all__ = [
    "Fault",
    "FinishReason",
    "MalformedKind",
    "Reply",
    "ReplyOptions",
    "ScriptItem",
    "Usage",
    "item_from_dict",
]

FinishReason = Literal["stop", "length", "content_filter"]
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


class ReplyOptions(TypedDict, total=False):
    """Options every `Reply` builder accepts."""

    usage: Usage | None
    model: str | None
    id: str | None
    chunk_size: int
    chunks: Sequence[str] | None


@dataclass(frozen=True)
class Reply:
    """One model answer, rendered for whichever endpoint and mode the request asked for.

    `content` is the assistant text (any string: JSON, not JSON, several values, empty) or
    None; `refusal_text` makes it a refusal. `finish_reason` "length" is a cut-off (Responses:
    status incomplete, reason max_output_tokens), "content_filter" a filtered answer.
    Streams split the text into `chunk_size`-character deltas, or exactly into `chunks`.
    `usage` None means: estimate from the request and reply sizes. `model` None echoes the
    request's model; `id` None lets the server number responses.
    """

    content: str | None = ""
    refusal_text: str | None = None
    finish_reason: FinishReason = "stop"
    usage: Usage | None = None
    model: str | None = None
    id: str | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    chunks: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
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
        """The deltas a stream sends, in order."""
        if self.chunks is not None:
            return [c for c in self.chunks if c]
        text = self.streamed_text
        n = self.chunk_size
        return [text[i : i + n] for i in range(0, len(text), n)]


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

        Streams: after `after_events` SSE events (all kinds counted), or after
        `after_deltas` content deltas, or after `after_bytes` bytes of the SSE body (which may
        cut an event in half). Non-streaming requests: after `after_bytes` bytes of the JSON
        body, or before any response at all when no count is given. `reset=True` sends a TCP
        RST instead of a clean FIN.
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
        """Corrupt a stream after `after_deltas` content deltas.

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


ScriptItem = Reply | Fault


# -- JSON script form (for the command line and the control endpoints) ---------------------

_REPLY_KEYS = {"usage", "model", "id", "chunk_size", "chunks", "finish_reason"}


def reply_from_dict(data: Mapping[str, Any]) -> Reply:
    """Build a Reply from its JSON form, e.g. {"json": {...}, "chunk_size": 4}."""
    opts: dict[str, Any] = {k: data[k] for k in _REPLY_KEYS if k in data}
    if isinstance(opts.get("usage"), Mapping):
        opts["usage"] = Usage(**opts["usage"])
    kinds = [k for k in ("json", "text", "content", "refusal", "file") if k in data]
    if len(kinds) > 1:
        raise ValueError(f"a reply has one of json/text/content/refusal/file, got {kinds}")
    kind = kinds[0] if kinds else "content"
    if kind == "json":
        return Reply(content=_dumps(data["json"], data.get("indent")), **opts)
    if kind == "refusal":
        return Reply(content=None, refusal_text=str(data["refusal"]), **opts)
    if kind == "file":
        with open(data["file"], encoding="utf-8") as f:
            return Reply(content=f.read(), **opts)
    content = data.get(kind, "")
    return Reply(content=None if content is None else str(content), **opts)


def item_from_dict(data: Mapping[str, Any]) -> ScriptItem:
    """Build a Reply or, when the dict has a "fault" key, a Fault from its JSON form.

    Faults: {"fault": "status", "status": 429, "retry_after": 1},
    {"fault": "disconnect", "after_deltas": 3}, {"fault": "delay", "seconds": 1},
    {"fault": "malformed_sse", "kind": "invalid_json"}, {"fault": "stream_error"};
    any of them may carry "reply": {...}.
    """
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
