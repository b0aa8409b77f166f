"""Turn a `Reply` into protocol-accurate Chat Completions and Responses payloads (pure).

Field names and shapes follow the openai SDK's types (`ChatCompletion`,
`ChatCompletionChunk`, `Response`, the `Response*Event` classes), so the real SDK parses them
even with strict response validation. Delta events are built from pre-serialised prefixes
and suffixes around the JSON-encoded piece: a 293 KB answer in 4-character deltas is 73,000
events and must not cost a `json.dumps` of a whole dict each.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _enc
from typing import Any, Literal

from ._script import Reply, Usage
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
) -> dict[str, Any]:
    """The `{"error": {...}}` body OpenAI sends with an error status."""
    default_type, default_code, default_message = _DEFAULT_ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error.")
    )
    return {
        "error": {
            "message": message if message is not None else default_message,
            "type": error_type if error_type is not None else default_type,
            "param": None,
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
    """What the payload depends on besides the reply: the request and the server's ids."""

    request: Mapping[str, Any]
    request_size: int
    response_id: str
    item_id: str
    created: int

    @property
    def include_usage(self) -> bool:
        """Chat streams send a final usage chunk only when the request asked for one."""
        opts = self.request.get("stream_options")
        return isinstance(opts, Mapping) and opts.get("include_usage") is True


@dataclass(frozen=True)
class RenderedStream:
    """A stream's SSE events, and where the content deltas sit among them."""

    events: list[bytes]
    first_delta: int
    n_deltas: int

    def index_after_deltas(self, n: int) -> int:
        """Index of the first event after `n` content deltas (clamped to the deltas)."""
        return self.first_delta + max(0, min(n, self.n_deltas))


def _model(ctx: RenderContext, reply: Reply) -> str:
    if reply.model is not None:
        return reply.model
    model = ctx.request.get("model")
    return model if isinstance(model, str) else "fake-model"


