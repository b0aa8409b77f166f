"""The rate limiter of a bulk run, sans-I/O: arithmetic on the times it is given.

One :class:`RateLimiter` per run is shared by all the runner's workers. It never reads a clock
and never sleeps: every method takes ``now`` (monotonic seconds), and :meth:`RateLimiter.reserve`
answers either a :class:`Reservation` (send the request) or a :class:`Wait` (sleep that long,
then ask again)::

    while isinstance(got := limiter.reserve(tokens, clock()), Wait):
        await sleep_or_release(got.seconds)     # the only line that differs (await or not)
    try:
        response = send()
    except RateLimitError as exc:
        limiter.rate_limited(got, clock(), headers=exc.response.headers)
    else:
        limiter.release(got, clock(), headers=response.headers, actual_tokens=used)

Let one worker at a time wait at the limiter (an ``asyncio.Lock`` around that loop) and the
others queue behind it: the limiter is then asked about twice per request instead of once per
worker per slot. Not thread-safe: threads must hold a lock around each call.

**Model.** Two dimensions, requests (each request costs 1) and tokens (each costs what the runner
says: offline prompt count + max output tokens). The limit of each is the user's (``rpm``/``tpm``,
a ceiling) or the server's ``x-ratelimit-limit-*`` header, whichever is lower. Each dimension has

- a *window log*: what was granted in the last ``window * (1 + margin)`` seconds. A request is
  granted only if it fits the limit there. That is exactly what a sliding-window server checks,
  and a grant sequence that passes it also passes OpenAI's documented continuous-refill bucket
  (capacity = limit, refill = limit per window), so no server model is assumed. The margin (2%)
  absorbs the jitter between our grant times and the server's arrival times;
- a *pacer* (GCRA, i.e. a token bucket in time units) at limit per ``window * (1 + margin)``,
  with a burst of what refills in 2% of the window (at least one request). Without it a fresh
  log would let a whole window's worth go in the first instant and then starve; with it the
  first window is as smooth as the rest, and the steady rate is ``limit / (1 + margin)``.

**Learning.** ``x-ratelimit-limit-*`` lowers (never raises above the user's) the limit.
``x-ratelimit-remaining-*`` is the server's count at the time it admitted the request: when it
says more was used than our log holds (another client on the same key, a different token
count), the difference plus everything we granted since that request is held as extra usage until
``x-ratelimit-reset-*`` (time until the server is full again; a window when absent). The reset
is not used to guess the server's window, which is the ``window`` parameter: reset semantics
differ between servers, and a wrong guess would overshoot. Unparseable, negative, zero (limits),
non-finite or absurd values are ignored.

**429.** ``Retry-After`` (``retry-after-ms``, seconds, or an HTTP date against the ``Date``
header) or, missing, a backoff of 1 s doubling up to 32 s pauses *all* new reservations. Once per
episode (429s of requests sent before the previous one count once) the rate factor is multiplied
by 0.8 (at least 0.05); it regains 0.1 per window's worth of successful requests, up to 1.
With no limit known the concurrency threshold is lowered instead. After a pause the pacers start
afresh with no burst, and concurrency restarts from one request doubling per round trip (slow
start), so the workers do not all start in the same instant.

**Concurrency.** In flight is bounded by ``max_in_flight``, by the slow-start window, and, once a
rate and a latency are known, by Little's law: ``rate * latency * 2 + 1``. Until the first answer,
when a limit is unknown, one request probes alone, so the limits are learned before the burst.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from itertools import count
from typing import Literal

from ..errors import TokenLimitError

__all__ = [
    "LimiterStats",
    "RateLimitHeaders",
    "RateLimiter",
    "RequestTooLargeError",
    "Reservation",
    "Wait",
    "WaitReason",
    "parse_duration",
    "parse_rate_limit_headers",
    "parse_retry_after",
]

_MAX_COUNT = 10**12  # a limit or remaining above this is nonsense
_MAX_DURATION = 86_400.0  # a reset or retry-after longer than a day is nonsense
_MAX_TEXT = 64  # header values longer than this are not parsed at all
_MAX_PAUSE = 900.0  # a believable Retry-After is still capped: the next 429 says more
_BACKOFF_FIRST = 1.0
_BACKOFF_CAP = 32.0
_DECREASE = 0.8
_MIN_FACTOR = 0.05
_RECOVER = 0.1  # rate factor regained per window's worth of successful requests
_BURST = 0.02  # a fresh or idle pacer allows what refills in this fraction of the window
_HEADROOM = 2.0  # Little's law cap: rate * latency * headroom + 1
_LATENCY_ALPHA = 0.2
_DEFAULT_LATENCY = 0.05  # poll hint for a free slot before any latency was seen
_MIN_WAIT = 1e-3
_EPS = 1e-6  # added to waits so that waking at exactly ``now + wait`` passes
_TOLERANCE = 1e-9  # a wait shorter than this is float rounding: grant now

# --- header values ---------------------------------------------------------------------------

_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)")
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|us|µs|μs|ns|s)")
_UNITS = {
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ns": 1e-9,
}
_COUNT = re.compile(r"\d{1,13}")


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) and 0.0 <= value <= _MAX_DURATION else None


def parse_duration(text: str) -> float | None:
    """Seconds in OpenAI's reset format (``1s``, ``6m0s``, ``20ms``, ``1m30.5s``, ``2h0m0s``) or
    a bare number of seconds; None for anything else (negative, NaN, inf, over a day, garbage)."""
    if not isinstance(text, str) or len(text) > _MAX_TEXT:
        return None
    text = text.strip().lower()
    if _NUMBER.fullmatch(text):
        return _finite(float(text))
    total, pos = 0.0, 0
    while pos < len(text):
        part = _PART.match(text, pos)
        if part is None:
            return None
        total += float(part.group(1)) * _UNITS[part.group(2)]
        pos = part.end()
    return _finite(total) if pos else None


def parse_retry_after(value: str, date: str | None = None) -> float | None:
    """Seconds from a ``Retry-After`` value: a number of seconds (or a duration), or an HTTP date
    measured against the response's ``Date`` header (the limiter has no wall clock); None when
    neither works."""
    seconds = parse_duration(value)
    if seconds is not None or date is None or len(value) > _MAX_TEXT or len(date) > _MAX_TEXT:
        return seconds
    try:
        delta = (parsedate_to_datetime(value) - parsedate_to_datetime(date)).total_seconds()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None  # garbage, or one date naive and the other aware
    return _finite(max(0.0, delta))


def _count(text: str | None, *, positive: bool = False) -> int | None:
    if text is None or len(text) > _MAX_TEXT or not _COUNT.fullmatch(text.strip()):
        return None
    value = int(text)
    if value > _MAX_COUNT or (positive and value == 0):
        return None
    return value


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names in lower case (a dict's may be any case); non-text pairs dropped."""
    out: dict[str, str] = {}
    try:
        for key, value in headers.items():
            if isinstance(key, str) and isinstance(value, str):
                out[key.lower()] = value
    except (AttributeError, TypeError, ValueError):
        return {}
    return out


