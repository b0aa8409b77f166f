"""Every reply builder, through the real SDK: both APIs, streaming or not, sync and async."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from fake_server_calls import Api, Mode, Runner, make_runner

from openai_structured.testing import FakeOpenAIServer, Fault, Reply, Usage


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> Mode:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=["chat", "responses"])
def api(request: pytest.FixtureRequest) -> Api:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=[False, True], ids=["whole", "stream"])
def stream(request: pytest.FixtureRequest) -> bool:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def run(server: FakeOpenAIServer, mode: Mode) -> AsyncIterator[Runner]:
    runner, close = make_runner(server, mode)
    yield runner
    await close()


PERSON = {"name": "Ada Lovelace", "born": 1815, "tags": ["math", "poetry"], "note": "héllo ✓"}

# builder -> (content, refusal, finish) the SDK must report
CASES: dict[str, tuple[Reply, str | None, str | None, str]] = {
    "json": (
        Reply.json(PERSON),
        json.dumps(PERSON, separators=(",", ":"), ensure_ascii=False),
        None,
        "stop",
    ),
    "json_indent": (Reply.json({"a": 1}, indent=2), '{\n  "a": 1\n}', None, "stop"),
    "text_not_json": (
        Reply.text("Sure! Here it is: {oops"),
        "Sure! Here it is: {oops",
        None,
        "stop",
    ),
    "several_values": (Reply.json_values({"a": 1}, {"a": 2}), '{"a":1}\n{"a":2}', None, "stop"),
    "invalid_json": (Fault.invalid_json('{"name": "Ada", '), '{"name": "Ada", ', None, "stop"),
    "refusal": (Reply.refusal("I can't do that."), None, "I can't do that.", "stop"),
    "length": (Reply.length('{"name": "Ada", "bo'), '{"name": "Ada", "bo', None, "length"),
    "content_filter_partial": (Reply.content_filter('{"na'), '{"na', None, "content_filter"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_builder_reaches_the_sdk_intact(
    server: FakeOpenAIServer, run: Runner, api: Api, stream: bool, case: str
) -> None:
    reply, content, refusal, finish = CASES[case]
    server.queue(reply)
    out = await run(api, stream)
    assert (out.content, out.refusal, out.finish) == (content, refusal, finish)
    assert out.usage is not None and out.usage[2] == out.usage[0] + out.usage[1]
    assert server.pending == 0


async def test_empty_reply_has_empty_content(
    server: FakeOpenAIServer, run: Runner, api: Api, stream: bool
) -> None:
    server.queue(Reply.empty())
    out = await run(api, stream)
    assert out.content == ""
    assert out.refusal is None
    assert out.finish == "stop"
    assert out.deltas == []


async def test_content_filter_without_text_has_no_content(
    server: FakeOpenAIServer, run: Runner, api: Api, stream: bool
) -> None:
    server.queue(Reply.content_filter())
    out = await run(api, stream)
    assert (out.content, out.refusal, out.finish) == (None, None, "content_filter")


async def test_stream_splits_into_chunk_size_deltas(
    server: FakeOpenAIServer, run: Runner, api: Api
) -> None:
    server.queue(Reply.text("abcdefghij", chunk_size=3))
    out = await run(api, True)
    assert out.deltas == ["abc", "def", "ghi", "j"]


async def test_stream_uses_explicit_chunks(server: FakeOpenAIServer, run: Runner, api: Api) -> None:
    server.queue(Reply.refusal("no way", chunks=["n", "o way"]))
    out = await run(api, True)
    assert out.deltas == ["n", "o way"]
    assert out.refusal == "no way"


async def test_default_chunk_size_is_four(server: FakeOpenAIServer, run: Runner, api: Api) -> None:
    server.queue(Reply.json({"k": "v"}))
    out = await run(api, True)
    assert out.deltas == ['{"k"', ':"v"', "}"]


async def test_usage_figures_are_reported(
    server: FakeOpenAIServer, run: Runner, api: Api, stream: bool
) -> None:
    server.queue(Reply.json({"a": 1}).with_usage(120, 30, cached_tokens=100))
    out = await run(api, stream)
    assert out.usage == (120, 30, 150)


async def test_model_is_echoed_unless_overridden(
    server: FakeOpenAIServer, run: Runner, api: Api, stream: bool
) -> None:
    server.queue(Reply.text("x"), Reply.text("y", model="gpt-4o-2024-08-06"))
    assert (await run(api, stream, model="my-local-model")).model == "my-local-model"
    assert (await run(api, stream)).model == "gpt-4o-2024-08-06"


async def test_response_id_can_be_scripted(
    server: FakeOpenAIServer, run: Runner, api: Api, stream: bool
) -> None:
    server.queue(Reply.text("x", id="resp_abc123"), Reply.text("y"), Reply.text("z"))
    assert (await run(api, stream)).id == "resp_abc123"
    first, second = (await run(api, stream)).id, (await run(api, stream)).id
    assert first != second


async def test_default_reply_answers_when_queue_is_empty(
    server: FakeOpenAIServer, run: Runner, api: Api
) -> None:
    server.default_reply = Reply.json({"default": True})
    server.queue(Reply.json({"queued": 1}), Reply.json({"queued": 2}))
    contents = [(await run(api, False)).content for _ in range(4)]
    assert contents == ['{"queued":1}', '{"queued":2}', '{"default":true}', '{"default":true}']


def test_chat_usage_chunk_only_when_requested(server: FakeOpenAIServer) -> None:
    server.default_reply = Reply.text("hello")
    client = server.client(_strict_response_validation=True)
    plain = list(client.chat.completions.create(model="m", messages=[], stream=True))
    assert all(c.usage is None for c in plain)
    assert plain[-1].choices[0].finish_reason == "stop"
    with_usage = list(
        client.chat.completions.create(
            model="m",
            messages=[],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert with_usage[-1].choices == [] and with_usage[-1].usage is not None
    assert len(with_usage) == len(plain) + 1


def test_sdk_stream_helpers_accumulate(server: FakeOpenAIServer) -> None:
    server.default_reply = Reply.json({"name": "Ada"})
    client = server.client(_strict_response_validation=True)
    with client.chat.completions.stream(model="gpt-4o", messages=[]) as chat:
        for _ in chat:
            pass
        assert chat.get_final_completion().choices[0].message.content == '{"name":"Ada"}'
    with client.responses.stream(model="gpt-4o", input="x") as resp:
        for _ in resp:
            pass
        assert resp.get_final_response().output_text == '{"name":"Ada"}'


def test_usage_dataclass_totals() -> None:
    assert Usage(3, 4).total_tokens == 7
