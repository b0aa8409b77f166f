"""``timeout=`` is a total deadline and a non-streamed body is bounded (issue 10): a server that
trickles bytes cannot keep a call or a stream alive, and a huge body is not read whole."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from core_support import CANARY_KEY
from pydantic import BaseModel

from openai_structured import (
    BufferOverflowError,
    StreamInterruptedError,
    async_openai_structured_call,
    openai_structured_call,
    openai_structured_stream,
)
from openai_structured.testing import FakeOpenAIServer, Fault, Reply


class Person(BaseModel):
    name: str
    age: int


ARGS: dict[str, Any] = {"model": "m", "output_schema": Person, "user_prompt": "Ada"}

BODY = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": '{"name": "Ada", "age": 36}'},
                "finish_reason": "stop",
            }
        ],
    }
).encode()


@pytest.fixture
def trickler() -> Iterator[str]:
    """A loopback HTTP server that sends its headers at once, then one body byte per 0.05 s
    (the whole body would take about 10 s): bounded, and it stops by itself."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(BODY)
                )
                for byte in BODY:
                    if stop.is_set():
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(0.05)
            except OSError:
                return

    def serve() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    thread.join(2)
    listener.close()


def test_a_call_to_a_trickling_server_ends_at_its_total_timeout(trickler: str) -> None:
    client = openai.OpenAI(base_url=trickler, api_key=CANARY_KEY, max_retries=0)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError) as info:
        openai_structured_call(client=client, timeout=0.5, **ARGS)
    # Each read came well within the per-read timeout: only a total deadline ends it early.
    assert time.monotonic() - started < 5
    assert "in total" in str(info.value)


def test_an_async_call_to_a_trickling_server_ends_at_its_total_timeout(trickler: str) -> None:
    async def run() -> None:
        async with openai.AsyncOpenAI(base_url=trickler, api_key=CANARY_KEY, max_retries=0) as c:
            await async_openai_structured_call(client=c, timeout=0.5, **ARGS)

    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        asyncio.run(run())
    assert time.monotonic() - started < 5


def test_a_slowly_streaming_server_ends_at_the_streams_total_timeout(
    server: FakeOpenAIServer,
) -> None:
    # 60 events 0.1 s apart: 6 s for the whole answer, each gap far below the timeout.
    server.queue(Fault.delay(between_events=0.1, reply=Reply.json({"name": "A" * 200, "age": 1})))
    client = server.client(api_key=CANARY_KEY, max_retries=0)
    started = time.monotonic()
    with pytest.raises(StreamInterruptedError) as info:
        list(openai_structured_stream(client=client, timeout=0.6, **ARGS))
    assert isinstance(info.value, openai.APITimeoutError)
    assert time.monotonic() - started < 5
    assert info.value.content  # what arrived is kept


def test_a_body_past_max_response_bytes_is_not_read_whole(server: FakeOpenAIServer) -> None:
    client = server.client(api_key=CANARY_KEY)
    server.queue(Reply.json({"name": "A" * 50_000, "age": 1}))
    with pytest.raises(BufferOverflowError) as info:
        openai_structured_call(client=client, max_response_bytes=10_000, **ARGS)
    assert info.value.limit == 10_000
    assert "max_response_bytes" in str(info.value)
    server.queue(Reply.json({"name": "A" * 50_000, "age": 1}))
    assert openai_structured_call(client=client, **ARGS).age == 1  # the default is 16 MiB
    with pytest.raises(TypeError, match="max_response_bytes"):
        openai_structured_call(client=client, max_response_bytes=0, **ARGS)
