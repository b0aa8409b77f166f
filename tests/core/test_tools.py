"""Function tools through the loopback server: what ``tools=`` sends (both APIs' forms), the typed
calls that come back on a call, a value stream and an event stream (sync and async), and every
way a tool answer can fail, with the same error on every path."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import openai
import pytest
from core_support import CANARY_KEY
from pydantic import BaseModel

from openai_structured import (
    Finished,
    InvalidResponseFormatError,
    NoToolCallError,
    SchemaError,
    TokenLimitError,
    ToolCall,
    ToolCallCompleted,
    ToolCallPartial,
    UnknownToolError,
    ValidationError,
    ValueCompleted,
    async_openai_structured_call,
    async_openai_structured_events,
    async_openai_structured_stream,
    openai_structured_call,
    openai_structured_events,
    openai_structured_stream,
    to_strict_schema,
)
from openai_structured.testing import FakeOpenAIServer, Fault, Reply, ToolCallReply


class GetWeather(BaseModel):
    """Look up the weather for a city."""

    city: str
    days: int = 1


class Add(BaseModel):
    a: int
    b: int


class Untyped(BaseModel):
    """A tool whose parameter strict mode cannot express."""

    anything: Any


#: A plain function tool in the Chat Completions form; ``minLength`` is not sent in strict mode
#: (it becomes words in the description) but is still checked on the arguments.
LOOKUP_PARAMETERS = {
    "type": "object",
    "properties": {"q": {"type": "string", "minLength": 2}},
    "required": ["q"],
    "additionalProperties": False,
}
LOOKUP_CHAT = {
    "type": "function",
    "function": {"name": "lookup", "description": "Search.", "parameters": LOOKUP_PARAMETERS},
}
LOOKUP_RESPONSES = {
    "type": "function",
    "name": "lookup",
    "description": "Search.",
    "parameters": LOOKUP_PARAMETERS,
}
LOOKUP_SENT_PARAMETERS = {
    "type": "object",
    "properties": {"q": {"type": "string", "description": "At least 2 characters."}},
    "required": ["q"],
    "additionalProperties": False,
}

PATHS = ("call", "stream", "events")

#: The attributes a tool answer's error carries; each must agree across the paths.
ATTRIBUTES = ("response_id", "content", "usage", "tool_name", "known", "requested_tokens")


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _run(
    server: FakeOpenAIServer,
    mode: str,
    api: str,
    path: str,
    *,
    on_event: Callable[[Any], None] | None = None,
    **kwargs: Any,
) -> Any:
    """One call (its result), value stream (the values) or event stream (the events)."""
    kwargs = {"model": "gpt-4o", "api": api, "user_prompt": "Weather in Paris?", **kwargs}

    def seen(event: Any) -> Any:
        if on_event is not None:
            on_event(event)  # while the event is fresh (partials go stale)
        return event

    if mode == "sync":
        client = server.client(api_key=CANARY_KEY)
        if path == "call":
            return openai_structured_call(client=client, **kwargs)
        if path == "stream":
            return list(openai_structured_stream(client=client, **kwargs))
        with openai_structured_events(client=client, **kwargs) as events:
            return [seen(e) for e in events]

    async def run() -> Any:
        async with server.async_client(api_key=CANARY_KEY) as client:
            if path == "call":
                return await async_openai_structured_call(client=client, **kwargs)
            if path == "stream":
                return [v async for v in async_openai_structured_stream(client=client, **kwargs)]
            async with async_openai_structured_events(client=client, **kwargs) as events:
                return [seen(e) async for e in events]

    return asyncio.run(run())


def _calls(result: Any, path: str) -> list[ToolCall]:
    """The tool calls a path delivered: the call's list, the streamed values, or Finished's."""
    if path == "call":
        assert isinstance(result, list)
        return result
    if path == "stream":
        return list(result)
    finished = result[-1]
    assert type(finished) is Finished
    assert isinstance(finished.result, list)
    assert list(finished.tool_calls) == finished.result
    assert [e.call for e in result if type(e) is ToolCallCompleted] == finished.result
    return finished.result


def _sent_tools(server: FakeOpenAIServer) -> list[dict[str, Any]]:
    assert len(server.requests) == 1
    body = server.requests[0].json
    assert body is not None
    tools = body["tools"]
    assert isinstance(tools, list)
    return tools


def _function_entry(
    api: str, name: str, description: str | None, parameters: Any, strict: bool
) -> dict[str, Any]:
    """A function tool as the API's request carries it."""
    function: dict[str, Any] = {"name": name}
    if description is not None:
        function["description"] = description
    function["parameters"] = parameters
    function["strict"] = strict
    if api == "chat":
        return {"type": "function", "function": function}
    return {"type": "function", **function}


