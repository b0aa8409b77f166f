"""The shared limiter: one RateLimiter in a Ray actor keeps a whole cluster under the server's
limits; its proxy crosses processes (reservations, waits, errors) on the actor's clock."""

from __future__ import annotations

import pickle
import time
from typing import Any

import pytest
import ray
from ray_support import MODEL, Answer, answer, ask, record_of, rows

from openai_structured.bulk import RequestTooLargeError
from openai_structured.bulk._limiter import Reservation, Wait
from openai_structured.bulk.ray import SharedLimiter, _LimiterActor, extract
from openai_structured.testing import FakeOpenAIServer, RateLimits

pytestmark = pytest.mark.usefixtures("ray_cluster")


def granted(limiter: SharedLimiter, tokens: int = 10, *, within: float = 5.0) -> Reservation:
    """A reservation, asking again after each wait (as BulkRun's gate does)."""
    deadline = time.monotonic() + within
    while not isinstance(got := limiter.reserve(tokens, -1.0), Reservation):
        assert time.monotonic() < deadline, got
        time.sleep(got.seconds)
    return got


def answered(limiter: SharedLimiter, tokens: int = 10) -> Reservation | Wait:
    """The actor's answer, not the "not back yet" wait."""
    while True:
        got = limiter.reserve(tokens, 0.0)
        if isinstance(got, Reservation) or got.seconds > 0.01:
            return got
        time.sleep(got.seconds)


# --- the proxy ------------------------------------------------------------------------------


def test_a_reservation_survives_the_round_trip_and_a_429_pauses_everyone() -> None:
    limiter = SharedLimiter(rpm=1000, tpm=1_000_000, window=1.0, name="test-limits")
    got = granted(limiter)
    assert pickle.loads(pickle.dumps(got)) == got
    assert limiter.in_flight == 1
    assert SharedLimiter(rpm=1, name="test-limits").in_flight == 1  # the same actor
    limiter.release(got, 12345.0, headers={"X-RateLimit-Limit-Requests": "500", "other": "x"})
    assert limiter.in_flight == 0  # calls from one process run in order: after the release
    stats = limiter.stats(-5.0)  # the caller's clock is ignored
    assert (stats.granted, stats.rpm, stats.rate_limited) == (1, 500, 0)

    got = granted(limiter)
    pause = limiter.rate_limited(got, 0.0, headers={"retry-after-ms": "300"})
    assert pause == pytest.approx(0.3)
    waiting = answered(limiter)
    assert isinstance(waiting, Wait) and waiting.reason == "paused"
    stats = limiter.stats()
    assert stats.rate_limited == 1 and stats.paused_until is not None and stats.in_flight == 0


def test_pickled_copies_share_one_limit_and_errors_come_back() -> None:
    limiter = SharedLimiter(rpm=2, tpm=1000, window=60.0, max_in_flight=4)

    @ray.remote(num_cpus=0)
    def take(limiter: SharedLimiter) -> Any:
        return granted(limiter)

    assert isinstance(ray.get(take.remote(limiter)), Reservation)
    assert limiter.in_flight == 1
    # Paced at 2 a minute over the whole cluster: the next one is far off.
    later = answered(limiter)
    assert isinstance(later, Wait) and later.reason == "requests" and later.seconds > 10
    with pytest.raises(RequestTooLargeError) as caught:
        answered(limiter, tokens=5000)
    assert (caught.value.tokens, caught.value.limit, caught.value.source) == (5000, 1000, "tpm")


def test_the_round_trip_is_cheap() -> None:
    limiter = SharedLimiter(rpm=10**6, tpm=10**9, max_in_flight=1000)

    @ray.remote(num_cpus=0)
    def cycle(limiter: SharedLimiter, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            limiter.release(granted(limiter))
        return (time.perf_counter() - start) / n

    ray.get(cycle.remote(limiter, 20))
    per_request = ray.get(cycle.remote(limiter, 300))
    print(f"shared limiter: {per_request * 1000:.2f} ms per reserve + release")
    assert per_request < 0.05


# --- the actor's bookkeeping, in this process -----------------------------------------------


def test_what_an_owner_holds_is_given_back() -> None:
    actor = _LimiterActor(1000, 1_000_000, 8, 60.0, 0.02, 900.0)
    for owner in ("actor-a:1", "actor-a:1", "actor-a:2", "actor-b:1"):
        assert isinstance(actor.reserve(10, owner), Reservation)
    assert actor.in_flight() == 4
    assert actor.forget("actor-a:1") == 2
    assert actor.forget("actor-a:", prefix=True) == 1
    assert actor.in_flight() == 1


def test_a_reservation_never_given_back_frees_its_slot_after_its_lease() -> None:
    actor = _LimiterActor(1000, 1_000_000, 1, 60.0, 0.02, 0.2)
    first = actor.reserve(10, "a")
    assert isinstance(first, Reservation)
    assert isinstance(actor.reserve(10, "a"), Wait)  # the only slot is taken
    time.sleep(0.3)
    second = actor.reserve(10, "a")
    assert isinstance(second, Reservation) and second.id != first.id
    actor.release(first, None, None)  # late: ignored
    assert actor.rate_limited(first, None, None) == 1.0  # late too: nothing learned
    assert actor.in_flight() == 1 and actor.stats().rate_limited == 0


def test_an_answer_nobody_took_is_given_back() -> None:
    actor = _LimiterActor(1000, 1_000_000, 1, 60.0, 0.02, 900.0)
    got = actor.reserve(10, "a")
    assert isinstance(got, Reservation)
    actor.give_back(got)
    assert actor.in_flight() == 0
    actor.give_back(Wait(1.0, "requests"))  # nothing to give back


# --- the whole cluster under the server's limit ---------------------------------------------

LIMIT, WINDOW, ROWS = 30, 1.0, 75  # requests per second, as the server counts them


def test_the_cluster_keeps_the_servers_limit() -> None:
    with FakeOpenAIServer(default_reply=answer) as server:
        server.rate_limits = RateLimits(requests_per_minute=LIMIT, window=WINDOW)
        server.latency = 0.01
        ds = ray.data.from_items(rows(ROWS), override_num_blocks=4)
        out = extract(
            ds, model=MODEL, output_schema=Answer, request=ask, base_url=server.base_url,
            rpm=LIMIT, rate_window=WINDOW, actors=2, batch_size=10, concurrency=8,
        )  # fmt: skip
        started = time.monotonic()
        table = out.take_all()
        elapsed = time.monotonic() - started
        assert sorted(r["id"] for r in table) == list(range(1, ROWS + 1))
        assert {record_of(r) for r in server.requests} == set(range(1, ROWS + 1))
        assert server.rate_limited == 0
        assert server.max_accepted_in_window(WINDOW) <= LIMIT
    assert elapsed > ROWS / LIMIT * 0.9  # it was paced, not just lucky
