"""The bulk run's rate limiter: pure arithmetic on a fake clock (plain floats), a discrete-event
simulation of workers against a rate-limited server model, and property tests over hostile
headers and event orders."""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openai_structured.bulk._limiter import (
    RateLimiter,
    RateLimitHeaders,
    RequestTooLargeError,
    Reservation,
    Wait,
    parse_duration,
    parse_rate_limit_headers,
    parse_retry_after,
)
from openai_structured.errors import OpenAIClientError, TokenLimitError


def granted(got: Reservation | Wait) -> Reservation:
    assert isinstance(got, Reservation), got
    return got


def waited(got: Reservation | Wait) -> Wait:
    assert isinstance(got, Wait), got
    assert math.isfinite(got.seconds) and got.seconds > 0
    return got


def headers(
    limit_requests: int | str | None = None,
    remaining_requests: int | str | None = None,
    reset_requests: str | None = None,
    limit_tokens: int | str | None = None,
    remaining_tokens: int | str | None = None,
    reset_tokens: str | None = None,
) -> dict[str, str]:
    values = {
        "x-ratelimit-limit-requests": limit_requests,
        "x-ratelimit-remaining-requests": remaining_requests,
        "x-ratelimit-reset-requests": reset_requests,
        "x-ratelimit-limit-tokens": limit_tokens,
        "x-ratelimit-remaining-tokens": remaining_tokens,
        "x-ratelimit-reset-tokens": reset_tokens,
    }
    return {k: str(v) for k, v in values.items() if v is not None}


# --- header values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1m30.5s", 90.5),
        ("2h0m0s", 7200.0),
        ("0.5", 0.5),
        ("12", 12.0),
        (" 7s ", 7.0),
        ("1.5S", 1.5),
        ("250us", 0.00025),
        ("0s", 0.0),
        (".5s", 0.5),
    ],
)
def test_parse_duration_reads_openai_reset_values(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        *("", "s", "abc", "-1s", "-1", "1x", "nan", "inf", "NaN", "1e400", "1.2.3s", "1s-"),
        *("1 s", "9999999h", "25h", "9" * 400 + "s", "1s" * 40, "\x00", "+1s", "1_000s"),
    ],
)
def test_parse_duration_refuses_garbage_negative_nonfinite_and_huge_values(text: str) -> None:
    assert parse_duration(text) is None


def test_parse_retry_after_takes_seconds_and_http_dates_against_the_date_header() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.25") == 0.25
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", date) == 5.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", date) == 0.0  # in the past
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT") is None  # no clock to compare
    assert parse_retry_after("soon", date) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:05", date) is None  # naive vs aware


def test_parse_rate_limit_headers_reads_each_header_on_its_own_in_any_case() -> None:
    parsed = parse_rate_limit_headers(
        {
            "X-RateLimit-Limit-Requests": "500",
            "x-ratelimit-limit-tokens": "banana",
            "x-ratelimit-remaining-requests": "-3",
            "x-ratelimit-remaining-tokens": "29000",
            "x-ratelimit-reset-requests": "120ms",
            "x-ratelimit-reset-tokens": "nan",
            "retry-after-ms": "1500",
            "retry-after": "99",
        }
    )
    assert parsed == RateLimitHeaders(
        limit_requests=500,
        limit_tokens=None,
        remaining_requests=None,
        remaining_tokens=29000,
        reset_requests=0.12,
        reset_tokens=None,
        retry_after=1.5,
    )
    assert parse_rate_limit_headers(headers(limit_requests=0)).limit_requests is None
    assert parse_rate_limit_headers(headers(limit_requests=10**13)).limit_requests is None
    assert parse_rate_limit_headers({"retry-after": "2"}).retry_after == 2.0


# --- the limits ------------------------------------------------------------------------------


