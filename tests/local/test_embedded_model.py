"""End-to-end: the library against the embedded model over real HTTP (SPEC §6, issue 5).

One server for the module; the model answers a small extraction in about 2 s on 2 cores, so
the calls are few and their answers short.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
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
from openai_structured.local import LocalModelServer, ServerStartError, _shared

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
