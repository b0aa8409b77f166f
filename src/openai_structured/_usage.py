"""What a call cost: token usage summed over attempts, the estimated price, running totals.

Both APIs report usage in their own words (``prompt_tokens`` / ``input_tokens``, details under
different keys); :class:`TokenUsage` is the one neutral form, and adds up. Prices come from the
model registry (``registry/models.json``, with sources), never from code. No I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .errors import ModelNotSupportedError, ModelVersionError
from .tokens import Cost, estimate_cost

__all__ = ["StructuredResult", "TokenUsage", "UsageTotals", "result_of"]

T = TypeVar("T")


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _detail(usage: Mapping[str, Any], key: str, name: str) -> int:
    details = usage.get(key)
    return _int(details.get(name)) if isinstance(details, Mapping) else 0


@dataclass(frozen=True)
class TokenUsage:
    """Token usage in API-neutral terms; ``a + b`` sums two of them.

    ``cached_tokens`` is the part of ``prompt_tokens`` served from the prompt cache and
    ``reasoning_tokens`` the part of ``completion_tokens`` spent reasoning, where the API reports
    them (0 otherwise). ``requests`` counts the responses summed, ``unreported`` those that
    carried no usage at all (a server that does not report it).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    requests: int = 0
    unreported: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_api(cls, usage: Mapping[str, Any] | None) -> TokenUsage:
        """From a Chat Completions or Responses ``usage`` object (None: not reported)."""
        if not isinstance(usage, Mapping):
            return cls(requests=1, unreported=1)
        if "input_tokens" in usage or "output_tokens" in usage:  # the Responses API
            return cls(
                _int(usage.get("input_tokens")),
                _int(usage.get("output_tokens")),
                _detail(usage, "input_tokens_details", "cached_tokens"),
                _detail(usage, "output_tokens_details", "reasoning_tokens"),
                requests=1,
            )
        return cls(
            _int(usage.get("prompt_tokens")),
            _int(usage.get("completion_tokens")),
            _detail(usage, "prompt_tokens_details", "cached_tokens"),
            _detail(usage, "completion_tokens_details", "reasoning_tokens"),
            requests=1,
        )

    def __add__(self, other: TokenUsage) -> TokenUsage:
        if not isinstance(other, TokenUsage):
            return NotImplemented
        return TokenUsage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.requests + other.requests,
            self.unreported + other.unreported,
        )

    def as_dict(self) -> dict[str, int]:
        """The figures as a plain dict (for logs and ``--usage``)."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "requests": self.requests,
        }


def cost_of(model: str, usage: TokenUsage) -> Cost | None:
    """The estimated price of ``usage`` on ``model``; None when the registry has no prices for
    it (or does not know the model, as on a custom server)."""
    try:
        return estimate_cost(
            model,
            usage.prompt_tokens,
            usage.completion_tokens,
            cached_input_tokens=min(usage.cached_tokens, usage.prompt_tokens),
        )
    except (ModelNotSupportedError, ModelVersionError):
        return None


@dataclass(frozen=True)
class StructuredResult(Generic[T]):
    """A result with what it cost: ``value`` is what the plain entry point returns, ``usage``
    the tokens of every attempt summed, ``cost`` their estimated price (None when the registry
    has no prices for the model), ``response_ids`` one per attempt, ``attempts`` 1 + re-asks."""

    value: T
    model: str
    usage: TokenUsage
    cost: Cost | None
    response_ids: tuple[str, ...] = ()
    attempts: int = 1

    @property
    def cost_usd(self) -> float | None:
        return self.cost.total if self.cost is not None else None


def result_of(
    value: Any,
    model: str,
    usages: Sequence[Mapping[str, Any] | None],
    response_ids: Sequence[str | None],
) -> StructuredResult[Any]:
    """The :class:`StructuredResult` of a call whose attempts reported ``usages``."""
    usage = sum((TokenUsage.from_api(u) for u in usages), TokenUsage())
    return StructuredResult(
        value,
        model,
        usage,
        cost_of(model, usage),
        tuple(r for r in response_ids if r),
        max(1, len(usages)),
    )


@dataclass
class UsageTotals:
    """Running totals of a :class:`~openai_structured.StructuredClient`: every call and stream
    it made, attempts included. ``cost_usd`` sums the priced ones; ``unpriced`` counts calls whose
    model has no prices in the registry. Safe to update from several threads."""

    calls: int = 0
    attempts: int = 0
    usage: TokenUsage = field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    unpriced: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, result: StructuredResult[Any]) -> None:
        with self._lock:
            self.calls += 1
            self.attempts += result.attempts
            self.usage = self.usage + result.usage
            if result.cost is None:
                self.unpriced += 1
            else:
                self.cost_usd += result.cost.total