def test_a_fresh_bucket_allows_only_a_small_burst_then_paces_at_the_limit() -> None:
    limiter = RateLimiter(rpm=600, tpm=10**9, max_in_flight=1000)
    burst = 0
    while isinstance(limiter.reserve(1, 0.0), Reservation):
        burst += 1
    assert 1 <= burst <= 600 * 0.03  # 2% of the window's refill, not the whole window
    wait = waited(limiter.reserve(1, 0.0))
    assert wait.reason == "requests"
    assert wait.seconds == pytest.approx(60 * 1.02 / 600, rel=0.01)


def test_no_more_than_the_limit_is_granted_in_any_window() -> None:
    limiter = RateLimiter(rpm=50, tpm=10**9, max_in_flight=10**6, window=1.0)
    times = drive(limiter, until=20.0)
    assert_window_respected(times, 50, 1.0)
    rate = len([t for t in times if t >= 1.0]) / (20.0 - 1.0)
    assert 50 * 0.95 <= rate <= 50


def drive(limiter: RateLimiter, *, until: float, tokens: int = 1) -> list[float]:
    """Grant as fast as allowed, releasing each grant at once; the grant times."""
    now, times = 0.0, []
    while now < until:
        got = limiter.reserve(tokens, now)
        if isinstance(got, Wait):
            now += got.seconds
        else:
            times.append(now)
            limiter.release(got, now)
    return times


def assert_window_respected(
    times: list[float], limit: float, window: float, amounts: list[int] | None = None
) -> None:
    amounts = amounts or [1] * len(times)
    order = sorted(range(len(times)), key=times.__getitem__)
    j, total = 0, 0
    for i in order:  # the window [times[i] - window, times[i]], closed
        total += amounts[i]
        while times[order[j]] < times[i] - window:
            total -= amounts[order[j]]
            j += 1
        assert total <= limit, f"{total} > {limit} in the window ending at {times[i]}"


def test_a_request_that_can_never_fit_is_a_typed_error_that_says_what_to_do() -> None:
    limiter = RateLimiter(rpm=10, tpm=1000)
    with pytest.raises(RequestTooLargeError) as err:
        limiter.reserve(1001, 0.0)
    assert isinstance(err.value, TokenLimitError)
    assert isinstance(err.value, ValueError)
    assert isinstance(err.value, OpenAIClientError)
    assert (err.value.tokens, err.value.limit, err.value.source) == (1001, 1000, "tpm")
    message = str(err.value)
    assert "max_output_tokens" in message and "split the record" in message
    assert "--tpm" in message
    granted(limiter.reserve(1000, 0.0))  # exactly the limit fits


def test_a_learned_token_limit_too_small_for_a_request_names_the_server() -> None:
    limiter = RateLimiter(max_in_flight=4)
    limiter.release(granted(limiter.reserve(10, 0.0)), 0.1, headers=headers(limit_tokens=500))
    with pytest.raises(RequestTooLargeError, match="x-ratelimit-limit-tokens") as err:
        limiter.reserve(501, 0.2)
    assert err.value.source == "server"
    assert "--tpm" not in str(err.value)


def test_learned_limits_lower_the_users_but_never_raise_them() -> None:
    limiter = RateLimiter(rpm=100, tpm=10_000)
    limiter.release(
        granted(limiter.reserve(1, 0.0)), 0.1, headers=headers(limit_requests=1000, limit_tokens=5)
    )
    stats = limiter.stats(0.1)
    assert (stats.rpm, stats.tpm) == (100, 5)
    limiter.release(granted(limiter.reserve(1, 0.2)), 0.3, headers=headers(limit_requests=40))
    assert limiter.stats(0.3).rpm == 40


def test_limits_are_learned_from_headers_alone() -> None:
    limiter = RateLimiter(window=1.0)
    assert limiter.stats(0.0).rpm is None
    first = granted(limiter.reserve(5, 0.0))
    limiter.release(first, 0.02, headers=headers(limit_requests=10, limit_tokens=1000))
    times = [0.0, *drive(limiter, until=5.0)]
    assert_window_respected(times, 10, 1.0)
    assert limiter.stats(5.0).rpm == 10


