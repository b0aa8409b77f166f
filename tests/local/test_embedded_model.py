"""End-to-end: the library against the embedded model over real HTTP (SPEC §6, issue 5).

One server for the module; the model answers a small extraction in about 2 s on 2 cores, so
the calls are few and their answers short.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from local_support import assert_gone, require_local_extra, server_processes
from pydantic import BaseModel, Field

from openai_structured import (
    Finished,
    ItemCompleted,
    PartialUpdate,
    TokenLimitError,
    async_openai_structured_call,
    openai_structured_call,
    openai_structured_events,
    openai_structured_stream,
)
from openai_structured.local import (
    LocalModelServer,
    PortUnavailableError,
    ServerStartError,
    _server,
    _shared,
)

pytestmark = pytest.mark.local


class Person(BaseModel):
    name: str = Field(description="The person's full name")
    age: int = Field(description="Age in years")


PERSON_PROMPT = "Extract the person's name and age as JSON."
PERSON_TEXT = "Maria Lopez is 34 years old and lives in Madrid."

CITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "The city named in the text"},
        "country": {"type": "string", "description": "The country the city is in"},
    },
    "required": ["city", "country"],
    "additionalProperties": False,
}


def test_structured_call_returns_a_validated_pydantic_model(
    local_server: LocalModelServer,
) -> None:
    person = openai_structured_call(
        client=local_server.client(),
        model=local_server.model_name,
        output_schema=Person,
        system_prompt=PERSON_PROMPT,
        user_prompt=PERSON_TEXT,
        temperature=0,
        max_output_tokens=60,
    )
    assert isinstance(person, Person)
    assert person.name == "Maria Lopez"
    assert person.age == 34


async def test_concurrent_async_dict_schema_calls_each_get_a_whole_answer(
    local_server: LocalModelServer,
) -> None:
    # Two calls at once: the server queues them (interrupt_requests=false) instead of
    # cutting the first one short. Any model name is served by the one local model.
    client = local_server.async_client()
    texts = ["I flew to Paris, France last week.", "Our office is in Tokyo, Japan."]
    results = await asyncio.gather(
        *(
            async_openai_structured_call(
                client=client,
                model="gpt-4o-mini",
                schema=CITY_SCHEMA,
                system_prompt="Extract the city and its country as JSON.",
                user_prompt=text,
                temperature=0,
                max_output_tokens=60,
            )
            for text in texts
        )
    )
    assert [r["city"] for r in results] == ["Paris", "Tokyo"]
    assert [r["country"] for r in results] == ["France", "Japan"]


def test_too_few_output_tokens_raise_token_limit_error_with_the_partial_json(
    local_server: LocalModelServer,
) -> None:
    with pytest.raises(TokenLimitError) as info:
        openai_structured_call(
            client=local_server.client(),
            model=local_server.model_name,
            output_schema=Person,
            system_prompt=PERSON_PROMPT,
            user_prompt=PERSON_TEXT,
            temperature=0,
            max_output_tokens=4,
        )
    error = info.value
    assert error.content and error.content.lstrip().startswith("{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(error.content)
    assert error.usage and error.usage["completion_tokens"] == 4


def test_call_without_a_client_uses_the_shared_embedded_server(
    local_server: LocalModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OPENAI_STRUCTURED_LOCAL", raising=False)
    # Lend the module's server to the shared slot so no second model is loaded.
    monkeypatch.setattr(_shared, "_server", local_server)
    person = openai_structured_call(
        model="gpt-4o",
        output_schema=Person,
        system_prompt=PERSON_PROMPT,
        user_prompt=PERSON_TEXT,
        temperature=0,
        max_output_tokens=60,
    )
    assert person == Person(name="Maria Lopez", age=34)


# --- measured server facts the llama.cpp profile relies on ------------------------------------


def test_server_rejects_openai_json_schema_response_format(local_server: LocalModelServer) -> None:
    # Measured: HTTP 500 (llama-cpp-python reports request validation errors as 500, which the
    # SDK would retry twice), naming the two types it accepts.
    client = openai.OpenAI(
        base_url=local_server.base_url, api_key=local_server.api_key, max_retries=0
    )
    with pytest.raises(openai.InternalServerError, match="'text' or 'json_object'"):
        client.chat.completions.create(
            model=local_server.model_name,
            messages=[{"role": "user", "content": PERSON_TEXT}],
            response_format={  # type: ignore[typeddict-item]
                "type": "json_schema",
                "json_schema": {"name": "Person", "schema": Person.model_json_schema()},
            },
            max_tokens=5,
        )


def test_server_streams_grammar_constrained_json_object_with_schema(
    local_server: LocalModelServer,
) -> None:
    client = openai.OpenAI(base_url=local_server.base_url, api_key=local_server.api_key)
    stream = client.chat.completions.create(
        model=local_server.model_name,
        messages=[
            {"role": "system", "content": PERSON_PROMPT},
            {"role": "user", "content": PERSON_TEXT},
        ],
        response_format={"type": "json_object", "schema": Person.model_json_schema()},  # type: ignore[typeddict-unknown-key]
        stream=True,
        temperature=0,
        max_tokens=60,
    )
    deltas = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert len([d for d in deltas if d]) > 3  # really incremental
    assert Person.model_validate_json("".join(deltas)) == Person(name="Maria Lopez", age=34)


# --- the process is always cleaned up ---------------------------------------------------------


def test_a_bad_model_file_fails_fast_with_the_server_output(tmp_path: Path) -> None:
    require_local_extra()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file" * 100)
    before = set(server_processes())
    started = time.monotonic()
    with pytest.raises(ServerStartError) as info:
        LocalModelServer(bad, startup_timeout=60).start()
    assert time.monotonic() - started < 30
    assert info.value.returncode not in (None, 0)
    assert "server output" in str(info.value)
    assert set(server_processes()) <= before


def test_server_is_gone_after_an_exception_inside_the_block() -> None:
    require_local_extra()
    before = set(server_processes())
    server = LocalModelServer()
    with pytest.raises(RuntimeError), server:
        pid = server.pid
        assert pid is not None and pid in server_processes()
        raise RuntimeError("boom")
    assert_gone(pid)
    assert set(server_processes()) <= before


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_server_dies_with_its_parent_even_when_the_parent_is_sigkilled(tmp_path: Path) -> None:
    require_local_extra()
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, time
            from openai_structured.local import LocalModelServer
            server = LocalModelServer().start()
            print(server.pid, flush=True)
            time.sleep(600)
            """
        )
    )
    parent = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert child in server_processes()
        parent.send_signal(signal.SIGKILL)  # no atexit, no finalizer: only the lifeline
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while child in server_processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert child not in server_processes(), "the server outlived its SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