def _usage(ctx: RenderContext, reply: Reply) -> Usage:
    if reply.usage is not None:
        return reply.usage
    # A rough, deterministic estimate (about 4 characters per token).
    text = reply.streamed_text
    return Usage(max(1, ctx.request_size // 4), (len(text) + 3) // 4)


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


# -- Chat Completions ----------------------------------------------------------------------


def chat_completion(ctx: RenderContext, reply: Reply) -> dict[str, Any]:
    """A non-streaming `chat.completion` object."""
    return {
        "id": ctx.response_id,
        "object": "chat.completion",
        "created": ctx.created,
        "model": _model(ctx, reply),
        "system_fingerprint": "fp_fake",
        "service_tier": "default",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": reply.content if not reply.is_refusal else None,
                    "refusal": reply.refusal_text,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": _chat_usage(_usage(ctx, reply)),
    }


def _chat_chunk_head(ctx: RenderContext, reply: Reply) -> str:
    head = {
        "id": ctx.response_id,
        "object": "chat.completion.chunk",
        "created": ctx.created,
        "model": _model(ctx, reply),
        "system_fingerprint": "fp_fake",
        "service_tier": "default",
    }
    if ctx.include_usage:
        head["usage"] = None
    # Everything up to (not including) the closing brace, so choices can be appended.
    return json.dumps(head, separators=(",", ":"))[:-1]


def chat_stream(ctx: RenderContext, reply: Reply) -> RenderedStream:
    """`chat.completion.chunk` events: role, deltas, finish, optional usage, `[DONE]`."""
    head = _chat_chunk_head(ctx, reply)
    field = "refusal" if reply.is_refusal else "content"
    first: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
    if reply.is_refusal:
        first = {"role": "assistant", "content": None, "refusal": ""}
    elif reply.content is None:
        first = {"role": "assistant", "content": None, "refusal": None}
    events = [_chat_choice_event(head, first, None)]
    prefix = f'data: {head},"choices":[{{"index":0,"delta":{{"{field}":'
    suffix = '},"logprobs":null,"finish_reason":null}]}\n\n'
    pieces = reply.pieces()
    events.extend((prefix + _enc(p) + suffix).encode() for p in pieces)
    events.append(_chat_choice_event(head, {}, reply.finish_reason))
    if ctx.include_usage:
        usage = json.dumps(_chat_usage(_usage(ctx, reply)), separators=(",", ":"))
        body = head.replace(',"usage":null', "") + f',"choices":[],"usage":{usage}}}'
        events.append(sse_event(body))
    events.append(DONE)
    return RenderedStream(events, 1, len(pieces))


def _chat_choice_event(head: str, delta: dict[str, Any], finish: str | None) -> bytes:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return sse_event(head + ',"choices":[' + json.dumps(choice, separators=(",", ":")) + "]}")


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


def _message(ctx: RenderContext, reply: Reply, status: str) -> dict[str, Any]:
    has_part = reply.is_refusal or reply.content is not None
    return {
        "id": ctx.item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [_part(reply, reply.streamed_text)] if has_part else [],
    }


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
            item_status = "completed" if final_status == "completed" else "incomplete"
            output = [_message(ctx, reply, item_status)]
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
        "tool_choice": "auto",
        "tools": [],
        "top_p": echo("top_p", (int, float), 1.0),
        "truncation": "disabled",
        "usage": _responses_usage(_usage(ctx, reply)) if with_usage else None,
        "user": None,
        "metadata": req.get("metadata") if isinstance(req.get("metadata"), Mapping) else {},
    }


def responses_stream(ctx: RenderContext, reply: Reply) -> RenderedStream:
    """The Responses event sequence, each event with its `sequence_number`."""
    events: list[bytes] = []

    def add(kind: str, payload: dict[str, Any]) -> None:
        payload = {"type": kind, "sequence_number": len(events), **payload}
        events.append(sse_json(payload, kind))

    in_progress = response_object(ctx, reply, status="in_progress", with_usage=False)
    add("response.created", {"response": in_progress})
    add("response.in_progress", {"response": in_progress})
    loc = {"output_index": 0, "item_id": ctx.item_id}
    item = _message(ctx, reply, "in_progress")
    item["content"] = []
    add("response.output_item.added", {"output_index": 0, "item": item})

    pieces = reply.pieces()
    has_part = reply.is_refusal or reply.content is not None
    first_delta = len(events) + (1 if has_part else 0)
    if has_part:
        add("response.content_part.added", {**loc, "content_index": 0, "part": _part(reply, "")})
        kind = "response.refusal.delta" if reply.is_refusal else "response.output_text.delta"
        logprobs = "" if reply.is_refusal else ',"logprobs":[]'
        prefix = f'event: {kind}\ndata: {{"type":"{kind}","sequence_number":'
        middle = f',"item_id":{_enc(ctx.item_id)},"output_index":0,"content_index":0,"delta":'
        suffix = logprobs + "}\n\n"
        seq = len(events)
        events.extend(
            (prefix + str(seq + i) + middle + _enc(p) + suffix).encode()
            for i, p in enumerate(pieces)
        )
        full = reply.streamed_text
        if reply.is_refusal:
            add("response.refusal.done", {**loc, "content_index": 0, "refusal": full})
        else:
            done = {**loc, "content_index": 0, "text": full, "logprobs": []}
            add("response.output_text.done", done)
        add("response.content_part.done", {**loc, "content_index": 0, "part": _part(reply, full)})
    else:
        pieces = []

    final = response_object(ctx, reply)
    add("response.output_item.done", {"output_index": 0, "item": final["output"][0]})
    kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
    add(kind, {"response": final})
    return RenderedStream(events, first_delta, len(pieces))


def responses_stream_error(
    ctx: RenderContext, reply: Reply, sequence_number: int, message: str, error_code: str | None
) -> bytes:
    """A `response.failed` event carrying `response.error`."""
    error = {"code": error_code or "server_error", "message": message}
    failed = response_object(ctx, reply, status="failed", error=error)
    kind = "response.failed"
    return sse_json({"type": kind, "sequence_number": sequence_number, "response": failed}, kind)