@dataclass(frozen=True)
class RateLimitHeaders:
    """What a response said about the account's limits; None where a header was absent or
    unusable."""

    limit_requests: int | None = None
    limit_tokens: int | None = None
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests: float | None = None
    reset_tokens: float | None = None
    retry_after: float | None = None


def parse_rate_limit_headers(headers: Mapping[str, str]) -> RateLimitHeaders:
    """The ``x-ratelimit-*`` and ``retry-after`` headers of a response (any case of names), each
    value checked on its own: one bad header does not spoil the others."""
    h = _lowered(headers)
    retry_after: float | None = None
    ms = h.get("retry-after-ms")
    if ms is not None and (seconds := parse_duration(ms)) is not None:
        retry_after = _finite(seconds / 1000.0)
    if retry_after is None and "retry-after" in h:
        retry_after = parse_retry_after(h["retry-after"], h.get("date"))
    reset_requests = h.get("x-ratelimit-reset-requests")
    reset_tokens = h.get("x-ratelimit-reset-tokens")
    return RateLimitHeaders(
        limit_requests=_count(h.get("x-ratelimit-limit-requests"), positive=True),
        limit_tokens=_count(h.get("x-ratelimit-limit-tokens"), positive=True),
        remaining_requests=_count(h.get("x-ratelimit-remaining-requests")),
        remaining_tokens=_count(h.get("x-ratelimit-remaining-tokens")),
        reset_requests=None if reset_requests is None else parse_duration(reset_requests),
        reset_tokens=None if reset_tokens is None else parse_duration(reset_tokens),
        retry_after=retry_after,
    )


