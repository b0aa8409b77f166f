"""What a call cost: ``TokenUsage`` from both APIs' usage shapes, ``StructuredResult`` from the
``*_result`` calls, ``.summary`` of streams, ``Finished.summary``, and the running
``StructuredClient.totals``, end to end through the loopback server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from core_support import CANARY_KEY
from pydantic import BaseModel, field_validator

from openai_structured import (
    AsyncStructuredClient,
    Finished,
    RefusalError,
    StructuredClient,
    StructuredResult,
    TokenBudgetError,
    TokenUsage,
    UsageTotals,
    ValidationError,
    async_openai_structured_call_result,
    async_openai_structured_events,
    async_openai_structured_stream,
    estimate_cost,
    openai_structured_call_result,
    openai_structured_events,
    openai_structured_stream,
)
from openai_structured.testing import FakeOpenAIServer, Reply


class City(BaseModel):
    name: str
    population: int

    @field_validator("population")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("population must be positive")
        return value


OSLO = City(name="Oslo", population=700_000)
PROMPT = "The capital of Norway?"


def oslo(**options: Any) -> Reply:
    return Reply.json({"name": "Oslo", "population": 700_000}, **options)


def broken(**options: Any) -> Reply:
    return Reply.json({"name": "Oslo", "population": -1}, **options)


def price(model: str, prompt: int, completion: int, cached: int = 0) -> float:
    cost = estimate_cost(model, prompt, completion, cached_input_tokens=cached)
    assert cost is not None
    return cost.total


# --- TokenUsage ---------------------------------------------------------------------------------


def test_from_api_reads_the_chat_completions_shape() -> None:
    usage = TokenUsage.from_api(
        {
            "prompt_tokens": 120,
            "completion_tokens": 30,
            "total_tokens": 150,
            "prompt_tokens_details": {"cached_tokens": 20, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 5, "audio_tokens": 0},
        }
    )
    assert usage == TokenUsage(120, 30, 20, 5, requests=1, unreported=0)
    assert usage.total_tokens == 150


def test_from_api_reads_the_responses_shape() -> None:
    usage = TokenUsage.from_api(
        {
            "input_tokens": 80,
            "input_tokens_details": {"cached_tokens": 64},
            "output_tokens": 40,
            "output_tokens_details": {"reasoning_tokens": 12},
            "total_tokens": 120,
        }
    )
    assert usage == TokenUsage(80, 40, 64, 12, requests=1, unreported=0)
    assert usage.total_tokens == 120


@pytest.mark.parametrize(
    "given",
    [
        {"prompt_tokens": 7, "completion_tokens": 3},
        {"prompt_tokens": 7, "completion_tokens": 3, "prompt_tokens_details": None},
        {"input_tokens": 7, "output_tokens": 3, "output_tokens_details": None},
        {"input_tokens": 7, "output_tokens": 3, "input_tokens_details": {"cached_tokens": None}},
    ],
)
def test_from_api_without_details_counts_zero_cached_and_reasoning(given: dict[str, Any]) -> None:
    assert TokenUsage.from_api(given) == TokenUsage(7, 3, 0, 0, requests=1)


def test_from_api_ignores_values_that_are_not_counts() -> None:
    usage = TokenUsage.from_api(
        {
            "prompt_tokens": True,
            "completion_tokens": -4,
            "prompt_tokens_details": {"cached_tokens": "9"},
        }
    )
    assert usage == TokenUsage(0, 0, 0, 0, requests=1)


@pytest.mark.parametrize("given", [None, "usage", 12])
def test_from_api_without_usage_is_one_unreported_request(given: Any) -> None:
    usage = TokenUsage.from_api(given)
    assert usage == TokenUsage(requests=1, unreported=1)
    assert usage.total_tokens == 0


def test_usages_add_up() -> None:
    a = TokenUsage(100, 10, 40, 2, requests=1)
    b = TokenUsage(200, 20, 0, 5, requests=1)
    c = TokenUsage.from_api(None)
    total = a + b + c
    assert total == TokenUsage(300, 30, 40, 7, requests=3, unreported=1)
    assert total.total_tokens == 330
    assert sum([a, b, c], TokenUsage()) == total
    assert TokenUsage() + a == a
    with pytest.raises(TypeError):
        a + 1  # type: ignore[operator]
    assert total.as_dict() == {
        "prompt_tokens": 300,
        "completion_tokens": 30,
        "total_tokens": 330,
        "cached_tokens": 40,
        "reasoning_tokens": 7,
        "requests": 3,
    }


# --- StructuredResult of a call -----------------------------------------------------------------


def call_result(fake: FakeOpenAIServer, mode: str, /, **kwargs: Any) -> StructuredResult[Any]:
    kwargs = {"model": "gpt-4o", "output_schema": City, "user_prompt": PROMPT, **kwargs}
    if mode == "sync":
        return openai_structured_call_result(client=fake.client(api_key=CANARY_KEY), **kwargs)

    async def go() -> StructuredResult[Any]:
        async with fake.async_client(api_key=CANARY_KEY) as client:
            return await async_openai_structured_call_result(client=client, **kwargs)

    return asyncio.run(go())


def test_call_result_has_the_servers_usage_and_the_registrys_price(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    server.queue(oslo(id="resp_one").with_usage(120, 30, cached_tokens=20, reasoning_tokens=5))
    result = call_result(server, mode, api=api)

    assert isinstance(result, StructuredResult)
    assert result.value == OSLO
    assert result.model == "gpt-4o"
    assert result.usage == TokenUsage(120, 30, 20, 5, requests=1, unreported=0)
    assert result.usage.total_tokens == 150
    assert result.cost == estimate_cost("gpt-4o", 120, 30, cached_input_tokens=20)
    assert result.cost_usd == price("gpt-4o", 120, 30, 20)
    assert result.response_ids == ("resp_one",)
    assert result.attempts == 1


def test_call_result_sums_every_attempt_of_a_re_ask(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    server.queue(
        broken(id="resp_1").with_usage(100, 10, cached_tokens=50),
        oslo(id="resp_2").with_usage(200, 20, reasoning_tokens=4),
    )
    result = call_result(server, mode, api=api, max_validation_retries=1)

    assert result.value == OSLO
    assert result.usage == TokenUsage(300, 30, 50, 4, requests=2, unreported=0)
    assert result.attempts == 2
    assert result.response_ids == ("resp_1", "resp_2")
    assert result.cost_usd == price("gpt-4o", 300, 30, 50)


def test_a_model_without_prices_has_no_cost(server: FakeOpenAIServer, mode: str, api: str) -> None:
    # Every model of the registry has prices; a custom server's model has none.
    server.queue(oslo().with_usage(50, 5))
    result = call_result(server, mode, api=api, server="vllm", model="my-local-llama")
    assert result.value == OSLO
    assert result.model == "my-local-llama"
    assert result.usage.total_tokens == 55
    assert result.cost is None
    assert result.cost_usd is None


# --- streams ------------------------------------------------------------------------------------


def _stream_kwargs(api: str, **kwargs: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "api": api, "output_schema": City, "user_prompt": PROMPT, **kwargs}


def test_value_stream_summary_is_none_until_exhausted(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    server.queue(oslo(id="resp_s").with_usage(90, 6, cached_tokens=10))
    kwargs = _stream_kwargs(api)
    if mode == "sync":
        stream = openai_structured_stream(client=server.client(api_key=CANARY_KEY), **kwargs)
        assert stream.summary is None
        values = list(stream)
        summary = stream.summary
    else:

        async def go() -> tuple[list[Any], StructuredResult[Any] | None]:
            async with server.async_client(api_key=CANARY_KEY) as client:
                stream = async_openai_structured_stream(client=client, **kwargs)
                assert stream.summary is None
                out = [v async for v in stream]
                return out, stream.summary

        values, summary = asyncio.run(go())

    assert values == [OSLO]
    assert summary is not None
    assert summary.value == OSLO
    assert summary.usage == TokenUsage(90, 6, 10, 0, requests=1)
    assert summary.cost_usd == price("gpt-4o", 90, 6, 10)
    assert summary.response_ids == ("resp_s",)
    assert summary.attempts == 1


def test_event_stream_finished_carries_the_summary(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    server.queue(broken(id="resp_a").with_usage(40, 4), oslo(id="resp_b").with_usage(60, 6))
    kwargs = _stream_kwargs(api, max_validation_retries=1)
    if mode == "sync":
        with openai_structured_events(client=server.client(api_key=CANARY_KEY), **kwargs) as ev:
            assert ev.summary is None
            events = list(ev)
            summary = ev.summary
    else:

        async def go() -> tuple[list[Any], StructuredResult[Any] | None]:
            async with (
                server.async_client(api_key=CANARY_KEY) as client,
                async_openai_structured_events(client=client, **kwargs) as ev,
            ):
                assert ev.summary is None
                out = [e async for e in ev]
                return out, ev.summary

        events, summary = asyncio.run(go())

    finished = events[-1]
    assert type(finished) is Finished
    assert finished.summary is not None
    assert finished.summary == summary
    assert finished.summary.value == OSLO
    assert finished.summary.usage == TokenUsage(100, 10, requests=2)
    assert finished.summary.attempts == 2
    assert finished.summary.response_ids == ("resp_a", "resp_b")
    assert finished.summary.cost_usd == price("gpt-4o", 100, 10)
    assert finished.usage is not None  # the last response's own usage
    assert 6 in (finished.usage.get("completion_tokens"), finished.usage.get("output_tokens"))


# --- StructuredClient.totals --------------------------------------------------------------------


def test_totals_count_calls_failed_calls_and_streams(server: FakeOpenAIServer, api: str) -> None:
    client = StructuredClient(server.client(api_key=CANARY_KEY), api=api)
    assert client.totals == UsageTotals()

    server.queue(oslo().with_usage(100, 10, cached_tokens=40))
    assert client.complete("gpt-4o", output_schema=City, user_prompt=PROMPT) == OSLO

    server.queue(Reply.refusal("No.").with_usage(50, 5))
    with pytest.raises(RefusalError):
        client.complete_result("gpt-4o", output_schema=City, user_prompt=PROMPT)

    server.queue(oslo().with_usage(30, 3))
    stream = client.stream("gpt-4o", output_schema=City, user_prompt=PROMPT)
    assert list(stream) == [OSLO]

    totals = client.totals
    assert totals.calls == 3
    assert totals.attempts == 3
    assert totals.usage == TokenUsage(180, 18, 40, 0, requests=3)
    expected = price("gpt-4o", 100, 10, 40) + price("gpt-4o", 50, 5) + price("gpt-4o", 30, 3)
    assert totals.cost_usd == pytest.approx(expected)
    assert totals.unpriced == 0


def test_totals_count_every_attempt_including_runs_out(server: FakeOpenAIServer, api: str) -> None:
    client = StructuredClient(server.client(api_key=CANARY_KEY), api=api, max_validation_retries=1)
    server.queue(broken().with_usage(10, 1), oslo().with_usage(20, 2))
    result = client.complete_result("gpt-4o", output_schema=City, user_prompt=PROMPT)
    assert result.attempts == 2

    server.queue(broken().with_usage(30, 3), broken().with_usage(40, 4))
    with pytest.raises(ValidationError):
        client.complete("gpt-4o", output_schema=City, user_prompt=PROMPT)

    server.queue(broken().with_usage(5, 1), oslo().with_usage(6, 1))
    assert list(client.stream("gpt-4o", output_schema=City, user_prompt=PROMPT)) == [OSLO]

    assert (client.totals.calls, client.totals.attempts) == (3, 6)
    assert client.totals.usage == TokenUsage(111, 12, requests=6)
    assert client.totals.cost_usd == pytest.approx(price("gpt-4o", 111, 12))


def test_totals_count_a_failed_stream(server: FakeOpenAIServer, api: str) -> None:
    client = StructuredClient(server.client(api_key=CANARY_KEY), api=api)
    server.queue(Reply.refusal("No.").with_usage(25, 2))
    with pytest.raises(RefusalError):
        list(client.stream("gpt-4o", output_schema=City, user_prompt=PROMPT))
    assert client.totals.calls == 1
    assert client.totals.usage == TokenUsage(25, 2, requests=1)


def test_totals_count_unpriced_models(server: FakeOpenAIServer, api: str) -> None:
    client = StructuredClient(server.client(api_key=CANARY_KEY), api=api)
    server.queue(oslo().with_usage(10, 1), oslo().with_usage(20, 2))
    client.complete("my-local-llama", output_schema=City, user_prompt=PROMPT, server="vllm")
    client.complete("gpt-4o", output_schema=City, user_prompt=PROMPT)
    assert client.totals.calls == 2
    assert client.totals.unpriced == 1
    assert client.totals.cost_usd == pytest.approx(price("gpt-4o", 20, 2))
    assert client.totals.usage.total_tokens == 33


def test_async_client_totals(server: FakeOpenAIServer, api: str) -> None:
    async def go() -> UsageTotals:
        async with server.async_client(api_key=CANARY_KEY) as raw:
            client = AsyncStructuredClient(raw, api=api)
            server.queue(oslo().with_usage(100, 10))
            assert await client.complete("gpt-4o", output_schema=City, user_prompt=PROMPT) == OSLO
            server.queue(Reply.refusal("No.").with_usage(50, 5))
            with pytest.raises(RefusalError):
                await client.complete_result("gpt-4o", output_schema=City, user_prompt=PROMPT)
            server.queue(oslo().with_usage(30, 3))
            stream = client.stream("gpt-4o", output_schema=City, user_prompt=PROMPT)
            assert [v async for v in stream] == [OSLO]
            assert stream.summary is not None and stream.summary.usage.total_tokens == 33
            return client.totals

    totals = asyncio.run(go())
    assert (totals.calls, totals.attempts) == (3, 3)
    assert totals.usage == TokenUsage(180, 18, requests=3)
    expected = price("gpt-4o", 100, 10) + price("gpt-4o", 50, 5) + price("gpt-4o", 30, 3)
    assert totals.cost_usd == pytest.approx(expected)


def test_totals_count_a_call_stopped_by_the_budget_after_an_attempt(
    server: FakeOpenAIServer, api: str
) -> None:
    client = StructuredClient(server.client(api_key=CANARY_KEY), api=api)
    server.queue(broken().with_usage(5000, 100), oslo())
    with pytest.raises(TokenBudgetError):
        client.complete(
            "gpt-4o", output_schema=City, user_prompt=PROMPT, max_validation_retries=1,
            max_total_tokens=1000,
        )  # fmt: skip
    assert (client.totals.calls, client.totals.attempts) == (1, 1)
    assert client.totals.usage.total_tokens == 5100


def test_totals_count_a_stream_stopped_by_the_budget_after_an_attempt(
    server: FakeOpenAIServer, mode: str, api: str
) -> None:
    server.queue(broken().with_usage(5000, 100), oslo())
    kwargs: dict[str, Any] = {
        "output_schema": City,
        "user_prompt": PROMPT,
        "max_validation_retries": 1,
        "max_total_tokens": 1000,
    }
    if mode == "sync":
        client = StructuredClient(server.client(api_key=CANARY_KEY), api=api)
        with pytest.raises(TokenBudgetError):
            list(client.stream("gpt-4o", **kwargs))
        totals = client.totals
    else:

        async def go() -> UsageTotals:
            async with server.async_client(api_key=CANARY_KEY) as raw:
                client = AsyncStructuredClient(raw, api=api)
                with pytest.raises(TokenBudgetError):
                    _ = [v async for v in client.stream("gpt-4o", **kwargs)]
                return client.totals

        totals = asyncio.run(go())
    assert len(server.requests) == 1
    assert (totals.calls, totals.attempts) == (1, 1)
    assert totals.usage.total_tokens == 5100
