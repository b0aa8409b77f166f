"""Parameter rules: ranges, enums, reasoning-model restrictions, token limits, streaming."""

from __future__ import annotations

from typing import Any

import pytest

from openai_structured.errors import OpenAIClientError, TokenLimitError, TokenParameterError
from openai_structured.registry import ModelCapabilities, ModelRegistry


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry(use_env=False, use_cache=False)


def caps(registry: ModelRegistry, name: str) -> ModelCapabilities:
    return registry.get_capabilities(name)


@pytest.mark.parametrize(
    ("param", "low", "high"),
    [
        ("temperature", 0, 2),
        ("top_p", 0, 1),
        ("frequency_penalty", -2, 2),
        ("presence_penalty", -2, 2),
    ],
)
@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-nano"])
def test_sampling_ranges_accept_their_bounds_and_reject_beyond(
    registry: ModelRegistry, model: str, param: str, low: float, high: float
) -> None:
    c = caps(registry, model)
    c.validate_parameter(param, low)
    c.validate_parameter(param, high)
    c.validate_parameter(param, (low + high) / 2)
    for bad in (low - 0.1, high + 0.1):
        with pytest.raises(OpenAIClientError) as info:
            c.validate_parameter(param, bad)
        msg = str(info.value)
        assert msg.startswith(f"Invalid value {bad!r} for parameter '{param}'.\nDescription: ")
        assert f"Allowed range: {low} to {high}" in msg


@pytest.mark.parametrize("bad", ["hot", True, None.__class__, [1]])
def test_non_numbers_are_rejected_with_the_expected_type(registry: ModelRegistry, bad: Any) -> None:
    with pytest.raises(OpenAIClientError, match="Expected a number"):
        caps(registry, "gpt-4o").validate_parameter("temperature", bad)


def test_nan_is_rejected(registry: ModelRegistry) -> None:
    with pytest.raises(OpenAIClientError):
        caps(registry, "gpt-4o").validate_parameter("top_p", float("nan"))


def test_reasoning_effort_invalid_value_uses_the_seed_message(registry: ModelRegistry) -> None:
    with pytest.raises(OpenAIClientError) as info:
        caps(registry, "o1").validate_parameter("reasoning_effort", "invalid")
    assert str(info.value) == (
        "Invalid value 'invalid' for parameter 'reasoning_effort'.\n"
        "Description: Controls the model's reasoning depth.\n"
        "Allowed values: low, medium, high"
    )


EFFORTS = {
    "o1": ["low", "medium", "high"],
    "o3": ["low", "medium", "high"],
    "o3-mini": ["low", "medium", "high"],
    "o4-mini": ["low", "medium", "high"],
    "gpt-5": ["minimal", "low", "medium", "high"],
    "gpt-5-mini": ["minimal", "low", "medium", "high"],
    "gpt-5-nano": ["minimal", "low", "medium", "high"],
    "gpt-5.1": ["none", "low", "medium", "high"],
    "gpt-5.2": ["none", "low", "medium", "high", "xhigh"],
}


@pytest.mark.parametrize("model", sorted(EFFORTS))
@pytest.mark.parametrize("effort", ["none", "minimal", "low", "medium", "high", "xhigh"])
def test_reasoning_effort_values_per_model(
    registry: ModelRegistry, model: str, effort: str
) -> None:
    c = caps(registry, model)
    if effort in EFFORTS[model]:
        c.validate_parameter("reasoning_effort", effort)
    else:
        with pytest.raises(OpenAIClientError, match="Allowed values: " + ", ".join(EFFORTS[model])):
            c.validate_parameter("reasoning_effort", effort)


