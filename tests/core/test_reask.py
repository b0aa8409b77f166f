"""Validation re-ask (``max_validation_retries``) and the token budget across attempts
(``max_total_tokens``), end to end through the loopback server: what is re-asked and what is
not, what the next request says, what is raised when the retries run out, the ``retry`` log
events, ``Retrying`` in event streams. Chat and Responses, sync and async, call / value stream /
event stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from core_support import CANARY_KEY, Recorder
from pydantic import BaseModel, field_validator

from openai_structured import (
    AsyncStructuredClient,
    ContentFilterError,
    Finished,
    InvalidResponseFormatError,
    NoToolCallError,
    OpenAIClientError,
    RefusalError,
    Retrying,
    StructuredClient,
    TokenBudgetError,
    TokenLimitError,
    ToolCall,
    UnknownToolError,
    ValidationError,
    ValueCompleted,
    async_openai_structured_call,
    async_openai_structured_events,
    async_openai_structured_stream,
    openai_structured_call,
    openai_structured_events,
    openai_structured_stream,
)
from openai_structured.testing import FakeOpenAIServer, Reply, ToolCallReply


class Person(BaseModel):
    """A person (the tool of the tool tests)."""

    name: str
    age: int

    @field_validator("age")
    @classmethod
    def _even(cls, value: int) -> int:  # a rule no JSON Schema keyword expresses here
        if value % 2:
            raise ValueError("age must be an even number")
        return value


RULE = "age must be an even number"
PROMPT = "Ada Lovelace, 36."
GOOD = Person(name="Ada", age=36)
PATHS = ("call", "stream", "events")


def bad(age: int = 35, **options: Any) -> Reply:
    return Reply.json({"name": "Ada", "age": age}, **options)


def good(**options: Any) -> Reply:
    return Reply.json({"name": "Ada", "age": 36}, **options)


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _kwargs(api: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    out = {"model": "gpt-4o", "api": api, "user_prompt": PROMPT, **kwargs}
    if "schema" not in out and "tools" not in out:
        out.setdefault("output_schema", Person)
    return out


def run(fake: FakeOpenAIServer, mode: str, api: str, path: str, /, **kwargs: Any) -> Any:
    """A call's value, a value stream's values (list) or an event stream's events (list)."""
    kwargs = _kwargs(api, kwargs)
    if mode == "sync":
        client = fake.client(api_key=CANARY_KEY)
        if path == "call":
            return openai_structured_call(client=client, **kwargs)
        if path == "stream":
            return list(openai_structured_stream(client=client, **kwargs))
        with openai_structured_events(client=client, **kwargs) as events:
            return list(events)

    async def go() -> Any:
        async with fake.async_client(api_key=CANARY_KEY) as client:
            if path == "call":
                return await async_openai_structured_call(client=client, **kwargs)
            if path == "stream":
                return [v async for v in async_openai_structured_stream(client=client, **kwargs)]
            async with async_openai_structured_events(client=client, **kwargs) as events:
                return [e async for e in events]

    return asyncio.run(go())


def final(path: str, out: Any) -> Any:
    """The one result of ``run``: the value of a call, the only value of a value stream, the
    ``Finished.result`` of an event stream (all lists of ToolCall for tool answers)."""
    if path == "call":
        return out
    if path == "stream":
        if out and isinstance(out[0], ToolCall):
            return out
        assert len(out) == 1, out
        return out[0]
    assert type(out[-1]) is Finished
    return out[-1].result


def turns(server: FakeOpenAIServer, api: str, index: int) -> list[dict[str, Any]]:
    body = server.requests[index].json
    return list(body["messages"] if api == "chat" else body["input"])


def rest(server: FakeOpenAIServer, index: int) -> dict[str, Any]:
    """A request without its conversation."""
    return {k: v for k, v in server.requests[index].json.items() if k not in ("messages", "input")}


