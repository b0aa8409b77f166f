"""The two OpenAI streaming protocols, reduced to protocol-neutral deltas.

Chat Completions chunks (``choices[0].delta.content``/``refusal``, ``finish_reason``, a final
``usage`` chunk, ``error`` payloads, ``[DONE]``) and Responses API events
(``response.output_text.delta``, ``response.refusal.delta``/``.done``, ``response.completed``,
``response.incomplete``, ``response.failed``, ``error``) both come down to: text deltas, refusal
deltas, a finish reason, usage, a response id, and whether the server said the stream is over.
Nothing after that end (``[DONE]``, or a terminal Responses event) counts, on any path: the rest
of a batch of events is dropped, and later batches are ignored.

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

from ..errors import StreamProtocolError, StreamServerError
from .sse import DONE

__all__ = [
    "PROTOCOLS",
    "ChatProtocol",
    "Protocol",
    "ResponsesProtocol",
    "StreamProtocolError",
    "StreamServerError",
    "make_protocol",
]

_from_json = jiter.from_json
_NOTHING: Any = object()  # an event that carries nothing (see Protocol._event)
_EXCERPT = 200  # bytes of a bad event quoted in the error


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
        "tool_deltas",
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
        # Function-call deltas, in order: (call index, id or None, name or None, argument text).
        self.tool_deltas: list[tuple[int, str | None, str | None, str]] = []

    @property
    def finished(self) -> bool:
        """The model finished (a finish reason or terminal event arrived)."""
        return self.done or self.finish_reason is not None

    def _event(self, payload: bytes) -> Any:
        """The decoded data of an event off the fast path, or ``_NOTHING`` for one that carries
        nothing: blank, ``[DONE]`` (which ends the stream) or anything after the end (the SDK
        stops reading there too). Data that is not JSON is a malformed event."""
        if self.done or not payload.strip():
            return _NOTHING
        if payload.strip() == DONE:
            self.done = True
            return _NOTHING
        try:
            return _from_json(payload)
        except ValueError as exc:
            raise _malformed(payload, f"data is not JSON: {exc}") from None

    def process(self, payloads: list[bytes]) -> bool:  # pragma: no cover - abstract
        """Consume the data of SSE events, in order. Return True when something other than
        text deltas arrived (a refusal, a finish reason, usage, the end): only then do the
        other fields need a look, so the caller's per-read work stays small."""
        raise NotImplementedError


def _string_token_end(data: bytes, start: int) -> int:
    """End of the JSON string token opening at ``data[start]`` (after its closing quote), or -1.

    A scan with ``bytes.find`` for quotes, counting the backslashes before each: linear time and
    constant memory (a regex such as ``"(?:[^"\\]|\\.)*"`` keeps state per character, some
    100 bytes each, so a 4 MiB token would cost hundreds of MB; possessive quantifiers need 3.11).
    """
    if data[start : start + 1] != b'"':
        return -1
    i = start + 1
    while True:
        q = data.find(b'"', i)
        if q < 0:
            return -1
        k = q
        while data[k - 1] == 92:  # a backslash (the opening quote stops the scan)
            k -= 1
        if not (q - k) & 1:  # an even run of backslashes: the quote is not escaped
            return q + 1
        i = q + 1


# Put in place of a learnt envelope's content to check it (see ChatProtocol._learn).
_PROBE_TEXT = "\x00openai-structured envelope probe\x01"
_PROBE = b'"\\u0000openai-structured envelope probe\\u0001"'


