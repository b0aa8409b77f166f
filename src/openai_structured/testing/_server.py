"""The loopback HTTP server: threads, sockets, scripting, request capture.

Standard library only. The server runs in a background thread (one more thread per
connection), so one instance serves the sync `OpenAI` client and the async `AsyncOpenAI`
client alike, from the test's own thread or event loop.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import io
import itertools
import json
import selectors
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from typing_extensions import Self

from . import _render as render
from ._batches import (
    BatchEmulator,
    BatchPlan,
    HttpAnswer,
    LineError,
    LineRunner,
    line_error_from_dict,
)
from ._latency import Latency
from ._limits import (
    Admission,
    RateLimiter,
    RateLimits,
    max_in_window,
    rejection_message,
    retry_headers,
)
from ._script import Choices, Fault, Reply, ScriptItem, item_from_dict, reply_from_dict
from ._sse import LAST_CHUNK, batches, chunk

if TYPE_CHECKING:
    from openai import AsyncOpenAI, OpenAI

__all__ = ["CapturedRequest", "FakeOpenAIServer", "Headers", "Responder"]

DEFAULT_API_KEY = "sk-fake-openai-structured-testing"
_SECRET_HEADERS = frozenset(
    {"authorization", "api-key", "x-api-key", "openai-api-key", "cookie", "proxy-authorization"}
)
# What a fault streams when neither it nor the server has a reply of its own.
_FAULT_FALLBACK = Reply.json({"message": "hello from the fake OpenAI server", "ok": True})
_GARBAGE = b"!!! this line is not server-sent events !!!\n\n"
_INVALID_JSON_EVENT = b'data: {"this is": not json\n\n'


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only request headers; `repr` hides credentials."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        merged: dict[str, str] = {}
        for name, value in items:
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        self._items = merged

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def redacted(self) -> dict[str, str]:
        """The headers with credential values replaced by "***" (safe to print or log)."""
        return {k: ("***" if k in _SECRET_HEADERS else v) for k, v in self._items.items()}

    def __repr__(self) -> str:
        return f"Headers({self.redacted()!r})"


@dataclass(frozen=True, repr=False)
class CapturedRequest:
    """One request as the server received it, kept for assertions."""

    method: str
    path: str
    query: str
    headers: Headers
    body: bytes
    json: Any = field(default=None)

    @property
    def endpoint(self) -> Literal["chat", "responses", "models"] | None:
        """Which API the request was for ("chat", "responses", "models"), else None."""
        route = _route(self.path)
        if route == "/chat/completions":
            return "chat"
        if route == "/responses":
            return "responses"
        if route == "/models" or route.startswith("/models/"):
            return "models"
        return None

    @property
    def stream(self) -> bool:
        """True when the request body asked for a stream."""
        return isinstance(self.json, Mapping) and self.json.get("stream") is True

    def __repr__(self) -> str:
        body = json.dumps(self.json)[:300] if self.json is not None else repr(self.body[:100])
        return f"<CapturedRequest {self.method} {self.path} headers={self.headers!r} body={body}>"


#: A default reply computed per request: called on the handler's thread (so concurrently when
#: requests are), it may answer with a Reply, Choices or a Fault (or, for a batch line, a
#: LineError).
Responder: TypeAlias = Callable[[CapturedRequest], "ScriptItem | LineError"]


class _ResponderError(Exception):
    """The default-reply callable raised or returned something that is not a script item."""


def _route(path: str) -> str:
    return path[3:] if path.startswith("/v1/") else path


class _HTTPServer(ThreadingHTTPServer):
    # Daemon threads never block interpreter exit; stop() joins them itself.
    daemon_threads = True
    allow_reuse_address = True
    # The listen backlog. socketserver's default is 5: 32 threads opening connections at once
    # saw ~2% of them reset, 64 threads 5-9%. The kernel caps it (Linux: net.core.somaxconn).
    request_queue_size = 1024

    def __init__(self, owner: FakeOpenAIServer, address: tuple[str, int]) -> None:
        self.owner = owner
        super().__init__(address, _Handler)
        # Non-blocking, so accept_pending() can empty the backlog without waiting.
        self.socket.setblocking(False)

    def accept_pending(self) -> None:
        """Accept every connection waiting in the backlog, each on its own thread.

        One wake-up serves a whole burst: handle_request() would accept one connection per
        wake-up and build a new selector for each.
        """
        for _ in range(self.request_queue_size):  # bounded, so the loop sees stop() soon
            try:
                request, client_address = self.get_request()
            except (BlockingIOError, InterruptedError):
                return  # the backlog is empty
            except OSError:
                return  # e.g. out of file descriptors: the next wake-up tries again
            request.setblocking(True)  # handlers use blocking reads and writes
            try:
                self.process_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
                self.shutdown_request(request)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Named, so a leak shows up by name in threading.enumerate().
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"FakeOpenAIServer-connection:{self.server_address[1]}",
            daemon=True,
        )
        # Registered here, before the thread runs: a stop() right after the accept must see
        # this connection to shut it down and join its thread.
        self.owner._connection_opened(request, thread)
        try:
            thread.start()
        except BaseException:
            self.owner._connection_closed(request)  # stop() must not join a thread never run
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)) or exc is None:
            return  # the client went away; nothing to report
        self.owner._record_error(exc)
        # Only our own traceback: request headers (credentials) are never formatted into it.
        print("FakeOpenAIServer: error while handling a request:", file=sys.stderr)
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)


class _Aborted(Exception):
    """The connection was dropped on purpose (fault) or because the server is stopping."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1"
    sys_version = ""
    # Headers and body go out in separate writes; with Nagle on, delayed ACKs add ~40 ms each.
    disable_nagle_algorithm = True
    server: _HTTPServer
    # Headers every response to the current request carries (the rate limits' state).
    _extra_headers: Mapping[str, str] = MappingProxyType({})

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._connection_closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the server never prints what it receives (requests carry API keys)."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    # -- dispatch ------------------------------------------------------------------------

    def _handle(self) -> None:
        owner = self.server.owner
        self._extra_headers = MappingProxyType({})  # one handler serves a keep-alive connection
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        path, _, query = self.path.partition("?")
        try:
            if path.startswith("/_fake/"):
                self._control(path, body)
                return
            try:
                parsed: Any = json.loads(body) if body else None
            except ValueError:
                parsed = None
            record = CapturedRequest(
                self.command, path, query, Headers(self.headers.items()), body, parsed
            )
            owner._capture(record)
            if owner.require_api_key is not None and not self._authorized(owner.require_api_key):
                self._send_json(401, render.error_body(401))
                return
            route = _route(path)
            now = int(time.time())
            if self.command == "GET" and route == "/models":
                self._send_json(200, render.models_list(now))
            elif self.command == "GET" and route.startswith("/models/"):
                self._send_json(200, render.model_object(route[len("/models/") :], now))
            elif self.command == "POST" and route in ("/chat/completions", "/responses"):
                if self._admitted(record):
                    self._scripted("chat" if route == "/chat/completions" else "responses", record)
            elif answer := owner.batches.handle(self.command, route, query, record.headers, body):
                self._send_answer(answer)
            else:
                message = f"Unknown request URL: {self.command} {path}."
                self._send_json(404, render.error_body(404, message, error_code="unknown_url"))
        except _Aborted:
            self.close_connection = True

    def _authorized(self, key: str) -> bool:
        given = self.headers.get("Authorization") or ""
        return given == f"Bearer {key}" or self.headers.get("api-key") == key

    def _admitted(self, record: CapturedRequest) -> bool:
        """Apply the rate limits: False when the request got a 429 (and took no capacity)."""
        owner = self.server.owner
        verdict = owner._admit(record)
        if verdict is None:
            return True
        self._extra_headers = MappingProxyType(verdict.headers)
        if verdict.accepted:
            return True
        limits = owner.rate_limits
        assert limits is not None
        model = record.json.get("model") if isinstance(record.json, Mapping) else None
        message = rejection_message(
            verdict, model if isinstance(model, str) else "fake-model", limits.window
        )
        body = render.error_body(429, message, verdict.kind, "rate_limit_exceeded")
        self._send_json(429, body, retry_headers(verdict.retry_after))
        return False

    def _scripted(self, endpoint: Literal["chat", "responses"], record: CapturedRequest) -> None:
        owner = self.server.owner
        queued = owner._next_item()
        latency = owner.latency
        if latency is not None:
            self._sleep(latency.sample())
        try:
            item = owner._resolve(queued, record)
        except _ResponderError as exc:
            self._send_json(500, render.error_body(500, str(exc), "fake_server_error"))
            return
        if item is None:
            message = (
                f"FakeOpenAIServer has no scripted reply for {record.method} {record.path}: "
                "queue one with server.queue(...) or set a default_reply."
            )
            self._send_json(500, render.error_body(500, message, "fake_server_error"))
            return
        if isinstance(item, LineError):
            message = (
                f"FakeOpenAIServer was scripted with a LineError for {record.method} "
                f"{record.path}: LineError is for batch lines, not live requests."
            )
            self._send_json(500, render.error_body(500, message, "fake_server_error"))
            return
        if not isinstance(record.json, Mapping):
            self._send_json(400, render.error_body(400, "The request body is not a JSON object."))
            return
        if isinstance(item, Choices):
            if endpoint == "responses":
                message = (
                    "Unknown parameter: 'n'. The Responses API has no `n` (several choices), "
                    "but FakeOpenAIServer was scripted with Choices for this request."
                )
                body = render.error_body(400, message, error_code="unknown_parameter", param="n")
                self._send_json(400, body)
                return
            replies = tuple(owner._with_call_ids(r)[0] for r in item.replies)
            ctx = render.RenderContext(
                request=record.json,
                request_size=len(record.body),
                response_id=replies[0].id or owner._new_id("chatcmpl-"),
                item_id=owner._new_id("msg_"),
                created=int(time.time()),
            )
            choices = Choices(replies)
            if record.stream:
                self._stream(endpoint, ctx, choices, None)
            else:
                self._complete(endpoint, ctx, choices, None)
            return
        fault = item if isinstance(item, Fault) else None
        reply = item if isinstance(item, Reply) else None
        if fault is not None:
            try:
                reply = owner._fault_reply(fault, record, from_responder=queued is not item)
            except _ResponderError as exc:
                self._send_json(500, render.error_body(500, str(exc), "fake_server_error"))
                return
            if fault.delay_before > 0:
                self._sleep(fault.delay_before)
            if fault.http_status is not None:
                self._send_error_fault(fault)
                return
        assert reply is not None
        reply, tool_item_ids = owner._with_call_ids(reply)
        ctx = render.RenderContext(
            request=record.json,
            request_size=len(record.body),
            response_id=reply.id or owner._new_id("chatcmpl-" if endpoint == "chat" else "resp_"),
            item_id=owner._new_id("msg_"),
            created=int(time.time()),
            tool_item_ids=tool_item_ids,
        )
        if record.stream:
            self._stream(endpoint, ctx, reply, fault)
        else:
            self._complete(endpoint, ctx, reply, fault)

    # -- responses -----------------------------------------------------------------------

    def _complete(
        self,
        endpoint: Literal["chat", "responses"],
        ctx: render.RenderContext,
        reply: Reply | Choices,
        fault: Fault | None,
    ) -> None:
        if fault is not None and fault.stream_error_message is not None:
            body = render.error_body(
                500, fault.stream_error_message, "server_error", fault.error_code
            )
            self._send_json(500, body)
            return
        if endpoint == "chat":
            payload = render.chat_completion(ctx, reply)
        else:
            assert isinstance(reply, Reply)
            payload = render.response_object(ctx, reply)
        data = json.dumps(payload).encode()
        if fault is not None and _disconnects(fault):
            cut = fault.disconnect_after_bytes
            if cut is None or cut == 0:
                self._abort(fault.reset)  # no response at all
            self._send_head(200, "application/json", {"Content-Length": str(len(data))})
            self.wfile.write(data[:cut])
            self._abort(fault.reset)
        self._send_head(200, "application/json", {"Content-Length": str(len(data))})
        self.wfile.write(data)

    def _stream(
        self,
        endpoint: Literal["chat", "responses"],
        ctx: render.RenderContext,
        reply: Reply | Choices,
        fault: Fault | None,
    ) -> None:
        if endpoint == "chat":
            rendered = render.chat_stream(ctx, reply)
        else:
            assert isinstance(reply, Reply)
            rendered = render.responses_stream(ctx, reply)
        events = rendered.events
        abort = False
        between = 0.0
        if fault is not None:
            between = fault.delay_between
            if fault.malformed is not None:
                i = rendered.index_after_deltas(fault.inject_after_deltas)
                if fault.malformed == "garbage":
                    events = [*events[:i], _GARBAGE, *events[i:]]
                elif fault.malformed == "invalid_json":
                    events = [*events[:i], _INVALID_JSON_EVENT, *events[i:]]
                else:  # truncated: half an event, then the body ends cleanly
                    events = [*events[:i], events[i][: max(1, len(events[i]) // 2)]]
            elif fault.stream_error_message is not None:
                i = rendered.index_after_deltas(fault.inject_after_deltas)
                if endpoint == "chat":
                    error = render.chat_stream_error(fault.stream_error_message, fault.error_code)
                else:
                    assert isinstance(reply, Reply)
                    error = render.responses_stream_error(
                        ctx, reply, i, fault.stream_error_message, fault.error_code
                    )
                events = [*events[:i], error]
            if _disconnects(fault):
                abort = True
                if fault.disconnect_after_events is not None:
                    events = events[: fault.disconnect_after_events]
                elif fault.disconnect_after_deltas is not None:
                    events = events[: rendered.index_after_deltas(fault.disconnect_after_deltas)]
                elif fault.disconnect_after_bytes == 0:
                    self._abort(fault.reset)  # no response at all
                elif fault.disconnect_after_bytes is not None:
                    events = [b"".join(events)[: fault.disconnect_after_bytes]]
        headers = {"Transfer-Encoding": "chunked", "Cache-Control": "no-cache"}
        self._send_head(200, "text/event-stream; charset=utf-8", headers)
        write = self.wfile.write
        if between > 0:
            for n, event in enumerate(events):
                if n:
                    self._sleep(between)
                write(chunk(event))
        else:
            for block in batches(events):
                write(chunk(block))
        if abort:
            self._abort(fault.reset if fault is not None else False)
        write(LAST_CHUNK)

    def _send_error_fault(self, fault: Fault) -> None:
        assert fault.http_status is not None
        headers = dict(fault.headers or {})
        if fault.retry_after is not None:
            retry = fault.retry_after
            headers["Retry-After"] = f"{retry:g}" if isinstance(retry, (int, float)) else retry
        body = render.error_body(
            fault.http_status, fault.message, fault.error_type, fault.error_code
        )
        self._send_json(fault.http_status, body, headers)

    # -- control endpoints (scripting a server in another process) -----------------------

    def _control(self, path: str, body: bytes) -> None:
        owner = self.server.owner
        try:
            data: Any = json.loads(body) if body else None
            if path == "/_fake/queue" and self.command == "POST":
                items = data if isinstance(data, list) else [data]
                owner.queue(
                    *(
                        line_error_from_dict(d) if "line_error" in d else item_from_dict(d)
                        for d in items
                    )
                )
                self._send_json(200, {"pending": owner.pending})
            elif path == "/_fake/batch-plan" and self.command == "POST":
                plans = data if isinstance(data, list) else [data]
                owner.batches.plan(*(BatchPlan.from_dict(d) for d in plans))
                self._send_json(200, {"pending_plans": owner.batches.pending_plans})
            elif path == "/_fake/default" and self.command in ("POST", "PUT"):
                owner.default_reply = None if data is None else reply_from_dict(data)
                self._send_json(200, {"ok": True})
            elif path == "/_fake/requests" and self.command == "GET":
                listing = [
                    {
                        "method": r.method,
                        "path": r.path,
                        "headers": r.headers.redacted(),
                        "json": r.json,
                    }
                    for r in owner.requests
                ]
                self._send_json(200, listing)
            elif path == "/_fake/stats" and self.command == "GET":
                self._send_json(200, owner.stats())
            elif path == "/_fake/reset" and self.command == "POST":
                owner.reset()
                self._send_json(200, {"ok": True})
            else:
                self._send_json(404, render.error_body(404, f"Unknown control URL {path}."))
        except (ValueError, TypeError, KeyError) as exc:
            self._send_json(400, render.error_body(400, f"Bad script item: {exc}"))

    # -- low level -----------------------------------------------------------------------

    def _send_answer(self, answer: HttpAnswer) -> None:
        if answer.disconnect:
            self._abort(reset=False)
        headers = {"Content-Length": str(len(answer.body))}
        self._send_head(answer.status, answer.content_type, headers)
        self.wfile.write(answer.body)

    def _send_head(self, status: int, content_type: str, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("x-request-id", self.server.owner._new_id("req_"))
        for name, value in self._extra_headers.items():
            self.send_header(name, value)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_json(
        self, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        all_headers = {"Content-Length": str(len(data)), **(headers or {})}
        self._send_head(status, "application/json", all_headers)
        self.wfile.write(data)

    def _sleep(self, seconds: float) -> None:
        if self.server.owner._stopping.wait(seconds):
            self._abort(reset=False)

    def _abort(self, reset: bool) -> None:
        """Drop the connection now: FIN, or RST when `reset` (never returns)."""
        self.close_connection = True
        sock = self.connection
        try:
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                # Close every reference to the descriptor so close() sends the RST now.
                self.rfile.close()
                self.wfile.close()
                sock.close()
                # BaseHTTPRequestHandler still flushes and closes these afterwards.
                self.rfile, self.wfile = io.BytesIO(), io.BytesIO()
            else:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise _Aborted


def _disconnects(fault: Fault) -> bool:
    return (
        fault.disconnect_after_events is not None
        or fault.disconnect_after_deltas is not None
        or fault.disconnect_after_bytes is not None
    )


class FakeOpenAIServer:
    """A scriptable OpenAI-compatible server on loopback (Chat Completions and Responses).

    Use as a context manager; queue replies and faults, point a client at `base_url` (or use
    `client()` / `async_client()`), then assert on `requests`. Replies are consumed one per
    POST request in order; `default_reply` (a Reply, or a function of the request) answers
    when the queue is empty. `rate_limits` answers 429 beyond them, like OpenAI; `latency`
    (seconds or a `Latency`) delays every admitted Chat Completions and Responses request.
    """

    def __init__(
        self,
        *script: ScriptItem,
        default_reply: Reply | Responder | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        require_api_key: str | None = None,
        rate_limits: RateLimits | None = None,
        latency: float | Latency | None = None,
    ) -> None:
        self.default_reply = default_reply
        self.require_api_key = require_api_key
        self.latency = latency
        self._rate_limits: RateLimits | None = None
        self._limiter: RateLimiter | None = None
        self._accepted_times: list[float] = []
        self._rate_limited = 0
        self._host = host
        self._requested_port = port
        self._script: collections.deque[ScriptItem | LineError] = collections.deque(script)
        self._requests: list[CapturedRequest] = []
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._call_numbers = itertools.count(1)
        self._stopping = threading.Event()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._clients: list[OpenAI] = []
        self.rate_limits = rate_limits
        #: The Files and Batch APIs' state and scripting (`server.batches.plan(...)`).
        self.batches = BatchEmulator(LineRunner(self), self._new_id)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve in a background thread (idempotent)."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer(self, (self._host, self._requested_port))
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(
            target=self._serve, name=f"FakeOpenAIServer:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def _serve(self) -> None:
        # Not serve_forever(): its poll interval would make every stop() wait for it.
        httpd = self._httpd
        assert httpd is not None and self._wake_r is not None
        with selectors.DefaultSelector() as sel:
            sel.register(httpd.socket, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in sel.select():
                    if key.fileobj is self._wake_r:
                        return
                    httpd.accept_pending()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, drop open connections, join every server thread (idempotent)."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stopping.set()  # wakes scripted delays
        for client in self._clients:
            client.close()
        self._clients.clear()
        if self._wake_w is not None:
            self._wake_w.send(b"x")
        thread.join(timeout)
        with self._lock:
            connections = list(self._connections.items())
        for sock, _ in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # unblocks handlers waiting on keep-alive
        deadline = time.monotonic() + timeout
        for _, handler in connections:
            handler.join(max(0.0, deadline - time.monotonic()))
        httpd.server_close()
        for wake in (self._wake_r, self._wake_w):
            if wake is not None:
                wake.close()
        self._wake_r = self._wake_w = None
        self._httpd = None
        self._thread = None

    close = stop

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        import asyncio

        # Off the event loop: stopping joins threads, and the loop may still own sockets.
        await asyncio.get_running_loop().run_in_executor(None, self.stop)

    # -- addresses and clients -----------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the real one when started with port 0)."""
        if self._httpd is None:
            raise RuntimeError("the server is not running; use `with FakeOpenAIServer()`")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT` (no path)."""
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The base URL to give an OpenAI client: `http://127.0.0.1:PORT/v1`."""
        return f"{self.url}/v1"

    def client(
        self, *, api_key: str = DEFAULT_API_KEY, max_retries: int = 0, **kwargs: Any
    ) -> OpenAI:
        """An `openai.OpenAI` client pointed at this server (closed when the server stops).

        Unless you pass `http_client`, it gets one that ignores proxy variables (so loopback
        traffic never goes through a proxy) and loads no CA bundle (plain HTTP: that saves
        ~25 ms per client).
        """
        from openai import DefaultHttpxClient, OpenAI

        if "http_client" not in kwargs:
            kwargs["http_client"] = DefaultHttpxClient(verify=False, trust_env=False)
        client = OpenAI(base_url=self.base_url, api_key=api_key, max_retries=max_retries, **kwargs)
        self._clients.append(client)
        return client

    def async_client(
        self, *, api_key: str = DEFAULT_API_KEY, max_retries: int = 0, **kwargs: Any
    ) -> AsyncOpenAI:
        """An `openai.AsyncOpenAI` client pointed at this server (close it with `async with`
        or `await client.close()`)."""
        from openai import AsyncOpenAI, DefaultAsyncHttpxClient

        if "http_client" not in kwargs:
            kwargs["http_client"] = DefaultAsyncHttpxClient(verify=False, trust_env=False)
        return AsyncOpenAI(
            base_url=self.base_url, api_key=api_key, max_retries=max_retries, **kwargs
        )

    # -- scripting -----------------------------------------------------------------------

    def queue(self, *items: ScriptItem | LineError) -> Self:
        """Append replies/faults/choices; each POST request (and each batch line) consumes the
        oldest one. A `LineError` is for batch lines only."""
        for item in items:
            if not isinstance(item, (Reply, Fault, Choices, LineError)):
                raise TypeError(
                    f"expected a Reply, a Fault, Choices or a LineError, got {type(item).__name__}"
                )
        with self._lock:
            self._script.extend(items)
        return self

    @property
    def pending(self) -> int:
        """How many queued items no request has consumed yet."""
        with self._lock:
            return len(self._script)

    def reset(self) -> None:
        """Forget queued items, captured requests, errors and rate-limit counters, files,
        batches and queued batch plans, and refill the rate limits (the default reply, limits,
        latency and default batch plan stay)."""
        self.batches.reset()
        with self._lock:
            self._script.clear()
            self._requests.clear()
            self._errors.clear()
            self._reset_limits()

    # -- rate limits and latency ---------------------------------------------------------

    @property
    def rate_limits(self) -> RateLimits | None:
        """The limits enforced (None: none). Setting them starts with full capacity."""
        return self._rate_limits

    @rate_limits.setter
    def rate_limits(self, limits: RateLimits | None) -> None:
        if limits is not None and not isinstance(limits, RateLimits):
            raise TypeError(f"rate_limits must be RateLimits or None, got {type(limits).__name__}")
        with self._lock:
            self._rate_limits = limits
            self._reset_limits()

    def _reset_limits(self) -> None:
        limits = self._rate_limits
        self._limiter = None if limits is None else RateLimiter(limits, time.monotonic())
        self._accepted_times.clear()
        self._rate_limited = 0

    @property
    def latency(self) -> Latency | None:
        """The delay before each admitted POST is answered (a number set becomes fixed)."""
        return self._latency

    @latency.setter
    def latency(self, value: float | Latency | None) -> None:
        if value is None or isinstance(value, Latency):
            self._latency = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            self._latency = Latency.fixed(value) if value else None  # fixed() checks the value
        else:
            raise TypeError(f"latency must be seconds or a Latency, got {type(value).__name__}")

    @property
    def rate_limited(self) -> int:
        """How many requests the rate limits answered 429 (scripted faults not included)."""
        with self._lock:
            return self._rate_limited

    @property
    def accepted_times(self) -> list[float]:
        """`time.monotonic()` at which each request the limits let through arrived, in order.

        Every Chat Completions and Responses request counts when no limits are set.
        """
        with self._lock:
            return list(self._accepted_times)

    def max_accepted_in_window(self, seconds: float) -> int:
        """The most accepted requests that arrived within any `seconds`-long interval."""
        return max_in_window(self.accepted_times, seconds)

    def stats(self) -> dict[str, Any]:
        """Counters as JSON-ready values (also `GET /_fake/stats` on a running server)."""
        batches = self.batches.stats()  # before our lock: the emulator's is taken first
        with self._lock:
            return {
                "requests": len(self._requests),
                "accepted": len(self._accepted_times),
                "rate_limited": self._rate_limited,
                "accepted_times": list(self._accepted_times),
                "errors": [f"{type(e).__name__}: {e}" for e in self._errors],
                **batches,
            }

    # -- captured requests ---------------------------------------------------------------

    @property
    def requests(self) -> list[CapturedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> CapturedRequest:
        """The most recent request (AssertionError when there was none)."""
        with self._lock:
            if not self._requests:
                raise AssertionError("the fake server has received no request")
            return self._requests[-1]

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions inside the server (a bug here, not a scripted fault), and
        whatever a `default_reply` function raised."""
        with self._lock:
            return list(self._errors)

    # -- internals used by the handler ---------------------------------------------------

    def _next_item(self) -> ScriptItem | LineError | Responder | None:
        with self._lock:
            if self._script:
                return self._script.popleft()
        return self.default_reply

    def _resolve(
        self, item: ScriptItem | LineError | Responder | None, record: CapturedRequest
    ) -> ScriptItem | LineError | None:
        """The script item itself, or what the default-reply function answers `record`."""
        if item is None or isinstance(item, (Reply, Fault, Choices, LineError)):
            return item
        try:
            answer = item(record)
        except Exception as exc:
            self._record_error(exc)
            raise _ResponderError(f"default_reply raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(answer, (Reply, Fault, Choices, LineError)):
            error = TypeError(
                "default_reply must return a Reply, a Fault or Choices, "
                f"got {type(answer).__name__}"
            )
            self._record_error(error)
            raise _ResponderError(str(error))
        return answer

    def _fault_reply(self, fault: Fault, record: CapturedRequest, from_responder: bool) -> Reply:
        """What a stream-shaping fault streams: its reply, else the default's, else a fallback.

        A fault the default-reply function returned does not call it a second time.
        """
        if fault.reply is not None:
            return fault.reply
        default = self.default_reply
        if isinstance(default, Reply):
            return default
        if default is not None and not from_responder:
            answer = self._resolve(default, record)
            if isinstance(answer, Reply):
                return answer
        return _FAULT_FALLBACK

    def _admit(self, record: CapturedRequest) -> Admission | None:
        """Run the rate limits on one request (None when none are set) and count it."""
        now = time.monotonic()
        with self._lock:
            limiter = self._limiter
            if limiter is None:
                self._accepted_times.append(now)
                return None
            verdict = limiter.admit(limiter.limits.token_cost(record.json), now)
            if verdict.accepted:
                self._accepted_times.append(now)
            else:
                self._rate_limited += 1
            return verdict

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    def _capture(self, record: CapturedRequest) -> None:
        with self._lock:
            self._requests.append(record)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}fake{next(self._ids):06d}"

    def _with_call_ids(self, reply: Reply) -> tuple[Reply, tuple[str, ...]]:
        """`reply` with an id on every tool call, and the calls' Responses item ids.

        Calls are numbered per server, in the order they are answered: a call without an id
        gets `call_<n>`, and its Responses item is `fc_<n>` either way.
        """
        if not reply.tool_calls:
            return reply, ()
        calls = []
        item_ids = []
        for call in reply.tool_calls:
            n = next(self._call_numbers)
            calls.append(call if call.id is not None else dataclasses.replace(call, id=f"call_{n}"))
            item_ids.append(f"fc_{n}")
        return dataclasses.replace(reply, tool_calls=tuple(calls)), tuple(item_ids)

    def _connection_opened(self, sock: socket.socket, handler: threading.Thread) -> None:
        with self._lock:
            self._connections[sock] = handler

    def _connection_closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.pop(sock, None)

    def __repr__(self) -> str:
        where = self.base_url if self._httpd is not None else "stopped"
        return f"<FakeOpenAIServer {where} pending={self.pending}>"