# --- streams ---------------------------------------------------------------------------------


class Trip(BaseModel):
    cities: list[str] = Field(description="Every city named in the text")


def test_stream_yields_the_validated_value(local_server: LocalModelServer) -> None:
    values = list(
        openai_structured_stream(
            client=local_server.client(),
            model=local_server.model_name,
            output_schema=Person,
            system_prompt=PERSON_PROMPT,
            user_prompt=PERSON_TEXT,
            temperature=0,
            max_output_tokens=60,
        )
    )
    assert values == [Person(name="Maria Lopez", age=34)]


def test_event_stream_gives_partials_items_and_a_final_result(
    local_server: LocalModelServer,
) -> None:
    partials: list[Any] = []
    items: list[ItemCompleted] = []
    finished: list[Finished] = []
    with openai_structured_events(
        client=local_server.client(),
        model=local_server.model_name,
        output_schema=Trip,
        messages=[
            {"role": "system", "content": "List the cities named in the text as JSON."},
            {"role": "user", "content": "We drove from Lyon to Milan."},
            {"role": "assistant", "content": '{"cities": ["Lyon", "Milan"]}'},
            {"role": "user", "content": "I flew from Oslo to Rome."},
        ],
        temperature=0,
        max_output_tokens=40,
    ) as stream:
        for event in stream:
            if isinstance(event, PartialUpdate):
                partials.append(event.snapshot())
            elif isinstance(event, ItemCompleted):
                items.append(event)
            elif isinstance(event, Finished):
                finished.append(event)
    assert len(finished) == 1
    result = finished[0].result
    assert isinstance(result, Trip) and result.cities
    assert [i.item for i in items] == result.cities  # each element as soon as it closed
    assert len(partials) > len(result.cities)  # the object filled in step by step


# --- the key stays private, and goes only to our own server (issue 10) ----------------------


