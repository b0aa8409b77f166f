"""Scripted tool calls and several choices, through the real openai SDK (sync client, no mocks).

Clients use strict response validation, so a payload that does not match the SDK's types
fails the test instead of being accepted loosely.
"""

from __future__ import annotations

import json
import urllib.request
from collections import defaultdict
from typing import Any

import openai
import pytest
from openai import OpenAI

from openai_structured.testing import Choices, FakeOpenAIServer, Fault, Reply, ToolCallReply, Usage

MESSAGES: list[Any] = [{"role": "user", "content": "What is the weather in Paris and Rome?"}]
CHAT_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
RESPONSES_TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": False,
    }
]
PARIS = ToolCallReply("get_weather", {"city": "Paris", "note": "héllo ✓"})
ROME = ToolCallReply("get_weather", {"city": "Rome", "days": [1, 2, 3]})
# Deliberately broken argument text: cut off, with escapes and non-ASCII on the way.
RAW = '{"city": "Pa\\"ris\\n ✓", "days": [1, 2'


def compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@pytest.fixture
def client(server: FakeOpenAIServer) -> OpenAI:
    return server.client(_strict_response_validation=True)


def chat(client: OpenAI, **extra: Any) -> Any:
    return client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, tools=CHAT_TOOLS, **extra
    )


def chat_stream(client: OpenAI, **extra: Any) -> list[Any]:
    return list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            tools=CHAT_TOOLS,
            stream=True,
            stream_options={"include_usage": True},
            **extra,
        )
    )


def responses(client: OpenAI, **extra: Any) -> Any:
    return client.responses.create(model="gpt-4o", input="weather?", tools=RESPONSES_TOOLS, **extra)


def responses_stream(client: OpenAI, **extra: Any) -> list[Any]:
    events = list(
        client.responses.create(
            model="gpt-4o", input="weather?", tools=RESPONSES_TOOLS, stream=True, **extra
        )
    )
    assert [e.sequence_number for e in events] == list(range(len(events)))
    return events


def reassemble_chat(chunks: list[Any], choice: int = 0) -> dict[int, dict[str, Any]]:
    """Tool calls by index, put back together from `delta.tool_calls` like a client must."""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for c in chunk.choices:
            if c.index != choice or not c.delta.tool_calls:
                continue
            for tc in c.delta.tool_calls:
                call = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                if tc.id is not None:
                    call["id"] = tc.id
                if tc.function is not None:
                    if tc.function.name is not None:
                        call["name"] = tc.function.name
                    call["arguments"] += tc.function.arguments or ""
    return calls


def tool_delta_order(chunks: list[Any]) -> list[int]:
    """The call index of each argument delta, in stream order."""
    return [
        tc.index
        for chunk in chunks
        for c in chunk.choices
        for tc in c.delta.tool_calls or []
        if tc.function is not None and tc.function.arguments
    ]


def reassemble_responses(events: list[Any]) -> dict[str, str]:
    """Arguments by item id, from `response.function_call_arguments.delta` events."""
    args: dict[str, str] = defaultdict(str)
    for event in events:
        if event.type == "response.function_call_arguments.delta":
            args[event.item_id] += event.delta
    return dict(args)


# -- Chat Completions ----------------------------------------------------------------------