# --- values ----------------------------------------------------------------------------------


class RequestTooLargeError(TokenLimitError):
    """One request needs more tokens than the tokens-per-window limit allows at all, so waiting
    cannot help. ``tokens`` is what it needs, ``limit`` the limit and ``source`` where the limit
    came from (``"tpm"``: the user's; ``"server"``: ``x-ratelimit-limit-tokens``)."""

    def __init__(self, message: str, *, tokens: int, limit: int, source: str) -> None:
        super().__init__(message, requested_tokens=tokens)
        self.tokens = tokens
        self.limit = limit
        self.source = source


@dataclass(frozen=True, slots=True)
class Reservation:
    """A granted request: send it, then give it back with ``release`` or ``rate_limited``."""

    id: int
    tokens: int
    granted_at: float


WaitReason = Literal["paused", "in_flight", "requests", "tokens"]


@dataclass(frozen=True, slots=True)
class Wait:
    """Not now: ask again after ``seconds`` (finite, > 0). With ``reason == "in_flight"`` a slot
    frees when a request is released, so a runner that wakes its waiters on release does better;
    ``seconds`` is then only an estimate."""

    seconds: float
    reason: WaitReason


@dataclass(frozen=True)
class LimiterStats:
    """A snapshot for a progress bar. ``rpm``/``tpm`` are the limits known (user's or learned),
    ``rate_factor`` the share of them currently used after 429s."""

    rpm: int | None
    tpm: int | None
    rate_factor: float
    in_flight: int
    in_flight_cap: int
    paused_until: float | None
    granted: int
    rate_limited: int
    latency: float | None


# --- the limiter -----------------------------------------------------------------------------


class _Entry:
    """A grant in a window log; mutable so that a refund can shrink it."""

    __slots__ = ("amount", "expires")

    def __init__(self, expires: float, amount: int) -> None:
        self.expires = expires
        self.amount = amount


class _Dimension:
    """One limited quantity (requests or tokens): its limits, its window log and its pacer."""

    def __init__(self, name: WaitReason, ceiling: int | None) -> None:
        self.name: WaitReason = name
        self.ceiling = ceiling
        self.learned: int | None = None
        self.log: deque[_Entry] = deque()
        self.used = 0  # sum of the log
        self.extra = 0  # usage the server reported beyond our log ...
        self.extra_until = -math.inf  # ... held until then
        self.tat = -math.inf  # the pacer's theoretical arrival time
        self.granted = 0  # everything ever granted (marks say what came after a request)

    @property
    def limit(self) -> int | None:
        if self.ceiling is None:
            return self.learned
        return self.ceiling if self.learned is None else min(self.ceiling, self.learned)

    def prune(self, now: float) -> None:
        log = self.log
        while log and log[0].expires <= now:
            self.used -= log.popleft().amount
        if self.extra and self.extra_until <= now:
            self.extra = 0

    def wait(self, cost: int, now: float, factor: float, span: float) -> float:
        """Seconds until ``cost`` may be granted (0: now)."""
        self.prune(now)
        limit = self.limit
        if limit is None:
            return 0.0
        cap = limit * factor
        interval = span / cap
        pace = self.tat - max(0.0, _BURST * span - interval) - now
        return max(pace, self._log_wait(cost, cap, now), 0.0)

    def _log_wait(self, cost: int, cap: float, now: float) -> float:
        used = self.used + self.extra
        if used == 0:
            return 0.0  # one request always fits an empty window (reserve checked the limit)
        need = used if cost > cap else used + cost - cap  # what has to expire first
        if need <= 0:
            return 0.0
        freed, extra = 0, self.extra
        for entry in self.log:
            if extra and self.extra_until <= entry.expires:
                freed, extra = freed + extra, 0
                if freed >= need:
                    return self.extra_until - now
            freed += entry.amount
            if freed >= need:
                return entry.expires - now
        return self.extra_until - now  # only the extra is left, and it frees the rest

    def take(self, cost: int, now: float, factor: float, span: float) -> _Entry:
        limit = self.limit
        if limit is not None:
            self.tat = max(self.tat, now) + cost * span / (limit * factor)
        entry = _Entry(now + span, cost)
        self.log.append(entry)
        self.used += cost
        self.granted += cost
        return entry

    def redate(self, entry: _Entry, now: float, span: float) -> None:
        """Count a grant from ``now`` (its answer) instead of from when it was granted: the
        server counts a request when it arrives, which may be well after we let it go (new
        connections, a slow network), so only the answer's time is never too early. The
        amount moves to a new entry at the end of the log, which stays in expiry order."""
        self.prune(now)
        amount = entry.amount
        if amount <= 0:
            return
        if entry.expires > now:  # still counted: move it
            entry.amount = 0
        else:
            self.used += amount
        self.log.append(_Entry(now + span, amount))

    def adjust(self, entry: _Entry, delta: int, now: float, factor: float, span: float) -> None:
        """Charge (delta > 0) or refund (delta < 0) a granted amount."""
        self.prune(now)
        delta = max(delta, -entry.amount)
        if entry.expires > now:  # still in the log
            entry.amount += delta
            self.used += delta
        limit = self.limit
        if limit is not None:
            self.tat += delta * span / (limit * factor)

    def learn(
        self,
        limit: int | None,
        remaining: int | None,
        reset: float | None,
        unseen: int,
        now: float,
        span: float,
    ) -> None:
        """Take in one response's headers; ``unseen`` is what we granted after that request."""
        if limit is not None:
            self.learned = limit
        server_limit = limit if limit is not None else self.learned
        if remaining is None or server_limit is None:
            return
        self.prune(now)
        excess = max(0, server_limit - remaining) + unseen - self.used
        until = now + (span if reset is None else min(reset, span))
        if excess > 0 and until > now:
            self.extra, self.extra_until = excess, until
        else:
            self.extra = 0

    def hold(self, until: float, span: float, factor: float) -> None:
        """After a pause: the first grant at ``until``, then paced, with no burst saved up."""
        limit = self.limit
        if limit is not None:
            interval = span / (limit * factor)
            self.tat = max(self.tat, until + max(0.0, _BURST * span - interval))


