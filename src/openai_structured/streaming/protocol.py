"""The two OpenAI streaming protocols, reduced to protocol-neutral deltas.

Chat Completions chunks (``choices[0].delta.content``/``refusal``, ``finish_reason``, a final
``usage`` chunk, ``error`` payloads, ``[DONE]``) and Responses API events
(``response.output_text.delta``, ``response.refusal.delta``/``.done``, ``response.completed``,
``response.incomplete``, ``response.failed``, ``error``) both come down to: text deltas, refusal
deltas, a finish reason, usage, a response id, and whether the server said the stream is over.

Each event's JSON is decoded once with ``jiter`` into plain dicts; no pydantic object is built per
chunk. The common event shape goes through a short fast path; everything else (and anything odd)
through a careful one that checks types. Data that is not JSON, or JSON that is not an event of
the API, raises :class:`StreamProtocolError`: it is never skipped silently, because a lost
delta would corrupt the JSON being streamed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jiter

from ..errors import StreamInterruptedError
from .sse import DONE

__all__ = [
    "ChatProtocol",
    "Protocol",
    "ResponsesProtocol",
    "StreamProtocolError",
    "StreamServerError",
    "make_protocol",
]

_from_json = jiter.from_json
_EXCERPT = 200


class StreamProtocolError(StreamInterruptedError):
    """The server sent an event that is not valid for the API (e.g. data that is not JSON).

    ``data`` is the offending event data (at most 200 bytes). ``content``/``results`` hold what
    the stream had produced before it.
    """

    def __init__(self, message: str, *, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data[:_EXCERPT]


class StreamServerError(StreamInterruptedError):
    """The server reported an error inside the stream (an ``error`` payload/event, or a
    Responses ``response.failed``).

    ``body`` is the error object as sent (``message``, ``code``, ``type``, ``param``); the client
    loop can turn it into the openai SDK's ``APIError`` with ``errors.interrupted``.
    """

    def __init__(self, message: str, *, body: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.body: dict[str, Any] = dict(body) if body else {}
        self.code: Any = self.body.get("code")
        self.type: Any = self.body.get("type")
        self.param: Any = self.body.get("param")


def _server_error(error: Any, where: str) -> StreamServerError:
    body = error if isinstance(error, Mapping) else {"message": str(error)}
    message = body.get("message")
    if not isinstance(message, str) or not message:
        message = "An error occurred during streaming"
    code = body.get("code")
    suffix = f" (code {code})" if code else ""
    return StreamServerError(f"The server reported an error {where}: {message}{suffix}", body=body)


def _malformed(payload: bytes, why: str) -> StreamProtocolError:
    return StreamProtocolError(
        f"Malformed stream event ({why}): {payload[:_EXCERPT]!r}. The server or a proxy in "
        "between sent something that is not an OpenAI streaming event.",
        data=payload,
    )


class Protocol:
    """What one stream said so far. ``content``/``refusal`` are lists of the deltas (join them
    when needed: appending is O(1) per delta, joining is done once)."""

    __slots__ = (
        "content",
        "done",
        "finish_reason",
        "incomplete_reason",
        "refusal",
        "refusal_done",
        "response_id",
        "usage",
    )

    api = ""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.refusal: list[str] = []
        self.refusal_done = False  # the refusal is complete (its final event arrived)
        self.finish_reason: str | None = None  # "stop", "length", "content_filter", ...
        self.incomplete_reason: str | None = None  # Responses: incomplete_details.reason
        self.usage: dict[str, Any] | None = None
        self.response_id: str | None = None
        self.done = False  # the server said the stream is over ([DONE] or a terminal event)

    @property
    def finished(self) -> bool:
        """The model finished (a finish reason or terminal event arrived)."""
        return self.done or self.finish_reason is not None

    def process(self, payloads: list[bytes]) -> None:  # pragma: no cover - abstract
        """Consume the data of SSE events, in order."""
        raise NotImplementedError


class ChatProtocol(Protocol):
    """Chat Completions chunks (``object: chat.completion.chunk``)."""

    __slots__ = ()
    api = "chat"

    def process(self, payloads: list[bytes]) -> None:
        append = self.content.append
        obj: Any = None
        for payload in payloads:
            # Fast path: the usual chunk, {"choices": [{"delta": {"content": "..."}, ...}]}.
            # Anything else (role/refusal in the delta, other choices, usage, errors, [DONE],
            # malformed data) raises here and goes through the careful path.
            try:
                obj = _from_json(payload)
                choice = obj["choices"][0]
                delta = choice["delta"]
                if len(delta) != 1 or choice.get("index"):
                    raise LookupError
                text = delta["content"]
                if type(text) is not str:
                    raise TypeError
            except (ValueError, LookupError, TypeError, AttributeError):
                self._careful(payload)
                continue
            append(text)
            finish = choice.get("finish_reason")
            if finish is not None:
                self._finish(finish, payload)
        if self.response_id is None and type(obj) is dict and type(obj.get("id")) is str:
            self.response_id = obj["id"]

    def _finish(self, finish: Any, payload: bytes) -> None:
        if not isinstance(finish, str):
            raise _malformed(payload, "finish_reason is not a string")
        self.finish_reason = finish
        if self.refusal:
            self.refusal_done = True

    def _careful(self, payload: bytes) -> None:
        if self.done or not payload.strip():
            return  # nothing after [DONE] counts (the SDK stops reading there too)
        if payload.strip() == DONE:
            self.done = True
            return
        try:
            obj = _from_json(payload)
        except ValueError as exc:
            raise _malformed(payload, f"data is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise _malformed(payload, "data is not a JSON object")
        error = obj.get("error")
        if error:
            raise _server_error(error, "during the stream")
        if self.response_id is None and isinstance(obj.get("id"), str):
            self.response_id = obj["id"]
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        choices = obj.get("choices")
        if choices is None:
            return
        if not isinstance(choices, list):
            raise _malformed(payload, "choices is not a list")
        for choice in choices:
            if not isinstance(choice, dict):
                raise _malformed(payload, "a choice is not an object")
            if choice.get("index", 0) != 0:
                continue  # only the first choice is decoded (the library asks for n=1)
            delta = choice.get("delta") or {}
            if not isinstance(delta, dict):
                raise _malformed(payload, "delta is not an object")
            _append_text(delta, "content", self.content, payload)
            _append_text(delta, "refusal", self.refusal, payload)
            finish = choice.get("finish_reason")
            if finish is not None:
                self._finish(finish, payload)


def _append_text(delta: dict[str, Any], key: str, into: list[str], payload: bytes) -> None:
    """Append ``delta[key]`` to ``into`` when present; a non-string is a malformed event."""
    text = delta.get(key)
    if text is None:
        return
    if not isinstance(text, str):
        raise _malformed(payload, f"delta.{key} is not a string")
    if text:
        into.append(text)


_INCOMPLETE_TO_FINISH = {"max_output_tokens": "length", "content_filter": "content_filter"}


class ResponsesProtocol(Protocol):
    """Responses API events (``response.*`` and ``error``)."""

    __slots__ = ()
    api = "responses"

    def process(self, payloads: list[bytes]) -> None:
        append = self.content.append
        for payload in payloads:
            try:
                obj = _from_json(payload)
                if obj["type"] != "response.output_text.delta":
                    raise LookupError
                text = obj["delta"]
                if type(text) is not str:
                    raise TypeError
            except (ValueError, LookupError, TypeError):
                self._careful(payload)
                continue
            if text:
                append(text)

    def _careful(self, payload: bytes) -> None:
        if self.done or not payload.strip():
            return
        if payload.strip() == DONE:
            self.done = True
            return
        try:
            obj = _from_json(payload)
        except ValueError as exc:
            raise _malformed(payload, f"data is not JSON: {exc}") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            raise _malformed(payload, "data is not a Responses event object with a 'type'")
        kind: str = obj["type"]
        if kind == "response.output_text.delta" or kind == "response.refusal.delta":
            delta = obj.get("delta")
            if not isinstance(delta, str):
                raise _malformed(payload, f"{kind} without a string 'delta'")
            if delta:
                (self.content if kind == "response.output_text.delta" else self.refusal).append(
                    delta
                )
            return
        if kind == "response.refusal.done":
            refusal = obj.get("refusal")
            if isinstance(refusal, str) and refusal and not self.refusal:
                self.refusal.append(refusal)
            self.refusal_done = True
            return
        if kind == "error":
            raise _server_error(obj, "during the stream")
        response = obj.get("response")
        if not kind.startswith("response.") or not isinstance(response, dict):
            return  # other event families (tool calls, reasoning summaries, ...) carry no answer
        if self.response_id is None and isinstance(response.get("id"), str):
            self.response_id = response["id"]
        usage = response.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        if kind == "response.completed":
            self.finish_reason = "stop"
            self.done = True
        elif kind == "response.incomplete":
            details = response.get("incomplete_details")
            reason = details.get("reason") if isinstance(details, dict) else None
            self.incomplete_reason = reason if isinstance(reason, str) else None
            self.finish_reason = _INCOMPLETE_TO_FINISH.get(reason or "", "length")
            self.done = True
        elif kind == "response.failed":
            self.done = True
            raise _server_error(response.get("error") or {}, "and the response failed")
        if self.done and self.refusal:
            self.refusal_done = True


def make_protocol(api: str) -> Protocol:
    """A fresh protocol state for ``api`` (``"chat"`` or ``"responses"``)."""
    if api == "chat":
        return ChatProtocol()
    if api == "responses":
        return ResponsesProtocol()
    raise ValueError(f"api must be 'chat' or 'responses', not {api!r}")
