"""The fake server's own rate limits: token buckets, OpenAI's headers, 429s and the CLI flags.

The core (`RateLimiter`) is tested on a hand-driven clock; the server tests use real openai
clients and long windows wherever the exact figures matter, so no assertion depends on how
fast the machine is. Where refill is the point, the test only waits at least as long as the
server said (never asserts that something happened quickly).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from typing import Any, Literal

import httpx2
import openai
import pytest

from openai_structured.testing import FakeOpenAIServer, Fault, RateLimits, Reply
from openai_structured.testing.__main__ import _parser, build_server, main
from openai_structured.testing._limits import (
    RateLimiter,
    estimate_prompt_tokens,
    format_duration,
    max_in_window,
    retry_headers,
)

Api = Literal["chat", "responses"]
DURATION = re.compile(r"^(\d+h)?(\d+m)?(\d+(\.\d+)?s|\d+ms)$")


def _create(client: openai.OpenAI, api: Api, text: str = "hi", **extra: Any) -> Any:
    """One raw (headers-readable) call on either API."""
    if api == "chat":
        return client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": text}], **extra
        )
    if "max_tokens" in extra:
        extra["max_output_tokens"] = extra.pop("max_tokens")
    return client.responses.with_raw_response.create(model="gpt-4o", input=text, **extra)


def _limits_of(headers: Any) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith("x-ratelimit-")}


# -- the core, on a hand-driven clock -----------------------------------------------------


def test_bucket_admits_the_limit_at_once_then_refills_continuously() -> None:
    limiter = RateLimiter(RateLimits(requests_per_minute=4, window=2.0), start=100.0)
    assert [limiter.admit(0, 100.0).accepted for _ in range(5)] == [True] * 4 + [False]
    refused = limiter.admit(0, 100.0)
    assert refused.kind == "requests" and refused.retry_after == pytest.approx(0.5)
    assert refused.headers["x-ratelimit-reset-requests"] == "2s"  # empty -> full: the window
    assert not limiter.admit(0, 100.49).accepted
    after = limiter.admit(0, 100.5)  # 4 per 2 s: one request back every 0.5 s
    assert after.accepted
    assert after.headers["x-ratelimit-remaining-requests"] == "0"
    assert limiter.admit(0, 110.0).headers["x-ratelimit-remaining-requests"] == "3"


def test_a_refused_request_takes_nothing_from_any_limit() -> None:
    limiter = RateLimiter(
        RateLimits(requests_per_minute=10, tokens_per_minute=100, window=60.0), start=0.0
    )
    assert limiter.admit(80, 0.0).accepted
    refused = limiter.admit(30, 0.0)
    assert (refused.accepted, refused.kind) == (False, "tokens")
    assert (refused.limit, refused.used, refused.requested) == (100, 80, 30)
    assert refused.retry_after == pytest.approx(10 * 60 / 100)  # 10 tokens at 100 per 60 s
    assert refused.headers["x-ratelimit-remaining-requests"] == "9"  # not taken
    assert refused.headers["x-ratelimit-remaining-tokens"] == "20"
    assert limiter.admit(20, 0.0).accepted


def test_a_request_larger_than_the_token_limit_never_fits() -> None:
    limiter = RateLimiter(RateLimits(tokens_per_minute=100, window=1.0), start=0.0)
    refused = limiter.admit(101, 0.0)
    assert (refused.accepted, refused.kind, refused.retry_after) == (False, "tokens", None)
    assert retry_headers(refused.retry_after) == {}


def test_the_requests_limit_is_named_when_both_refuse_and_the_wait_fits_both() -> None:
    limiter = RateLimiter(
        RateLimits(requests_per_minute=1, tokens_per_minute=10, window=10.0), start=0.0
    )
    assert limiter.admit(10, 0.0).accepted
    refused = limiter.admit(10, 0.0)
    assert refused.kind == "requests"
    assert refused.retry_after == pytest.approx(10.0)  # tokens too need the whole window


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.02, "20ms"),
        (0.0001, "1ms"),
        (0.9999, "1s"),
        (1, "1s"),
        (9.816, "9.816s"),
        (90.5, "1m30.5s"),
        (360, "6m0s"),
        (3600, "1h0m0s"),
        (3723.25, "1h2m3.25s"),
    ],
)
def test_durations_are_written_as_openai_writes_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_retry_headers_round_up_to_the_millisecond_and_to_whole_seconds() -> None:
    assert retry_headers(0.2501) == {"retry-after-ms": "251", "Retry-After": "1"}
    assert retry_headers(2.0) == {"retry-after-ms": "2000", "Retry-After": "2"}
    assert retry_headers(0.0) == {"retry-after-ms": "1", "Retry-After": "1"}


def test_token_cost_is_the_prompt_estimate_plus_the_output_budget() -> None:
    limits = RateLimits(tokens_per_minute=1000, default_max_tokens=7)
    chat = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "x" * 8},
            {"role": "user", "content": [{"type": "text", "text": "y" * 5}, {"type": "image"}]},
        ],
    }
    assert estimate_prompt_tokens(chat) == 4  # 13 characters, rounded up
    assert limits.token_cost(chat) == 4 + 7
    assert limits.token_cost({**chat, "max_tokens": 50}) == 54
    assert limits.token_cost({**chat, "max_completion_tokens": 20, "max_tokens": 50}) == 24
    assert limits.token_cost({**chat, "max_tokens": 50, "n": 3}) == 4 + 150
    responses = {
        "instructions": "a" * 4,
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "b" * 4}]}],
        "max_output_tokens": 10,
    }
    assert limits.token_cost(responses) == 2 + 10
    assert limits.token_cost({"input": "c" * 9}) == 3 + 7
    assert limits.token_cost(None) == 7


def test_max_in_window_counts_the_busiest_half_open_interval() -> None:
    times = [0.0, 0.1, 0.2, 1.0, 1.05, 1.1, 1.15, 3.0]
    assert max_in_window(times, 1.0) == 5  # [0.2, 1.2); [0.1, 1.1) holds 4, not 1.1
    assert max_in_window(times, 0.2) == 4
    assert max_in_window([], 1.0) == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"requests_per_minute": 0},
        {"tokens_per_minute": -1},
        {"requests_per_minute": 1.5},
        {"requests_per_minute": True},
        {"window": 0},
        {"window": float("inf")},
        {"default_max_tokens": -1},
    ],
)
def test_rate_limits_reject_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RateLimits(**kwargs)


# -- the server, through the openai SDK ---------------------------------------------------


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_every_answer_carries_the_limit_headers_and_remaining_decreases(api: Api) -> None:
    limits = RateLimits(requests_per_minute=5, tokens_per_minute=1000, window=60.0)
    with FakeOpenAIServer(default_reply=Reply.json({"a": 1}), rate_limits=limits) as server:
        client = server.client()
        seen = [_limits_of(_create(client, api, "x" * 40, max_tokens=90).headers) for _ in range(3)]
    assert [h["x-ratelimit-limit-requests"] for h in seen] == ["5"] * 3
    assert [h["x-ratelimit-limit-tokens"] for h in seen] == ["1000"] * 3
    assert [h["x-ratelimit-remaining-requests"] for h in seen] == ["4", "3", "2"]
    # 40 characters = 10 tokens, plus max_tokens 90: each request costs 100.
    assert [h["x-ratelimit-remaining-tokens"] for h in seen] == ["900", "800", "700"]
    for headers in seen:
        assert DURATION.match(headers["x-ratelimit-reset-requests"])
        assert DURATION.match(headers["x-ratelimit-reset-tokens"])
    # One request of 5 per minute comes back in 12 s; three in 36 s (less the time gone by).
    assert seen[0]["x-ratelimit-reset-requests"] in ("12s", "11.999s", "11.998s")
    assert server.rate_limited == 0


def test_only_the_limits_that_are_set_send_headers() -> None:
    with FakeOpenAIServer(default_reply=Reply.json({})) as server:
        assert _limits_of(_create(server.client(), "chat").headers) == {}
        server.rate_limits = RateLimits(requests_per_minute=3)
        assert set(_limits_of(_create(server.client(), "chat").headers)) == {
            "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests",
        }


def test_streams_and_scripted_faults_carry_the_headers_too() -> None:
    limits = RateLimits(requests_per_minute=5, window=60.0)
    with FakeOpenAIServer(default_reply=Reply.json({"a": 1}), rate_limits=limits) as server:
        server.queue(Fault.status(503))
        with pytest.raises(openai.InternalServerError) as err:
            _create(server.client(), "chat")
        assert err.value.response.headers["x-ratelimit-remaining-requests"] == "4"
        with httpx2.stream(
            "POST",
            f"{server.base_url}/chat/completions",
            json={"model": "gpt-4o", "messages": [], "stream": True},
        ) as response:
            assert response.headers["x-ratelimit-remaining-requests"] == "3"
            assert b"[DONE]" in response.read()


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_the_request_over_the_limit_gets_429_with_retry_after_and_is_not_counted(
    api: Api,
) -> None:
    limits = RateLimits(requests_per_minute=3, window=60.0)
    with FakeOpenAIServer(rate_limits=limits) as server:
        server.queue(*(Reply.json({"n": i}) for i in range(4)))
        client = server.client()
        for _ in range(3):
            _create(client, api)
        for _ in range(2):
            with pytest.raises(openai.RateLimitError) as err:
                _create(client, api)
        response = err.value.response
        assert response.status_code == 429
        body = response.json()["error"]
        assert body["type"] == "requests" and body["code"] == "rate_limit_exceeded"
        assert body["param"] is None
        assert body["message"].startswith(
            "Rate limit reached for gpt-4o in organization org-fake on requests per min (RPM): "
            "Limit 3, Used 3, Requested 1. Please try again in "
        )
        wait_ms = int(response.headers["retry-after-ms"])
        assert 19_000 < wait_ms <= 20_000  # one request of 3 per minute
        assert response.headers["retry-after"] == str(-(-wait_ms // 1000))
        assert response.headers["x-ratelimit-remaining-requests"] == "0"
        assert err.value.request_id is not None
        # Refused requests took no capacity and no scripted reply; they were still captured.
        assert server.rate_limited == 2
        assert len(server.accepted_times) == 3
        assert server.pending == 1
        assert len(server.requests) == 5
        assert server.errors == []


def test_the_limit_refills_after_the_wait_the_server_gave() -> None:
    limits = RateLimits(requests_per_minute=2, window=2.0)  # one request back a second
    with FakeOpenAIServer(default_reply=Reply.json({}), rate_limits=limits) as server:
        client = server.client()
        _create(client, "chat")
        _create(client, "chat")
        with pytest.raises(openai.RateLimitError) as err:
            _create(client, "chat")
        time.sleep(int(err.value.response.headers["retry-after-ms"]) / 1000 + 0.01)
        assert _create(client, "chat").status_code == 200
        assert server.rate_limited == 1


def test_the_sdk_retries_on_the_servers_retry_after() -> None:
    limits = RateLimits(requests_per_minute=1, window=1.0)
    with FakeOpenAIServer(default_reply=Reply.json({"ok": True}), rate_limits=limits) as server:
        client = server.client(max_retries=3)
        started = time.monotonic()
        for _ in range(2):
            completion = client.chat.completions.create(model="gpt-4o", messages=[])
            assert completion.choices[0].message.content == '{"ok":true}'
        assert time.monotonic() - started >= 0.99  # the second waited for the refill
        assert server.rate_limited >= 1
        assert len(server.accepted_times) == 2


def test_tokens_are_counted_with_max_tokens_and_refused_as_tokens() -> None:
    limits = RateLimits(tokens_per_minute=100, window=60.0)
    with FakeOpenAIServer(default_reply=Reply.json({}), rate_limits=limits) as server:
        client = server.client()
        first = _create(client, "chat", "z" * 40, max_tokens=40)  # 10 + 40
        assert first.headers["x-ratelimit-remaining-tokens"] == "50"
        assert "x-ratelimit-remaining-requests" not in first.headers
        with pytest.raises(openai.RateLimitError) as err:
            _create(client, "chat", "z" * 40, max_tokens=41)  # 51 > 50
        error = err.value.response.json()["error"]
        assert error["type"] == "tokens"
        assert "on tokens per min (TPM): Limit 100, Used 50, Requested 51." in error["message"]
        assert _create(client, "chat", "z" * 40, max_tokens=40).status_code == 200
        with pytest.raises(openai.RateLimitError) as too_large:
            _create(client, "chat", "z", max_tokens=500)
        assert too_large.value.response.json()["error"]["message"].startswith(
            "Request too large for gpt-4o in organization org-fake on tokens per min (TPM): "
            "Limit 100, Requested 501."
        )
        assert "retry-after" not in too_large.value.response.headers
        assert server.rate_limited == 2


def test_default_max_tokens_counts_for_requests_without_one() -> None:
    limits = RateLimits(tokens_per_minute=1000, window=60.0, default_max_tokens=200)
    with FakeOpenAIServer(default_reply=Reply.json({}), rate_limits=limits) as server:
        assert _create(server.client(), "chat", "1234").headers[
            "x-ratelimit-remaining-tokens"
        ] == str(1000 - 1 - 200)


async def test_concurrent_requests_get_exactly_the_limit_through() -> None:
    limits = RateLimits(requests_per_minute=5, window=60.0)
    with FakeOpenAIServer(default_reply=Reply.json({}), rate_limits=limits) as server:
        async with server.async_client() as client:
            results = await asyncio.gather(
                *(client.chat.completions.create(model="gpt-4o", messages=[]) for _ in range(12)),
                return_exceptions=True,
            )
        refused = [r for r in results if isinstance(r, openai.RateLimitError)]
        assert len(refused) == 7 and server.rate_limited == 7
        assert server.max_accepted_in_window(60.0) == 5
        assert server.errors == []


def test_accepted_times_are_recorded_without_limits_too_and_reset_clears_them() -> None:
    with FakeOpenAIServer(default_reply=Reply.json({})) as server:
        client = server.client()
        before = time.monotonic()
        for _ in range(3):
            _create(client, "responses")
        client.models.list()  # not a model call: not counted
        times = server.accepted_times
        assert len(times) == 3 and times == sorted(times) and times[0] >= before
        assert server.max_accepted_in_window(3600.0) == 3
        server.rate_limits = RateLimits(requests_per_minute=1)
        _create(client, "chat")
        with pytest.raises(openai.RateLimitError):
            _create(client, "chat")
        server.reset()  # counters cleared, capacity back
        assert (server.rate_limited, server.accepted_times) == (0, [])
        assert _create(client, "chat").status_code == 200


def test_rate_limits_must_be_rate_limits() -> None:
    with pytest.raises(TypeError):
        FakeOpenAIServer(rate_limits={"requests_per_minute": 1})  # type: ignore[arg-type]


# -- as a separate process -----------------------------------------------------------------


def _cli(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [sys.executable, "-m", "openai_structured.testing", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    assert proc.wait(5) == 0
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def test_command_line_rate_limits_latency_and_stats() -> None:
    proc = _cli(
        "--default-json", '{"a": 1}', "--rpm", "2", "--tpm", "500", "--window", "60",
        "--latency", "0.05",
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        with openai.OpenAI(base_url=base_url, api_key="x", max_retries=0) as client:
            started = time.monotonic()
            first = _create(client, "chat", "abcd", max_tokens=10)
            assert time.monotonic() - started >= 0.05
            assert first.parse().choices[0].message.content == '{"a":1}'
            assert _limits_of(first.headers) == {
                "x-ratelimit-limit-requests": "2",
                "x-ratelimit-remaining-requests": "1",
                "x-ratelimit-reset-requests": first.headers["x-ratelimit-reset-requests"],
                "x-ratelimit-limit-tokens": "500",
                "x-ratelimit-remaining-tokens": "489",
                "x-ratelimit-reset-tokens": first.headers["x-ratelimit-reset-tokens"],
            }
            _create(client, "responses")
            with pytest.raises(openai.RateLimitError):
                _create(client, "chat")
        stats = httpx2.get(base_url.removesuffix("/v1") + "/_fake/stats").json()
        assert (stats["requests"], stats["accepted"], stats["rate_limited"]) == (3, 2, 1)
        assert len(stats["accepted_times"]) == 2 and stats["errors"] == []
    finally:
        _stop(proc)


def test_command_line_jitter_is_a_seeded_uniform_latency() -> None:
    args = _parser().parse_args(
        ["--latency", "0.02", "--latency-jitter", "0.01", "--seed", "7", "--tpm", "90"]
    )
    server = build_server(args)
    assert repr(server.latency) == "Latency.uniform(0.01, 0.03)"
    twin = build_server(args).latency
    assert server.latency is not None and twin is not None
    assert [server.latency.sample() for _ in range(5)] == [twin.sample() for _ in range(5)]
    assert server.rate_limits == RateLimits(tokens_per_minute=90)
    assert build_server(_parser().parse_args([])).rate_limits is None


@pytest.mark.parametrize(
    "args",
    [
        ["--rpm", "0"],
        ["--window", "-1", "--rpm", "3"],
        ["--latency", "-0.5"],
        ["--latency", "0.1", "--latency-jitter", "-1"],
    ],
)
def test_command_line_rejects_bad_limits_and_latency(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code != 0
    assert "must be" in str(exit_.value.code)
    assert capsys.readouterr().out == ""
