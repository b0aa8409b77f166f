"""A loopback TCP proxy whose first connections are slow to arrive, as a distant server's are.

A client's request reaches the server some time after the client let it go; on loopback that
time is nearly nil, over a network it is tens of milliseconds, longest for a burst of new
connections. :class:`SlowStart` holds the first bytes of each of its first ``slow``
connections for ``delay`` seconds, then relays both ways unchanged.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType


class SlowStart:
    """``http://127.0.0.1:PORT`` in front of ``target_port``; use as a context manager."""

    def __init__(self, target_port: int, *, delay: float, slow: int) -> None:
        self.target_port = target_port
        self.delay = delay
        self.slow = slow
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1"

    def __enter__(self) -> SlowStart:
        self._start(self._accept)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in list(self._threads):
            thread.join(5)

    def _start(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        self._listener.settimeout(0.05)  # closing a socket does not wake a blocked accept()
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                self.connections += 1
                slow = self.connections <= self.slow
                self._sockets.append(client)
            self._start(self._serve, client, slow)

    def _serve(self, client: socket.socket, slow: bool) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets.append(upstream)
        try:
            first = client.recv(65536)
            if slow:
                time.sleep(self.delay)
            upstream.sendall(first)
        except OSError:
            return
        self._start(self._pump, upstream, client)
        self._pump(client, upstream)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