class ChatProtocol(Protocol):
    """Chat Completions chunks (``object: chat.completion.chunk``).

    Within one stream the text chunks differ only in the content string: the id, model,
    fingerprint, ``"logprobs":null,"finish_reason":null`` and so on repeat byte for byte. So
    the bytes around the content token of one chunk (its *envelope*) are learnt once, checked
    with a probe parse, and a later chunk made of that envelope around one JSON string token is
    decoded by decoding the token alone: the same value ``jiter`` gives for the whole chunk, at
    a fraction of the cost. Any other chunk goes through the full decode.
    """

    __slots__ = ("_head", "_learn", "_tail")
    api = "chat"

    def __init__(self) -> None:
        super().__init__()
        self._head = b"\xff"  # bytes before the content token (no event starts with 0xff)
        self._tail = b""  # bytes after it
        self._learn = 3  # envelopes still to try learning (a server may vary them per chunk)

    def process(self, payloads: list[bytes]) -> bool:
        if self.done:
            return False  # nothing after [DONE] counts (the SDK stops reading there too)
        append = self.content.append
        head = self._head
        tail = self._tail
        start = len(head)
        end = -len(tail) or None  # a learnt tail is never empty (it closes the object)
        other = False
        obj: Any = None
        for payload in payloads:
            # Fastest path: the learnt envelope around one string token.
            if payload.startswith(head) and payload.endswith(tail):
                try:
                    text = _from_json(payload[start:end])
                except ValueError:
                    text = None
                if type(text) is str:
                    append(text)
                    continue
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
                other = True
                self._careful(payload)
                if self.done:
                    break  # the rest of this read comes after [DONE]: it does not count
                continue
            append(text)
            finish = choice.get("finish_reason")
            if finish is not None:
                other = True
                self._finish(finish, payload)
            elif self._learn:
                self._learn_envelope(payload, text)
                head = self._head
                tail = self._tail
                start = len(head)
                end = -len(tail) or None
        if self.response_id is None and type(obj) is dict and type(obj.get("id")) is str:
            self.response_id = obj["id"]
        return other

    def _learn_envelope(self, payload: bytes, text: str) -> None:
        """Learn the bytes around the content token of ``payload``, a plain text chunk (one
        ``content`` key in the delta of choice 0, no finish reason) whose content is ``text``.

        The candidate token is the string after the last ``"content":`` key; it is replaced by
        a probe string and the result parsed. If the delta's content is then the probe (and was
        not before), that token is the delta's content, and any chunk of the same envelope
        around another single string token parses to this same chunk with that text.
        """
        self._learn -= 1
        if text == _PROBE_TEXT:
            return
        k = payload.rfind(b'"content":')
        if k < 0:
            return
        start = k + 10
        while payload[start : start + 1] in (b" ", b"\t", b"\n", b"\r"):
            start += 1
        end = _string_token_end(payload, start)
        if end < 0:
            return
        head = payload[:start]
        tail = payload[end:]
        try:
            choice = _from_json(head + _PROBE + tail)["choices"][0]
            ok = (
                choice["delta"] == {"content": _PROBE_TEXT}
                and not choice.get("index")
                and choice.get("finish_reason") is None
            )
        except (ValueError, LookupError, TypeError, AttributeError):
            return
        if ok:
            self._head = head
            self._tail = tail

    def _tool_calls(self, calls: Any, payload: bytes) -> None:
        """``delta.tool_calls``: pieces of function calls, each naming its call's ``index``."""
        if not isinstance(calls, list):
            raise _malformed(payload, "delta.tool_calls is not a list")
        for call in calls:
            index = call.get("index") if isinstance(call, dict) else None
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise _malformed(payload, "a tool call delta without an integer index")
            function = call.get("function") or {}
            if not isinstance(function, dict):
                raise _malformed(payload, "a tool call's function is not an object")
            ident, name, arguments = call.get("id"), function.get("name"), function.get("arguments")
            if arguments is None:
                arguments = ""
            if not all(isinstance(v, str) for v in (ident or "", name or "", arguments)):
                raise _malformed(payload, "a tool call's id, name or arguments is not a string")
            self.tool_deltas.append((index, ident or None, name or None, arguments))

    def _finish(self, finish: Any, payload: bytes) -> None:
        if not isinstance(finish, str):
            raise _malformed(payload, "finish_reason is not a string")
        self.finish_reason = finish
        if self.refusal:
            self.refusal_done = True

    def _careful(self, payload: bytes) -> None:
        obj = self._event(payload)
        if obj is _NOTHING:
            return
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
            calls = delta.get("tool_calls")
            if calls is not None:
                self._tool_calls(calls, payload)
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
    """Responses API events (``response.*`` and ``error``).

    The final events repeat the whole answer: ``response.output_text.done``,
    ``response.content_part.done`` and ``response.output_item.done`` its text, the terminal
    ``response.completed``/``.incomplete`` the whole response object. Each costs one ``jiter``
    decode (the fast path's decode is handed to :meth:`_careful`, never done twice), bounded by
    the SSE event limit (``4 * max_buffer_size + 64 KiB``, see :mod:`.sse`); only the id, usage
    and finish reason are kept from them, never their text (the deltas already gave it).
    """

    __slots__ = ("_calls",)
    api = "responses"

    def __init__(self) -> None:
        super().__init__()
        self._calls: dict[Any, int] = {}  # function call item -> call index (0, 1, ...)

    def process(self, payloads: list[bytes]) -> bool:
        if self.done:
            return False  # nothing after the terminal event counts
        append = self.content.append
        other = False
        for payload in payloads:
            obj = None
            try:
                obj = _from_json(payload)
                if obj["type"] != "response.output_text.delta":
                    raise LookupError
                text = obj["delta"]
                if type(text) is not str:
                    raise TypeError
            except (ValueError, LookupError, TypeError):
                other = True
                self._careful(payload, obj)  # the parse above is reused: one per event
                if self.done:
                    break  # the rest of this read comes after the end: it does not count
                continue
            if text:
                append(text)
        return other

    def _careful(self, payload: bytes, obj: Any = None) -> None:
        """One event off the fast path; ``obj`` is its data already decoded, if it was."""
        if self.done:
            return
        if obj is None:
            obj = self._event(payload)
            if obj is _NOTHING:
                return
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
        if kind.startswith("response.function_call_arguments.") or (
            kind == "response.output_item.added"
            and isinstance(obj.get("item"), dict)
            and obj["item"].get("type") == "function_call"
        ):
            self._function_call(kind, obj, payload)
            return
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

    def _function_call(self, kind: str, obj: dict[str, Any], payload: bytes) -> None:
        """A function call's start (``output_item.added``) or a piece of its arguments; the
        ``.done`` event repeats them and is not needed."""
        if kind == "response.output_item.added":
            item = obj["item"]
            key = item.get("id") or obj.get("output_index")
            index = self._calls.get(key)
            if index is None:
                index = len(set(self._calls.values()))  # calls are numbered 0, 1, ...
                self._calls[key] = index
            self._calls.setdefault(obj.get("output_index"), index)
            ident, name = item.get("call_id") or item.get("id"), item.get("name")
            arguments = item.get("arguments") or ""
            if not all(isinstance(v, str) for v in (ident or "", name or "", arguments)):
                raise _malformed(payload, "a function call's id, name or arguments is not a string")
            self.tool_deltas.append((index, ident or None, name or None, arguments))
            return
        if kind != "response.function_call_arguments.delta":
            return
        delta = obj.get("delta")
        if not isinstance(delta, str):
            raise _malformed(payload, f"{kind} without a string 'delta'")
        found = self._calls.get(obj.get("item_id"))
        if found is None:
            found = self._calls.get(obj.get("output_index"))
        if found is None:
            raise _malformed(payload, "arguments for a function call that was never announced")
        if delta:
            self.tool_deltas.append((found, None, None, delta))


#: The protocol of each API, by the name users pass as ``api=``.
PROTOCOLS: dict[str, type[Protocol]] = {p.api: p for p in (ChatProtocol, ResponsesProtocol)}


def make_protocol(api: str) -> Protocol:
    """A fresh protocol state for ``api`` (``"chat"`` or ``"responses"``)."""
    try:
        return PROTOCOLS[api]()
    except KeyError:
        known = " or ".join(repr(name) for name in PROTOCOLS)
        raise ValueError(f"api must be {known}, not {api!r}") from None