def test_remaining_lower_than_our_count_holds_the_difference_until_reset() -> None:
    limiter = RateLimiter(rpm=100, tpm=10**6, window=60.0)
    limiter.release(
        granted(limiter.reserve(1, 0.0)),
        0.1,
        headers=headers(limit_requests=100, remaining_requests=0, reset_requests="5s"),
    )
    wait = waited(limiter.reserve(1, 0.2))
    assert wait.reason == "requests"
    assert wait.seconds == pytest.approx(5.1 - 0.2, abs=0.01)  # until the server is full again
    granted(limiter.reserve(1, 0.2 + wait.seconds))


def test_remaining_counts_what_was_sent_after_the_request_it_answers() -> None:
    limiter = RateLimiter(rpm=10, tpm=10**6, max_in_flight=10, window=60.0, margin=0.0)
    first = granted(limiter.reserve(1, 0.0))
    later = [granted(limiter.reserve(1, 6.0 * i)) for i in range(1, 4)]  # 3 sent after it
    # The server had counted 5 when it admitted the first (someone else sent 4).
    limiter.release(first, 18.0, headers=headers(limit_requests=10, remaining_requests=5))
    for r in later:
        limiter.release(r, 18.0)
    # 5 counted by the server + 3 sent since = 8 of 10 used: 2 left in this window.
    assert isinstance(limiter.reserve(1, 24.0), Reservation)
    assert isinstance(limiter.reserve(1, 30.0), Reservation)
    assert waited(limiter.reserve(1, 36.0)).reason == "requests"


@pytest.mark.parametrize(
    "odd",
    [
        headers(limit_requests=10, remaining_requests=50),  # remaining > limit
        headers(limit_requests=10, remaining_requests=-5),
        headers(limit_requests=0, remaining_requests=0),
        headers(limit_requests=10, remaining_requests=0, reset_requests="0s"),
        headers(limit_requests="nan", remaining_requests="inf", reset_requests="-1s"),
        headers(limit_requests=10**20, remaining_requests=10**20, reset_requests="9" * 100),
        {"x-ratelimit-limit-requests": "\u0661\u0660"},  # Arabic-Indic digits
    ],
)
def test_odd_headers_never_block_forever_nor_crash(odd: dict[str, str]) -> None:
    limiter = RateLimiter(rpm=60, tpm=10**6, window=60.0)
    limiter.release(granted(limiter.reserve(1, 0.0)), 0.1, headers=odd)
    got = limiter.reserve(1, 1.1)
    if isinstance(got, Wait):
        assert got.seconds <= 61.3
    stats = limiter.stats(1.1)
    assert stats.rpm is not None and 1 <= stats.rpm <= 60


def test_a_clock_going_backwards_counts_as_no_time_passed() -> None:
    limiter = RateLimiter(rpm=60, tpm=10**6, max_in_flight=100, window=60.0, margin=0.0)
    granted(limiter.reserve(1, 100.0))
    wait = waited(limiter.reserve(1, 100.0))
    for now in (50.0, -1e9, math.nan, math.inf, -math.inf):
        again = waited(limiter.reserve(1, now))
        assert again.seconds == pytest.approx(wait.seconds)
    granted(limiter.reserve(1, 100.0 + wait.seconds))


def test_refunds_count_only_when_the_server_says_what_it_counted() -> None:
    limiter = RateLimiter(rpm=1000, tpm=1000, max_in_flight=10, window=1.0, margin=0.0)
    first = granted(limiter.reserve(1000, 0.0))
    limiter.release(first, 0.01, actual_tokens=100)  # no headers: the 1000 stay charged
    assert waited(limiter.reserve(100, 0.02)).reason == "tokens"

    limiter = RateLimiter(rpm=1000, tpm=1000, max_in_flight=10, window=1.0, margin=0.0)
    first = granted(limiter.reserve(1000, 0.0))
    limiter.release(
        first, 0.01, actual_tokens=100, headers=headers(limit_tokens=1000, remaining_tokens=900)
    )
    granted(limiter.reserve(100, 1.0 * 0.1 + 0.02))  # paced, but the window has room


