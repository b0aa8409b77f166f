"""``LocalModelServer``: llama-cpp-python's OpenAI-compatible server as a managed child process.

Lifecycle, and why each step is the way it is:

* **Port**: a free loopback port is found by binding port 0; another process could take it
  before the server binds, so a failed bind on a port we chose is retried on a fresh one.
* **Start**: ``python -m openai_structured.local._child`` (llama_cpp.server behind a lifeline on
  stdin, see :mod:`._child`) in its own session/process group, so a terminal's Ctrl-C reaches
  only us and we decide how the server stops, and so the whole group can be signalled.
* **The key stays private**: it is written to the child's stdin (a pipe), never put on its
  command line, which every local user can read (``ps``, ``/proc/PID/cmdline``).
* **Ready, and ours**: the server answers ``GET`` :data:`~._model.PROOF_PATH` with an HMAC of a
  fresh random challenge keyed by the API key. The probe sends no key, so whatever else might
  be listening on the port learns nothing; an answer without the right proof means another
  process holds the port: the start fails with :class:`PortUnavailableError` at once (or, for
  a port we picked, retries on a fresh one) and the key is never sent to it. If the process
  exits first, the error carries the tail of its output (collected by a thread into a bounded
  buffer: a long-running server's log never fills a pipe or a disk).
* **Stop, always**: ``SIGTERM`` to the group, ``SIGKILL`` after a grace period. Triggered by the
  context manager (also on exceptions and ``KeyboardInterrupt``), by ``stop()``, by garbage
  collection and at interpreter exit (``weakref.finalize``), and, if this process is killed
  outright, by the child itself when its lifeline pipe closes.
* **One process per manager**: ``start()``, ``astart()``, ``stop()`` and ``astop()`` take one
  lock, shared across threads and event loops (``astart`` waits for it without blocking its
  loop), so concurrent starts launch one server and all get its URL.
* **Logits of the last token only** (``--logits_all false``): see :func:`server_command`.
* **Concurrency of requests**: llama-cpp-python's server by default *interrupts* a running
  completion when another request arrives (``interrupt_requests``), which cuts streams short
  without an error. We turn that off: concurrent requests queue instead.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from typing_extensions import Self

from ..servers import PROFILE_HEADER, PROFILES, ServerProfile
from ._context import check_context, served_context
from ._errors import (
    LocalModelError,
    LocalModelNotInstalledError,
    PortUnavailableError,
    ServerStartError,
)

# Not from ._child: importing it here would make ``python -m ..._child`` warn that the module
# was imported before it ran.
from ._model import (
    GEMMA3_CHAT_FORMAT,
    MODEL_ENV_VAR,
    PROOF_PATH,
    ensure_model,
    missing_packages,
    proof_of_key,
)

__all__ = ["DEFAULT_MODEL_ALIAS", "LocalModelServer", "server_command"]

#: The name the server reports in ``/v1/models`` and in responses. The server serves one model
#: and answers any ``model=`` with it.
DEFAULT_MODEL_ALIAS = "gemma-3-270m"
_PROFILE = "llama.cpp"
_CHILD_MODULE = "openai_structured.local._child"
_BIND_ERRORS = ("address already in use", "errno 98", "errno 48", "errno 10048", "errno 13")
_PORT_ATTEMPTS = 3
# The probe reads at most this much of an answer: whatever answers may not be our server.
_PROBE_LIMIT = 64 * 1024
# Never through a proxy: the probe is for the process on our loopback port, nothing else.
_PROBE_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _check_port(host: str, port: int) -> None:
    """Raise :class:`PortUnavailableError` now, rather than after the model has loaded."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, port))
    except OSError as exc:
        raise PortUnavailableError(
            f"Cannot bind {host}:{port} for the local model server: {exc.strerror or exc}. "
            "Leave port= out to use a free port.",
            host=host,
            port=port,
        ) from exc


def _default_threads() -> int:
    # llama-cpp-python defaults to half the CPUs; on small machines (2 cores) all of them is
    # faster. Beyond 8 threads a 270M model gains nothing.
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not on macOS / Windows
        count = os.cpu_count() or 1
    return max(1, min(count, 8))


