"""Turn a `Reply` into protocol-accurate Chat Completions and Responses payloads (pure).

Field names and shapes follow the openai SDK's types (`ChatCompletion`,
`ChatCompletionChunk`, `Response`, the `Response*Event` classes), so the real SDK parses them
even with strict response validation. Delta events are built from pre-serialised prefixes
and suffixes around the JSON-encoded piece: a 293 KB answer in 4-character deltas is 73,000
events and must not cost a `json.dumps` of a whole dict each.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _enc
from typing import Any, Literal, TypeVar

from ._script import Choices, Reply, ToolCallReply, Usage
from ._sse import DONE, sse_event, sse_json

__all__ = [
    "MODELS",
    "RenderContext",
    "RenderedStream",
    "chat_completion",
    "chat_stream",
    "chat_stream_error",
    "error_body",
    "models_list",
    "response_object",
    "responses_stream",
    "responses_stream_error",
]

Endpoint = Literal["chat", "responses"]
T = TypeVar("T")

MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini", "fake-model")

_DEFAULT_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to access this resource."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    409: ("invalid_request_error", None, "Conflict."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
}


def error_body(
    status: int,
    message: str | None = None,
    error_type: str | None = None,
    error_code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    """The `{"error": {...}}` body OpenAI sends with an error status."""
    default_type, default_code, default_message = _DEFAULT_ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error.")
    )
    return {
        "error": {
            "message": message if message is not None else default_message,
            "type": error_type if error_type is not None else default_type,
            "param": param,
            "code": error_code if error_code is not None else default_code,
        }
    }


def models_list(created: int) -> dict[str, Any]:
    """The `GET /v1/models` page."""
    return {"object": "list", "data": [model_object(m, created) for m in MODELS]}


def model_object(name: str, created: int) -> dict[str, Any]:
    """One `Model` object."""
    return {"id": name, "object": "model", "created": created, "owned_by": "openai-structured"}


@dataclass(frozen=True)
class RenderContext:
    """What the payload depends on besides the reply: the request and the server's ids.

    `tool_item_ids` are the Responses `function_call` item ids, one per tool call of the reply
    (the server numbers them; `fc_1`, `fc_2`, ... by position when empty).
    """

    request: Mapping[str, Any]
    request_size: int
    response_id: str
    item_id: str
    created: int
    tool_item_ids: tuple[str, ...] = ()

    @property
    def include_usage(self) -> bool:
        """Chat streams send a final usage chunk only when the request asked for one."""
        opts = self.request.get("stream_options")
        return isinstance(opts, Mapping) and opts.get("include_usage") is True

    def tool_item_id(self, index: int) -> str:
        """The Responses item id of tool call `index`."""
        if index < len(self.tool_item_ids):
            return self.tool_item_ids[index]
        return f"fc_{index + 1}"


@dataclass(frozen=True)
class RenderedStream:
    """A stream's SSE events, and where the deltas sit among them.

    A delta is an event carrying a piece of the text (content or refusal) or of a tool call's
    arguments. `runs` lists the (start, count) of each block of consecutive delta events, in
    order; when empty, the deltas are the `n_deltas` events from `first_delta` on.
    `first_delta` is where the first delta is (or would be, when there is none).
    """

    events: list[bytes]
    first_delta: int
    n_deltas: int
    runs: tuple[tuple[int, int], ...] = ()

    def index_after_deltas(self, n: int) -> int:
        """Index of the first event after `n` deltas (clamped to the deltas)."""
        k = max(0, min(n, self.n_deltas))
        if k == 0 or not self.runs:
            return self.first_delta + k
        for start, count in self.runs:
            if k <= count:
                return start + k
            k -= count
        return len(self.events)  # pragma: no cover - n_deltas is the runs' total


class _Events:
    """Events being built, with the runs of delta events among them."""

    def __init__(self) -> None:
        self.events: list[bytes] = []
        self.runs: list[tuple[int, int]] = []

    def add(self, event: bytes) -> None:
        self.events.append(event)

    def add_deltas(self, deltas: Iterable[bytes]) -> None:
        start = len(self.events)
        self.events.extend(deltas)
        count = len(self.events) - start
        if not count:
            return
        if self.runs and sum(self.runs[-1]) == start:
            start, count = self.runs[-1][0], self.runs[-1][1] + count
            self.runs.pop()
        self.runs.append((start, count))

    def is_delta(self) -> list[bool]:
        flags = [False] * len(self.events)
        for start, count in self.runs:
            flags[start : start + count] = [True] * count
        return flags

    def rendered(self, no_delta_at: int) -> RenderedStream:
        n = sum(count for _, count in self.runs)
        first = self.runs[0][0] if self.runs else no_delta_at
        return RenderedStream(self.events, first, n, tuple(self.runs))


def _round_robin(groups: Sequence[Sequence[T]]) -> list[T]:
    """Item 0 of each group, then item 1 of each, ... (groups may differ in length)."""
    out: list[T] = []
    for i in range(max((len(g) for g in groups), default=0)):
        out.extend(g[i] for g in groups if i < len(g))
    return out


def _replies(item: Reply | Choices) -> tuple[Reply, ...]:
    return tuple(item.replies) if isinstance(item, Choices) else (item,)


def _model(ctx: RenderContext, item: Reply | Choices) -> str:
    reply = _replies(item)[0]
    if reply.model is not None:
        return reply.model
    model = ctx.request.get("model")
    return model if isinstance(model, str) else "fake-model"


def _usage(ctx: RenderContext, reply: Reply) -> Usage:
    if reply.usage is not None:
        return reply.usage
    # A rough, deterministic estimate (about 4 characters per token), arguments included.
    return Usage(max(1, ctx.request_size // 4), (reply.output_text_size + 3) // 4)


def _total_usage(ctx: RenderContext, item: Reply | Choices) -> Usage:
    """One reply's usage; for several choices, prompt once (the first's), completions summed."""
    usages = [_usage(ctx, r) for r in _replies(item)]
    if len(usages) == 1:
        return usages[0]
    first = usages[0]
    return Usage(
        first.prompt_tokens,
        sum(u.completion_tokens for u in usages),
        first.cached_tokens,
        sum(u.reasoning_tokens for u in usages),
    )


def _chat_usage(u: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": u.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _responses_usage(u: Usage) -> dict[str, Any]:
    return {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total_tokens,
    }


def _call_id(call: ToolCallReply, index: int) -> str:
    # The server gives every call an id before rendering; this covers direct render calls.
    return call.id if call.id is not None else f"call_{index + 1}"


def _compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


# -- Chat Completions ----------------------------------------------------------------------


def _chat_message(reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.content if not reply.is_refusal else None,
        "refusal": reply.refusal_text,
        "annotations": [],
    }
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": _call_id(call, i),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_text},
            }
            for i, call in enumerate(reply.tool_calls)
        ]
    return message


def chat_completion(ctx: RenderContext, item: Reply | Choices) -> dict[str, Any]:
    """A non-streaming `chat.completion` object (one choice per reply of `Choices`)."""
    return {
        "id": ctx.response_id,
        "object": "chat.completion",
        "created": ctx.created,
        "model": _model(ctx, item),
        "system_fingerprint": "fp_fake",
        "service_tier": "default",
        "choices": [
            {
                "index": i,
                "message": _chat_message(reply),
                "logprobs": None,
                "finish_reason": reply.chat_finish_reason,
            }
            for i, reply in enumerate(_replies(item))
        ],
        "usage": _chat_usage(_total_usage(ctx, item)),
    }


def _chat_chunk_head(ctx: RenderContext, item: Reply | Choices) -> str:
    head = {
        "id": ctx.response_id,
        "object": "chat.completion.chunk",
        "created": ctx.created,
        "model": _model(ctx, item),
        "system_fingerprint": "fp_fake",
        "service_tier": "default",
    }
    if ctx.include_usage:
        head["usage"] = None
    # Everything up to (not including) the closing brace, so choices can be appended.
    return _compact(head)[:-1]


def chat_stream(ctx: RenderContext, item: Reply | Choices) -> RenderedStream:
    """`chat.completion.chunk` events: role, deltas, finish, optional usage, `[DONE]`.

    Tool calls follow the text: for each call a chunk with its index, id, name and empty
    arguments, then its argument deltas (with `interleave_tool_calls`, every call's opening
    chunk first, then the argument deltas round-robin). With `Choices`, the choices' chunks
    (each carrying its `index`) are interleaved round-robin, each choice with its own finish.
    """
    head = _chat_chunk_head(ctx, item)
    replies = _replies(item)
    parts = [_chat_choice_events(head, i, reply) for i, reply in enumerate(replies)]
    if len(parts) == 1:
        out = parts[0]
    else:
        out = _Events()
        merged = _round_robin([list(zip(p.events, p.is_delta(), strict=True)) for p in parts])
        for event, is_delta in merged:
            if is_delta:
                out.add_deltas((event,))
            else:
                out.add(event)
    if ctx.include_usage:
        usage = _compact(_chat_usage(_total_usage(ctx, item)))
        body = head.replace(',"usage":null', "") + f',"choices":[],"usage":{usage}}}'
        out.add(sse_event(body))
    out.add(DONE)
    return out.rendered(no_delta_at=len(replies))


def _chat_choice_events(head: str, index: int, reply: Reply) -> _Events:
    out = _Events()
    field = "refusal" if reply.is_refusal else "content"
    first: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
    if reply.is_refusal:
        first = {"role": "assistant", "content": None, "refusal": ""}
    elif reply.content is None:
        first = {"role": "assistant", "content": None, "refusal": None}
    out.add(_chat_choice_event(head, index, first, None))
    prefix = f'data: {head},"choices":[{{"index":{index},"delta":{{"{field}":'
    suffix = '},"logprobs":null,"finish_reason":null}]}\n\n'
    out.add_deltas((prefix + _enc(p) + suffix).encode() for p in reply.pieces())
    opening: list[bytes] = []
    arguments: list[list[bytes]] = []
    for i, call in enumerate(reply.tool_calls):
        call_delta = {
            "index": i,
            "id": _call_id(call, i),
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        opening.append(_chat_choice_event(head, index, {"tool_calls": [call_delta]}, None))
        prefix = (
            f'data: {head},"choices":[{{"index":{index},"delta":{{"tool_calls":'
            f'[{{"index":{i},"function":{{"arguments":'
        )
        suffix = '}}]},"logprobs":null,"finish_reason":null}]}\n\n'
        arguments.append([(prefix + _enc(p) + suffix).encode() for p in reply.argument_pieces(i)])
    if reply.interleave_tool_calls:
        for event in opening:
            out.add(event)
        out.add_deltas(_round_robin(arguments))
    else:
        for event, deltas in zip(opening, arguments, strict=True):
            out.add(event)
            out.add_deltas(deltas)
    out.add(_chat_choice_event(head, index, {}, reply.chat_finish_reason))
    return out


def _chat_choice_event(head: str, index: int, delta: dict[str, Any], finish: str | None) -> bytes:
    choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
    return sse_event(head + ',"choices":[' + _compact(choice) + "]}")


def chat_stream_error(message: str, error_code: str | None) -> bytes:
    """An in-stream error event, as OpenAI sends when a stream fails after it started."""
    body = error_body(500, message, "server_error", error_code)
    return sse_json(body)


# -- Responses -------------------------------------------------------------------------------


def _status(reply: Reply) -> tuple[str, dict[str, Any] | None]:
    if reply.finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if reply.finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def _part(reply: Reply, text: str) -> dict[str, Any]:
    if reply.is_refusal:
        return {"type": "refusal", "refusal": text}
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _has_message(reply: Reply) -> bool:
    """A reply with tool calls has a message item only when it has text (or a refusal)."""
    return reply.is_refusal or reply.content is not None or not reply.tool_calls


def _message(ctx: RenderContext, reply: Reply, status: str) -> dict[str, Any]:
    has_part = reply.is_refusal or reply.content is not None
    return {
        "id": ctx.item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [_part(reply, reply.streamed_text)] if has_part else [],
    }


def _function_call(
    ctx: RenderContext, reply: Reply, index: int, status: str, arguments: str | None = None
) -> dict[str, Any]:
    call = reply.tool_calls[index]
    return {
        "type": "function_call",
        "id": ctx.tool_item_id(index),
        "call_id": _call_id(call, index),
        "name": call.name,
        "arguments": call.arguments_text if arguments is None else arguments,
        "status": status,
    }


def _output(ctx: RenderContext, reply: Reply, final_status: str) -> list[dict[str, Any]]:
    """The finished output items; an incomplete response's last item is incomplete."""
    items = [_message(ctx, reply, "completed")] if _has_message(reply) else []
    items.extend(_function_call(ctx, reply, i, "completed") for i in range(len(reply.tool_calls)))
    if final_status != "completed" and items:
        items[-1]["status"] = "incomplete"
    return items