def test_using_more_than_reserved_is_charged() -> None:
    limiter = RateLimiter(rpm=1000, tpm=1000, max_in_flight=10, window=1.0, margin=0.0)
    limiter.release(granted(limiter.reserve(100, 0.0)), 0.01, actual_tokens=900)
    wait = waited(limiter.reserve(200, 0.5))
    assert wait.reason == "tokens"


# --- 429s ------------------------------------------------------------------------------------


def test_a_429_pauses_every_reservation_for_retry_after_and_lowers_the_rate() -> None:
    limiter = RateLimiter(rpm=600, tpm=10**6, max_in_flight=8)
    reservations = [granted(limiter.reserve(1, 0.0)) for _ in range(3)]
    assert limiter.rate_limited(reservations[0], 0.1, retry_after=3) == 3.0
    wait = waited(limiter.reserve(1, 0.2))
    assert wait.reason == "paused"
    assert wait.seconds == pytest.approx(2.9)
    # The others of the same episode do not lower the rate again.
    limiter.rate_limited(reservations[1], 0.1, retry_after="2.5")
    limiter.rate_limited(reservations[2], 0.1)
    stats = limiter.stats(0.2)
    assert stats.rate_factor == pytest.approx(0.8)
    assert stats.rate_limited == 3
    assert stats.paused_until == pytest.approx(3.1)
    assert limiter.stats(3.2).paused_until is None


@pytest.mark.parametrize("retry_after", [None, "soon", "nan", "-4", math.nan, -1.0, math.inf])
def test_a_429_without_a_usable_retry_after_backs_off_doubling_up_to_a_cap(
    retry_after: float | str | None,
) -> None:
    limiter = RateLimiter(rpm=6000, tpm=10**9)
    now, pauses = 0.0, []
    for _ in range(8):
        while isinstance(got := limiter.reserve(1, now), Wait):
            now += got.seconds
        pauses.append(limiter.rate_limited(got, now, retry_after=retry_after))
    assert pauses == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 32.0, 32.0]


def test_retry_after_is_read_from_the_headers() -> None:
    limiter = RateLimiter(rpm=60, tpm=10**6)
    r = granted(limiter.reserve(1, 0.0))
    assert limiter.rate_limited(r, 1.0, headers={"Retry-After-Ms": "250"}) == 0.25
    r = granted(limiter.reserve(1, 5.0))
    date = {"retry-after": "Wed, 21 Oct 2015 07:28:07 GMT", "date": "Wed, 21 Oct 2015 07:28:00 GMT"}
    assert limiter.rate_limited(r, 5.0, headers=date) == 7.0


def test_after_a_pause_requests_resume_one_at_a_time_not_as_a_herd() -> None:
    limiter = RateLimiter(rpm=600, tpm=10**6, max_in_flight=32, window=60.0)
    r = granted(limiter.reserve(1, 0.0))
    limiter.rate_limited(r, 0.0, retry_after=10.0)
    first = granted(limiter.reserve(1, 10.0))
    assert waited(limiter.reserve(1, 10.0)).reason in ("in_flight", "requests")
    limiter.release(first, 10.05)
    gaps = [b - a for a, b in itertools.pairwise(drive(limiter, until=12.0))]
    assert gaps[0] == pytest.approx(60 * 1.02 / (600 * 0.8), rel=0.01)  # the lowered rate
    assert min(gaps) >= 60 * 1.02 / 600 - 1e-6  # recovering, never above the limit


def test_the_rate_recovers_after_successes_but_never_above_the_limit() -> None:
    limiter = RateLimiter(rpm=100, tpm=10**6, max_in_flight=4, window=1.0)
    limiter.rate_limited(granted(limiter.reserve(1, 0.0)), 0.0, retry_after=0)
    assert limiter.stats(0.0).rate_factor == pytest.approx(0.8)
    times = drive(limiter, until=30.0)
    assert limiter.stats(30.0).rate_factor == 1.0
    assert_window_respected(times, 100, 1.0)


