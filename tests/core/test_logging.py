"""on_log events (SPEC §2.5): what is emitted, redaction, async callbacks, zero cost when off,
and the canary API key never leaking into events, errors or reprs."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from core_support import CANARY_KEY, Call, Recorder
from pydantic import BaseModel

from openai_structured import LogEvent, async_openai_structured_call, openai_structured_call
from openai_structured._logging import LogSink, redact
from openai_structured.testing import FakeOpenAIServer, Fault, Reply


class Person(BaseModel):
    name: str
    age: int


def test_a_call_emits_start_validation_and_end_with_usage(
    server: FakeOpenAIServer, call: Call, recorder: Recorder
) -> None:
    server.queue(Reply.json({"name": "Ada", "age": 36}, id="resp_1").with_usage(10, 5))
    call(output_schema=Person, user_prompt="Ada", on_log=recorder)
    assert recorder.types() == ["request.start", "validation", "request.end"]
    end = recorder.events[-1][0].data
    assert end["response_id"] == "resp_1"
    assert end["latency_s"] >= 0
    assert 5 in (end["usage"].get("completion_tokens"), end["usage"].get("output_tokens"))
    start = recorder.events[0][0].data
    assert start["model"] == "gpt-4o" and start["stream"] is False


def test_failures_emit_an_error_event_at_error_level(
    server: FakeOpenAIServer, call: Call, recorder: Recorder
) -> None:
    server.queue(Fault.rate_limit())
    with pytest.raises(openai.RateLimitError):
        call(output_schema=Person, user_prompt="Ada", on_log=recorder)
    event, level = recorder.events[-1]
    assert (event.type, level, event.data["stage"]) == ("error", "error", "request")


def test_async_on_log_callbacks_are_awaited(server: FakeOpenAIServer) -> None:
    seen: list[str] = []

    async def on_log(event: LogEvent, level: str) -> None:
        await asyncio.sleep(0)
        seen.append(event.type)

    server.queue(Reply.json({"name": "Ada", "age": 36}))

    async def run() -> None:
        async with server.async_client() as client:
            await async_openai_structured_call(
                client=client, model="gpt-4o", output_schema=Person, user_prompt="A", on_log=on_log
            )

    asyncio.run(run())
    assert seen == ["request.start", "validation", "request.end"]


def test_async_on_log_also_works_on_sync_calls(server: FakeOpenAIServer) -> None:
    seen: list[str] = []

    async def on_log(event: LogEvent, level: str) -> None:
        seen.append(event.type)

    server.queue(Reply.json({"name": "Ada", "age": 36}))
    openai_structured_call(
        client=server.client(), model="gpt-4o", output_schema=Person, user_prompt="A", on_log=on_log
    )
    assert seen == ["request.start", "validation", "request.end"]


def test_no_event_is_built_when_on_log_is_none(
    server: FakeOpenAIServer, call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an event was emitted with no on_log")

    monkeypatch.setattr(LogSink, "emit", fail)
    server.queue(Reply.json({"name": "Ada", "age": 36}))
    assert call(output_schema=Person, user_prompt="Ada") == Person(name="Ada", age=36)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"api_key": "abc123456"}, {"api_key": "[REDACTED]"}),
        (
            {"headers": {"Authorization": "Bearer abc"}},
            {"headers": {"Authorization": "[REDACTED]"}},
        ),
        ({"msg": "used sk-proj-abcdefgh1234 here"}, {"msg": "used [REDACTED] here"}),
        ({"msg": "Bearer abcdefghij"}, {"msg": "Bearer [REDACTED]"}),
        (
            {"password": "hunter2", "db_secret": "x"},
            {"password": "[REDACTED]", "db_secret": "[REDACTED]"},
        ),
        (
            {"access_token": "t0k3n", "token": "t"},
            {"access_token": "[REDACTED]", "token": "[REDACTED]"},
        ),
        ({"max_tokens": 100, "prompt_tokens": 5}, {"max_tokens": 100, "prompt_tokens": 5}),
        ({"nested": [{"x": ("sk-abcdefgh",)}]}, {"nested": [{"x": ("[REDACTED]",)}]}),
    ],
)
def test_redaction_masks_secrets_at_any_depth_and_keeps_counters(
    data: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert redact(data) == expected


def test_a_known_secret_without_a_recognisable_shape_is_masked() -> None:
    assert redact({"note": "key=plainsecretvalue"}, ["plainsecretvalue"]) == {
        "note": "key=[REDACTED]"
    }


def _every_outcome() -> list[Any]:
    return [
        Reply.json({"name": "Ada", "age": 36}),
        Reply.refusal("no"),
        Reply.length('{"name": "Ada"'),
        Reply.content_filter(),
        Reply.empty(),
        Reply.text("not json"),
        Reply.json({"name": "Ada", "age": "old"}),
        Fault.status(401, message=f"Incorrect API key provided: {CANARY_KEY}"),
        Fault.rate_limit(),
        Fault.disconnect(),
    ]


def test_the_canary_key_never_appears_in_events_errors_or_reprs(
    server: FakeOpenAIServer, call: Call, recorder: Recorder
) -> None:
    texts: list[str] = []
    for item in _every_outcome():
        server.queue(item)
        try:
            result = call(output_schema=Person, user_prompt="Ada", on_log=recorder)
            texts.append(repr(result))
        except openai.APIStatusError:
            pass  # the SDK's own exception, passed through unchanged (SPEC §2.2)
        except Exception as exc:
            texts += [str(exc), repr(exc), repr(getattr(exc, "content", None))]
    texts += [repr(event) for event, _ in recorder.events]
    assert len(recorder.events) >= 20
    leaks = [t for t in texts if CANARY_KEY in t]
    assert leaks == []