def content_turn(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# --- re-ask succeeds ------------------------------------------------------------------------


def test_second_attempt_succeeds_with_the_answer_and_the_errors_as_the_next_turn(
    server: FakeOpenAIServer, mode: str, api: str, path: str
) -> None:
    server.queue(bad(35), good())
    out = run(server, mode, api, path, max_validation_retries=2)

    assert final(path, out) == GOOD
    assert len(server.requests) == 2
    first, second = turns(server, api, 0), turns(server, api, 1)
    assert second[: len(first)] == first
    assert len(second) == len(first) + 2
    assert second[-2] == content_turn(compact({"name": "Ada", "age": 35}))
    feedback = second[-1]
    assert feedback["role"] == "user"
    assert "- age: " in feedback["content"]
    assert RULE in feedback["content"]
    assert "35" in feedback["content"]
    assert rest(server, 1) == rest(server, 0)  # same schema, model, parameters


@pytest.mark.parametrize("retries", [1, 2])
def test_retries_run_out_after_one_plus_n_requests(
    server: FakeOpenAIServer, mode: str, api: str, path: str, retries: int, recorder: Recorder
) -> None:
    ages = [1, 3, 5][: retries + 1]
    server.queue(*(bad(a) for a in ages), good())
    with pytest.raises(ValidationError) as info:
        run(server, mode, api, path, max_validation_retries=retries, on_log=recorder)

    assert len(server.requests) == retries + 1
    assert server.pending == 1  # the good answer was never asked for
    err = info.value
    assert len(err.attempts) == retries + 1
    assert all(isinstance(a, ValidationError) for a in err.attempts)
    assert [a.errors()[0]["input"] for a in err.attempts] == ages  # oldest first
    assert [e["attempt"] for e in err.errors()] == list(range(1, retries + 2))
    assert {e["path"] for e in err.errors()} == {"age"}
    assert [e["input"] for e in err.errors()] == ages
    assert f"No valid answer after {retries + 1} attempts" in str(err)
    assert err.content == compact({"name": "Ada", "age": ages[-1]})
    assert recorder.types().count("retry") == retries
    # every request carries every earlier answer
    last = turns(server, api, retries)
    answers = [t["content"] for t in last if t.get("role") == "assistant"]
    assert answers == [compact({"name": "Ada", "age": a}) for a in ages[:-1]]


@pytest.mark.parametrize(
    "given", [{}, {"max_validation_retries": 0}, {"max_validation_retries": None}]
)
def test_no_retry_by_default(
    server: FakeOpenAIServer, mode: str, api: str, path: str, given: dict[str, Any]
) -> None:
    server.queue(bad(35), good())
    with pytest.raises(ValidationError) as info:
        run(server, mode, api, path, **given)
    assert len(server.requests) == 1
    assert server.pending == 1
    assert "attempt" not in info.value.errors()[0]


# --- what is re-asked -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    [
        {},  # strict mode: the model should not, but a server may still send broken JSON
        {"server": "vllm", "model": "my-local-model"},  # no strict mode
    ],
    ids=["strict", "vllm"],
)
def test_content_that_is_not_json_is_re_asked(
    server: FakeOpenAIServer, mode: str, api: str, path: str, where: dict[str, Any]
) -> None:
    server.queue(Reply.text('{"name": "Ada", age: 36}'), good())
    out = run(server, mode, api, path, max_validation_retries=1, **where)

    assert final(path, out) == GOOD
    assert len(server.requests) == 2
    second = turns(server, api, 1)
    assert second[-2] == content_turn('{"name": "Ada", age: 36}')
    assert second[-1]["role"] == "user"
    assert "not valid JSON" in second[-1]["content"]


def test_a_jsonschema_failure_of_a_schema_dict_is_re_asked(
    server: FakeOpenAIServer, mode: str, api: str, path: str
) -> None:
    schema = {
        "type": "object",
        "properties": {"count": {"type": "integer", "minimum": 10}},
        "required": ["count"],
        "additionalProperties": False,
    }
    server.queue(Reply.json({"count": 3}), Reply.json({"count": 12}))
    out = run(
        server, mode, api, path, schema=schema, server="vllm", model="my-local-model",
        max_validation_retries=1,
    )  # fmt: skip

    assert final(path, out) == {"count": 12}
    assert len(server.requests) == 2
    second = turns(server, api, 1)
    assert second[-2] == content_turn('{"count":3}')
    assert "- count: " in second[-1]["content"]
    assert "minimum of 10" in second[-1]["content"]


