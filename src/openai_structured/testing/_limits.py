"""Rate limits like OpenAI's: token buckets for requests and tokens, and their headers (pure).

Each limit is a bucket holding up to `limit` units that refills continuously at
`limit / window` units a second, so the long-run rate is `limit` per `window` and a client
that waited a whole window may burst `limit` at once (OpenAI's limits behave this way: a
`x-ratelimit-reset-requests` of `20ms` at 3,000 RPM is one request's worth of refill).
A request is admitted only if it fits every bucket; a rejected one takes nothing from any.
The clock is passed in, so the core is tested without a server or real time.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Admission",
    "RateLimiter",
    "RateLimits",
    "estimate_prompt_tokens",
    "format_duration",
    "max_in_window",
    "rejection_message",
    "retry_headers",
]

LimitKind = Literal["requests", "tokens"]

#: Characters per token of the estimate (OpenAI's rule of thumb for English text).
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class RateLimits:
    """Limits the fake server enforces: at most N requests and M tokens per `window` seconds.

    The names say "per minute" because `window` defaults to 60 s, as OpenAI's; tests shrink
    the window (`window=1.0`) to keep the same shape in a second. A request costs one request
    and `token_cost(request)` tokens. `default_max_tokens` is the output budget counted for a
    request that sets no `max_tokens` / `max_completion_tokens` / `max_output_tokens`.
    """

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    window: float = 60.0
    default_max_tokens: int = 0

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "tokens_per_minute"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"{name} must be a positive int or None, got {value!r}")
        if not (isinstance(self.window, (int, float)) and math.isfinite(self.window)):
            raise ValueError(f"window must be a number of seconds, got {self.window!r}")
        if self.window <= 0:
            raise ValueError(f"window must be > 0 seconds, got {self.window!r}")
        if not isinstance(self.default_max_tokens, int) or self.default_max_tokens < 0:
            raise ValueError(
                f"default_max_tokens must be an int >= 0, got {self.default_max_tokens!r}"
            )

    def token_cost(self, request: Any) -> int:
        """Tokens a request counts against `tokens_per_minute`: estimated prompt tokens plus
        its output budget (`max_completion_tokens`, `max_tokens` or `max_output_tokens`, else
        `default_max_tokens`), times Chat's `n`."""
        return estimate_prompt_tokens(request) + self.output_budget(request)

    def output_budget(self, request: Any) -> int:
        """The output tokens a request may use, as counted for the limit."""
        if not isinstance(request, Mapping):
            return self.default_max_tokens
        budget = self.default_max_tokens
        for key in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
            value = request.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                budget = value
                break
        n = request.get("n")
        if isinstance(n, int) and not isinstance(n, bool) and n > 1:
            budget *= n
        return budget