def response_object(
    ctx: RenderContext,
    reply: Reply,
    *,
    status: str | None = None,
    output: list[dict[str, Any]] | None = None,
    with_usage: bool = True,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A `response` object; by default the finished one for `reply`."""
    final_status, incomplete = _status(reply)
    if status is None:
        status = final_status
        if output is None:
            output = _output(ctx, reply, final_status)
    else:
        incomplete = None
    req = ctx.request

    def echo(key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        value = req.get(key)
        return value if isinstance(value, kind) and not isinstance(value, bool) else default

    text = req.get("text")
    return {
        "id": ctx.response_id,
        "object": "response",
        "created_at": ctx.created,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": incomplete,
        "instructions": echo("instructions", str, None),
        "max_output_tokens": echo("max_output_tokens", int, None),
        "model": _model(ctx, reply),
        "output": output or [],
        "parallel_tool_calls": req.get("parallel_tool_calls") is not False,
        "previous_response_id": echo("previous_response_id", str, None),
        "service_tier": "default",
        "temperature": echo("temperature", (int, float), 1.0),
        "text": text if isinstance(text, Mapping) else {"format": {"type": "text"}},
        "tool_choice": echo("tool_choice", (str, Mapping), "auto"),
        "tools": echo("tools", list, []),
        "top_p": echo("top_p", (int, float), 1.0),
        "truncation": "disabled",
        "usage": _responses_usage(_usage(ctx, reply)) if with_usage else None,
        "user": None,
        "metadata": req.get("metadata") if isinstance(req.get("metadata"), Mapping) else {},
    }


def responses_stream(ctx: RenderContext, reply: Reply) -> RenderedStream:
    """The Responses event sequence, each event with its `sequence_number`.

    The message item's events (when it has one), then for each tool call
    `response.output_item.added`, its `response.function_call_arguments.delta` events,
    `response.function_call_arguments.done` and `response.output_item.done` (with
    `interleave_tool_calls`: every call's `added`, the deltas round-robin, then the dones).
    """
    out = _Events()
    events = out.events

    def add(kind: str, payload: dict[str, Any]) -> None:
        payload = {"type": kind, "sequence_number": len(events), **payload}
        out.add(sse_json(payload, kind))

    in_progress = response_object(ctx, reply, status="in_progress", with_usage=False)
    add("response.created", {"response": in_progress})
    add("response.in_progress", {"response": in_progress})
    final = response_object(ctx, reply)
    final_items: list[dict[str, Any]] = final["output"]
    base = 0
    no_delta_at = len(events) + 1  # after the first call's output_item.added
    if _has_message(reply):
        base = 1
        no_delta_at = _message_events(ctx, reply, out, add, final_items[0])
    calls = range(len(reply.tool_calls))

    def add_arguments(groups: list[list[str]]) -> None:
        seq = len(events)
        merged = _round_robin(groups)
        out.add_deltas((prefix + str(seq + n) + rest).encode() for n, rest in enumerate(merged))

    prefix = _ARGUMENTS_DELTA_PREFIX
    if reply.interleave_tool_calls:
        for i in calls:
            _call_added(ctx, reply, i, base + i, add)
        add_arguments([_argument_deltas(ctx, reply, i, base + i) for i in calls])
        for i in calls:
            _call_done(ctx, reply, i, base + i, add, final_items[base + i])
    else:
        for i in calls:
            _call_added(ctx, reply, i, base + i, add)
            add_arguments([_argument_deltas(ctx, reply, i, base + i)])
            _call_done(ctx, reply, i, base + i, add, final_items[base + i])
    kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
    add(kind, {"response": final})
    return out.rendered(no_delta_at)


def _message_events(
    ctx: RenderContext,
    reply: Reply,
    out: _Events,
    add: Callable[[str, dict[str, Any]], None],
    final_item: dict[str, Any],
) -> int:
    """Add the message item's events; return where its first text delta is (or would be)."""
    loc = {"output_index": 0, "item_id": ctx.item_id}
    item = _message(ctx, reply, "in_progress")
    item["content"] = []
    add("response.output_item.added", {"output_index": 0, "item": item})
    at = len(out.events)
    if reply.is_refusal or reply.content is not None:
        add("response.content_part.added", {**loc, "content_index": 0, "part": _part(reply, "")})
        at = len(out.events)
        kind = "response.refusal.delta" if reply.is_refusal else "response.output_text.delta"
        logprobs = "" if reply.is_refusal else ',"logprobs":[]'
        prefix = f'event: {kind}\ndata: {{"type":"{kind}","sequence_number":'
        middle = f',"item_id":{_enc(ctx.item_id)},"output_index":0,"content_index":0,"delta":'
        suffix = logprobs + "}\n\n"
        seq = len(out.events)
        out.add_deltas(
            (prefix + str(seq + i) + middle + _enc(p) + suffix).encode()
            for i, p in enumerate(reply.pieces())
        )
        full = reply.streamed_text
        if reply.is_refusal:
            add("response.refusal.done", {**loc, "content_index": 0, "refusal": full})
        else:
            done = {**loc, "content_index": 0, "text": full, "logprobs": []}
            add("response.output_text.done", done)
        add("response.content_part.done", {**loc, "content_index": 0, "part": _part(reply, full)})
    add("response.output_item.done", {"output_index": 0, "item": final_item})
    return at


def _call_added(
    ctx: RenderContext,
    reply: Reply,
    index: int,
    output_index: int,
    add: Callable[[str, dict[str, Any]], None],
) -> None:
    item = _function_call(ctx, reply, index, "in_progress", arguments="")
    add("response.output_item.added", {"output_index": output_index, "item": item})


_ARGUMENTS_DELTA_PREFIX = (
    "event: response.function_call_arguments.delta\n"
    'data: {"type":"response.function_call_arguments.delta","sequence_number":'
)


def _argument_deltas(ctx: RenderContext, reply: Reply, index: int, output_index: int) -> list[str]:
    """Each argument delta event after its sequence number (`_ARGUMENTS_DELTA_PREFIX` before)."""
    middle = f',"item_id":{_enc(ctx.tool_item_id(index))},"output_index":{output_index},"delta":'
    return [middle + _enc(p) + "}\n\n" for p in reply.argument_pieces(index)]


def _call_done(
    ctx: RenderContext,
    reply: Reply,
    index: int,
    output_index: int,
    add: Callable[[str, dict[str, Any]], None],
    final_item: dict[str, Any],
) -> None:
    loc = {"item_id": ctx.tool_item_id(index), "output_index": output_index}
    arguments = reply.tool_calls[index].arguments_text
    add("response.function_call_arguments.done", {**loc, "arguments": arguments})
    add("response.output_item.done", {"output_index": output_index, "item": final_item})


def responses_stream_error(
    ctx: RenderContext, reply: Reply, sequence_number: int, message: str, error_code: str | None
) -> bytes:
    """A `response.failed` event carrying `response.error`."""
    error = {"code": error_code or "server_error", "message": message}
    failed = response_object(ctx, reply, status="failed", error=error)
    kind = "response.failed"
    return sse_json({"type": kind, "sequence_number": sequence_number, "response": failed}, kind)