@dataclass(frozen=True, slots=True)
class _Open:
    granted_at: float
    request_entry: _Entry
    token_entry: _Entry
    request_mark: int
    token_mark: int


class RateLimiter:
    """Requests- and tokens-per-window limits for one bulk run, shared by all its workers.

    ``rpm``/``tpm`` are the user's limits (None: unknown, learned from headers), ceilings that
    learned limits may lower but never raise. ``window`` is the server's window in seconds (60
    for OpenAI; shorter for a test server). ``margin`` is the share of the window kept free for
    the jitter between our clock and the server's.
    """

    def __init__(
        self,
        rpm: int | None = None,
        tpm: int | None = None,
        *,
        max_in_flight: int = 32,
        window: float = 60.0,
        margin: float = 0.02,
    ) -> None:
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and not (isinstance(value, int) and value > 0):
                raise ValueError(f"{name} must be a positive whole number, or None when unknown")
        if not (isinstance(max_in_flight, int) and max_in_flight >= 1):
            raise ValueError("max_in_flight must be at least 1")
        if not (math.isfinite(window) and window > 0):
            raise ValueError("window must be a positive number of seconds")
        if not (math.isfinite(margin) and 0.0 <= margin < 1.0):
            raise ValueError("margin must be in [0, 1): a share of the window")
        self.window = float(window)
        self.max_in_flight = max_in_flight
        self._span = self.window * (1.0 + margin)
        self._requests = _Dimension("requests", rpm)
        self._tokens = _Dimension("tokens", tpm)
        self._open: dict[int, _Open] = {}
        self._ids = count(1)
        self._now = -math.inf
        self._paused_until = -math.inf
        self._factor = 1.0
        self._episode = -math.inf  # when the last 429 episode began
        self._strikes = 0  # 429 episodes since the last success
        self._rate_limited = 0
        self._granted = 0
        self._latency: float | None = None
        self._mean_tokens: float | None = None
        self._threshold = float(max_in_flight)  # slow start ends here
        # Probe alone until the first answer when a limit is still to be learned.
        self._window = 1.0 if rpm is None or tpm is None else float(max_in_flight)

    # -- the runner's calls -------------------------------------------------------------------

    def reserve(self, tokens: int, now: float) -> Reservation | Wait:
        """A reservation for a request of ``tokens`` tokens, or how long to wait before asking
        again. Raises :class:`RequestTooLargeError` if it can never fit."""
        now = self._clock(now)
        if tokens < 0:
            raise ValueError(f"tokens must be >= 0, got {tokens}")
        self._check_fits(tokens)
        if now < self._paused_until:
            return Wait(self._paused_until - now + _EPS, "paused")
        if len(self._open) >= self._in_flight_cap():
            return Wait(self._slot_wait(now), "in_flight")
        wait, reason = 0.0, self._requests.name
        for dim, cost in ((self._requests, 1), (self._tokens, tokens)):
            w = dim.wait(cost, now, self._factor, self._span)
            if w > wait:
                wait, reason = w, dim.name
        if wait > _TOLERANCE:
            return Wait(wait + _EPS, reason)
        return self._grant(tokens, now)

    def release(
        self,
        reservation: Reservation,
        now: float,
        *,
        headers: Mapping[str, str] | None = None,
        actual_tokens: int | None = None,
    ) -> None:
        """The request got an answer (not a 429). ``headers`` teach the limits; ``actual_tokens``
        corrects the charge: more is always charged, less is refunded only when the headers
        carry ``x-ratelimit-remaining-tokens`` to say what the server itself counted."""
        now = self._clock(now)
        opened = self._close(reservation)
        parsed = parse_rate_limit_headers(headers) if headers is not None else None
        if isinstance(actual_tokens, int) and actual_tokens >= 0:
            delta = actual_tokens - reservation.tokens
            if delta > 0 or (parsed is not None and parsed.remaining_tokens is not None):
                self._tokens.adjust(opened.token_entry, delta, now, self._factor, self._span)
        self._redate(opened, now)
        if parsed is not None:
            self._learn(parsed, opened, now)
        latency = now - reservation.granted_at
        self._latency = (
            latency
            if self._latency is None
            else self._latency + _LATENCY_ALPHA * (latency - self._latency)
        )
        self._strikes = 0
        unit = 0.0
        for dim, cost in ((self._requests, 1), (self._tokens, reservation.tokens)):
            limit = dim.limit
            if limit is not None:
                unit = max(unit, cost / limit)
        self._factor = min(1.0, self._factor + _RECOVER * unit)
        self._window += 1.0 if self._window < self._threshold else 1.0 / self._window
        self._window = min(self._window, float(self.max_in_flight))

    def rate_limited(
        self,
        reservation: Reservation,
        now: float,
        *,
        retry_after: float | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> float:
        """The request got a 429: pause every new reservation and slow down. ``retry_after`` is
        the value given (else the headers', else a backoff); returns the pause in seconds."""
        now = self._clock(now)
        opened = self._close(reservation)
        self._redate(opened, now)
        parsed = parse_rate_limit_headers(headers) if headers is not None else None
        if parsed is not None:
            self._learn(parsed, opened, now)
        self._rate_limited += 1
        if reservation.granted_at >= self._episode:  # sent after the last 429: a new episode
            self._episode = now
            self._strikes += 1
            if self._requests.limit is not None or self._tokens.limit is not None:
                self._factor = max(_MIN_FACTOR, self._factor * _DECREASE)
            else:
                self._threshold = max(1.0, (len(self._open) + 1) * _DECREASE)
            self._window = 1.0
        delay = self._retry_delay(retry_after, headers, parsed)
        if delay is None:
            strikes = min(max(self._strikes, 1), 16)
            delay = min(_BACKOFF_CAP, _BACKOFF_FIRST * 2.0 ** (strikes - 1))
        delay = min(delay, _MAX_PAUSE)
        until = now + delay
        if until > self._paused_until:
            self._paused_until = until
            for dim in (self._requests, self._tokens):
                dim.hold(until, self._span, self._factor)
        return delay

    # -- what a progress bar shows ------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Requests reserved and not yet released."""
        return len(self._open)

    def stats(self, now: float) -> LimiterStats:
        """The limits known, the rate factor, in flight and its cap, the pause, the 429 count."""
        now = self._clock(now)
        return LimiterStats(
            rpm=self._requests.limit,
            tpm=self._tokens.limit,
            rate_factor=self._factor,
            in_flight=len(self._open),
            in_flight_cap=self._in_flight_cap(),
            paused_until=self._paused_until if self._paused_until > now else None,
            granted=self._granted,
            rate_limited=self._rate_limited,
            latency=self._latency,
        )

    # -- internals ----------------------------------------------------------------------------

    def _clock(self, now: float) -> float:
        """A clock that went backwards (or is not a number) means no time passed."""
        if isinstance(now, (int, float)) and math.isfinite(now) and now > self._now:
            self._now = float(now)
        elif self._now == -math.inf:
            self._now = 0.0
        return self._now

    def _check_fits(self, tokens: int) -> None:
        dim = self._tokens
        limit = dim.limit
        if limit is None or tokens <= limit:
            return
        per = f"{self.window:g} s"
        if dim.ceiling is not None and dim.ceiling == limit:
            raise RequestTooLargeError(
                f"a request of {tokens} tokens can never fit the --tpm limit of {limit} tokens"
                f" per {per}: lower max_output_tokens, split the record, or raise --tpm",
                tokens=tokens,
                limit=limit,
                source="tpm",
            )
        raise RequestTooLargeError(
            f"a request of {tokens} tokens can never fit the server's limit of {limit} tokens"
            f" per {per} (x-ratelimit-limit-tokens): lower max_output_tokens or split the record",
            tokens=tokens,
            limit=limit,
            source="server",
        )

    def _grant(self, tokens: int, now: float) -> Reservation:
        span, factor = self._span, self._factor
        request = self._requests.take(1, now, factor, span)
        entry = self._tokens.take(tokens, now, factor, span)
        rid = next(self._ids)
        self._open[rid] = _Open(now, request, entry, self._requests.granted, self._tokens.granted)
        self._granted += 1
        mean = self._mean_tokens
        self._mean_tokens = tokens if mean is None else mean + _LATENCY_ALPHA * (tokens - mean)
        return Reservation(rid, tokens, now)

    def _redate(self, opened: _Open, now: float) -> None:
        self._requests.redate(opened.request_entry, now, self._span)
        self._tokens.redate(opened.token_entry, now, self._span)

    def _close(self, reservation: Reservation) -> _Open:
        opened = self._open.pop(reservation.id, None)
        if opened is None:
            raise ValueError(
                f"reservation {reservation.id} is not in flight: released twice, or it comes"
                " from another limiter"
            )
        return opened

    def _learn(self, parsed: RateLimitHeaders, opened: _Open, now: float) -> None:
        span = self._span
        self._requests.learn(
            parsed.limit_requests,
            parsed.remaining_requests,
            parsed.reset_requests,
            self._requests.granted - opened.request_mark,
            now,
            span,
        )
        self._tokens.learn(
            parsed.limit_tokens,
            parsed.remaining_tokens,
            parsed.reset_tokens,
            self._tokens.granted - opened.token_mark,
            now,
            span,
        )

    def _retry_delay(
        self,
        retry_after: float | str | None,
        headers: Mapping[str, str] | None,
        parsed: RateLimitHeaders | None,
    ) -> float | None:
        if isinstance(retry_after, str):
            date = _lowered(headers).get("date") if headers is not None else None
            delay = parse_retry_after(retry_after, date)
            if delay is not None:
                return delay
        elif isinstance(retry_after, (int, float)) and not isinstance(retry_after, bool):
            delay = _finite(float(retry_after))
            if delay is not None:
                return delay
        return parsed.retry_after if parsed is not None else None

    def _in_flight_cap(self) -> int:
        cap = min(float(self.max_in_flight), self._window)
        if self._latency is not None:
            rates = []
            for dim, mean in ((self._requests, 1.0), (self._tokens, self._mean_tokens)):
                limit = dim.limit
                if limit is not None and mean is not None and mean > 0:
                    rates.append(limit * self._factor / self._span / mean)
            if rates:
                cap = min(cap, math.ceil(min(rates) * self._latency * _HEADROOM) + 1.0)
        return max(1, int(cap))

    def _slot_wait(self, now: float) -> float:
        """When the oldest request in flight should be back: a poll hint, not a promise."""
        latency = self._latency if self._latency is not None else _DEFAULT_LATENCY
        oldest = next(iter(self._open.values())).granted_at
        return min(max(oldest + latency - now, _MIN_WAIT), max(latency, _MIN_WAIT))