@pytest.mark.parametrize(
    ("arguments", "words"),
    [({"name": "Ada", "age": 35}, RULE), ('{"name": "Ada", "age"', "not valid JSON")],
    ids=["validator", "not-json"],
)
def test_invalid_tool_arguments_are_re_asked_as_tool_results(
    server: FakeOpenAIServer, mode: str, api: str, path: str, arguments: Any, words: str
) -> None:
    server.queue(
        Reply.tool_call("Person", arguments, id="call_bad"),
        Reply.tool_call("Person", {"name": "Ada", "age": 36}, id="call_good"),
    )
    # max_total_tokens: the budget's estimate must read tool turns (function_call items) too
    out = run(
        server, mode, api, path, tools=[Person], max_validation_retries=1,
        max_total_tokens=1_000_000,
    )  # fmt: skip

    calls = final(path, out)
    assert [(c.id, c.name, c.arguments) for c in calls] == [("call_good", "Person", GOOD)]
    assert len(server.requests) == 2
    first, second = turns(server, api, 0), turns(server, api, 1)
    assert second[: len(first)] == first
    assert len(second) == len(first) + 2
    raw = arguments if isinstance(arguments, str) else compact(arguments)
    if api == "chat":
        answer, result = second[-2], second[-1]
        assert answer["role"] == "assistant"
        assert answer.get("content") in (None, "")
        assert answer["tool_calls"] == [
            {
                "id": "call_bad",
                "type": "function",
                "function": {"name": "Person", "arguments": raw},
            }
        ]
        assert result["role"] == "tool"
        assert result["tool_call_id"] == "call_bad"
        text = result["content"]
    else:
        call, output = second[-2], second[-1]
        assert call["type"] == "function_call"
        assert (call["call_id"], call["name"], call["arguments"]) == ("call_bad", "Person", raw)
        assert output["type"] == "function_call_output"
        assert output["call_id"] == "call_bad"
        text = output["output"]
    assert words in text


def test_an_unknown_tool_is_re_asked(
    server: FakeOpenAIServer, mode: str, api: str, path: str
) -> None:
    server.queue(
        Reply.tool_call("lookup", {"q": "Ada"}, id="call_x"),
        Reply.tool_call("Person", {"name": "Ada", "age": 36}, id="call_y"),
    )
    out = run(server, mode, api, path, tools=[Person], max_validation_retries=1)

    assert [c.arguments for c in final(path, out)] == [GOOD]
    assert len(server.requests) == 2
    last = turns(server, api, 1)[-1]
    text = last["content"] if api == "chat" else last["output"]
    assert (last.get("tool_call_id") or last.get("call_id")) == "call_x"
    assert "no tool named 'lookup'" in text
    assert "Person" in text


def test_text_where_a_tool_call_was_required_is_re_asked(
    server: FakeOpenAIServer, mode: str, api: str, path: str
) -> None:
    server.queue(good(), Reply.tool_call("Person", {"name": "Ada", "age": 36}))
    out = run(server, mode, api, path, tools=[Person], max_validation_retries=1)

    assert [c.arguments for c in final(path, out)] == [GOOD]
    assert len(server.requests) == 2
    second = turns(server, api, 1)
    assert second[-2] == content_turn(compact({"name": "Ada", "age": 36}))
    assert "a tool call was required" in second[-1]["content"]


def test_exhausted_on_a_tools_only_request_keeps_the_last_error(
    server: FakeOpenAIServer, mode: str, api: str, path: str
) -> None:
    server.queue(good(), good())
    with pytest.raises(NoToolCallError) as info:
        run(server, mode, api, path, tools=[Person], max_validation_retries=1)
    assert len(server.requests) == 2
    assert [type(a) for a in info.value.attempts] == [NoToolCallError, NoToolCallError]


# --- what is not re-asked ---------------------------------------------------------------------