def test_with_no_limit_known_a_429_lowers_the_concurrency() -> None:
    limiter = RateLimiter(max_in_flight=16)
    now = 0.0
    for _ in range(20):  # answers without headers: slow start opens up to max_in_flight
        limiter.release(granted(limiter.reserve(1, now)), now + 0.01)
        now += 0.02
    assert limiter.stats(now).in_flight_cap == 16
    held = [granted(limiter.reserve(1, now)) for _ in range(4)]
    for r in held:  # one episode: 4 in flight were too many
        limiter.rate_limited(r, now + 0.01, retry_after=0)
    now += 0.01
    assert limiter.stats(now).in_flight_cap == 1
    caps = []
    for _ in range(20):  # slow start up to 0.8 x 4, then one more per window's worth
        limiter.release(granted(limiter.reserve(1, now)), now + 0.01)
        now += 0.02
        caps.append(limiter.stats(now).in_flight_cap)
    assert caps[:3] == [2, 3, 4]
    assert caps[-1] < 16


# --- concurrency -----------------------------------------------------------------------------


def test_with_a_limit_unknown_one_request_probes_alone_until_the_first_answer() -> None:
    limiter = RateLimiter(max_in_flight=8)
    probe = granted(limiter.reserve(10, 0.0))
    assert waited(limiter.reserve(10, 0.0)).reason == "in_flight"
    limiter.release(probe, 0.3, headers=headers(limit_requests=6000, limit_tokens=10**6))
    granted(limiter.reserve(10, 0.3))


def test_in_flight_follows_littles_law_once_rate_and_latency_are_known() -> None:
    limiter = RateLimiter(rpm=60, tpm=10**9, max_in_flight=64, window=1.0)
    r = granted(limiter.reserve(1, 0.0))
    limiter.release(r, 0.1)  # latency 0.1 s at ~59 requests/s: ~6 in flight suffice
    assert limiter.stats(0.1).in_flight_cap == math.ceil(60 / 1.02 * 0.1 * 2) + 1
    assert RateLimiter(max_in_flight=64, rpm=60, tpm=10**9).stats(0.0).in_flight_cap == 64


def test_releasing_twice_is_a_pointed_error() -> None:
    limiter = RateLimiter(rpm=10, tpm=100)
    r = granted(limiter.reserve(1, 0.0))
    limiter.release(r, 0.1)
    with pytest.raises(ValueError, match="released twice"):
        limiter.release(r, 0.2)


