"""No ``$ref`` is ever fetched or read (issue 10): a reference outside the schema is a
SchemaError before any request, on every server profile; validators refuse retrieval."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from core_support import CANARY_KEY

from openai_structured import SchemaError, openai_structured_call, openai_structured_stream
from openai_structured._validation import jsonschema_errors, jsonschema_validator
from openai_structured.testing import FakeOpenAIServer, Reply


@pytest.fixture
def trap() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback listener that records anything sent to it (a reference must never reach it)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.5)
                try:
                    received.append(conn.recv(4096))
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/schema.json", received
    stop.set()
    thread.join(2)
    listener.close()


def _schema(ref: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"$ref": ref}},
        "required": ["name"],
        "additionalProperties": False,
    }


@pytest.mark.parametrize("profile", ["compatible", "vllm", "ollama", "llama.cpp"])
@pytest.mark.parametrize("kind", ["http", "file"])
def test_an_outside_reference_is_a_schema_error_before_any_request(
    server: FakeOpenAIServer,
    trap: tuple[str, list[bytes]],
    tmp_path: Path,
    profile: str,
    kind: str,
) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"const": "TOP-SECRET-CONTENT"}')
    url = trap[0] if kind == "http" else secret.as_uri()
    client = server.client(api_key=CANARY_KEY)
    for start in (
        lambda: openai_structured_call(
            client=client, model="m", schema=_schema(url), user_prompt="x", server=profile
        ),
        lambda: openai_structured_stream(
            client=client, model="m", schema=_schema(url), user_prompt="x", server=profile
        ),
    ):
        with pytest.raises(SchemaError) as info:
            start()
        assert info.value.path == "#/properties/name"
        assert "never fetched" in str(info.value) or "not followed" in str(info.value)
        assert "TOP-SECRET-CONTENT" not in str(info.value)
    assert server.requests == []
    assert trap[1] == []


def test_references_inside_the_schema_still_work_on_a_plain_json_schema_server(
    server: FakeOpenAIServer,
) -> None:
    schema = {
        "$defs": {"name": {"type": "string", "minLength": 2}},
        "type": "object",
        "properties": {"name": {"$ref": "#/$defs/name"}},
        "required": ["name"],
    }
    server.queue(Reply.json({"name": "Ada"}))
    client = server.client(api_key=CANARY_KEY)
    result = openai_structured_call(
        client=client, model="m", schema=schema, user_prompt="x", server="vllm"
    )
    assert result == {"name": "Ada"}


def test_an_embedded_resource_with_its_own_id_is_not_outside(server: FakeOpenAIServer) -> None:
    schema = {
        "$id": "https://example.invalid/root.json",
        "$defs": {"n": {"$id": "https://example.invalid/name.json", "type": "string"}},
        "type": "object",
        "properties": {"name": {"$ref": "name.json"}},
        "required": ["name"],
    }
    server.queue(Reply.json({"name": 5}))
    client = server.client(api_key=CANARY_KEY)
    with pytest.raises(Exception) as info:
        openai_structured_call(
            client=client, model="m", schema=schema, user_prompt="x", server="vllm"
        )
    # Resolved inside the document: the answer is checked against the embedded schema.
    assert type(info.value).__name__ == "ValidationError"
    assert "is not of type 'string'" in str(info.value)


def test_a_validator_never_retrieves_a_reference(trap: tuple[str, list[bytes]]) -> None:
    validator = jsonschema_validator(_schema(trap[0]))
    with pytest.raises(SchemaError, match="never fetched"):
        jsonschema_errors(validator, {"name": "Ada"})
    assert trap[1] == []


def test_a_keyword_with_an_invalid_value_is_a_schema_error_not_a_jsonschema_exception(
    server: FakeOpenAIServer,
) -> None:
    client = server.client(api_key=CANARY_KEY)
    bad = {"type": "object", "properties": {"n": {"type": "integer", "minimum": "x"}}}
    with pytest.raises(SchemaError) as info:
        openai_structured_call(client=client, model="m", schema=bad, user_prompt="x", server="vllm")
    assert info.value.path == "#/properties/n/minimum"
    assert server.requests == []