NOT_RETRIED = {
    "refusal": (lambda: Reply.refusal("I can't help with that."), RefusalError),
    "length": (lambda: Reply.length('{"name": "Ad'), TokenLimitError),
    "content_filter": (lambda: Reply.content_filter('{"name": '), ContentFilterError),
}


@pytest.mark.parametrize("kind", list(NOT_RETRIED))
def test_refusal_cut_off_and_content_filter_are_not_re_asked(
    server: FakeOpenAIServer, mode: str, api: str, path: str, kind: str
) -> None:
    reply, expected = NOT_RETRIED[kind]
    server.queue(reply(), good())
    with pytest.raises(expected) as info:
        run(server, mode, api, path, max_validation_retries=2)
    assert type(info.value) is expected  # not a TokenBudgetError
    assert len(server.requests) == 1
    assert server.pending == 1
    assert info.value.attempts == ()


@pytest.mark.parametrize("kind", list(NOT_RETRIED))
def test_an_outcome_not_re_asked_after_a_re_ask_carries_the_earlier_errors(
    server: FakeOpenAIServer, mode: str, api: str, path: str, kind: str
) -> None:
    reply, expected = NOT_RETRIED[kind]
    server.queue(bad(35), reply(), good())
    with pytest.raises(expected) as info:
        run(server, mode, api, path, max_validation_retries=2)
    assert len(server.requests) == 2
    assert server.pending == 1
    (earlier,) = info.value.attempts
    assert isinstance(earlier, ValidationError)
    assert earlier.errors()[0]["input"] == 35


# --- what you see -----------------------------------------------------------------------------


def test_each_re_ask_emits_a_retry_log_event(
    server: FakeOpenAIServer, mode: str, api: str, path: str, recorder: Recorder
) -> None:
    server.queue(bad(1, id="resp_a"), bad(3, id="resp_b"), good(id="resp_c"))
    out = run(server, mode, api, path, max_validation_retries=3, on_log=recorder)

    assert final(path, out) == GOOD
    retries = [(e, level) for e, level in recorder.events if e.type == "retry"]
    assert [e.data["attempt"] for e, _ in retries] == [1, 2]
    assert [e.data["response_id"] for e, _ in retries] == ["resp_a", "resp_b"]
    assert {level for _, level in retries} == {"warning"}
    for event, _ in retries:
        assert event.data["reason"] == "validation"
        assert event.data["max_validation_retries"] == 3
        assert "ValidationError" in str(event.data["error"])
        assert RULE in str(event.data["error"])
    assert CANARY_KEY not in repr(recorder.events)


