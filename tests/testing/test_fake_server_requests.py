"""Request capture, scripting rules, lifecycle, secrets, the command line, and speed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import openai
import pytest
from fake_server_calls import call_async, call_sync

from openai_structured.testing import (
    DEFAULT_API_KEY,
    FakeOpenAIServer,
    Fault,
    Headers,
    Reply,
    Usage,
)
from openai_structured.testing._script import item_from_dict

CANARY = "sk-proj-CANARY0123456789abcdef"


# -- capture ------------------------------------------------------------------------------


def test_captures_method_path_headers_and_body(server: FakeOpenAIServer) -> None:
    server.queue(Reply.json({"a": 1}))
    client = server.client(api_key=CANARY)
    client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        temperature=0.3,
        extra_headers={"X-Trace": "t1"},
    )
    (req,) = server.requests
    assert req.method == "POST"
    assert req.path == "/v1/chat/completions"
    assert req.endpoint == "chat"
    assert req.stream is False
    assert req.json["temperature"] == 0.3
    assert req.json["messages"] == [{"role": "user", "content": "hi"}]
    assert json.loads(req.body) == req.json
    assert req.headers["authorization"] == f"Bearer {CANARY}"
    assert req.headers["X-TRACE"] == "t1" and "x-trace" in req.headers
    assert server.last_request is req


async def test_captures_async_responses_stream_request(server: FakeOpenAIServer) -> None:
    server.queue(Reply.text("x"))
    async with server.async_client() as client:
        await call_async(client, "responses", True, max_output_tokens=50)
    req = server.last_request
    assert (req.endpoint, req.stream, req.json["max_output_tokens"]) == ("responses", True, 50)
    assert req.headers["x-stainless-async"].startswith("async")


def test_no_request_sent_leaves_no_record(server: FakeOpenAIServer) -> None:
    server.client()
    assert server.requests == []
    with pytest.raises(AssertionError):
        _ = server.last_request


def test_repr_hides_credentials(server: FakeOpenAIServer) -> None:
    server.queue(Reply.text("x"))
    call_sync(server.client(api_key=CANARY), "chat", False)
    req = server.last_request
    assert CANARY not in repr(req)
    assert CANARY not in repr(req.headers)
    assert CANARY not in str(server.requests)
    assert req.headers.redacted()["authorization"] == "***"


def test_headers_are_case_insensitive_and_merge_repeats() -> None:
    headers = Headers([("Accept", "a"), ("accept", "b"), ("Api-Key", CANARY)])
    assert headers["ACCEPT"] == "a, b"
    assert len(headers) == 2 and set(headers) == {"accept", "api-key"}
    assert CANARY not in repr(headers)


def test_server_prints_nothing_it_receives(capfd: pytest.CaptureFixture[str]) -> None:
    with FakeOpenAIServer(Reply.text("x"), Fault.rate_limit(), Fault.disconnect()) as server:
        client = server.client(api_key=CANARY)
        call_sync(client, "chat", False)
        for _ in range(2):
            with pytest.raises(openai.APIError):
                call_sync(client, "responses", True)
        with pytest.raises(openai.InternalServerError):  # nothing scripted
            call_sync(client, "chat", False)
    out, err = capfd.readouterr()
    assert CANARY not in out + err
    assert out == err == ""


# -- routing and scripting ------------------------------------------------------------------


def test_models_endpoint_lists_and_retrieves(server: FakeOpenAIServer) -> None:
    client = server.client(_strict_response_validation=True)
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o" in ids and "gpt-4o-mini" in ids
    assert client.models.retrieve("my-model").id == "my-model"
    assert server.last_request.endpoint == "models"
    assert server.pending == 0


def test_unscripted_request_gets_a_clear_500(server: FakeOpenAIServer) -> None:
    with pytest.raises(openai.InternalServerError, match="no scripted reply"):
        call_sync(server.client(), "chat", False)


def test_unknown_url_is_404(server: FakeOpenAIServer) -> None:
    with pytest.raises(openai.NotFoundError):
        server.client().embeddings.create(model="m", input="x")


def test_queue_is_fifo_and_counts_pending(server: FakeOpenAIServer) -> None:
    server.queue(Reply.text("1"), Reply.text("2")).queue(Fault.rate_limit(), Reply.text("3"))
    assert server.pending == 4
    client = server.client()
    assert call_sync(client, "chat", False).content == "1"
    assert call_sync(client, "responses", False).content == "2"
    with pytest.raises(openai.RateLimitError):
        call_sync(client, "chat", True)
    assert call_sync(client, "chat", True).content == "3"
    assert server.pending == 0
    server.queue(Reply.text("4"))
    server.reset()
    assert server.pending == 0 and server.requests == []


def test_queue_rejects_other_objects(server: FakeOpenAIServer) -> None:
    with pytest.raises(TypeError):
        server.queue("hello")  # type: ignore[arg-type]


def test_constructor_takes_a_script() -> None:
    with FakeOpenAIServer(Reply.text("a"), default_reply=Reply.text("d")) as server:
        client = server.client()
        assert [call_sync(client, "chat", False).content for _ in range(2)] == ["a", "d"]


def test_required_api_key_rejects_others() -> None:
    with FakeOpenAIServer(default_reply=Reply.text("ok"), require_api_key="sk-right") as server:
        with pytest.raises(openai.AuthenticationError):
            call_sync(server.client(), "chat", False)
        assert call_sync(server.client(api_key="sk-right"), "chat", False).content == "ok"


def test_fault_without_reply_streams_the_default_reply(server: FakeOpenAIServer) -> None:
    server.default_reply = Reply.text("from default")
    server.queue(Fault.delay(0.01))
    assert call_sync(server.client(), "chat", True).content == "from default"


# -- lifecycle ------------------------------------------------------------------------------


def _server_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("FakeOpenAIServer")}


async def test_stop_leaves_no_threads_or_listening_socket() -> None:
    before = _server_threads()
    server = FakeOpenAIServer(default_reply=Reply.text("x")).start()
    assert len(_server_threads()) == len(before) + 1
    port = server.port
    assert server.base_url == f"http://127.0.0.1:{port}/v1"
    client = server.client()  # keeps a keep-alive connection open
    call_sync(client, "chat", False)
    call_sync(client, "responses", True)
    aclient = server.async_client()
    await call_async(aclient, "chat", True)
    assert len(_server_threads()) >= len(before) + 3  # the loop and two live connections
    start = time.perf_counter()
    server.stop()
    assert time.perf_counter() - start < 1
    await aclient.close()
    assert _server_threads() <= before
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 1):
        pass
    server.stop()  # idempotent
    with pytest.raises(RuntimeError):
        _ = server.port


async def test_async_context_manager() -> None:
    async with (
        FakeOpenAIServer(default_reply=Reply.text("x")) as server,
        server.async_client() as client,
    ):
        assert (await call_async(client, "responses", False)).content == "x"


def test_default_api_key_is_a_dummy(server: FakeOpenAIServer) -> None:
    server.queue(Reply.text("x"))
    call_sync(server.client(), "chat", False)
    assert server.last_request.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"


# -- script from JSON (command line, control endpoints) -------------------------------------


def test_items_from_dicts() -> None:
    assert item_from_dict({"json": {"a": 1}, "chunk_size": 2}) == Reply.json({"a": 1}, chunk_size=2)
    assert item_from_dict({"refusal": "no"}) == Reply.refusal("no")
    assert item_from_dict({"text": "{", "finish_reason": "length"}) == Reply.length("{")
    assert item_from_dict({"content": None, "finish_reason": "content_filter"}) == (
        Reply.content_filter()
    )
    assert item_from_dict({"text": "x", "usage": {"prompt_tokens": 1, "completion_tokens": 2}}) == (
        Reply.text("x", usage=Usage(1, 2))
    )
    assert item_from_dict({"fault": "status", "status": 429, "retry_after": 1}) == Fault.status(
        429, retry_after=1
    )
    assert item_from_dict(
        {"fault": "disconnect", "after_deltas": 3, "reply": {"text": "abc"}}
    ) == Fault.disconnect(after_deltas=3, reply=Reply.text("abc"))
    with pytest.raises(ValueError):
        item_from_dict({"fault": "explode"})
    with pytest.raises(ValueError):
        item_from_dict({"json": 1, "text": "1"})


def test_invalid_scripts_are_rejected_early() -> None:
    with pytest.raises(ValueError):
        Reply.text("abc", chunks=["a", "b"])
    with pytest.raises(ValueError):
        Reply.text("abc", chunk_size=0)
    with pytest.raises(ValueError):
        Fault.status(200)
    with pytest.raises(ValueError):
        Fault.disconnect(after_events=1, after_bytes=2)


def _cli(*args: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "openai_structured.testing", *args],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    code = proc.wait(5)
    assert proc.stdout is not None
    proc.stdout.close()
    assert code == 0


def test_command_line_server_with_script_and_control_endpoints(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps(
            {
                "default": {"json": {"default": True}},
                "queue": [
                    {"fault": "rate_limit", "retry_after": 3},
                    {"text": "first", "chunk_size": 2},
                ],
            }
        )
    )
    proc, base_url = _cli("--port", "0", "--script", str(script), "--chunk-size", "3")
    try:
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        client = openai.OpenAI(base_url=base_url, api_key=CANARY, max_retries=0)
        with pytest.raises(openai.RateLimitError) as err:
            call_sync(client, "chat", False)
        assert err.value.response.headers["retry-after"] == "3"
        assert call_sync(client, "chat", True).deltas == ["fi", "rs", "t"]
        assert call_sync(client, "responses", True).deltas == [
            '{"d',
            "efa",
            "ult",
            '":t',
            "rue",
            "}",
        ]
        root = base_url.removesuffix("/v1")
        httpx2.post(f"{root}/_fake/queue", json=[{"refusal": "nope"}]).raise_for_status()
        assert call_sync(client, "chat", False).refusal == "nope"
        listing = httpx2.get(f"{root}/_fake/requests").json()
        assert len(listing) == 4 and listing[0]["json"]["model"] == "gpt-4o"
        assert CANARY not in json.dumps(listing)
        client.close()
    finally:
        _stop(proc)


def test_command_line_default_file(tmp_path: Path) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text('{"items": [1, 2, 3]}')
    proc, base_url = _cli("--default-file", str(payload))
    try:
        with openai.OpenAI(base_url=base_url, api_key="x", max_retries=0) as client:
            assert call_sync(client, "responses", True).content == '{"items": [1, 2, 3]}'
    finally:
        _stop(proc)


# -- speed ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/chat/completions", "/responses"])
def test_emits_a_293_kb_stream_in_4_char_deltas_quickly(
    server: FakeOpenAIServer, path: str
) -> None:
    items = [
        {"id": i, "name": f"item {i}", "tags": ["x", "y"], "note": "z" * 80} for i in range(2000)
    ]
    content = json.dumps({"items": items})
    assert 280_000 < len(content) < 300_000
    server.queue(Reply.text(content, chunk_size=4))
    start = time.perf_counter()
    with (
        httpx2.Client() as http,
        http.stream(
            "POST", server.base_url + path, json={"model": "m", "stream": True, "input": "x"}
        ) as resp,
    ):
        body = b"".join(resp.iter_raw(1 << 16))
    elapsed = time.perf_counter() - start
    assert body.count(b"\n\n") >= len(content) // 4
    # About 0.05 s on 2 cores (server render + write + client read); generous for CI noise.
    assert elapsed < 3.0
