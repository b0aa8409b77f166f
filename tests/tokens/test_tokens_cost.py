"""Cost estimates from the registry's prices."""

from __future__ import annotations

from pathlib import Path

import pytest

from openai_structured import tokens
from openai_structured.errors import ModelNotSupportedError, OpenAIClientError
from openai_structured.registry import ModelRegistry


def test_cost_breakdown_for_gpt_4o() -> None:
    cost = tokens.estimate_cost("gpt-4o", 1_000_000, 500_000, cached_input_tokens=200_000)
    assert cost is not None
    assert cost.currency == "USD"
    assert cost.model == "gpt-4o"
    assert cost.input_cost == pytest.approx(800_000 * 2.5 / 1e6)
    assert cost.cached_input_cost == pytest.approx(200_000 * 1.25 / 1e6)
    assert cost.output_cost == pytest.approx(5.0)
    assert cost.total == pytest.approx(2.0 + 0.25 + 5.0)


def test_dated_names_use_the_base_prices() -> None:
    a = tokens.estimate_cost("o3-mini-2025-01-31", 1000, 1000)
    b = tokens.estimate_cost("o3-mini", 1000, 1000)
    assert a is not None and b is not None
    assert a.total == pytest.approx(b.total) == pytest.approx((1.1 + 4.4) / 1000)
    assert a.model == "o3-mini-2025-01-31"


def test_zero_tokens_cost_nothing() -> None:
    cost = tokens.estimate_cost("gpt-5-nano", 0, 0)
    assert cost is not None and cost.total == 0


def test_missing_prices_return_none_and_missing_cached_price_uses_input(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"models": {"free": {}, "nocache": {"prices": {"input": 2, "output": 4}}}}')
    reg = ModelRegistry(path, use_cache=False)
    assert tokens.estimate_cost("free", 10, 10, registry=reg) is None
    cost = tokens.estimate_cost("nocache", 1_000_000, 0, cached_input_tokens=500_000, registry=reg)
    assert cost is not None
    assert cost.cached_input_cost == pytest.approx(1.0)
    assert cost.total == pytest.approx(2.0)


def test_unknown_model_raises() -> None:
    with pytest.raises(ModelNotSupportedError):
        tokens.estimate_cost("unknown-model", 1, 1)


@pytest.mark.parametrize(
    ("args", "cached", "message"),
    [
        ((-1, 0), 0, "input_tokens must be a non-negative integer"),
        ((0, 1.5), 0, "output_tokens must be a non-negative integer"),
        ((10, 0), 11, "cannot exceed input_tokens"),
        ((True, 0), 0, "input_tokens"),
    ],
)
def test_bad_token_counts_are_rejected(args: tuple[int, int], cached: int, message: str) -> None:
    with pytest.raises(OpenAIClientError, match=message):
        tokens.estimate_cost("gpt-4o", *args, cached_input_tokens=cached)