def test_chat_single_tool_call(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.queue(Reply.tool_call("get_weather", {"city": "Paris"}))
    completion = chat(client)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.refusal is None
    (call,) = choice.message.tool_calls
    assert call.type == "function"
    assert call.id == "call_1"
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city":"Paris"}'
    assert completion.usage is not None and completion.usage.completion_tokens == 4


def test_chat_parallel_tool_calls_after_text(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.queue(Reply.tools(PARIS, ROME, content="Checking both."))
    completion = chat(client)
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    assert message.content == "Checking both."
    assert [c.function.arguments for c in message.tool_calls] == [
        compact(PARIS.arguments),
        compact(ROME.arguments),
    ]
    assert [c.id for c in message.tool_calls] == ["call_1", "call_2"]


@pytest.mark.parametrize("interleave", [False, True], ids=["in_order", "interleaved"])
def test_chat_stream_tool_calls_reassemble_by_index(
    server: FakeOpenAIServer, client: OpenAI, interleave: bool
) -> None:
    server.queue(
        Reply.tools(PARIS, ROME, content="Let me see.", interleave=interleave, chunk_size=3)
    )
    chunks = chat_stream(client)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Let me see."
    calls = reassemble_chat(chunks)
    assert calls == {
        0: {"id": "call_1", "name": "get_weather", "arguments": compact(PARIS.arguments)},
        1: {"id": "call_2", "name": "get_weather", "arguments": compact(ROME.arguments)},
    }
    order = tool_delta_order(chunks)
    n0 = -(-len(compact(PARIS.arguments)) // 3)
    n1 = -(-len(compact(ROME.arguments)) // 3)
    if interleave:
        assert order[:4] == [0, 1, 0, 1]
    else:
        assert order == [0] * n0 + [1] * n1
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "tool_calls" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_chat_stream_helper_accumulates_tool_calls(
    server: FakeOpenAIServer, client: OpenAI
) -> None:
    server.queue(Reply.tools(PARIS, ROME, interleave=True, chunk_size=2))
    with client.chat.completions.stream(
        model="gpt-4o", messages=MESSAGES, tools=CHAT_TOOLS
    ) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [c.function.arguments for c in calls] == [
        compact(PARIS.arguments),
        compact(ROME.arguments),
    ]
    assert final.choices[0].finish_reason == "tool_calls"


def test_chat_raw_arguments_are_sent_byte_exact(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.queue(
        Reply.tool_call("get_weather", RAW, finish_reason="length"),
        Reply.tool_call("get_weather", RAW, finish_reason="length", chunk_size=1),
    )
    completion = chat(client)
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.tool_calls[0].function.arguments == RAW
    chunks = chat_stream(client)
    assert reassemble_chat(chunks)[0]["arguments"] == RAW
    assert len(tool_delta_order(chunks)) == len(RAW)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


def test_finish_reason_tool_calls_is_accepted(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.queue(Reply.tool_call("get_weather", {}, finish_reason="tool_calls"))
    completion = chat(client)
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.choices[0].message.tool_calls[0].function.arguments == "{}"


# -- Responses -------------------------------------------------------------------------------


def test_responses_function_calls(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.queue(Reply.tools(PARIS, ROME))
    response = responses(client, tool_choice="required", parallel_tool_calls=True)
    assert response.status == "completed"
    assert [item.type for item in response.output] == ["function_call", "function_call"]
    first, second = response.output
    assert first.type == "function_call" and second.type == "function_call"
    assert (first.call_id, first.id, first.name) == ("call_1", "fc_1", "get_weather")
    assert first.arguments == compact(PARIS.arguments)
    assert (second.call_id, second.id) == ("call_2", "fc_2")
    assert second.arguments == compact(ROME.arguments)
    assert first.status == second.status == "completed"
    assert response.tool_choice == "required"
    assert response.parallel_tool_calls is True
    assert [t.name for t in response.tools if t.type == "function"] == ["get_weather"]


def test_responses_message_then_call(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.queue(Reply.tools(PARIS, content="One moment."))
    response = responses(client)
    assert [item.type for item in response.output] == ["message", "function_call"]
    assert response.output_text == "One moment."
    assert response.tool_choice == "auto"
    assert response.usage is not None
    expected = (len("One moment.") + len(compact(PARIS.arguments)) + 3) // 4
    assert response.usage.output_tokens == expected


@pytest.mark.parametrize("interleave", [False, True], ids=["in_order", "interleaved"])
def test_responses_stream_function_calls(
    server: FakeOpenAIServer, client: OpenAI, interleave: bool
) -> None:
    server.queue(Reply.tools(PARIS, ROME, content="Hi.", interleave=interleave, chunk_size=5))
    events = responses_stream(client)
    kinds = [e.type for e in events]
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [(e.output_index, e.item.type) for e in added] == [
        (0, "message"),
        (1, "function_call"),
        (2, "function_call"),
    ]
    for e in added[1:]:
        assert e.item.type == "function_call"
        assert e.item.arguments == "" and e.item.status == "in_progress"
    assert reassemble_responses(events) == {
        "fc_1": compact(PARIS.arguments),
        "fc_2": compact(ROME.arguments),
    }
    deltas = [e for e in events if e.type == "response.function_call_arguments.delta"]
    assert {(e.item_id, e.output_index) for e in deltas} == {("fc_1", 1), ("fc_2", 2)}
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert [(e.item_id, e.output_index, e.arguments) for e in done] == [
        ("fc_1", 1, compact(PARIS.arguments)),
        ("fc_2", 2, compact(ROME.arguments)),
    ]
    first_delta = kinds.index("response.function_call_arguments.delta")
    added_before = kinds[:first_delta].count("response.output_item.added")
    if interleave:
        # Every call is opened first, then the deltas alternate, then the calls are closed.
        assert added_before == 3
        assert [e.item_id for e in deltas[:4]] == ["fc_1", "fc_2", "fc_1", "fc_2"]
        last_delta = max(i for i, k in enumerate(kinds) if k.endswith("arguments.delta"))
        assert kinds.index("response.function_call_arguments.done") > last_delta
    else:
        assert added_before == 2
        assert [e.item_id for e in deltas] == sorted(e.item_id for e in deltas)
    assert kinds[-1] == "response.completed"
    final = events[-1].response
    assert [item.type for item in final.output] == ["message", "function_call", "function_call"]
    items_done = [e.item for e in events if e.type == "response.output_item.done"]
    assert [i.model_dump() for i in items_done] == [i.model_dump() for i in final.output]


def test_responses_stream_helper_accumulates_calls(
    server: FakeOpenAIServer, client: OpenAI
) -> None:
    server.queue(Reply.tools(PARIS, ROME, interleave=True, chunk_size=2))
    with client.responses.stream(model="gpt-4o", input="weather?", tools=RESPONSES_TOOLS) as s:
        final = s.get_final_response()
    assert [(o.type, getattr(o, "arguments", None)) for o in final.output] == [
        ("function_call", compact(PARIS.arguments)),
        ("function_call", compact(ROME.arguments)),
    ]


def test_responses_raw_arguments_cut_off(server: FakeOpenAIServer, client: OpenAI) -> None:
    reply = Reply.tool_call("get_weather", RAW, finish_reason="length", chunk_size=7)
    server.queue(reply, reply)
    response = responses(client)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    (item,) = response.output
    assert item.type == "function_call" and item.arguments == RAW
    assert item.status == "incomplete"
    events = responses_stream(client)
    assert list(reassemble_responses(events).values()) == [RAW]
    assert events[-1].type == "response.incomplete"


# -- faults count argument deltas --------------------------------------------------------------


def test_disconnect_after_deltas_counts_argument_deltas(
    server: FakeOpenAIServer, client: OpenAI
) -> None:
    reply = Reply.tools(PARIS, content="abcdef", chunk_size=3)  # 2 text deltas, then arguments
    server.queue(Fault.disconnect(after_deltas=5, reply=reply))
    chunks: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
            chunks.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "abcdef"
    assert reassemble_chat(chunks)[0]["arguments"] == compact(PARIS.arguments)[:9]


def test_stream_error_after_argument_deltas_on_responses(
    server: FakeOpenAIServer, client: OpenAI
) -> None:
    reply = Reply.tools(PARIS, ROME, interleave=True, chunk_size=4)
    server.queue(Fault.stream_error("overloaded", after_deltas=3, reply=reply))
    events = list(client.responses.create(model="gpt-4o", input="x", stream=True))
    kinds = [e.type for e in events]
    assert kinds.count("response.function_call_arguments.delta") == 3
    assert kinds[-4:] == [
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.failed",
    ]
    failed = events[-1]
    assert failed.type == "response.failed" and failed.response.error is not None
    assert failed.response.error.message == "overloaded"


# -- several choices -----------------------------------------------------------------------


def test_chat_three_choices(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.queue(
        Reply.choices(
            Reply.json({"a": 1}).with_usage(40, 3),
            Reply.tool_call("get_weather", {"city": "Oslo"}).with_options(usage=Usage(99, 5)),
            Reply.refusal("No.").with_usage(77, 2),
        )
    )
    completion = chat(client, n=3)
    assert [c.index for c in completion.choices] == [0, 1, 2]
    first, second, third = completion.choices
    assert (first.message.content, first.finish_reason) == ('{"a":1}', "stop")
    assert second.finish_reason == "tool_calls"
    assert second.message.tool_calls[0].function.arguments == '{"city":"Oslo"}'
    assert (third.message.refusal, third.message.content) == ("No.", None)
    assert completion.usage is not None
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (40, 10, 50)


def test_chat_three_choices_stream(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.queue(
        Reply.choices(
            Reply.text("first answer", chunk_size=2),
            Reply.tools(PARIS, ROME, interleave=True, chunk_size=3),
            Reply.length("cut", chunk_size=1),
        )
    )
    chunks = chat_stream(client, n=3)
    texts: dict[int, str] = defaultdict(str)
    finishes: dict[int, list[str]] = defaultdict(list)
    for chunk in chunks:
        for c in chunk.choices:
            texts[c.index] += c.delta.content or ""
            if c.finish_reason is not None:
                finishes[c.index].append(c.finish_reason)
    assert dict(texts) == {0: "first answer", 1: "", 2: "cut"}
    assert dict(finishes) == {0: ["stop"], 1: ["tool_calls"], 2: ["length"]}
    calls = reassemble_chat(chunks, choice=1)
    assert [calls[i]["arguments"] for i in (0, 1)] == [
        compact(PARIS.arguments),
        compact(ROME.arguments),
    ]
    # Choices are interleaved: the second chunk already belongs to choice 1.
    assert [c.choices[0].index for c in chunks[:3]] == [0, 1, 2]
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
    single = [Reply.text("first answer"), Reply.tools(PARIS, ROME), Reply.length("cut")]
    expected = sum((r.output_text_size + 3) // 4 for r in single)
    assert usage_chunks[0].usage.completion_tokens == expected


def test_choices_on_responses_is_a_400(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.queue(Choices([Reply.text("a"), Reply.text("b")]), Reply.text("next"))
    with pytest.raises(openai.BadRequestError) as info:
        responses(client)
    assert info.value.status_code == 400
    assert "n" in info.value.message and "Responses API" in info.value.message
    assert isinstance(info.value.body, dict) and info.value.body["param"] == "n"
    assert server.pending == 1  # the Choices item was used up
    assert responses(client).output_text == "next"


def test_n_larger_than_scripted_is_answered_with_the_script(
    server: FakeOpenAIServer, client: OpenAI
) -> None:
    server.queue(Reply.text("only one"), Reply.choices(Reply.text("a"), Reply.text("b")))
    one = chat(client, n=3)
    assert [c.message.content for c in one.choices] == ["only one"]
    two = chat(client, n=5)
    assert [(c.index, c.message.content) for c in two.choices] == [(0, "a"), (1, "b")]


# -- ids, building, JSON form ----------------------------------------------------------------


def test_call_ids_are_unique_per_server(server: FakeOpenAIServer, client: OpenAI) -> None:
    explicit = ToolCallReply("get_weather", {"city": "Nice"}, id="call_mine")
    server.queue(
        Reply.tools(PARIS, ROME),
        Reply.tools(PARIS, explicit),
        Reply.tools(PARIS),
        Reply.tools(ROME),
    )
    ids = [c.id for c in chat(client).choices[0].message.tool_calls]
    ids += [c.id for c in chat(client).choices[0].message.tool_calls]
    ids += [item.call_id for item in responses(client).output if item.type == "function_call"]
    events = responses_stream(client)
    ids += [
        e.item.call_id
        for e in events
        if e.type == "response.output_item.added" and e.item.type == "function_call"
    ]
    assert ids == ["call_1", "call_2", "call_3", "call_mine", "call_5", "call_6"]
    assert len(set(ids)) == len(ids)


def test_building_rules() -> None:
    reply = Reply(tool_calls=[PARIS])  # type: ignore[arg-type]  # any sequence is accepted
    assert reply.tool_calls == (PARIS,) and reply.content is None
    assert Reply().content == "" and Reply(tool_calls=(PARIS,), content="").content == ""
    assert Reply.tool_call("f", "{").tool_calls[0].arguments_text == "{"
    assert ToolCallReply("f", {"é": [1, 2]}).arguments_text == '{"é":[1,2]}'
    assert Reply.tools(PARIS).chat_finish_reason == "tool_calls"
    assert Reply.tools(PARIS, finish_reason="length").chat_finish_reason == "length"
    assert Reply.choices(Reply.text("a")) == Choices((Reply.text("a"),))
    with pytest.raises(ValueError):
        Reply.tools()
    with pytest.raises(ValueError):
        ToolCallReply("", {})
    with pytest.raises(ValueError):
        Choices([])
    with pytest.raises(TypeError):
        Reply(tool_calls=({"name": "f"},))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        FakeOpenAIServer().queue("not an item")  # type: ignore[arg-type]


def _control(server: FakeOpenAIServer, path: str, payload: Any) -> Any:
    request = urllib.request.Request(
        server.url + path,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def test_json_script_form(server: FakeOpenAIServer, client: OpenAI) -> None:
    script = [
        {
            "text": "Looking.",
            "chunk_size": 2,
            "interleave_tool_calls": True,
            "tool_calls": [
                {"name": "get_weather", "arguments": {"city": "Paris"}},
                {"name": "get_weather", "arguments": '{"city": "Ro', "id": "call_x"},
            ],
        },
        {"tool_calls": [{"name": "get_weather", "arguments": "{}"}], "finish_reason": "length"},
        {"choices": [{"json": {"a": 1}}, {"tool_calls": [{"name": "f", "arguments": [1]}]}]},
    ]
    assert _control(server, "/_fake/queue", script) == {"pending": 3}
    chunks = chat_stream(client)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Looking."
    calls = reassemble_chat(chunks)
    assert (calls[0]["arguments"], calls[1]["arguments"]) == ('{"city":"Paris"}', '{"city": "Ro')
    assert calls[1]["id"] == "call_x"
    assert tool_delta_order(chunks)[:4] == [0, 1, 0, 1]
    cut = chat(client)
    assert cut.choices[0].finish_reason == "length"
    assert cut.choices[0].message.content is None
    assert cut.choices[0].message.tool_calls[0].function.arguments == "{}"
    two = chat(client, n=2)
    assert two.choices[0].message.content == '{"a":1}'
    assert two.choices[1].message.tool_calls[0].function.arguments == "[1]"
