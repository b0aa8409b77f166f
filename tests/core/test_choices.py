"""Several choices (``n``) through the loopback server: a call returns one result per choice in
choice order; a failing choice raises its own typed error with ``choice_index`` and the other
choices' results; streams, the Responses API and re-asks refuse ``n > 1`` before sending."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from core_support import CANARY_KEY, Call, Recorder
from pydantic import BaseModel

from openai_structured import (
    EmptyResponseError,
    InvalidResponseFormatError,
    OpenAIClientError,
    RefusalError,
    TokenLimitError,
    ToolCall,
    UnknownToolError,
    ValidationError,
    async_openai_structured_call,
    async_openai_structured_events,
    async_openai_structured_stream,
    openai_structured_call,
    openai_structured_events,
    openai_structured_stream,
)
from openai_structured.testing import FakeOpenAIServer, Reply, ToolCallReply


class Person(BaseModel):
    name: str
    age: int


class Add(BaseModel):
    a: int
    b: int


PEOPLE = [Person(name="Ada", age=36), Person(name="Alan", age=41), Person(name="Grace", age=85)]


def _reply(person: Person) -> Reply:
    return Reply.json(person.model_dump())


@pytest.fixture
def chat_call(server: FakeOpenAIServer, mode: str) -> Call:
    """A call on Chat Completions (the API that has ``n``) unless ``api=`` says otherwise."""

    def sync_call(**kwargs: Any) -> Any:
        kwargs = {"model": "gpt-4o", "api": "chat", "user_prompt": "Three people.", **kwargs}
        return openai_structured_call(client=server.client(api_key=CANARY_KEY), **kwargs)

    def async_call(**kwargs: Any) -> Any:
        kwargs = {"model": "gpt-4o", "api": "chat", "user_prompt": "Three people.", **kwargs}

        async def run() -> Any:
            async with server.async_client(api_key=CANARY_KEY) as client:
                return await async_openai_structured_call(client=client, **kwargs)

        return asyncio.run(run())

    return sync_call if mode == "sync" else async_call


def _output_tokens(usage: dict[str, Any] | None) -> int | None:
    assert usage is not None
    return usage.get("completion_tokens")


def test_n_3_returns_three_results_in_choice_order(
    server: FakeOpenAIServer, chat_call: Call
) -> None:
    server.queue(Reply.choices(*(_reply(p) for p in PEOPLE)))
    result = chat_call(output_schema=Person, n=3)

    assert isinstance(result, list)
    assert result == PEOPLE
    assert all(type(r) is Person for r in result)
    assert len(server.requests) == 1
    sent = server.requests[0].json
    assert sent is not None
    assert sent["n"] == 3
    assert sent["response_format"]["json_schema"]["name"] == "Person"


def test_n_2_with_a_json_schema_returns_two_dicts(
    server: FakeOpenAIServer, chat_call: Call
) -> None:
    schema = {
        "type": "object",
        "properties": {"x": {"type": "integer"}},
        "required": ["x"],
        "additionalProperties": False,
    }
    server.queue(Reply.choices(Reply.json({"x": 1}), Reply.json({"x": 2})))
    assert chat_call(schema=schema, n=2) == [{"x": 1}, {"x": 2}]
    assert server.requests[0].json is not None
    assert server.requests[0].json["n"] == 2


def test_n_1_returns_a_single_result_not_a_list(server: FakeOpenAIServer, chat_call: Call) -> None:
    server.queue(_reply(PEOPLE[0]))
    assert chat_call(output_schema=Person, n=1) == PEOPLE[0]
    assert server.requests[0].json is not None
    assert server.requests[0].json.get("n", 1) == 1


def test_fewer_choices_than_asked_returns_what_came_and_logs_a_warning(
    server: FakeOpenAIServer, chat_call: Call, recorder: Recorder
) -> None:
    server.queue(_reply(PEOPLE[0]))  # the server answers one choice to n=3
    assert chat_call(output_schema=Person, n=3, on_log=recorder) == [PEOPLE[0]]
    warnings = [
        e.data for e, level in recorder.events if e.type == "validation" and level == "warning"
    ]
    assert warnings
    assert warnings[0]["choices"] == 1
    assert warnings[0]["requested"] == 3


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        (Reply.json({"name": "Alan", "age": "old"}), ValidationError),
        (Reply.refusal("I can't."), RefusalError),
        (Reply.text("Alan, 41"), InvalidResponseFormatError),
        (Reply.empty(), EmptyResponseError),
        (Reply.length('{"name": "Al'), TokenLimitError),
    ],
    ids=["validation", "refusal", "not-json", "empty", "cut-off"],
)
def test_a_failing_choice_raises_its_error_with_its_index_and_the_other_results(
    server: FakeOpenAIServer, chat_call: Call, bad: Reply, expected: type[Exception]
) -> None:
    server.queue(
        Reply.choices(
            _reply(PEOPLE[0]).with_usage(30, 4),
            bad.with_usage(30, 5),
            _reply(PEOPLE[2]).with_usage(30, 6),
        )
    )
    with pytest.raises(expected) as info:
        chat_call(output_schema=Person, n=3)
    err = info.value
    assert type(err) is expected
    assert isinstance(err, OpenAIClientError)
    assert err.choice_index == 1
    assert err.choice_results == {0: PEOPLE[0], 2: PEOPLE[2]}
    # The whole completion's usage: prompt tokens once, every choice's completion tokens.
    usage = getattr(err, "usage", None)
    assert usage is not None
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (30, 15)
    assert len(server.requests) == 1


def test_the_first_failing_choice_is_raised_when_several_fail(
    server: FakeOpenAIServer, chat_call: Call
) -> None:
    server.queue(
        Reply.choices(Reply.refusal("No."), _reply(PEOPLE[1]), Reply.json({"name": 1, "age": 2}))
    )
    with pytest.raises(RefusalError) as info:
        chat_call(output_schema=Person, n=3)
    assert info.value.choice_index == 0
    assert info.value.refusal == "No."
    assert info.value.choice_results == {1: PEOPLE[1]}


def test_validation_error_of_a_choice_has_its_content_and_field_path(
    server: FakeOpenAIServer, chat_call: Call
) -> None:
    server.queue(
        Reply.choices(
            _reply(PEOPLE[0]).with_options(id="chatcmpl-n"),  # the completion's id
            Reply.json({"name": "Alan", "age": "old"}),
        )
    )
    with pytest.raises(ValidationError) as info:
        chat_call(output_schema=Person, n=2)
    err = info.value
    assert [e["path"] for e in err.errors()] == ["age"]
    assert err.content == '{"name":"Alan","age":"old"}'
    assert err.response_id == "chatcmpl-n"
    assert (err.choice_index, err.choice_results) == (1, {0: PEOPLE[0]})


def test_tools_with_n_2_give_each_choice_a_list_of_tool_calls(
    server: FakeOpenAIServer, chat_call: Call
) -> None:
    server.queue(
        Reply.choices(
            Reply.tool_call("Add", {"a": 1, "b": 2}, id="call_a"),
            Reply.tools(
                ToolCallReply("Add", {"a": 3, "b": 4}, id="call_b"),
                ToolCallReply("Add", {"a": 5, "b": 6}, id="call_c"),
            ),
        )
    )
    result = chat_call(tools=[Add], n=2)

    assert isinstance(result, list) and len(result) == 2
    first, second = result
    assert first == [ToolCall(0, "call_a", "Add", Add(a=1, b=2), '{"a":1,"b":2}')]
    assert second == [
        ToolCall(0, "call_b", "Add", Add(a=3, b=4), '{"a":3,"b":4}'),
        ToolCall(1, "call_c", "Add", Add(a=5, b=6), '{"a":5,"b":6}'),
    ]
    sent = server.requests[0].json
    assert sent is not None
    assert sent["n"] == 2
    assert [t["function"]["name"] for t in sent["tools"]] == ["Add"]


def test_tools_and_a_schema_with_n_2_mix_values_and_tool_calls(
    server: FakeOpenAIServer, chat_call: Call
) -> None:
    server.queue(Reply.choices(_reply(PEOPLE[0]), Reply.tool_call("Add", {"a": 1, "b": 2})))
    value, calls = chat_call(tools=[Add], output_schema=Person, n=2)
    assert value == PEOPLE[0]
    assert [c.arguments for c in calls] == [Add(a=1, b=2)]


def test_a_choice_calling_an_unknown_tool_raises_with_its_index(
    server: FakeOpenAIServer, chat_call: Call
) -> None:
    server.queue(
        Reply.choices(Reply.tool_call("Add", {"a": 1, "b": 2}), Reply.tool_call("Mul", {}))
    )
    with pytest.raises(UnknownToolError) as info:
        chat_call(tools=[Add], n=2)
    err = info.value
    assert (err.tool_name, err.known, err.choice_index) == ("Mul", ("Add",), 1)
    assert err.choice_results is not None
    assert [c.arguments for c in err.choice_results[0]] == [Add(a=1, b=2)]


# --- refused before sending ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["values", "events"])
def test_n_above_1_on_a_stream_is_refused_before_sending(
    server: FakeOpenAIServer, mode: str, api: str, kind: str
) -> None:
    server.queue(_reply(PEOPLE[0]))
    kwargs: dict[str, Any] = {
        "model": "gpt-4o",
        "api": api,
        "output_schema": Person,
        "user_prompt": "Three people.",
        "n": 3,
    }
    if mode == "sync":
        client = server.client(api_key=CANARY_KEY)
        start = openai_structured_stream if kind == "values" else openai_structured_events
        with pytest.raises(OpenAIClientError, match="n=3 is not supported on streams") as info:
            start(client=client, **kwargs)  # checked when called, before iterating
    else:

        async def run() -> None:
            async with server.async_client(api_key=CANARY_KEY) as client:
                start: Any = (
                    async_openai_structured_stream
                    if kind == "values"
                    else async_openai_structured_events
                )
                start(client=client, **kwargs)

        with pytest.raises(OpenAIClientError, match="n=3 is not supported on streams") as info:
            asyncio.run(run())
    assert type(info.value) is OpenAIClientError
    assert "openai_structured_call(..., n=3)" in str(info.value)
    assert len(server.requests) == 0


def test_n_2_on_the_responses_api_is_refused_before_sending(
    server: FakeOpenAIServer, chat_call: Call
) -> None:
    server.queue(_reply(PEOPLE[0]))
    with pytest.raises(OpenAIClientError, match="'n' is not supported by the Responses API"):
        chat_call(api="responses", output_schema=Person, n=2)
    assert len(server.requests) == 0


def test_n_1_on_the_responses_api_is_accepted_and_not_sent(
    server: FakeOpenAIServer, chat_call: Call
) -> None:
    server.queue(_reply(PEOPLE[0]))
    assert chat_call(api="responses", output_schema=Person, n=1) == PEOPLE[0]
    assert server.requests[0].json is not None
    assert "n" not in server.requests[0].json


@pytest.mark.parametrize("n", [0, -1, "2", 2.0, True, False], ids=repr)
def test_n_that_is_not_a_positive_integer_is_a_type_error(
    server: FakeOpenAIServer, call: Call, n: Any
) -> None:
    server.queue(_reply(PEOPLE[0]))
    with pytest.raises(TypeError, match="n= must be a positive integer"):
        call(output_schema=Person, user_prompt="People.", n=n)
    assert len(server.requests) == 0


@pytest.mark.parametrize("n", [0, "2"], ids=repr)
def test_n_that_is_not_a_positive_integer_is_a_type_error_on_streams(
    server: FakeOpenAIServer, api: str, n: Any
) -> None:
    client = server.client(api_key=CANARY_KEY)
    for start in (openai_structured_stream, openai_structured_events):
        with pytest.raises(TypeError, match="n= must be a positive integer"):
            start(
                client=client, model="gpt-4o", api=api, output_schema=Person, user_prompt="x", n=n
            )
    assert len(server.requests) == 0


@pytest.mark.parametrize("retries", [1, 3])
def test_n_above_1_with_validation_retries_is_refused_before_sending(
    server: FakeOpenAIServer, chat_call: Call, retries: int
) -> None:
    server.queue(Reply.choices(_reply(PEOPLE[0]), _reply(PEOPLE[1])))
    with pytest.raises(OpenAIClientError, match="max_validation_retries works with n=1") as info:
        chat_call(output_schema=Person, n=2, max_validation_retries=retries)
    assert ".choice_index" in str(info.value)
    assert len(server.requests) == 0


def test_n_above_1_with_zero_validation_retries_is_allowed(
    server: FakeOpenAIServer, chat_call: Call
) -> None:
    server.queue(Reply.choices(_reply(PEOPLE[0]), _reply(PEOPLE[1])))
    assert chat_call(output_schema=Person, n=2, max_validation_retries=0) == PEOPLE[:2]
    assert len(server.requests) == 1