def _process_group(pid: int) -> list[int]:
    """``pid`` and every process in its group (the server runs in a session of its own)."""
    members = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != pid:
            try:
                fields = (entry / "stat").read_bytes().rsplit(b") ", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pid:  # field 5 of stat: the process group id
                members.append(int(entry.name))
    return members


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
def test_the_api_key_is_on_no_command_line_and_in_no_environment(
    local_server: LocalModelServer,
) -> None:
    assert local_server.pid is not None
    key = local_server.api_key.encode()
    processes = _process_group(local_server.pid)
    for pid in processes:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert key not in cmdline, f"the key is on the command line of {pid}"
        assert b"api_key" not in cmdline
        assert key not in Path(f"/proc/{pid}/environ").read_bytes()
    # Yet the server got it, through the pipe: without it a request is refused.
    unauthorized = openai.OpenAI(
        base_url=local_server.base_url, api_key="not-the-key", max_retries=0
    )
    with pytest.raises(openai.AuthenticationError):
        unauthorized.models.list()
    assert [m.id for m in local_server.client().models.list().data] == ["gemma-3-270m"]


class _PortGrabber:
    """A listener that took a port first and answers everything like an OpenAI server."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.received = bytearray()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        body = b'{"object": "list", "data": [{"id": "gemma-3-270m", "object": "model"}]}'
        while not self._done.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                data = b""
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in data and len(data) < 65536:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    self.received += data
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
                    )

    def close(self) -> None:
        self._done.set()
        self._thread.join(5)
        self.sock.close()


@pytest.mark.parametrize("port", ["requested", "picked"])
def test_a_process_that_grabbed_the_port_never_gets_the_key(
    port: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race: the port was free when checked (or picked), then another local process bound
    # it before the server did, and answers on it as if it were the server.
    require_local_extra()
    before = set(server_processes())
    grabber = _PortGrabber()
    try:
        if port == "requested":
            monkeypatch.setattr(_server, "_check_port", lambda host, port: None)
            server = LocalModelServer(port=grabber.port)
        else:
            monkeypatch.setattr(_server, "_free_port", lambda host: grabber.port)
            server = LocalModelServer()
        started = time.monotonic()
        with pytest.raises(PortUnavailableError) as info:
            server.start()
        assert time.monotonic() - started < 20
    finally:
        grabber.close()
    received = bytes(grabber.received)
    assert b"/openai-structured/proof?challenge=" in received  # it was asked, and failed
    assert server.api_key.encode() not in received
    assert b"authorization" not in received.lower()
    assert info.value.port == grabber.port
    assert "another process is listening" in str(info.value)
    assert not server.running
    assert set(server_processes()) <= before


# --- concurrent starts launch one server (issue 10) -------------------------------------------


class _CountingPopen:
    """Wraps subprocess.Popen: every server process the test caused, so none can leak."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []
        self._popen = subprocess.Popen

    def __call__(self, *args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        process = self._popen(*args, **kwargs)
        self.started.append(process)
        return process

    def kill_leftovers(self) -> None:
        for process in self.started:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


@pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX")
def test_concurrent_starts_from_threads_and_tasks_launch_one_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_local_extra()
    before = set(server_processes())
    popen = _CountingPopen()
    monkeypatch.setattr("openai_structured.local._server.subprocess.Popen", popen)
    server = LocalModelServer()
    go = threading.Barrier(5)  # 4 threads and the event loop, released together
    urls: list[str] = []

    def start_in_thread() -> None:
        go.wait(30)
        urls.append(server.start().base_url)

    async def start_in_tasks() -> list[str]:
        await asyncio.to_thread(go.wait, 30)
        started = await asyncio.gather(*(server.astart() for _ in range(4)))
        return [s.base_url for s in started]

    threads = [threading.Thread(target=start_in_thread) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        urls += asyncio.run(start_in_tasks())
        for thread in threads:
            thread.join(60)
        assert len(popen.started) == 1, f"{len(popen.started)} server processes were started"
        assert len(urls) == 8 and len(set(urls)) == 1
        assert set(server_processes()) - before == {server.pid}
        server.stop()
        assert set(server_processes()) <= before, "a server process outlived stop()"
    finally:
        server.stop()
        popen.kill_leftovers()


@pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX")
def test_concurrent_first_calls_share_one_embedded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    require_local_extra()
    before = set(server_processes())
    popen = _CountingPopen()
    monkeypatch.setattr("openai_structured.local._server.subprocess.Popen", popen)
    monkeypatch.setattr(_shared, "_server", None)
    go = threading.Barrier(6)
    servers: list[LocalModelServer] = []

    def first_call() -> None:
        go.wait(30)
        servers.append(_shared.shared_server())

    threads = [threading.Thread(target=first_call) for _ in range(6)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(popen.started) == 1
        assert len(servers) == 6 and len({id(s) for s in servers}) == 1
        assert len({s.base_url for s in servers}) == 1
        _shared.stop_shared_server()
        assert set(server_processes()) <= before
    finally:
        _shared.stop_shared_server()
        popen.kill_leftovers()


def test_clients_never_send_the_key_through_a_proxy(
    local_server: LocalModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = _PortGrabber()  # a proxy named in the environment, which records what it gets
    try:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        assert [m.id for m in local_server.client().models.list().data] == ["gemma-3-270m"]

        async def listed() -> list[str]:
            async with local_server.async_client() as client:
                return [m.id async for m in client.models.list()]

        assert asyncio.run(listed()) == ["gemma-3-270m"]
    finally:
        proxy.close()
    assert bytes(proxy.received) == b""