@pytest.mark.parametrize(
    "kwargs",
    [
        *({"rpm": 0}, {"tpm": -1}, {"max_in_flight": 0}, {"window": 0.0}),
        *({"window": math.inf}, {"margin": -0.1}, {"margin": math.nan}),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RateLimiter(**kwargs)  # type: ignore[arg-type]


# --- simulation ------------------------------------------------------------------------------


def duration(seconds: float) -> str:
    """The reset in OpenAI's format, as a real server would send it."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.3f}s" if minutes else f"{rest:.3f}s"


@dataclass
class Server:
    """A server enforcing ``requests`` and ``tokens`` per ``window``: a sliding window log, or
    OpenAI's documented continuous-refill bucket. Refused requests do not count."""

    requests: int
    tokens: int
    window: float
    kind: Literal["sliding", "bucket"] = "sliding"
    quiet: bool = False  # no x-ratelimit-* headers, only Retry-After on a 429
    log: deque[tuple[float, int]] = field(default_factory=deque)
    level: tuple[float, float] | None = None
    last: float = 0.0
    admitted: list[tuple[float, int]] = field(default_factory=list)
    refused: list[float] = field(default_factory=list)

    def admit(self, t: float, tokens: int) -> tuple[bool, dict[str, str]]:
        if self.kind == "sliding":
            while self.log and self.log[0][0] <= t - self.window:
                self.log.popleft()
            used_r, used_t = len(self.log), sum(n for _, n in self.log)
            ok = used_r + 1 <= self.requests and used_t + tokens <= self.tokens
            if ok:
                self.log.append((t, tokens))
                used_r, used_t = used_r + 1, used_t + tokens
            free_at = (self.log[-1][0] + self.window - t) if self.log else 0.0
            reset_r = reset_t = free_at
            retry = (self.log[0][0] + self.window - t) if self.log else 0.0
        else:
            lr, lt = self.level or (float(self.requests), float(self.tokens))
            dt = t - self.last
            lr = min(self.requests, lr + dt * self.requests / self.window)
            lt = min(self.tokens, lt + dt * self.tokens / self.window)
            ok = lr >= 1 and lt >= tokens
            if ok:
                lr, lt = lr - 1, lt - tokens
            self.level, self.last = (lr, lt), t
            used_r, used_t = math.ceil(self.requests - lr), math.ceil(self.tokens - lt)
            reset_r = (self.requests - lr) * self.window / self.requests
            reset_t = (self.tokens - lt) * self.window / self.tokens
            retry = max((1 - lr) * self.window / self.requests, 0.0)
        (self.admitted.append((t, tokens)) if ok else self.refused.append(t))
        sent = headers(
            self.requests,
            self.requests - used_r,
            duration(reset_r),
            self.tokens,
            self.tokens - used_t,
            duration(reset_t),
        )
        if self.quiet:
            sent = {}
        if not ok:
            sent["retry-after"] = f"{retry:.3f}"
        return ok, sent


@dataclass
class Run:
    server: Server
    limiter: RateLimiter
    end: float
    reserve_calls: int

    def rate(self, start: float) -> float:
        """Requests admitted per second from ``start`` to the last one."""
        n = sum(1 for t, _ in self.server.admitted if t >= start)
        return n / (self.end - start)

    def token_rate(self, start: float) -> float:
        n = sum(tokens for t, tokens in self.server.admitted if t >= start)
        return n / (self.end - start)

    def refused_after(self, start: float) -> int:
        return sum(1 for t in self.server.refused if t >= start)


Answer = tuple[Reservation, bool, dict[str, str]]


def simulate(
    limiter: RateLimiter,
    server: Server,
    *,
    records: int,
    workers: int = 32,
    latency: float = 0.02,
    jitter: float = 0.005,
    cost: Callable[[random.Random], int] = lambda rng: 1,
    seed: int = 7,
    queue: bool = False,
) -> Run:
    """Workers that reserve, send (half the latency each way, plus jitter), release or report
    the 429, and retry it; a worker waiting for a slot also wakes on every release, like a
    runner with an ``asyncio.Condition``. With ``queue``, one worker at a time waits at the
    limiter and the others queue behind it (an ``asyncio.Lock`` around the reserve loop)."""
    rng = random.Random(seed)
    todo = [cost(rng) for _ in range(records)]
    todo.reverse()
    mine: dict[int, int] = {}
    generation = [0] * workers
    slot_waiters: set[int] = set()
    gate: int | None = None
    queued: deque[int] = deque()
    events: list[tuple[float, int, int, int, Answer | None]] = []
    seq = 0

    def wake(worker: int, at: float) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (at, seq, worker, generation[worker], None))

    for w in range(workers):
        wake(w, 0.0)
    done = calls = 0
    end = 0.0
    while events:
        now, _, w, gen, answer = heapq.heappop(events)
        if answer is not None:
            reservation, ok, sent = answer
            if ok:
                limiter.release(reservation, now, headers=sent)
                del mine[w]
                done, end = done + 1, now
            else:
                limiter.rate_limited(reservation, now, headers=sent)
            for waiter in slot_waiters:
                generation[waiter] += 1
                wake(waiter, now)
            slot_waiters.clear()
            wake(w, now)
            continue
        if gen != generation[w]:
            continue
        if w not in mine:
            if not todo:
                continue
            mine[w] = todo.pop()
        if queue and gate not in (None, w):
            queued.append(w)
            continue
        gate = w
        calls += 1
        got = limiter.reserve(mine[w], now)
        assert limiter.in_flight <= limiter.max_in_flight
        if isinstance(got, Wait):
            assert math.isfinite(got.seconds) and got.seconds > 0
            if got.reason == "in_flight":
                slot_waiters.add(w)
            wake(w, now + got.seconds)
            continue
        gate = None
        if queued:
            gate = queued.popleft()
            wake(gate, now)
        up = latency / 2 + rng.uniform(0, jitter)
        ok, sent = server.admit(now + up, mine[w])
        seq += 1
        back = now + up + latency / 2
        heapq.heappush(events, (back, seq, w, generation[w], (got, ok, sent)))
    assert done == records
    return Run(server, limiter, end, calls)


N, WINDOW = 300, 2.0  # 150 requests/s: thousands of requests in a few simulated windows


@pytest.mark.parametrize("kind", ["sliding", "bucket"])
@pytest.mark.parametrize("known", ["given", "learned"])
def test_simulated_run_achieves_the_request_limit_with_no_429_after_warm_up(
    kind: Literal["sliding", "bucket"], known: str
) -> None:
    server = Server(N, 10**9, WINDOW, kind)
    if known == "given":
        limiter = RateLimiter(rpm=N, tpm=10**9, max_in_flight=32, window=WINDOW)
    else:
        limiter = RateLimiter(max_in_flight=32, window=WINDOW)
    # Herding workers against one server model, queued ones against the other: both work.
    run = simulate(limiter, server, records=3000, queue=kind == "bucket")
    assert_window_respected([t for t, _ in server.admitted], N, WINDOW)
    assert len(server.refused) <= (0 if known == "given" else 3)
    assert run.refused_after(WINDOW) == 0
    achieved = run.rate(WINDOW)
    assert 0.95 * N / WINDOW <= achieved <= N / WINDOW
    assert limiter.stats(run.end).rpm == N


def test_simulated_run_achieves_the_token_limit_with_variable_costs() -> None:
    server = Server(10**6, 40_000, WINDOW)
    limiter = RateLimiter(max_in_flight=32, window=WINDOW)
    run = simulate(limiter, server, records=2500, cost=lambda rng: rng.randint(50, 500))
    assert len(server.refused) <= 3
    assert run.refused_after(WINDOW) == 0
    achieved = run.token_rate(WINDOW)
    assert 0.95 * 40_000 / WINDOW <= achieved <= 40_000 / WINDOW


def test_simulated_run_learns_a_lower_limit_than_the_user_said_before_any_429() -> None:
    server = Server(N, 10**9, WINDOW)
    limiter = RateLimiter(rpm=2 * N, tpm=10**9, max_in_flight=32, window=WINDOW)
    run = simulate(limiter, server, records=2000)
    assert len(server.refused) == 0
    assert limiter.stats(run.end).rpm == N
    assert 0.95 * N / WINDOW <= run.rate(WINDOW) <= N / WINDOW


def test_simulated_run_against_a_server_without_headers_backs_off_on_429s() -> None:
    server = Server(N, 10**9, WINDOW, quiet=True)
    limiter = RateLimiter(rpm=2 * N, tpm=10**9, max_in_flight=32, window=WINDOW)
    run = simulate(limiter, server, records=2000)
    assert limiter.stats(run.end).rate_limited == len(server.refused) <= 0.05 * 2000
    assert 0.6 * N / WINDOW <= run.rate(WINDOW) <= N / WINDOW


def test_simulated_run_with_queued_waiters_asks_the_limiter_a_few_times_per_request() -> None:
    server = Server(N, 10**9, WINDOW)
    limiter = RateLimiter(max_in_flight=32, window=WINDOW)
    run = simulate(limiter, server, records=3000, queue=True)
    assert run.refused_after(0.0) == 0
    assert 0.95 * N / WINDOW <= run.rate(WINDOW) <= N / WINDOW
    assert run.reserve_calls <= 3 * 3000


# --- properties ------------------------------------------------------------------------------

KEYS = [
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "retry-after",
    "retry-after-ms",
]
ODD = ["nan", "inf", "-inf", "-1", "", "abc", "1e400", "0", "6m0s", "20ms", "1m30.5s", "-5s"]
VALUE = st.one_of(
    st.integers(-10, 10**13).map(str),
    st.sampled_from([*ODD, "99999999h", "1s" * 40, "0.000001s"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=8),
)
HEADERS = st.one_of(st.none(), st.dictionaries(st.sampled_from(KEYS), VALUE, max_size=8))
RETRY = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), VALUE)
RETRY = st.one_of(RETRY, st.floats(0.0, 0.5))
# A step of the clock (backwards too), or a one-off odd reading that leaves the clock alone.
TIME = st.one_of(st.floats(-0.3, 0.6), st.sampled_from([0.0, 1e-9, -1e9, math.nan, math.inf]))
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(0, 800), TIME),
        st.tuples(st.just("reserve"), st.integers(0, 300), TIME),
        st.tuples(st.just("release"), st.integers(0, 99), HEADERS, st.none(), TIME),
        st.tuples(st.just("release"), st.integers(0, 99), HEADERS, st.integers(0, 900), TIME),
        st.tuples(st.just("429"), st.integers(0, 99), HEADERS, RETRY, TIME),
    ),
    min_size=40,
    max_size=100,
)


