"""Latency before every answer, and default replies computed from each request.

Timing assertions are lower bounds only (the server waited at least this long); that requests
overlap is proven with a barrier the handlers must reach together, not with a stopwatch.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from typing import Any

import openai
import pytest

from openai_structured.testing import (
    CapturedRequest,
    FakeOpenAIServer,
    Fault,
    Latency,
    RateLimits,
    Reply,
    ScriptItem,
)

# -- Latency objects ----------------------------------------------------------------------


def test_fixed_latency_is_always_the_same() -> None:
    latency = Latency.fixed(0.25)
    assert [latency.sample() for _ in range(3)] == [0.25] * 3
    assert repr(latency) == "Latency.fixed(0.25)"


def test_uniform_latency_stays_in_range_and_a_seed_repeats_the_sequence() -> None:
    a, b = Latency.uniform(0.01, 0.03, seed=4), Latency.uniform(0.01, 0.03, seed=4)
    draws = [a.sample() for _ in range(50)]
    assert draws == [b.sample() for _ in range(50)]
    assert draws != [Latency.uniform(0.01, 0.03, seed=5).sample() for _ in range(50)]
    assert all(0.01 <= d <= 0.03 for d in draws)
    assert len(set(draws)) > 40


def test_lognormal_latency_centres_on_the_median_and_the_cap_bounds_the_tail() -> None:
    latency = Latency.lognormal(0.02, 0.5, seed=1)
    draws = sorted(latency.sample() for _ in range(2001))
    assert 0.018 < draws[1000] < 0.022
    assert draws[-1] > 0.04  # a right tail
    capped = Latency.lognormal(0.02, 1.5, seed=1, cap=0.05)
    assert max(capped.sample() for _ in range(500)) == 0.05


@pytest.mark.parametrize(
    "build",
    [
        lambda: Latency.fixed(-1),
        lambda: Latency.fixed(float("nan")),
        lambda: Latency.uniform(0.2, 0.1),
        lambda: Latency.lognormal(0, 0.5),
        lambda: Latency.lognormal(0.1, -1),
        lambda: Latency.lognormal(0.1, 0.5, cap=-1),
    ],
)
def test_latency_rejects_nonsense(build: Any) -> None:
    with pytest.raises(ValueError):
        build()


def test_server_latency_accepts_seconds_or_a_latency() -> None:
    server = FakeOpenAIServer(latency=0.5)
    assert repr(server.latency) == "Latency.fixed(0.5)"
    server.latency = 0
    assert server.latency is None
    distribution = Latency.uniform(0, 1)
    server.latency = distribution
    assert server.latency is distribution
    with pytest.raises(ValueError):
        server.latency = -0.1
    with pytest.raises(TypeError):
        server.latency = "1s"  # type: ignore[assignment]


# -- latency on the server ----------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_every_model_call_waits_at_least_the_latency(stream: bool) -> None:
    with FakeOpenAIServer(default_reply=Reply.json({"a": 1}), latency=0.1) as server:
        client = server.client()
        for call in ("chat", "responses"):
            started = time.monotonic()
            if call == "chat":
                result = client.chat.completions.create(model="m", messages=[], stream=stream)
            else:
                result = client.responses.create(model="m", input="x", stream=stream)
            if stream:
                list(result)  # type: ignore[call-overload]
            assert time.monotonic() - started >= 0.1


def test_latency_adds_to_a_scripted_delay() -> None:
    with FakeOpenAIServer(Fault.delay(0.1), default_reply=Reply.json({}), latency=0.1) as server:
        started = time.monotonic()
        server.client().chat.completions.create(model="m", messages=[])
        assert time.monotonic() - started >= 0.2


def test_latency_in_one_request_does_not_hold_up_the_others() -> None:
    # Each handler waits at the barrier after its latency: only if all four are in the server
    # at once does any of them get past it (else each times out and answers 500).
    barrier = threading.Barrier(4, timeout=20)

    def answer(request: CapturedRequest) -> Reply:
        barrier.wait()
        return Reply.json({"ok": True})

    with FakeOpenAIServer(default_reply=answer, latency=Latency.uniform(0.05, 0.2, seed=3)) as s:
        client = s.client()
        results: list[Any] = []

        def call() -> None:
            results.append(client.chat.completions.create(model="m", messages=[]))

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert [r.choices[0].message.content for r in results] == ['{"ok":true}'] * 4
        assert s.errors == []


def test_stopping_the_server_interrupts_a_pending_latency() -> None:
    outcome: list[BaseException] = []
    server = FakeOpenAIServer(default_reply=Reply.json({}), latency=60.0).start()
    client = server.client()

    def call() -> None:
        try:
            client.chat.completions.create(model="m", messages=[])
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)  # until the request is in the server, sleeping
    server.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], openai.APIConnectionError)


def test_requests_refused_by_the_rate_limits_do_not_consume_latency_samples() -> None:
    calls: list[float] = []

    class Counting(Latency):
        def sample(self) -> float:
            calls.append(1.0)
            return 0.0

    limits = RateLimits(requests_per_minute=1, window=60.0)
    latency = Counting(lambda r: 0.0, "counting")
    with FakeOpenAIServer(default_reply=Reply.json({}), rate_limits=limits, latency=latency) as s:
        client = s.client()
        client.chat.completions.create(model="m", messages=[])
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="m", messages=[])
    assert len(calls) == 1


# -- default replies computed per request -------------------------------------------------


def _echo(request: CapturedRequest) -> ScriptItem:
    """Answer with the record id found in the prompt; fail record 13 with a 429."""
    text = request.json["messages"][-1]["content"]
    match = re.search(r"record (\d+)", text)
    assert match is not None
    if match.group(1) == "13":
        return Fault.rate_limit(retry_after=1)
    return Reply.json({"id": int(match.group(1))})


async def test_a_function_answers_each_request_from_its_content() -> None:
    with FakeOpenAIServer(default_reply=_echo, latency=Latency.uniform(0, 0.02, seed=1)) as s:
        async with s.async_client() as client:

            async def one(i: int) -> str | None:
                completion = await client.chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": f"Do record {i}."}]
                )
                return completion.choices[0].message.content

            results = await asyncio.gather(*(one(i) for i in range(20)), return_exceptions=True)
        for i, result in enumerate(results):
            if i == 13:
                assert isinstance(result, openai.RateLimitError)
            else:
                assert result == f'{{"id":{i}}}'
        assert s.errors == []


def test_the_queue_answers_before_the_function() -> None:
    with FakeOpenAIServer(Reply.text("queued"), default_reply=_echo) as server:
        client = server.client()
        messages = [{"role": "user", "content": "record 5"}]
        first = client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
        second = client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
        assert first.choices[0].message.content == "queued"
        assert second.choices[0].message.content == '{"id":5}'


def test_a_queued_fault_streams_what_the_function_answers() -> None:
    with FakeOpenAIServer(Fault.delay(0.0), default_reply=_echo) as server:
        stream = server.client().chat.completions.create(
            model="m", messages=[{"role": "user", "content": "record 8"}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == '{"id":8}'


def test_the_function_may_answer_with_choices() -> None:
    def two(request: CapturedRequest) -> ScriptItem:
        return Reply.choices(Reply.text("a"), Reply.text("b"))

    with FakeOpenAIServer(default_reply=two) as server:
        completion = server.client().chat.completions.create(model="m", messages=[], n=2)
        assert [c.message.content for c in completion.choices] == ["a", "b"]


def test_an_exception_in_the_function_is_a_500_and_is_recorded() -> None:
    def broken(request: CapturedRequest) -> Reply:
        raise KeyError("record_id")

    with FakeOpenAIServer(default_reply=broken) as server:
        with pytest.raises(openai.InternalServerError) as err:
            server.client().chat.completions.create(model="m", messages=[])
        error = err.value.response.json()["error"]
        assert error["message"] == "default_reply raised KeyError: 'record_id'"
        assert error["type"] == "fake_server_error"
        (recorded,) = server.errors
        assert isinstance(recorded, KeyError)


def test_a_function_returning_something_else_is_a_500_and_is_recorded() -> None:
    def wrong(request: CapturedRequest) -> Any:
        return {"json": {"a": 1}}

    with FakeOpenAIServer(default_reply=wrong) as server:
        with pytest.raises(openai.InternalServerError) as err:
            server.client().responses.create(model="m", input="x")
        assert "must return a Reply, a Fault or Choices, got dict" in str(err.value)
        (recorded,) = server.errors
        assert isinstance(recorded, TypeError)
