"""How long the fake server takes to answer: a fixed delay or a seeded distribution.

A real model's latency varies from call to call, and concurrency bugs (ordering, stragglers,
head-of-line blocking) only show when it does; a seed makes a run repeatable.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable

__all__ = ["Latency"]


class Latency:
    """Seconds to wait before answering each request, drawn from a distribution.

    Build with `fixed`, `uniform` or `lognormal`. `sample()` is thread-safe; with a `seed`, the
    sequence of delays is the same on every run (which request gets which one still follows
    the order requests arrive in).
    """

    __slots__ = ("_draw", "_lock", "_random", "description")

    def __init__(
        self, draw: Callable[[random.Random], float], description: str, seed: int | None = None
    ) -> None:
        self._draw = draw
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.description = description

    @classmethod
    def fixed(cls, seconds: float) -> Latency:
        """Always `seconds`."""
        _check_seconds("seconds", seconds)
        return cls(lambda _: seconds, f"Latency.fixed({seconds!r})")

    @classmethod
    def uniform(cls, low: float, high: float, *, seed: int | None = None) -> Latency:
        """Uniformly between `low` and `high` seconds."""
        _check_seconds("low", low)
        _check_seconds("high", high)
        if high < low:
            raise ValueError(f"high must be >= low, got low={low!r} high={high!r}")
        return cls(lambda r: r.uniform(low, high), f"Latency.uniform({low!r}, {high!r})", seed)

    @classmethod
    def lognormal(
        cls, median: float, sigma: float, *, seed: int | None = None, cap: float | None = None
    ) -> Latency:
        """Log-normal around `median` seconds (half the delays are shorter): the long right
        tail of real API latency. `sigma` is the spread of the log (0.5 is moderate);
        `cap` bounds the tail."""
        _check_seconds("median", median)
        _check_seconds("sigma", sigma)
        if cap is not None:
            _check_seconds("cap", cap)
        if median <= 0:
            raise ValueError(f"median must be > 0, got {median!r}")
        mu = math.log(median)

        def draw(r: random.Random) -> float:
            value = r.lognormvariate(mu, sigma)
            return value if cap is None else min(value, cap)

        return cls(draw, f"Latency.lognormal({median!r}, {sigma!r}, cap={cap!r})", seed)

    def sample(self) -> float:
        """The next delay in seconds (never negative)."""
        with self._lock:
            return max(0.0, float(self._draw(self._random)))

    def __repr__(self) -> str:
        return self.description


def _check_seconds(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