def play(limiter: RateLimiter, ops: list[tuple[object, ...]]) -> list[tuple[float, int]]:
    """Run the events; check every answer; the (limiter time, tokens) of each grant."""
    base, clock = 0.0, -math.inf  # clock: the limiter's, the latest finite reading
    held: list[Reservation] = []
    grants: list[tuple[float, int]] = []
    for op in ops:
        dt = op[-1]
        assert isinstance(dt, float)
        if math.isfinite(dt) and abs(dt) < 1e6:
            base += dt
            now = base
        else:
            now = dt
        if math.isfinite(now) and now > clock:
            clock = now
        elif clock == -math.inf:
            clock = 0.0
        if op[0] == "reserve":
            tokens = op[1]
            assert isinstance(tokens, int)
            try:
                got = limiter.reserve(tokens, now)
            except RequestTooLargeError:
                continue
            if isinstance(got, Wait):
                assert math.isfinite(got.seconds) and got.seconds > 0
            else:
                held.append(got)
                grants.append((clock, tokens))
        elif held:
            reservation = held.pop(op[1] % len(held))  # type: ignore[operator]
            if op[0] == "release":
                limiter.release(reservation, now, headers=op[2], actual_tokens=op[3])  # type: ignore[arg-type]
            else:
                pause = limiter.rate_limited(reservation, now, retry_after=op[3], headers=op[2])  # type: ignore[arg-type]
                assert math.isfinite(pause) and pause >= 0
        stats = limiter.stats(now)
        assert limiter.in_flight == len(held) <= limiter.max_in_flight
        assert 1 <= stats.in_flight_cap <= limiter.max_in_flight
        assert 0 < stats.rate_factor <= 1
    return grants