def server_command(
    model_path: str | os.PathLike[str],
    *,
    host: str,
    port: int,
    model_alias: str = DEFAULT_MODEL_ALIAS,
    n_ctx: int = 4096,
    n_threads: int | None = None,
    chat_format: str | None = None,
    extra_args: Sequence[str] = (),
    python: str | None = None,
) -> list[str]:
    """The command line that starts the server (pure: no process, no file access).

    It holds no secret: the API key goes to the child through its stdin (see :mod:`._child`).
    """
    command = [
        python or sys.executable,
        "-m",
        _CHILD_MODULE,
        "--model",
        str(model_path),
        "--model_alias",
        model_alias,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        str(n_threads if n_threads is not None else _default_threads()),
        "--interrupt_requests",
        "false",
        # The server's default keeps the logits of every prompt token: 4 GiB reserved for a
        # 262k vocabulary and 4,096 tokens, and a prompt read ~3x slower. Only logprobs need
        # them, which the library never asks for.
        "--logits_all",
        "false",
        "--verbose",
        "false",
    ]
    if chat_format is not None:
        command += ["--chat_format", chat_format]
    command += list(extra_args)
    return command


@dataclass
class _Process:
    """A running server process: everything needed to stop it, and no reference to its owner
    (the finalizer must not keep the :class:`LocalModelServer` alive)."""

    popen: subprocess.Popen[bytes]
    output: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=60))
    reader: threading.Thread | None = None

    def start_reader(self) -> None:
        stream = self.popen.stdout
        assert stream is not None
        self.reader = threading.Thread(
            target=_drain, args=(stream, self.output), name="llama-server-output", daemon=True
        )
        self.reader.start()

    def tail(self) -> str:
        if self.reader is not None and self.popen.poll() is not None:
            self.reader.join(timeout=1.0)  # the last lines of a process that just exited
        return "".join(self.output)

    def stop(self, grace: float) -> None:
        """Terminate the process group, kill it after ``grace`` seconds; idempotent."""
        popen = self.popen
        if popen.poll() is None:
            _signal_group(popen, signal.SIGTERM)
            try:
                popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(popen, signal.SIGKILL if os.name != "nt" else signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    popen.wait(timeout=grace)
        # Closing our end of the lifeline also ends a child that ignored the signals.
        for stream in (popen.stdin, popen.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if self.reader is not None:
            self.reader.join(timeout=1.0)


def _drain(stream: IO[bytes], lines: collections.deque[str]) -> None:
    with contextlib.suppress(OSError, ValueError):
        for raw in iter(stream.readline, b""):
            lines.append(raw.decode("utf-8", "replace"))


def _signal_group(popen: subprocess.Popen[bytes], sig: int) -> None:
    # Only while the child is unreaped: its pid (= its group id) cannot have been reused.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.name == "nt":
            popen.kill() if sig != signal.SIGTERM else popen.terminate()
        else:
            os.killpg(popen.pid, sig)


def _stop_quietly(process: _Process, grace: float) -> None:
    """Finalizer: stop the server at garbage collection or interpreter exit."""
    with contextlib.suppress(Exception):
        process.stop(grace)


class LocalModelServer:
    """The embedded model served over loopback HTTP, started and always stopped by us.

    ::

        with LocalModelServer() as server:
            person = openai_structured_call(client=server.client(), model=server.model_name,
                                            output_schema=Person, user_prompt=text)

    ``async with`` works the same (use :meth:`async_client`). The clients carry the llama.cpp
    server profile, so calls send the schema in the form this server accepts.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        model_alias: str = DEFAULT_MODEL_ALIAS,
        chat_format: str | None = None,
        startup_timeout: float = 120.0,
        stop_timeout: float = 5.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self._model_path = model_path
        self.host = host
        self._requested_port = port
        # None: $OPENAI_STRUCTURED_LOCAL_CONTEXT, else the data file's default (._context),
        # the same figure the CLI's pre-flight checks prompts against.
        bundled = model_path is None and not os.environ.get(MODEL_ENV_VAR)
        self.n_ctx = (
            served_context()
            if n_ctx is None
            else check_context(n_ctx, source="n_ctx=", bundled=bundled)
        )
        self.n_threads = n_threads
        self.model_name = model_alias
        self.chat_format = chat_format
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.extra_args = tuple(extra_args)
        # Random per server: other local users cannot drive it, and an API_KEY in the
        # environment cannot change it.
        self._api_key = secrets.token_urlsafe(24)
        self._port: int | None = None
        self._process: _Process | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        # Not reentrant, so astart() can take it from any thread (see _acquire()).
        self._lock = threading.Lock()
        self.model_path: Path | None = None
        self._bundled = False

    def __repr__(self) -> str:
        state = f"running at {self.base_url}" if self.running else "stopped"
        return f"<{type(self).__name__} {self.model_name} {state}>"

    # --- public surface --------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.popen.poll() is None

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs (also its process group id on POSIX)."""
        return self._process.popen.pid if self._process is not None else None

    @property
    def port(self) -> int:
        """The port the server listens on (known once started)."""
        if self._port is None:
            raise LocalModelError("The local model server has not been started.")
        return self._port

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL, ``http://127.0.0.1:PORT/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def api_key(self) -> str:
        """The key this server requires (random per server)."""
        return self._api_key

    @property
    def profile(self) -> ServerProfile:
        """How this server takes structured output (the ``llama.cpp`` profile)."""
        return PROFILES[_PROFILE]

    @property
    def headers(self) -> dict[str, str]:
        """Default headers that mark a client as talking to this server's profile."""
        return {PROFILE_HEADER: _PROFILE}

    def client(self, **kwargs: Any) -> Any:
        """A ready ``openai.OpenAI`` client for this server (``kwargs`` go to the SDK).

        Unless you pass ``http_client``, it ignores proxy variables (``HTTP_PROXY``...): the
        server is on loopback, and a proxy would receive its key and every prompt.
        """
        import openai

        return openai.OpenAI(**self._client_kwargs(kwargs, asynchronous=False))

    def async_client(self, **kwargs: Any) -> Any:
        """A ready ``openai.AsyncOpenAI`` client for this server (no proxy, as :meth:`client`)."""
        import openai

        return openai.AsyncOpenAI(**self._client_kwargs(kwargs, asynchronous=True))

    def _client_kwargs(self, kwargs: dict[str, Any], *, asynchronous: bool) -> dict[str, Any]:
        if not self.running:
            raise LocalModelError(
                "The local model server is not running. Use `with LocalModelServer() as "
                "server:` (or call start()) before asking for a client."
            )
        if "http_client" not in kwargs:
            import openai

            http = openai.DefaultAsyncHttpxClient if asynchronous else openai.DefaultHttpxClient
            kwargs["http_client"] = http(trust_env=False)
        headers = {**self.headers, **(kwargs.pop("default_headers", None) or {})}
        return {
            "base_url": self.base_url,
            "api_key": self._api_key,
            "default_headers": headers,
            **kwargs,
        }

    # --- sync lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        """Start the server and wait until it answers; on any failure nothing is left running.

        Thread-safe: concurrent calls (and :meth:`astart`) start one server.
        """
        with self._lock:
            if self.running:
                return self
            try:
                self._prepare()
                for attempt in range(_PORT_ATTEMPTS):
                    self._launch()
                    try:
                        self._wait_ready()
                        return self
                    except _PortTaken as taken:
                        self._stop_locked()
                        if self._requested_port is not None or attempt + 1 == _PORT_ATTEMPTS:
                            raise self._port_error(taken) from None
            except BaseException:
                self._stop_locked()
                raise
            raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop the server (terminate, then kill after ``stop_timeout``); safe to call twice."""
        with self._lock:
            self._stop_locked()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- async lifecycle: same steps, the waits do not block the event loop -----------------

    async def astart(self) -> Self:
        """Async :meth:`start`: the event loop keeps running while the model loads.

        Takes the same lock as :meth:`start`: concurrent starts, from tasks or threads, start
        one server.
        """
        await self._acquire()
        try:
            if self.running:
                return self
            try:
                await asyncio.to_thread(self._prepare)
                for attempt in range(_PORT_ATTEMPTS):
                    self._launch()
                    try:
                        await self._await_ready()
                        return self
                    except _PortTaken as taken:
                        process = self._detach()
                        if process is not None:
                            await asyncio.to_thread(process.stop, self.stop_timeout)
                        if self._requested_port is not None or attempt + 1 == _PORT_ATTEMPTS:
                            raise self._port_error(taken) from None
            except BaseException:
                # Includes cancellation: stop without awaiting, a cancelled task cannot await.
                self._stop_locked()
                raise
        finally:
            self._lock.release()
        raise AssertionError("unreachable")

    async def astop(self) -> None:
        """Async :meth:`stop`."""
        await self._acquire()
        try:
            process = self._detach()
        finally:
            self._lock.release()
        if process is not None:
            # Cancelled or not, the thread finishes stopping it.
            await asyncio.to_thread(process.stop, self.stop_timeout)

    async def __aenter__(self) -> Self:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None or not self._lock.acquire(blocking=False):
            # (If another task is starting this server, wait for it without blocking the loop.)
            await self.astop()
            return
        # On cancellation there may be no loop iteration left to await in: stop here and now.
        try:
            self._stop_locked()
        finally:
            self._lock.release()

    async def _acquire(self) -> None:
        """Take the start/stop lock without blocking the event loop (cancellation-safe)."""
        delay = 0.005
        while not self._lock.acquire(blocking=False):
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    # --- steps (the caller holds the lock) --------------------------------------------------

    def _detach(self) -> _Process | None:
        """Take the process away from this manager (fast); the caller stops it."""
        process, self._process = self._process, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        return process

    def _stop_locked(self) -> None:
        process = self._detach()
        if process is not None:
            process.stop(self.stop_timeout)

    def _prepare(self) -> None:
        missing = missing_packages(need_model=self._model_path is None)
        if missing:
            raise LocalModelNotInstalledError(missing)
        if self.model_path is None:
            self._bundled = self._model_path is None and not os.environ.get(MODEL_ENV_VAR)
            self.model_path = ensure_model(self._model_path)
        if self._requested_port is not None:
            _check_port(self.host, self._requested_port)

    def _launch(self) -> None:
        assert self.model_path is not None
        self._port = self._requested_port or _free_port(self.host)
        command = server_command(
            self.model_path,
            host=self.host,
            port=self._port,
            model_alias=self.model_name,
            n_ctx=self.n_ctx,
            n_threads=self.n_threads,
            chat_format=self.chat_format or (GEMMA3_CHAT_FORMAT if self._bundled else None),
            extra_args=self.extra_args,
        )
        options: dict[str, Any] = {}
        if os.name == "nt":
            options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        else:
            options["start_new_session"] = True
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"  # output reaches the tail buffer as it is written
        popen = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,  # the private channel, then the lifeline: closed when we die
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            **options,
        )
        process = _Process(popen)
        process.start_reader()
        self._process = process
        self._finalizer = weakref.finalize(self, _stop_quietly, process, self.stop_timeout)
        assert popen.stdin is not None
        # One JSON line, then nothing more: the child reads it before anything else.
        line = json.dumps({"api_key": self._api_key}) + "\n"
        # A child that died at once makes this fail; _poll() then reports its exit and output.
        with contextlib.suppress(OSError):
            popen.stdin.write(line.encode("utf-8"))
            popen.stdin.flush()

    def _poll(self, deadline: float) -> bool:
        """One readiness step: True when ready; raises when the process died or time is up."""
        process = self._process
        assert process is not None
        code = process.popen.poll()
        if code is not None:
            output = process.tail()
            if self._requested_port is None and any(
                marker in output.lower() for marker in _BIND_ERRORS
            ):
                raise _PortTaken
            if self._requested_port is not None and "address already in use" in output.lower():
                raise _PortTaken
            raise ServerStartError(
                f"The local model server exited with code {code} while starting.",
                returncode=code,
                output=output,
            )
        if self._probe():
            return True
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"The local model server did not answer within {self.startup_timeout:g} s "
                "(startup_timeout=). The machine may be very slow or out of memory.",
                returncode=None,
                output=process.tail(),
            )
        return False

    def _probe(self) -> bool:
        """True when our server answers; raises :class:`_PortTaken` when something else does.

        Sends no key: it asks for a proof that only a holder of the key can give.
        """
        challenge = secrets.token_hex(16)
        url = f"http://{self.host}:{self.port}{PROOF_PATH}?challenge={challenge}"
        try:
            with _PROBE_OPENER.open(urllib.request.Request(url), timeout=2.0) as response:
                status, body = response.status, response.read(_PROBE_LIMIT)
        except urllib.error.HTTPError as exc:
            status, body = exc.code, b""
        except (urllib.error.URLError, OSError, ValueError):
            return False  # nothing listening yet (the model is loading), or no answer
        try:
            proof = json.loads(body).get("proof") if status == 200 else None
        except (ValueError, AttributeError):
            proof = None
        if isinstance(proof, str) and hmac.compare_digest(
            proof, proof_of_key(self._api_key, challenge)
        ):
            return True
        raise _PortTaken(
            f"another process is listening on {self.host}:{self.port} (it answered HTTP "
            f"{status} without proving it is our server; the key was not sent to it)"
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.05
        while not self._poll(deadline):
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    async def _await_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.05
        while not await asyncio.to_thread(self._poll, deadline):
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _port_error(self, taken: _PortTaken | None = None) -> PortUnavailableError:
        port = self._requested_port or self._port or 0
        reason = f": {taken}" if taken is not None and str(taken) else ""
        return PortUnavailableError(
            f"The local model server could not bind {self.host}:{port}{reason}"
            + (
                f". Tried {_PORT_ATTEMPTS} free ports; something keeps taking them."
                if self._requested_port is None
                else ". Leave port= out to use a free port."
            ),
            host=self.host,
            port=port,
        )


class _PortTaken(Exception):
    """Internal: the port was taken (the server could not bind it, or another process answers
    on it); the message, if any, says which."""