def estimate_prompt_tokens(request: Any) -> int:
    """About 4 characters a token over the prompt text, rounded up.

    The text is Chat's `messages[].content` (a string, or the `text` of each content part),
    and Responses' `instructions` plus `input` (a string, or each item's content likewise).
    Schemas, tools, images and JSON punctuation are not counted.
    """
    if not isinstance(request, Mapping):
        return 0
    chars = 0
    messages = request.get("messages")
    if isinstance(messages, list):
        chars += sum(_content_chars(m.get("content")) for m in messages if isinstance(m, Mapping))
    instructions = request.get("instructions")
    if isinstance(instructions, str):
        chars += len(instructions)
    given = request.get("input")
    if isinstance(given, str):
        chars += len(given)
    elif isinstance(given, list):
        chars += sum(_content_chars(i.get("content")) for i in given if isinstance(i, Mapping))
    return -(-chars // CHARS_PER_TOKEN)


def _content_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(
            len(part["text"])
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return 0


def format_duration(seconds: float) -> str:
    """A duration as OpenAI's reset headers write it: `20ms`, `1s`, `1m30.5s`, `6m0s`.

    Rounded up to the millisecond, so a client that waits this long finds the capacity back.
    """
    ms = max(0, math.ceil(seconds * 1000 - 1e-6))
    if ms < 1000:
        return f"{ms}ms" if ms else "0s"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def max_in_window(times: Iterable[float], seconds: float) -> int:
    """The most timestamps inside any half-open interval `[t, t + seconds)`."""
    ordered = sorted(times)
    best = 0
    for i, start in enumerate(ordered):
        end = bisect.bisect_left(ordered, start + seconds, lo=i)
        best = max(best, end - i)
    return best


@dataclass
class _Bucket:
    """`capacity` units, refilled at `rate` units a second; starts full."""

    kind: LimitKind
    capacity: int
    rate: float
    level: float
    stamp: float

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(float(self.capacity), self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_for(self, amount: int) -> float:
        """Seconds until `amount` fits (inf when it exceeds the capacity)."""
        if amount > self.capacity:
            return math.inf
        if amount <= self.level:
            return 0.0
        return (amount - self.level) / self.rate

    def headers(self) -> dict[str, str]:
        remaining = max(0, math.floor(self.level + 1e-9))
        reset = (self.capacity - self.level) / self.rate
        return {
            f"x-ratelimit-limit-{self.kind}": str(self.capacity),
            f"x-ratelimit-remaining-{self.kind}": str(remaining),
            f"x-ratelimit-reset-{self.kind}": format_duration(reset),
        }


@dataclass(frozen=True)
class Admission:
    """The limiter's verdict on one request, with the headers its response carries.

    When rejected, `kind` is the limit that refused it, `retry_after` the seconds until the
    request fits every limit (None: it never fits, being larger than the token limit), and
    `used`/`limit`/`requested` the figures of the refusing limit, for the error message.
    """

    accepted: bool
    headers: dict[str, str]
    kind: LimitKind | None = None
    retry_after: float | None = None
    limit: int = 0
    used: int = 0
    requested: int = 0


@dataclass
class RateLimiter:
    """The buckets of one `RateLimits` (not thread-safe: the server holds a lock around it)."""

    limits: RateLimits
    start: float
    buckets: list[_Bucket] = field(init=False)

    def __post_init__(self) -> None:
        self.buckets = []
        figures: list[tuple[LimitKind, int | None]] = [
            ("requests", self.limits.requests_per_minute),
            ("tokens", self.limits.tokens_per_minute),
        ]
        for kind, limit in figures:
            if limit is not None:
                rate = limit / self.limits.window
                self.buckets.append(_Bucket(kind, limit, rate, float(limit), self.start))

    def admit(self, tokens: int, now: float) -> Admission:
        """Take one request and `tokens` tokens if they fit every bucket, else nothing."""
        costs = {"requests": 1, "tokens": tokens}
        for bucket in self.buckets:
            bucket.refill(now)
        waits = [(bucket.wait_for(costs[bucket.kind]), bucket) for bucket in self.buckets]
        refusing = [(wait, bucket) for wait, bucket in waits if wait > 0]
        if refusing:
            wait = max(w for w, _ in refusing)
            bucket = refusing[0][1]  # requests before tokens, as the headers are listed
            return Admission(
                accepted=False,
                headers=self.headers(),
                kind=bucket.kind,
                retry_after=None if math.isinf(wait) else wait,
                limit=bucket.capacity,
                used=max(0, math.ceil(bucket.capacity - bucket.level - 1e-9)),
                requested=costs[bucket.kind],
            )
        for bucket in self.buckets:
            bucket.level -= costs[bucket.kind]
        return Admission(accepted=True, headers=self.headers())

    def headers(self) -> dict[str, str]:
        """The `x-ratelimit-*` headers of the limits that are set, as of the last refill."""
        out: dict[str, str] = {}
        for bucket in self.buckets:
            out.update(bucket.headers())
        return out


def rejection_message(admission: Admission, model: str, window: float) -> str:
    """OpenAI's wording for a 429, with the window named when it is not a minute."""
    span = "min" if window == 60 else f"{window:g}s"
    tag = "RPM" if admission.kind == "requests" else "TPM"
    where = f"for {model} in organization org-fake on {admission.kind} per {span} ({tag})"
    if admission.retry_after is None:
        return (
            f"Request too large {where}: Limit {admission.limit}, Requested "
            f"{admission.requested}. The input or output tokens must be reduced in order to "
            "run successfully."
        )
    return (
        f"Rate limit reached {where}: Limit {admission.limit}, Used {admission.used}, "
        f"Requested {admission.requested}. Please try again in "
        f"{format_duration(admission.retry_after)}."
    )


def retry_headers(retry_after: float | None) -> dict[str, str]:
    """`retry-after-ms` (exact, which the openai SDK prefers) and `Retry-After` (whole seconds,
    as HTTP defines it), both rounded up; none for a request that can never fit."""
    if retry_after is None:
        return {}
    ms = max(1, math.ceil(retry_after * 1000 - 1e-6))
    return {"retry-after-ms": str(ms), "Retry-After": str(math.ceil(ms / 1000))}