@pytest.mark.parametrize("model", ["o1", "o3", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini"])
@pytest.mark.parametrize("param", ["temperature", "top_p", "frequency_penalty", "presence_penalty"])
def test_reasoning_models_reject_sampling_parameters_with_guidance(
    registry: ModelRegistry, model: str, param: str
) -> None:
    with pytest.raises(OpenAIClientError) as info:
        caps(registry, model).validate_parameter(param, 0.5)
    msg = str(info.value)
    assert msg.startswith(f"Parameter '{param}' is not supported by model '{model}'.\n")
    assert "Supported parameters: reasoning_effort, max_output_tokens" in msg
    assert f"Remove '{param}'" in msg
    assert "gpt-4.1 or gpt-4o" in msg


def test_the_error_names_the_dated_name_the_caller_used(registry: ModelRegistry) -> None:
    with pytest.raises(OpenAIClientError, match="not supported by model 'o1-2024-12-17'"):
        caps(registry, "o1-2024-12-17").validate_parameter("temperature", 1)


def test_non_reasoning_model_rejects_reasoning_effort(registry: ModelRegistry) -> None:
    with pytest.raises(OpenAIClientError) as info:
        caps(registry, "gpt-4o").validate_parameter("reasoning_effort", "low")
    msg = str(info.value)
    assert "Parameter 'reasoning_effort' is not supported by model 'gpt-4o'." in msg
    assert "Remove 'reasoning_effort' from the call, or use a model that accepts it." in msg


def test_not_given_and_pass_through_parameters_are_never_rejected(
    registry: ModelRegistry,
) -> None:
    o1 = caps(registry, "o1")
    o1.validate_parameter("temperature", None)
    o1.validate_parameter("seed", 42)
    o1.validate_parameter("stop", ["\n"])
    o1.validate_parameters({"temperature": None, "top_p": None, "metadata": {"a": "b"}})
    assert o1.supports_parameter("seed")
    assert not o1.supports_parameter("temperature")
    assert o1.supports_parameter("max_completion_tokens")


def test_gpt_5_1_takes_temperature_only_with_effort_none(registry: ModelRegistry) -> None:
    c = caps(registry, "gpt-5.1")
    c.validate_parameter("temperature", 0.3)  # default effort is none
    c.validate_parameters({"temperature": 0.3, "reasoning_effort": "none"})
    with pytest.raises(OpenAIClientError) as info:
        c.validate_parameters({"temperature": 0.3, "reasoning_effort": "high"})
    msg = str(info.value)
    assert "Parameter 'temperature' is only supported by model 'gpt-5.1'" in msg
    assert "(got 'high')" in msg
    assert "Either remove 'temperature' or set reasoning_effort='none'." in msg
    with pytest.raises(OpenAIClientError, match="Allowed range: 0 to 1"):
        c.validate_parameter("top_p", 1.5)
    with pytest.raises(OpenAIClientError, match="not supported"):
        c.validate_parameter("presence_penalty", 0.1)


# --- token limits ------------------------------------------------------------------------------


@pytest.mark.parametrize("param", ["max_output_tokens", "max_completion_tokens", "max_tokens"])
def test_output_token_limit_is_checked_under_every_spelling(
    registry: ModelRegistry, param: str
) -> None:
    c = caps(registry, "gpt-4o")
    c.validate_parameter(param, 16_384)
    with pytest.raises(TokenLimitError) as info:
        c.validate_parameter(param, 20_000)
    assert info.value.requested_tokens == 20_000
    assert info.value.model_limit == 16_384
    assert f"Lower {param} to 16,384 or less" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad", [0, -5, 1.5, "100", True])
def test_token_limit_must_be_a_positive_integer(registry: ModelRegistry, bad: Any) -> None:
    with pytest.raises(OpenAIClientError, match="Expected a positive integer"):
        caps(registry, "o3-mini").validate_parameter("max_output_tokens", bad)


def test_two_token_parameters_raise_token_parameter_error(registry: ModelRegistry) -> None:
    with pytest.raises(TokenParameterError) as info:
        caps(registry, "gpt-4o").validate_parameters(
            {"max_output_tokens": 100, "max_completion_tokens": 100}
        )
    msg = str(info.value)
    assert "Cannot specify both 'max_output_tokens' and 'max_completion_tokens' parameters." in msg
    assert "- max_output_tokens (recommended)" in msg


def test_token_parameter_names_per_api(registry: ModelRegistry) -> None:
    for model in ("gpt-4o", "o1", "o3-mini", "gpt-5", "gpt-4.1"):
        c = caps(registry, model)
        assert c.token_parameter("chat") == "max_completion_tokens"
        assert c.token_parameter("responses") == "max_output_tokens"
    with pytest.raises(OpenAIClientError, match="api must be 'chat' or 'responses'"):
        caps(registry, "gpt-4o").token_parameter("completions")  # type: ignore[arg-type]


# --- streaming --------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["o1", "o1-2024-12-17", "o3"])
def test_models_that_do_not_stream_say_what_to_do(registry: ModelRegistry, model: str) -> None:
    with pytest.raises(OpenAIClientError) as info:
        caps(registry, model).check_streaming()
    msg = str(info.value)
    assert f"Model '{model}' does not support streaming." in msg
    assert "non-streaming call" in msg


@pytest.mark.parametrize(
    ("model", "streams"),
    [("o3-mini", True), ("gpt-4o", True), ("gpt-5", True), ("o1", False), ("o3", False)],
)
def test_check_streaming_follows_the_registry_flag(
    registry: ModelRegistry, model: str, streams: bool
) -> None:
    c = caps(registry, model)
    assert c.supports_streaming is streams
    if streams:
        assert c.check_streaming() is None
    else:
        with pytest.raises(OpenAIClientError, match=f"Model '{model}' does not support streaming"):
            c.check_streaming()


# --- permissive profile ---------------------------------------------------------------------------


def test_permissive_profile_allows_everything_and_limits_nothing() -> None:
    c = ModelCapabilities.permissive("llama3")
    assert c.permissive_profile
    assert c.context_window is None and c.max_output_tokens is None
    for name, value in [
        ("temperature", 7.0),
        ("reasoning_effort", "whatever"),
        ("max_tokens", 10_000_000),
        ("top_p", -3),
    ]:
        c.validate_parameter(name, value)
        assert c.supports_parameter(name)
    c.validate_parameters({"temperature": 1.0, "top_p": 0.5, "max_completion_tokens": 5})
    c.check_streaming()
    assert c.token_parameter("chat") == "max_tokens"
    assert c.token_parameter("responses") == "max_output_tokens"
    assert c.prices is None