def _errors_on_every_path(
    server: FakeOpenAIServer,
    mode: str,
    api: str,
    reply: Callable[[], Reply],
    expected: type[Exception],
    *,
    compare: tuple[str, ...] = ATTRIBUTES,
    **kwargs: Any,
) -> dict[str, Any]:
    """Raise ``expected`` on each path with the same message and attributes; return them."""
    errors: dict[str, Any] = {}
    for path in PATHS:
        server.queue(reply())
        with pytest.raises(expected) as info:
            _run(server, mode, api, path, **kwargs)
        errors[path] = info.value
    first = errors["call"]
    for path, error in errors.items():
        assert type(error) is type(first), path
        assert str(error) == str(first), path
        for name in compare:
            assert getattr(error, name, None) == getattr(first, name, None), (path, name)
    return errors


def _output_tokens(usage: dict[str, Any] | None) -> int | None:
    assert usage is not None
    return usage.get("completion_tokens", usage.get("output_tokens"))


# --- what is sent -------------------------------------------------------------------------------


def test_a_model_class_is_a_strict_tool_named_after_it_on_every_path(
    server: FakeOpenAIServer, mode: str, api: str, path: str
) -> None:
    server.queue(Reply.tool_call("GetWeather", {"city": "Paris", "days": 3}, id="call_w"))
    result = _run(server, mode, api, path, tools=[GetWeather])

    assert _sent_tools(server) == [
        _function_entry(
            api,
            "GetWeather",
            "Look up the weather for a city.",
            to_strict_schema(GetWeather),
            strict=True,
        )
    ]
    sent = server.requests[0].json
    assert sent is not None
    assert sent.get("stream", False) is (path != "call")
    assert "response_format" not in sent and "text" not in sent  # tools only: no output schema
    (call,) = _calls(result, path)
    assert isinstance(call, ToolCall)
    assert (call.index, call.id, call.name) == (0, "call_w", "GetWeather")
    assert call.arguments == GetWeather(city="Paris", days=3)
    assert call.raw_arguments == '{"city":"Paris","days":3}'


def test_a_model_tools_null_for_a_defaulted_field_is_restored_to_the_default(
    server: FakeOpenAIServer, mode: str, api: str, path: str
) -> None:
    # Strict mode makes every field required, a defaulted one nullable; null means "the default".
    parameters = to_strict_schema(GetWeather)
    assert parameters["required"] == ["city", "days"]
    server.queue(Reply.tool_call("GetWeather", {"city": "Rome", "days": None}))
    (call,) = _calls(_run(server, mode, api, path, tools=[GetWeather]), path)
    assert call.arguments == GetWeather(city="Rome", days=1)
    assert call.raw_arguments == '{"city":"Rome","days":null}'


def test_pydantic_function_tool_dicts_keep_their_name_description_and_model(
    server: FakeOpenAIServer, mode: str, api: str, path: str
) -> None:
    tool = openai.pydantic_function_tool(GetWeather, name="weather", description="Weather now.")
    server.queue(Reply.tool_call("weather", {"city": "Oslo", "days": 2}))
    (call,) = _calls(_run(server, mode, api, path, tools=[tool]), path)

    # The parameters are compiled from the model (the SDK's own rendering is not sent).
    assert _sent_tools(server) == [
        _function_entry(api, "weather", "Weather now.", to_strict_schema(GetWeather), strict=True)
    ]
    assert call.name == "weather"
    assert type(call.arguments) is GetWeather
    assert call.arguments == GetWeather(city="Oslo", days=2)