@settings(max_examples=50)
@given(ops=OPS, max_in_flight=st.integers(1, 6))
def test_any_event_order_and_headers_give_finite_waits_and_respect_the_limits(
    ops: list[tuple[object, ...]], max_in_flight: int
) -> None:
    limiter = RateLimiter(rpm=8, tpm=2000, max_in_flight=max_in_flight, window=1.0)
    grants = play(limiter, ops)
    assert_window_respected([t for t, _ in grants], 8, 1.0)
    stats = limiter.stats(0.0)
    assert stats.rpm is not None and stats.rpm <= 8
    assert stats.tpm is not None and stats.tpm <= 2000


@settings(max_examples=30)
@given(ops=OPS)
def test_tokens_granted_in_any_window_never_exceed_the_limit_without_refunds(
    ops: list[tuple[object, ...]],
) -> None:
    limiter = RateLimiter(rpm=1000, tpm=2000, max_in_flight=6, window=1.0)
    no_refunds = [op if op[0] != "release" else (*op[:3], None, op[4]) for op in ops]
    grants = play(limiter, no_refunds)
    assert_window_respected([t for t, _ in grants], 2000, 1.0, [n for _, n in grants])


@settings(max_examples=25)
@given(ops=OPS)
def test_with_limits_only_learned_waits_stay_finite(ops: list[tuple[object, ...]]) -> None:
    play(RateLimiter(max_in_flight=4, window=1.0), ops)
