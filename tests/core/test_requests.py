"""What reaches the server: argument forms, parameters sent (and not sent), the schema."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from core_support import CANARY_KEY, Call
from pydantic import BaseModel

from openai_structured import (
    AsyncStructuredClient,
    StructuredClient,
    TokenParameterError,
    openai_structured_call,
)
from openai_structured.testing import FakeOpenAIServer, Reply


class Person(BaseModel):
    name: str
    age: int


class WithDefaults(BaseModel):
    name: str
    nickname: str | None = None
    retries: int = 5
    tags: list[str] = []


def test_system_and_user_prompt_become_two_messages(server: FakeOpenAIServer, call: Call) -> None:
    server.queue(Reply.json({"name": "Ada", "age": 36}))
    call(output_schema=Person, system_prompt="Be precise.", user_prompt="Ada, 36")
    body = server.last_request.json
    messages = body["messages"] if "messages" in body else body["input"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("system", "Be precise."),
        ("user", "Ada, 36"),
    ]


def test_parameters_not_given_are_not_sent(server: FakeOpenAIServer, call: Call) -> None:
    server.queue(Reply.json({"name": "Ada", "age": 36}))
    call(output_schema=Person, user_prompt="Ada, 36")
    body = server.last_request.json
    for name in (
        "temperature",
        "top_p",
        "frequency_penalty",
        "presence_penalty",
        "reasoning_effort",
        "reasoning",
        "max_tokens",
        "max_completion_tokens",
        "max_output_tokens",
        "stream",
    ):
        assert name not in body


def test_chat_sends_the_strict_schema_and_every_given_parameter(server: FakeOpenAIServer) -> None:
    server.queue(Reply.json({"name": "Ada", "age": 36}))
    openai_structured_call(
        client=server.client(api_key=CANARY_KEY),
        model="gpt-4o",
        output_schema=Person,
        user_prompt="Ada, 36",
        temperature=0.3,
        top_p=0.9,
        frequency_penalty=0.5,
        presence_penalty=-0.5,
        max_output_tokens=100,
        seed=7,
        stop=["\n\n"],
    )
    body = server.last_request.json
    assert body["temperature"] == 0.3 and body["top_p"] == 0.9
    assert body["frequency_penalty"] == 0.5 and body["presence_penalty"] == -0.5
    assert body["seed"] == 7 and body["stop"] == ["\n\n"]
    assert body["max_completion_tokens"] == 100  # gpt-4o is known: the registry says so
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Person"
    assert fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert sorted(schema["required"]) == ["age", "name"]


def test_responses_sends_text_format_input_and_reasoning(server: FakeOpenAIServer) -> None:
    server.queue(Reply.json({"name": "Ada", "age": 36}))
    openai_structured_call(
        client=server.client(api_key=CANARY_KEY),
        model="o3-mini",
        api="responses",
        output_schema=Person,
        messages=[
            {"role": "system", "content": "Be precise."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Who is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            },
        ],
        reasoning_effort="low",
        max_output_tokens=50,
    )
    body = server.last_request.json
    assert body["reasoning"] == {"effort": "low"}
    assert body["max_output_tokens"] == 50
    assert body["text"]["format"]["type"] == "json_schema"
    assert body["text"]["format"]["strict"] is True
    assert body["input"][1]["content"] == [
        {"type": "input_text", "text": "Who is this?"},
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
    ]


def test_optional_fields_are_sent_nullable_and_defaults_come_back(
    server: FakeOpenAIServer, call: Call
) -> None:
    server.queue(Reply.json({"name": "Ada", "nickname": None, "retries": None, "tags": None}))
    result = call(output_schema=WithDefaults, user_prompt="Ada")
    assert result == WithDefaults(name="Ada", nickname=None, retries=5, tags=[])


def test_messages_and_prompts_together_are_refused(server: FakeOpenAIServer, call: Call) -> None:
    with pytest.raises(TypeError, match="either messages= or system_prompt="):
        call(output_schema=Person, user_prompt="x", messages=[{"role": "user", "content": "x"}])
    assert server.requests == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"output_schema": Person, "schema": {"type": "object"}}, "not both"),
        ({}, "output_schema="),
        ({"output_schema": {"type": "object"}}, "for a JSON Schema dict use schema="),
        ({"output_schema": object()}, "must be a type pydantic can validate"),
        ({"schema": Person}, "JSON Schema dict"),
    ],
)
def test_schema_argument_mistakes_are_explained(
    server: FakeOpenAIServer, call: Call, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        call(user_prompt="x", **kwargs)
    assert server.requests == []


def test_two_token_parameters_raise_token_parameter_error(
    server: FakeOpenAIServer, call: Call
) -> None:
    with pytest.raises(TokenParameterError, match="max_output_tokens \\(recommended\\)"):
        call(output_schema=Person, user_prompt="x", max_output_tokens=5, max_tokens=5)
    assert server.requests == []


def test_positional_arguments_are_refused(server: FakeOpenAIServer) -> None:
    with pytest.raises(TypeError):
        openai_structured_call(server.client(), "gpt-4o", Person)  # type: ignore[misc]


def test_structured_client_object_style(server: FakeOpenAIServer) -> None:
    server.queue(Reply.json({"name": "Ada", "age": 36}))
    client = StructuredClient(server.client(api_key=CANARY_KEY), temperature=0.2)
    assert client.complete("gpt-4o", output_schema=Person, user_prompt="Ada") == Person(
        name="Ada", age=36
    )
    assert server.last_request.json["temperature"] == 0.2
    assert CANARY_KEY not in repr(client)


def test_async_structured_client_object_style(server: FakeOpenAIServer) -> None:
    server.queue(Reply.json({"name": "Ada", "age": 36}))

    async def run() -> Any:
        async with server.async_client(api_key=CANARY_KEY) as raw:
            client = AsyncStructuredClient(raw, api="responses")
            return await client.complete("gpt-4o", output_schema=Person, user_prompt="Ada")

    assert asyncio.run(run()) == Person(name="Ada", age=36)
    assert server.last_request.path.endswith("/responses")


def test_extra_fields_pass_through(server: FakeOpenAIServer) -> None:
    server.queue(Reply.json({"name": "Ada", "age": 36}))
    openai_structured_call(
        client=server.client(),
        model="gpt-4o",
        output_schema=Person,
        user_prompt="Ada",
        metadata={"run": "42"},
        store=False,
        extra_headers={"X-Trace": "abc"},
        extra_body={"custom": 1},
    )
    request = server.last_request
    assert request.json["metadata"] == {"run": "42"} and request.json["store"] is False
    assert request.json["custom"] == 1
    assert request.headers["x-trace"] == "abc"