def test_pydantic_responses_function_tool_dicts_work_on_both_apis(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    tool = openai.pydantic_responses_function_tool(Add, name="add", description="Add two.")
    server.queue(Reply.tool_call("add", {"a": 2, "b": 40}))
    (call,) = _run(server, mode, api, "call", tools=[tool])

    assert _sent_tools(server) == [
        _function_entry(api, "add", "Add two.", to_strict_schema(Add), strict=True)
    ]
    assert call.arguments == Add(a=2, b=40)


@pytest.mark.parametrize("form", [LOOKUP_CHAT, LOOKUP_RESPONSES], ids=["chat-form", "flat-form"])
def test_plain_dict_tools_in_either_form_are_sent_in_the_apis_form(
    server: FakeOpenAIServer, mode: str, api: str, form: dict[str, Any]
) -> None:
    server.queue(Reply.tool_call("lookup", {"q": "tea"}, id="call_l"))
    (call,) = _run(server, mode, api, "call", tools=[form])

    assert _sent_tools(server) == [
        _function_entry(api, "lookup", "Search.", LOOKUP_SENT_PARAMETERS, strict=True)
    ]
    assert call == ToolCall(0, "call_l", "lookup", {"q": "tea"}, '{"q":"tea"}')
    assert type(call.arguments) is dict
    assert LOOKUP_PARAMETERS["properties"]["q"] == {"type": "string", "minLength": 2}  # untouched


@pytest.mark.parametrize("form", [LOOKUP_CHAT, LOOKUP_RESPONSES], ids=["chat-form", "flat-form"])
@pytest.mark.parametrize(
    ("arguments", "kind"),
    [({"q": 7}, "type"), ({"q": "a"}, "minLength")],
    ids=["wrong-type", "too-short"],
)
def test_a_dict_tools_bad_arguments_are_a_validation_error_naming_the_tool(
    server: FakeOpenAIServer,
    mode: str,
    api: str,
    form: dict[str, Any],
    arguments: dict[str, Any],
    kind: str,
) -> None:
    errors = _errors_on_every_path(
        server,
        mode,
        api,
        lambda: Reply.tool_call("lookup", arguments).with_options(id="resp_v").with_usage(9, 4),
        ValidationError,
        tools=[form],
    )
    err = errors["call"]
    assert err.tool_name == "lookup"
    assert [(e["tool"], e["path"], e["loc"], e["type"]) for e in err.errors()] == [
        ("lookup", "q", ("q",), kind)
    ]
    assert err.content == json.dumps(arguments, separators=(",", ":"))
    assert err.response_id == "resp_v"
    assert _output_tokens(err.usage) == 4
    assert "The call to tool 'lookup' (call 0)" in str(err)


def test_validate_schema_false_returns_a_dict_tools_arguments_as_parsed(
    server: FakeOpenAIServer, mode: str, api: str, path: str
) -> None:
    server.queue(Reply.tool_call("lookup", {"q": 7}))
    (call,) = _calls(
        _run(server, mode, api, path, tools=[LOOKUP_CHAT], validate_schema=False), path
    )
    assert call.arguments == {"q": 7}
    # Still sent strict: validate_schema only switches the client-side check off.
    assert _sent_tools(server) == [
        _function_entry(api, "lookup", "Search.", LOOKUP_SENT_PARAMETERS, strict=True)
    ]


def test_a_model_tools_bad_arguments_are_a_validation_error_with_the_field_path(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    errors = _errors_on_every_path(
        server,
        mode,
        api,
        lambda: Reply.tool_call("Add", {"a": 1, "b": "two"}).with_options(id="r").with_usage(5, 6),
        ValidationError,
        tools=[GetWeather, Add],
    )
    err = errors["stream"]
    assert err.tool_name == "Add"
    assert [(e["tool"], e["path"]) for e in err.errors()] == [("Add", "b")]
    assert _output_tokens(err.usage) == 6


def test_a_non_strict_dict_tool_is_sent_strict_false_and_its_arguments_kept_as_parsed(
    server: FakeOpenAIServer, mode: str, api: str, path: str
) -> None:
    parameters = {"type": "object", "properties": {"q": {"type": "string"}}}
    tool = {
        "type": "function",
        "function": {"name": "loose", "parameters": parameters, "strict": False},
    }
    server.queue(Reply.tool_call("loose", {"q": 5, "extra": [1]}))
    (call,) = _calls(_run(server, mode, api, path, tools=[tool]), path)

    assert _sent_tools(server) == [_function_entry(api, "loose", None, parameters, strict=False)]
    assert call.arguments == {"q": 5, "extra": [1]}  # does not match, returned as parsed


def test_a_built_in_tool_is_passed_through_byte_for_byte(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    builtin = {
        "type": "web_search_preview",
        "search_context_size": "low",
        "user_location": {"type": "approximate", "country": "FR", "city": "Paris"},
    }
    before = json.dumps(builtin)
    server.queue(Reply.tool_call("Add", {"a": 1, "b": 2}))
    (call,) = _run(server, mode, api, "call", tools=[builtin, Add])

    tools = _sent_tools(server)
    assert tools[0] == builtin
    assert list(tools[0]) == list(builtin)  # same keys, same order
    assert json.dumps(builtin, separators=(",", ":")).encode() in server.requests[0].body
    assert tools[1] == _function_entry(api, "Add", None, to_strict_schema(Add), strict=True)
    assert json.dumps(builtin) == before  # the caller's dict is not modified
    assert call.arguments == Add(a=1, b=2)


def test_strict_false_on_the_call_sends_non_strict_tools_and_still_validates(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    server.queue(Reply.tool_call("Add", {"a": 1, "b": "x"}))
    with pytest.raises(ValidationError) as info:
        _run(server, mode, api, "call", tools=[Add], strict=False)
    (tool,) = _sent_tools(server)
    assert (tool["function"] if api == "chat" else tool)["strict"] is False
    assert info.value.tool_name == "Add"


def _tool_choice(api: str) -> dict[str, Any]:
    if api == "chat":
        return {"type": "function", "function": {"name": "Add"}}
    return {"type": "function", "name": "Add"}


@pytest.mark.parametrize("choice", ["required", "none", "named"])
@pytest.mark.parametrize("parallel", [False, True])
def test_tool_choice_and_parallel_tool_calls_are_sent_as_given(
    server: FakeOpenAIServer, mode: str, api: str, path: str, choice: str, parallel: bool
) -> None:
    tool_choice = _tool_choice(api) if choice == "named" else choice
    server.queue(Reply.tool_call("Add", {"a": 1, "b": 2}))
    _run(
        server, mode, api, path, tools=[Add], tool_choice=tool_choice, parallel_tool_calls=parallel
    )
    sent = server.requests[0].json
    assert sent is not None
    assert sent["tool_choice"] == tool_choice
    assert sent["parallel_tool_calls"] is parallel


@pytest.mark.parametrize("given", ["absent", "none"])
def test_tool_choice_and_parallel_tool_calls_are_not_sent_when_not_given(
    server: FakeOpenAIServer, mode: str, api: str, path: str, given: str
) -> None:
    options = {"tool_choice": None, "parallel_tool_calls": None} if given == "none" else {}
    server.queue(Reply.tool_call("Add", {"a": 1, "b": 2}))
    _run(server, mode, api, path, tools=[Add], **options)
    sent = server.requests[0].json
    assert sent is not None
    assert "tool_choice" not in sent
    assert "parallel_tool_calls" not in sent


# --- parallel calls -----------------------------------------------------------------------------


def _parallel(interleave: bool, **options: Any) -> Reply:
    """Call 0 has the longer arguments: interleaved, call 1 closes first."""
    return Reply.tools(
        ToolCallReply("GetWeather", {"city": "Paris", "days": 3}, id="call_0"),
        ToolCallReply("Add", {"a": 1, "b": 22}, id="call_1"),
        interleave=interleave,
        chunk_size=3,
        **options,
    )


#: (index, id, name, arguments, raw_arguments) of the two calls, in the answer's order.
EXPECTED_DESCRIBED = [
    (0, "call_0", "GetWeather", GetWeather(city="Paris", days=3), '{"city":"Paris","days":3}'),
    (1, "call_1", "Add", Add(a=1, b=22), '{"a":1,"b":22}'),
]


def _described(calls: list[ToolCall]) -> list[tuple[Any, ...]]:
    return [(c.index, c.id, c.name, c.arguments, c.raw_arguments) for c in calls]


@pytest.mark.parametrize("interleave", [False, True], ids=["sequential", "interleaved"])
def test_parallel_calls_come_back_in_the_answers_order_from_a_call(
    server: FakeOpenAIServer, mode: str, api: str, interleave: bool
) -> None:
    server.queue(_parallel(interleave))
    result = _run(server, mode, api, "call", tools=[GetWeather, Add])
    assert all(type(c) is ToolCall for c in result)
    assert _described(result) == EXPECTED_DESCRIBED


def test_sequential_parallel_calls_stream_in_the_answers_order(
    server: FakeOpenAIServer, mode: str, api: str, path: str
) -> None:
    server.queue(_parallel(False))
    result = _run(server, mode, api, path, tools=[GetWeather, Add])
    assert _described(_calls(result, path)) == EXPECTED_DESCRIBED


def test_interleaved_calls_are_put_back_together_and_yielded_as_each_closes(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    server.queue(_parallel(True))
    values = _run(server, mode, api, "stream", tools=[GetWeather, Add])
    assert all(type(v) is ToolCall for v in values)
    # Call 1's shorter arguments close first, and it is yielded then.
    assert _described(values) == [EXPECTED_DESCRIBED[1], EXPECTED_DESCRIBED[0]]


def test_the_event_stream_has_a_completed_event_per_call_and_the_list_in_finished(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    server.queue(_parallel(True).with_options(id="resp_p").with_usage(20, 11))
    events = _run(server, mode, api, "events", tools=[GetWeather, Add])

    completed = [e.call for e in events if type(e) is ToolCallCompleted]
    assert sorted(_described(completed)) == EXPECTED_DESCRIBED
    assert not [e for e in events if type(e) is ValueCompleted]
    finished = events[-1]
    assert type(finished) is Finished
    assert isinstance(finished.result, list)
    assert _described(finished.result) == EXPECTED_DESCRIBED  # the answer's order
    assert finished.tool_calls == tuple(finished.result)
    assert finished.results == ()
    assert finished.response_id == "resp_p"
    assert finished.finish_reason == ("tool_calls" if api == "chat" else "stop")
    assert _output_tokens(finished.usage) == 11
    assert finished.summary is not None
    assert finished.summary.value == finished.result
    assert finished.summary.usage.completion_tokens == 11


def test_interleaved_calls_finish_in_the_answers_order_like_a_call(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    server.queue(_parallel(True))
    called = _run(server, mode, api, "call", tools=[GetWeather, Add])
    server.queue(Fault.delay(between_events=0.001, reply=_parallel(True)))
    events = _run(server, mode, api, "events", tools=[GetWeather, Add])
    completed = [e.call.index for e in events if type(e) is ToolCallCompleted]
    assert completed == [1, 0]  # call 1 closed first...
    finished = events[-1]
    assert _described(finished.result) == _described(called) == EXPECTED_DESCRIBED
    assert [c.index for c in finished.tool_calls] == [0, 1]  # ...Finished has the answer's order


@pytest.mark.parametrize("partials", [True, False])
def test_tool_call_partials_grow_when_the_arguments_arrive_over_several_reads(
    server: FakeOpenAIServer, mode: str, api: str, partials: bool
) -> None:
    reply = Reply.tools(
        ToolCallReply("GetWeather", {"city": "Paris", "days": 3}, id="call_w"),
        ToolCallReply("lookup", {"q": "tea time"}, id="call_l"),
        chunk_size=2,
    )
    server.queue(Fault.delay(between_events=0.002, reply=reply))
    seen: list[tuple[int, str | None, str, Any, Any]] = []

    def on_event(event: Any) -> None:
        if type(event) is ToolCallPartial:
            if event.name == "GetWeather":
                model: Any = event.as_model()
            else:
                with pytest.raises(TypeError, match="as_model"):
                    event.as_model()  # a dict tool has no model
                model = None
            seen.append((event.index, event.id, event.name, event.snapshot(), model))

    events = _run(
        server, mode, api, "events", tools=[GetWeather, LOOKUP_CHAT], partials=partials,
        on_event=on_event,
    )  # fmt: skip

    finished = events[-1]
    assert type(finished) is Finished
    assert [c.arguments for c in finished.result] == [
        GetWeather(city="Paris", days=3),
        {"q": "tea time"},
    ]
    if not partials:
        assert seen == []
        return
    weather = [s for s in seen if s[0] == 0]
    lookup = [s for s in seen if s[0] == 1]
    assert {(i, ident, name) for i, ident, name, _, _ in weather} == {(0, "call_w", "GetWeather")}
    assert {(i, ident, name) for i, ident, name, _, _ in lookup} == {(1, "call_l", "lookup")}
    # The snapshots grow: each city seen is a prefix of the next, ending at the whole name.
    cities = [snap.get("city") for _, _, _, snap, _ in weather if "city" in snap]
    assert len(set(cities)) >= 2
    assert all("Paris".startswith(c) for c in cities)
    assert cities == sorted(cities, key=len)
    assert cities[-1] == "Paris"
    # as_model(): the all-optional twin of the tool's model, holding the value so far.
    models = [m for _, _, _, _, m in weather]
    assert [m.city for m in models] == [s.get("city") for _, _, _, s, _ in weather]
    assert all(m.days is None for m in models[:-1] if m.city != "Paris")
    queries = [snap.get("q") for _, _, _, snap, _ in lookup if "q" in snap]
    assert len(set(queries)) >= 2 and all("tea time".startswith(q) for q in queries)
    # Partials of a call stop once it completed.
    first_weather_done = next(
        i for i, e in enumerate(events) if type(e) is ToolCallCompleted and e.call.index == 0
    )
    assert not [
        e for e in events[first_weather_done:] if type(e) is ToolCallPartial and e.index == 0
    ]


# --- tools and an output schema -----------------------------------------------------------------


def test_with_an_output_schema_content_is_the_model_instance(
    server: FakeOpenAIServer, mode: str, api: str, path: str
) -> None:
    server.queue(Reply.json({"a": 5, "b": 6}))
    result = _run(server, mode, api, path, tools=[GetWeather], output_schema=Add)

    sent = server.requests[0].json
    assert sent is not None
    assert ("response_format" if api == "chat" else "text") in sent
    assert len(sent["tools"]) == 1
    if path == "call":
        assert result == Add(a=5, b=6)
    elif path == "stream":
        assert result == [Add(a=5, b=6)]
    else:
        finished = result[-1]
        assert type(finished) is Finished
        assert finished.result == Add(a=5, b=6)
        assert finished.tool_calls == ()


def test_with_an_output_schema_tool_calls_are_a_list_of_tool_calls(
    server: FakeOpenAIServer, mode: str, api: str, path: str
) -> None:
    server.queue(Reply.tool_call("GetWeather", {"city": "Lima", "days": 1}))
    result = _run(server, mode, api, path, tools=[GetWeather], output_schema=Add)
    (call,) = _calls(result, path)
    assert type(call) is ToolCall
    assert call.arguments == GetWeather(city="Lima", days=1)


def test_text_alongside_tool_calls_is_ignored_without_an_output_schema(
    server: FakeOpenAIServer, mode: str, api: str, path: str
) -> None:
    server.queue(Reply.tools(ToolCallReply("Add", {"a": 1, "b": 2}), content="Let me add."))
    (call,) = _calls(_run(server, mode, api, path, tools=[Add]), path)
    assert call.arguments == Add(a=1, b=2)


def test_json_content_alongside_tool_calls_gives_the_same_result_on_every_path(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    def reply() -> Reply:
        return Reply.tools(ToolCallReply("Add", {"a": 1, "b": 2}), content='{"a":5,"b":6}')

    server.queue(reply())
    called = _run(server, mode, api, "call", tools=[Add], output_schema=Add)
    server.queue(reply())
    finished = _run(server, mode, api, "events", tools=[Add], output_schema=Add)[-1]
    # (the ids differ: the server numbers each call it sends)
    assert [(c.index, c.name, c.arguments) for c in finished.result] == [
        (c.index, c.name, c.arguments) for c in called
    ]


# --- failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "chunk_size"),
    [('{"city": "Pa', 4), ("[1, 2", 4), ('{"city": "Paris"} trailing', 1)],
    ids=["unterminated", "unclosed-array", "trailing-text-in-later-deltas"],
)
def test_arguments_that_are_not_json_are_an_invalid_response_format_error(
    server: FakeOpenAIServer, mode: str, api: str, arguments: str, chunk_size: int
) -> None:
    errors = _errors_on_every_path(
        server,
        mode,
        api,
        lambda: (
            Reply.tool_call("GetWeather", arguments, chunk_size=chunk_size)
            .with_options(id="resp_j")
            .with_usage(3, 2)
        ),
        InvalidResponseFormatError,
        tools=[GetWeather],
    )
    err = errors["events"]
    assert err.content == arguments
    assert err.response_id == "resp_j"
    assert _output_tokens(err.usage) == 2
    assert "The arguments of the call to tool 'GetWeather' (call 0)" in str(err)
    assert err.position is not None


def test_trailing_text_in_the_closing_delta_gives_the_whole_arguments_on_every_path(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    arguments = '{"city": "Paris"} trailing'  # 4-character deltas: '} tr' closes the value
    errors = _errors_on_every_path(
        server,
        mode,
        api,
        lambda: (
            Reply.tool_call("GetWeather", arguments, chunk_size=4)
            .with_options(id="r")
            .with_usage(10, 5)
        ),
        InvalidResponseFormatError,
        tools=[GetWeather],
    )
    assert all(e.content == arguments for e in errors.values())


def test_a_call_to_an_unknown_tool_is_an_unknown_tool_error_naming_the_known_ones(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    errors = _errors_on_every_path(
        server,
        mode,
        api,
        lambda: Reply.tool_call("delete_all", {}).with_options(id="resp_u").with_usage(10, 5),
        UnknownToolError,
        tools=[GetWeather, LOOKUP_CHAT, {"type": "web_search_preview"}],
    )
    err = errors["call"]
    assert err.tool_name == "delete_all"
    assert err.known == ("GetWeather", "lookup")
    assert "'delete_all'" in str(err)
    assert "'GetWeather', 'lookup'" in str(err)
    assert err.response_id == "resp_u"
    assert _output_tokens(err.usage) == 5


def test_text_instead_of_a_tool_call_is_a_no_tool_call_error_with_the_text(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    errors = _errors_on_every_path(
        server,
        mode,
        api,
        lambda: Reply.text("It is sunny in Paris.", id="resp_n").with_usage(8, 6),
        NoToolCallError,
        tools=[GetWeather],
    )
    err = errors["stream"]
    assert err.content == "It is sunny in Paris."
    assert err.response_id == "resp_n"
    assert _output_tokens(err.usage) == 6
    assert "tool_choice='required'" in str(err)
    assert "'GetWeather'" in str(err)


def test_a_cut_off_in_the_arguments_is_a_token_limit_error_with_the_usage(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    errors = _errors_on_every_path(
        server,
        mode,
        api,
        lambda: (
            Reply.tool_call("GetWeather", '{"city": "Par', finish_reason="length")
            .with_options(id="resp_c")
            .with_usage(12, 64)
        ),
        TokenLimitError,
        compare=tuple(a for a in ATTRIBUTES if a != "content"),
        tools=[GetWeather],
        max_output_tokens=64,
    )
    err = errors["call"]
    assert err.requested_tokens == 64
    assert err.response_id == "resp_c"
    assert _output_tokens(err.usage) == 64
    assert "after 64 output tokens" in str(err)


def test_a_cut_off_in_the_arguments_has_the_same_content_on_every_path(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    _errors_on_every_path(
        server,
        mode,
        api,
        lambda: Reply.tool_call("GetWeather", '{"city": "Par', finish_reason="length"),
        TokenLimitError,
        compare=("content",),
        tools=[GetWeather],
    )


def test_one_bad_call_among_parallel_calls_fails_the_answer(
    server: FakeOpenAIServer, mode: str, api: str, path: str
) -> None:
    server.queue(
        Reply.tools(
            ToolCallReply("Add", {"a": 1, "b": 2}),
            ToolCallReply("Add", {"a": 1}),
        ).with_usage(4, 9)
    )
    with pytest.raises(ValidationError) as info:
        _run(server, mode, api, path, tools=[Add])
    assert "(call 1)" in str(info.value)
    assert [e["path"] for e in info.value.errors()] == ["b"]
    assert _output_tokens(info.value.usage) == 9


# --- before sending -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tools",
    [
        [Add, openai.pydantic_function_tool(Add)],
        [Add, {"type": "function", "name": "Add", "parameters": Add.model_json_schema()}],
        [LOOKUP_CHAT, LOOKUP_RESPONSES],
    ],
    ids=["model-and-sdk-dict", "model-and-flat-dict", "two-dicts"],
)
def test_duplicate_tool_names_are_a_type_error_before_sending(
    server: FakeOpenAIServer, mode: str, api: str, path: str, tools: list[Any]
) -> None:
    server.queue(Reply.tool_call("Add", {"a": 1, "b": 2}))
    with pytest.raises(TypeError, match="tools\\[1\\]: a second tool is named"):
        _run(server, mode, api, path, tools=tools)
    assert len(server.requests) == 0


@pytest.mark.parametrize(
    ("tool", "name", "where"),
    [
        (
            # a pydantic tool whose schema names another document (never fetched)
            type(
                "Remote",
                (BaseModel,),
                {
                    "__doc__": "A tool whose parameter refers to a schema elsewhere.",
                    "__annotations__": {"spec": "dict[str, int]"},
                    "model_config": {
                        "json_schema_extra": {
                            "properties": {"spec": {"$ref": "https://example.com/other.json"}}
                        }
                    },
                },
            ),
            "Remote",
            "#/properties/spec",
        ),
        (
            {
                "type": "function",
                "function": {
                    "name": "never",
                    "parameters": {
                        "type": "object",
                        "properties": {"x": {"type": "string"}, "y": False},
                        "required": ["x", "y"],
                    },
                },
            },
            "never",
            "#/properties/y",
        ),
    ],
    ids=["remote-ref", "required-false"],
)
def test_a_tool_schema_strict_mode_cannot_express_is_a_schema_error_before_sending(
    server: FakeOpenAIServer,
    mode: str,
    api: str,
    path: str,
    tool: Any,
    name: str,
    where: str,
) -> None:
    server.queue(Reply.tool_call(name, {}))
    with pytest.raises(SchemaError) as info:
        _run(server, mode, api, path, tools=[Add, tool])
    assert f"the parameters of tool {name!r}" in str(info.value)
    assert info.value.path.startswith(where)
    assert len(server.requests) == 0


@pytest.mark.parametrize(
    "tools", [Add, "Add", {"type": "function", "name": "Add"}], ids=["class", "str", "dict"]
)
def test_tools_must_be_a_list(
    server: FakeOpenAIServer, mode: str, api: str, path: str, tools: Any
) -> None:
    with pytest.raises(TypeError, match="tools= must be a list"):
        _run(server, mode, api, path, tools=tools)
    assert len(server.requests) == 0