def test_value_stream_yields_only_the_value_that_validates(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    server.queue(bad(35), bad(37), good())
    values = run(server, mode, api, "stream", max_validation_retries=2)
    assert values == [GOOD]
    assert len(server.requests) == 3


def test_value_stream_holds_the_values_of_an_attempt_until_it_validates(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    """Two calls in one answer, the first valid and the second not: with re-asks on, the
    valid first call of the failed attempt is never yielded, only the re-asked answer's."""
    first = Reply.tools(
        ToolCallReply("Person", {"name": "Ada", "age": 36}),
        ToolCallReply("Person", {"name": "Bob", "age": 35}),
    )
    second = Reply.tools(
        ToolCallReply("Person", {"name": "Ada", "age": 36}),
        ToolCallReply("Person", {"name": "Bob", "age": 34}),
    )
    server.queue(first, second)
    calls = run(server, mode, api, "stream", tools=[Person], max_validation_retries=1)
    assert [(c.name, c.arguments) for c in calls] == [
        ("Person", Person(name="Ada", age=36)),
        ("Person", Person(name="Bob", age=34)),
    ]
    assert len(server.requests) == 2


def test_without_re_asks_a_value_stream_yields_each_value_as_it_closes(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    server.queue(
        Reply.tools(
            ToolCallReply("Person", {"name": "Ada", "age": 36}),
            ToolCallReply("Person", {"name": "Bob", "age": 35}),
        )
    )
    seen: list[Any] = []
    with pytest.raises(ValidationError):
        if mode == "sync":
            client = server.client(api_key=CANARY_KEY)
            for call in openai_structured_stream(
                **_kwargs(api, {"tools": [Person]}), client=client
            ):
                seen.append(call)
        else:

            async def go() -> None:
                async with server.async_client(api_key=CANARY_KEY) as client:
                    stream = async_openai_structured_stream(
                        **_kwargs(api, {"tools": [Person]}), client=client
                    )
                    async for call in stream:
                        seen.append(call)

            asyncio.run(go())
    assert [c.arguments for c in seen] == [Person(name="Ada", age=36)]


def test_event_stream_yields_retrying_then_the_good_value_and_finished(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    server.queue(bad(35, id="resp_1"), good(id="resp_2"))
    events = run(server, mode, api, "events", max_validation_retries=1)

    kinds = [type(e) for e in events]
    assert kinds.count(Retrying) == 1
    at = kinds.index(Retrying)
    assert ValueCompleted not in kinds[:at]  # the bad value never completed
    completed = [e for e in events[at:] if type(e) is ValueCompleted]
    assert [e.value for e in completed] == [GOOD]
    retrying = events[at]
    assert isinstance(retrying, Retrying)
    assert retrying.attempt == 1
    assert isinstance(retrying.error, ValidationError)
    assert [(e["path"], e["input"]) for e in retrying.errors] == [("age", 35)]
    finished = events[-1]
    assert type(finished) is Finished
    assert finished.result == GOOD
    assert finished.response_id == "resp_2"
    assert finished.summary is not None
    assert finished.summary.attempts == 2
    assert finished.summary.response_ids == ("resp_1", "resp_2")
    assert finished.summary.usage.requests == 2


def test_event_stream_retrying_for_content_that_is_not_json_has_no_field_errors(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    server.queue(Reply.text("{bad"), good())
    events = run(server, mode, api, "events", max_validation_retries=1)
    (retrying,) = [e for e in events if type(e) is Retrying]
    assert isinstance(retrying.error, InvalidResponseFormatError)
    assert retrying.errors == ()
    assert events[-1].result == GOOD


def test_an_unknown_tool_in_a_stream_is_retried_with_its_error(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    server.queue(
        Reply.tool_call("lookup", {}), Reply.tool_call("Person", {"name": "Ada", "age": 36})
    )
    events = run(server, mode, api, "events", tools=[Person], max_validation_retries=1)
    (retrying,) = [e for e in events if type(e) is Retrying]
    assert isinstance(retrying.error, UnknownToolError)
    assert [c.arguments for c in events[-1].result] == [GOOD]


def test_client_defaults_carry_the_retries(server: FakeOpenAIServer, mode: str, api: str) -> None:
    server.queue(bad(35), good(), bad(35), good())
    if mode == "sync":
        client = StructuredClient(server.client(api_key=CANARY_KEY), max_validation_retries=1)
        value = client.complete("gpt-4o", output_schema=Person, api=api, user_prompt=PROMPT)
        values = list(client.stream("gpt-4o", output_schema=Person, api=api, user_prompt=PROMPT))
    else:

        async def go() -> tuple[Any, list[Any]]:
            async with server.async_client(api_key=CANARY_KEY) as raw:
                client = AsyncStructuredClient(raw, max_validation_retries=1)
                v = await client.complete(
                    "gpt-4o", output_schema=Person, api=api, user_prompt=PROMPT
                )
                s = client.stream("gpt-4o", output_schema=Person, api=api, user_prompt=PROMPT)
                return v, [x async for x in s]

        value, values = asyncio.run(go())
    assert value == GOOD
    assert values == [GOOD]
    assert len(server.requests) == 4


def test_retries_with_several_choices_are_refused_before_sending(
    server: FakeOpenAIServer, mode: str
) -> None:
    with pytest.raises(OpenAIClientError, match="max_validation_retries works with n=1"):
        run(server, mode, "chat", "call", n=2, max_validation_retries=1)
    assert server.requests == []


@pytest.mark.parametrize(
    "arguments",
    [{"name": "Bob", "age": 35}, '{"name": "Bob", "age"'],
    ids=["validator", "not-json"],
)
def test_the_feedback_of_parallel_calls_goes_to_the_call_that_failed(
    server: FakeOpenAIServer, mode: str, api: str, arguments: Any
) -> None:
    server.queue(
        Reply.tools(
            ToolCallReply("Person", {"name": "Ada", "age": 36}, id="call_ok"),
            ToolCallReply("Person", arguments, id="call_bad"),
        ),
        Reply.tool_call("Person", {"name": "Ada", "age": 36}),
    )
    run(server, mode, api, "call", tools=[Person], max_validation_retries=1)
    results = {
        t.get("tool_call_id") or t.get("call_id"): t.get("content") or t.get("output")
        for t in turns(server, api, 1)
        if t.get("role") == "tool" or t.get("type") == "function_call_output"
    }
    assert "Not run" in results["call_ok"]
    assert "rejected" in results["call_bad"] and "Not run" not in results["call_bad"]


# --- max_total_tokens -------------------------------------------------------------------------


def test_a_budget_too_small_for_the_first_request_sends_nothing(
    server: FakeOpenAIServer, mode: str, api: str, path: str
) -> None:
    server.queue(good())
    with pytest.raises(TokenBudgetError) as info:
        run(server, mode, api, path, max_total_tokens=5, max_validation_retries=1)
    assert server.requests == []
    err = info.value
    assert isinstance(err, TokenLimitError) and isinstance(err, ValueError)
    assert (err.budget, err.spent) == (5, 0)
    assert err.needed > 5
    assert err.attempts == ()
    assert err.usage is None
    assert err.__cause__ is None
    assert "Nothing was sent" in str(err)


def test_the_budget_counts_the_output_limit_sent(
    server: FakeOpenAIServer, mode: str, api: str, path: str
) -> None:
    with pytest.raises(TokenBudgetError) as info:
        run(server, mode, api, path, max_total_tokens=900, max_output_tokens=1000)
    assert server.requests == []
    assert info.value.needed > 1000
    server.queue(good())
    assert (
        final(path, run(server, mode, api, path, max_total_tokens=2000, max_output_tokens=1000))
        == GOOD
    )
    assert len(server.requests) == 1


def test_a_budget_that_allows_the_first_attempt_only(
    server: FakeOpenAIServer, mode: str, api: str, path: str
) -> None:
    server.queue(bad(35).with_usage(5000, 100), good())
    with pytest.raises(TokenBudgetError) as info:
        run(server, mode, api, path, max_total_tokens=1000, max_validation_retries=2)

    assert len(server.requests) == 1
    assert server.pending == 1
    err = info.value
    assert (err.budget, err.spent) == (1000, 5100)
    assert 0 < err.needed < 1000
    assert err.usage is not None
    assert (err.usage["prompt_tokens"], err.usage["completion_tokens"]) == (5000, 100)
    assert isinstance(err.__cause__, ValidationError)
    assert err.attempts == (err.__cause__,)
    assert err.__cause__.errors()[0]["input"] == 35
    assert "attempt 2" in str(err)


def test_a_budget_large_enough_lets_the_re_ask_through(
    server: FakeOpenAIServer, mode: str, api: str, path: str
) -> None:
    server.queue(bad(35).with_usage(300, 20), good().with_usage(400, 20))
    out = run(server, mode, api, path, max_total_tokens=5000, max_validation_retries=1)
    assert final(path, out) == GOOD
    assert len(server.requests) == 2


# --- argument checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_validation_retries", -1),
        ("max_validation_retries", "2"),
        ("max_validation_retries", True),
        ("max_validation_retries", 1.0),
        ("max_total_tokens", 0),
        ("max_total_tokens", -10),
        ("max_total_tokens", False),
        ("max_total_tokens", "1000"),
    ],
)
def test_bad_values_are_a_type_error_before_sending(
    server: FakeOpenAIServer, mode: str, api: str, path: str, name: str, value: Any
) -> None:
    server.queue(good())
    with pytest.raises(TypeError, match=name):
        run(server, mode, api, path, **{name: value})
    assert server.requests == []
