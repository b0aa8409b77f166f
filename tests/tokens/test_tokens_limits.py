"""Registry questions and pre-flight token limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from openai_structured import tokens
from openai_structured.errors import (
    InvalidDateError,
    ModelNotSupportedError,
    OpenAIClientError,
    TokenLimitError,
)
from openai_structured.registry import ModelCapabilities, ModelRegistry


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gpt-4o", True),
        ("gpt-4o-2024-08-06", True),
        ("gpt-4o-2024-09-01", True),
        ("o3-mini", True),
        ("gpt-5.1-2025-11-13", True),
        ("gpt-3.5-turbo", False),
        ("gpt-4o-2024-07-01", False),
        ("gpt-4o-2024-13-01", False),
        ("unknown-model", False),
    ],
)
def test_supports_structured_output_never_raises_for_names(name: str, expected: bool) -> None:
    assert tokens.supports_structured_output(name) is expected


@pytest.mark.parametrize(
    ("name", "context", "output"),
    [("gpt-4o", 128_000, 16_384), ("o1", 200_000, 100_000), ("o3-mini", 200_000, 100_000)],
)
def test_seed_limits(name: str, context: int, output: int) -> None:
    assert tokens.get_context_window_limit(name) == context
    assert tokens.get_default_token_limit(name) == output


def test_limits_raise_for_unknown_and_invalid_names() -> None:
    with pytest.raises(ModelNotSupportedError):
        tokens.get_context_window_limit("unknown-model")
    with pytest.raises(InvalidDateError):
        tokens.get_default_token_limit("gpt-4o-2024-02-30")


def test_a_model_without_limits_says_so(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"models": {"nolimits": {}}}')
    reg = ModelRegistry(path, use_cache=False)
    with pytest.raises(ModelNotSupportedError, match="no context window"):
        tokens.get_context_window_limit("nolimits", registry=reg)
    with pytest.raises(ModelNotSupportedError, match="no output token limit"):
        tokens.get_default_token_limit("nolimits", registry=reg)


def test_output_above_the_model_limit_is_rejected_before_counting(no_network: None) -> None:
    with pytest.raises(TokenLimitError) as info:
        tokens.validate_token_limits("gpt-4o", prompt="hi", max_output_tokens=20_000)
    assert (info.value.requested_tokens, info.value.model_limit) == (20_000, 16_384)
    assert "Lower max_output_tokens to 16,384 or less" in str(info.value)


def test_within_limits_returns_the_prompt_token_count(no_network: None) -> None:
    messages = [{"role": "user", "content": "hello world"}]
    n = tokens.validate_token_limits("gpt-4o", messages=messages, max_output_tokens=1000)
    assert n == tokens.count_message_tokens(messages, "gpt-4o") == 3 + 1 + 2 + 3
    both = tokens.validate_token_limits("gpt-4o", messages=messages, prompt="hello world")
    assert both == n + 2
    assert tokens.validate_token_limits("gpt-4o") == 0


@pytest.fixture
def tiny(tmp_path: Path) -> ModelRegistry:
    path = tmp_path / "r.json"
    path.write_text(
        '{"models": {"tiny": {"context_window": 20, "max_output_tokens": 10, '
        '"encoding": "o200k_base"}}}'
    )
    return ModelRegistry(path, use_cache=False)


def test_prompt_plus_output_over_the_window_says_by_how_much(
    tiny: ModelRegistry, no_network: None
) -> None:
    prompt = "one two three four five six seven eight nine ten eleven twelve"
    count = tokens.count_tokens(prompt, "tiny", registry=tiny)
    with pytest.raises(TokenLimitError) as info:
        tokens.validate_token_limits("tiny", prompt=prompt, max_output_tokens=10, registry=tiny)
    err = info.value
    assert err.requested_tokens == count + 10
    assert err.model_limit == 20
    msg = str(err)
    assert f"Prompt ({count:,} tokens) plus requested output (10 tokens)" in msg
    assert "exceeds the context window of model 'tiny' (20 tokens)" in msg
    assert f"Shorten the prompt by at least {count + 10 - 20:,} tokens" in msg
    assert "lower max_output_tokens" in msg
    assert "(e.g. gpt-4o: 128,000 tokens)" in msg


def test_prompt_alone_over_the_window(tiny: ModelRegistry, no_network: None) -> None:
    prompt = "word " * 40
    with pytest.raises(TokenLimitError) as info:
        tokens.validate_token_limits("tiny", prompt=prompt, registry=tiny)
    assert info.value.model_limit == 20
    assert str(info.value).startswith("Prompt (")
    assert "or use a model with a larger context window" in str(info.value)


def test_an_overflow_no_model_can_hold_suggests_nothing(tiny: ModelRegistry) -> None:
    with pytest.raises(TokenLimitError) as info:
        tokens.validate_token_limits(
            "gpt-4.1", messages=[{"role": "user", "content": "x " * 1_100_000}]
        )
    assert "(e.g." not in str(info.value)


def test_permissive_profile_checks_nothing() -> None:
    caps = ModelCapabilities.permissive("llama3")
    assert (
        tokens.validate_token_limits(
            "llama3", prompt="x" * 100, max_output_tokens=10**9, registry=caps
        )
        == 0
    )


def test_invalid_output_limit_type_is_an_error() -> None:
    with pytest.raises(OpenAIClientError, match="positive integer"):
        tokens.validate_token_limits("gpt-4o", max_output_tokens=0)
