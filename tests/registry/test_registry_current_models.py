"""The current OpenAI models in the packaged registry: names, limits, parameter rules, APIs."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from openai_structured.errors import OpenAIClientError, TokenLimitError, VersionTooOldError
from openai_structured.registry import ModelCapabilities, ModelRegistry
from openai_structured.tokens import estimate_cost


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry(use_env=False, use_cache=False)


# model, context window, max output, streams, APIs
CURRENT = [
    ("gpt-5.4", 1_050_000, 128_000, True, ("chat", "responses")),
    ("gpt-5.4-mini", 400_000, 128_000, True, ("chat", "responses")),
    ("gpt-5.4-nano", 400_000, 128_000, True, ("chat", "responses")),
    ("gpt-5.4-pro", 1_050_000, 128_000, True, ("responses",)),
    ("gpt-5.5", 1_050_000, 128_000, True, ("chat", "responses")),
    ("gpt-5.5-pro", 1_050_000, 128_000, True, ("responses",)),
    ("gpt-5.6-sol", 1_050_000, 128_000, True, ("chat", "responses")),
    ("gpt-5.6-terra", 1_050_000, 128_000, True, ("chat", "responses")),
    ("gpt-5.6-luna", 1_050_000, 128_000, True, ("chat", "responses")),
    ("gpt-6-astra", 1_050_000, 128_000, True, ("chat", "responses")),
    ("gpt-6-sol", 1_050_000, 128_000, True, ("chat", "responses")),
    ("gpt-6-luna", 1_050_000, 128_000, True, ("chat", "responses")),
    ("gpt-6.1-sol", 1_050_000, 128_000, True, ("chat", "responses")),
    ("gpt-6.2-sol", 1_050_000, 128_000, True, ("chat", "responses")),
    ("gpt-6.2-astra", 1_050_000, 128_000, True, ("chat", "responses")),
    ("gpt-5-pro", 400_000, 272_000, True, ("responses",)),
    ("o3-pro", 200_000, 100_000, False, ("responses",)),
]
NAMES = [row[0] for row in CURRENT]


@pytest.mark.parametrize(("model", "context", "output", "streams", "apis"), CURRENT)
def test_current_models_have_their_limits_streaming_and_apis(
    registry: ModelRegistry,
    model: str,
    context: int,
    output: int,
    streams: bool,
    apis: tuple[str, ...],
) -> None:
    caps = registry.get_capabilities(model)
    assert caps.canonical == model
    assert (caps.context_window, caps.max_output_tokens) == (context, output)
    assert caps.supports_streaming is streams
    assert caps.apis == apis
    assert caps.supports_structured_output is True
    assert caps.reasoning is True
    assert caps.encoding == "o200k_base"
    assert caps.prices is not None


@pytest.mark.parametrize(
    ("name", "canonical", "version"),
    [
        ("gpt-5.6", "gpt-5.6-sol", None),
        ("gpt-5.4-2026-03-05", "gpt-5.4", date(2026, 3, 5)),
        ("gpt-5.4-mini-2026-03-17", "gpt-5.4-mini", date(2026, 3, 17)),
        ("gpt-5.4-nano-2026-03-17", "gpt-5.4-nano", date(2026, 3, 17)),
        ("gpt-5.4-pro-2026-03-05", "gpt-5.4-pro", date(2026, 3, 5)),
        ("gpt-5.5-2026-04-23", "gpt-5.5", date(2026, 4, 23)),
        ("gpt-5-pro-2025-10-06", "gpt-5-pro", date(2025, 10, 6)),
        ("o3-pro-2025-06-10", "o3-pro", date(2025, 6, 10)),
        # No dated snapshot is published for these: a dated name still resolves to the alias.
        ("gpt-6.2-sol-2026-11-17", "gpt-6.2-sol", date(2026, 11, 17)),
        ("gpt-5.6-2026-07-09", "gpt-5.6-sol", date(2026, 7, 9)),
    ],
)
def test_aliases_and_dated_names_of_current_models_resolve(
    registry: ModelRegistry, name: str, canonical: str, version: date | None
) -> None:
    caps = registry.get_capabilities(name)
    assert (caps.name, caps.canonical, caps.version) == (name, canonical, version)


def test_dated_names_resolve_to_the_longest_model_name_not_a_family_prefix(
    registry: ModelRegistry,
) -> None:
    # gpt-5.4-mini-... is gpt-5.4-mini, never gpt-5.4; gpt-5-pro-... is gpt-5-pro, never gpt-5.
    assert registry.get_capabilities("gpt-5.4-mini-2026-04-01").canonical == "gpt-5.4-mini"
    assert registry.get_capabilities("gpt-5-pro-2025-12-01").canonical == "gpt-5-pro"
    assert registry.get_capabilities("gpt-5.4-2026-04-01").canonical == "gpt-5.4"


@pytest.mark.parametrize(
    ("name", "minimum"),
    [
        ("gpt-5.4-2026-03-04", "2026-03-05"),
        ("gpt-5.4-mini-2026-03-05", "2026-03-17"),
        ("o3-pro-2025-04-16", "2025-06-10"),
    ],
)
def test_dates_before_a_current_models_first_snapshot_are_too_old(
    registry: ModelRegistry, name: str, minimum: str
) -> None:
    with pytest.raises(VersionTooOldError, match=f"Minimum supported version: {minimum}"):
        registry.get_capabilities(name)


@pytest.mark.parametrize("model", NAMES)
def test_current_models_send_max_completion_tokens_on_chat(
    registry: ModelRegistry, model: str
) -> None:
    caps = registry.get_capabilities(model)
    assert caps.token_parameter("chat") == "max_completion_tokens"
    assert caps.token_parameter("responses") == "max_output_tokens"


@pytest.mark.parametrize(("model", "context", "output", "streams", "apis"), CURRENT)
def test_the_output_limit_is_checked_at_the_models_maximum(
    registry: ModelRegistry,
    model: str,
    context: int,
    output: int,
    streams: bool,
    apis: tuple[str, ...],
) -> None:
    caps = registry.get_capabilities(model)
    caps.validate_parameters({"max_output_tokens": output})
    with pytest.raises(TokenLimitError) as info:
        caps.validate_parameters({"max_completion_tokens": output + 1})
    assert (info.value.requested_tokens, info.value.model_limit) == (output + 1, output)


# --- parameter rules of reasoning models ----------------------------------------------------------


@pytest.mark.parametrize("model", NAMES)
@pytest.mark.parametrize("param", ["frequency_penalty", "presence_penalty"])
def test_current_reasoning_models_refuse_the_penalties(
    registry: ModelRegistry, model: str, param: str
) -> None:
    caps = registry.get_capabilities(model)
    assert not caps.supports_parameter(param)
    with pytest.raises(OpenAIClientError) as info:
        caps.validate_parameters({param: 0.5})
    assert f"Parameter '{param}' is not supported by model '{model}'." in str(info.value)
    assert "reasoning model" in str(info.value)


# Models that take temperature/top_p only while reasoning_effort is none, with their default.
SAMPLING_WITH_EFFORT_NONE = [
    ("gpt-5.4", "none"),
    ("gpt-5.4-mini", "none"),
    ("gpt-5.4-nano", "none"),
    ("gpt-5.5", "none"),
    ("gpt-5.6-sol", "medium"),
    ("gpt-5.6-terra", "medium"),
    ("gpt-5.6-luna", "medium"),
    ("gpt-6-sol", "medium"),
    ("gpt-6-luna", "medium"),
]
NO_SAMPLING = [
    "gpt-5.4-pro",
    "gpt-5.5-pro",
    "gpt-5-pro",
    "o3-pro",
    "gpt-6-astra",
    "gpt-6.1-sol",
    "gpt-6.2-sol",
    "gpt-6.2-astra",
]


def test_the_rule_lists_cover_every_current_model() -> None:
    assert sorted([m for m, _ in SAMPLING_WITH_EFFORT_NONE] + NO_SAMPLING) == sorted(NAMES)


@pytest.mark.parametrize(("model", "default"), SAMPLING_WITH_EFFORT_NONE)
@pytest.mark.parametrize("param", ["temperature", "top_p"])
def test_sampling_is_taken_only_while_the_effort_is_none(
    registry: ModelRegistry, model: str, default: str, param: str
) -> None:
    caps = registry.get_capabilities(model)
    assert caps.parameters["reasoning_effort"].default == default
    caps.validate_parameters({param: 0.5, "reasoning_effort": "none"})
    with pytest.raises(OpenAIClientError) as info:
        caps.validate_parameters({param: 0.5, "reasoning_effort": "high"})
    msg = str(info.value)
    assert f"Parameter '{param}' is only supported by model '{model}' when" in msg
    assert "set reasoning_effort='none'" in msg
    if default == "none":
        caps.validate_parameters({param: 0.5})
    else:
        with pytest.raises(OpenAIClientError, match=rf"\(got '{default}'\)"):
            caps.validate_parameters({param: 0.5})


@pytest.mark.parametrize("model", NO_SAMPLING)
@pytest.mark.parametrize("param", ["temperature", "top_p"])
def test_models_without_effort_none_refuse_sampling(
    registry: ModelRegistry, model: str, param: str
) -> None:
    caps = registry.get_capabilities(model)
    assert "none" not in caps.parameters["reasoning_effort"].values
    with pytest.raises(OpenAIClientError, match="reasoning model"):
        caps.validate_parameters({param: 0.2})


@pytest.mark.parametrize(
    ("model", "accepted", "refused"),
    [
        ("gpt-5.4", ["none", "low", "xhigh"], ["minimal", "max"]),
        ("gpt-5.5", ["none", "medium", "xhigh"], ["minimal", "max"]),
        ("gpt-5.6-luna", ["none", "medium", "max"], ["minimal"]),
        ("gpt-5.6-sol", ["none", "xhigh", "max"], ["minimal"]),
        ("gpt-6.2-sol", ["low", "max"], ["none", "minimal"]),
        ("gpt-6.1-sol", ["low", "high"], ["none", "minimal"]),
        ("gpt-6-astra", ["low", "max"], ["none"]),
        ("gpt-5.4-pro", ["medium", "high", "xhigh"], ["none", "low"]),
        ("gpt-5-pro", ["high"], ["medium", "low"]),
        ("o3-pro", ["low", "medium", "high"], ["none", "xhigh"]),
    ],
)
def test_reasoning_effort_values_per_current_model(
    registry: ModelRegistry, model: str, accepted: list[str], refused: list[str]
) -> None:
    caps = registry.get_capabilities(model)
    for value in accepted:
        caps.validate_parameters({"reasoning_effort": value})
    for value in refused:
        with pytest.raises(OpenAIClientError, match="Allowed values: ") as info:
            caps.validate_parameters({"reasoning_effort": value})
        assert f"Invalid value '{value}' for parameter 'reasoning_effort'." in str(info.value)


def test_o3_pro_does_not_stream(registry: ModelRegistry) -> None:
    with pytest.raises(OpenAIClientError, match="Model 'o3-pro' does not support streaming"):
        registry.get_capabilities("o3-pro").check_streaming()
    assert registry.get_capabilities("gpt-5-pro").check_streaming() is None


# --- Responses-only models ----------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-5-pro", "gpt-5.4-pro", "gpt-5.5-pro", "o3-pro"])
def test_pro_models_are_refused_on_chat_and_accepted_on_responses(
    registry: ModelRegistry, model: str
) -> None:
    caps = registry.get_capabilities(model)
    assert caps.check_api("responses") is None
    with pytest.raises(OpenAIClientError) as info:
        caps.check_api("chat")
    assert str(info.value) == (
        f"Model '{model}' is not available on the Chat Completions API.\n"
        "It is served on the Responses API only.\n"
        "Call it with api='responses' (ostruct: --api responses), or use a model that "
        "supports Chat Completions."
    )


@pytest.mark.parametrize("model", ["gpt-4o", "o1", "gpt-5.4", "gpt-6.2-sol"])
def test_other_models_are_served_on_both_apis(registry: ModelRegistry, model: str) -> None:
    caps = registry.get_capabilities(model)
    assert caps.apis == ("chat", "responses")
    assert caps.check_api("chat") is None
    assert caps.check_api("responses") is None


def test_the_permissive_profile_is_served_on_every_api() -> None:
    caps = ModelCapabilities.permissive("llama3")
    assert caps.check_api("chat") is None
    assert caps.check_api("responses") is None


@pytest.mark.parametrize(
    ("apis", "message"),
    [
        ([], "expected a non-empty list"),
        (["completions"], "expected a non-empty list of chat / responses"),
        ("responses", "expected a list of strings"),
    ],
)
def test_a_registry_file_with_bad_apis_is_refused(tmp_path: Path, apis: Any, message: str) -> None:
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"models": {"mine": {"apis": apis}}}), encoding="utf-8")
    with pytest.raises(OpenAIClientError, match=message):
        ModelRegistry(path, use_env=False, use_cache=False)


def test_a_registry_file_can_make_a_model_responses_only(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    entry = {"apis": ["responses", "chat"], "context_window": 8_192, "max_output_tokens": 1_024}
    doc = {"models": {"mine": entry, "gpt-4o": {"apis": ["responses"]}}}
    path.write_text(json.dumps(doc), encoding="utf-8")
    reg = ModelRegistry(path, use_env=False, use_cache=False)
    assert reg.get_capabilities("mine").apis == ("chat", "responses")  # in canonical order
    assert reg.get_capabilities("gpt-4o").apis == ("responses",)
    assert reg.get_capabilities("gpt-4o").context_window == 128_000  # other fields kept


# --- prices -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "inp", "cached", "out"),
    [
        ("gpt-5.6-luna", 0.2, 0.02, 1.2),  # official page
        ("gpt-5.6-sol", 4.0, 0.4, 20.0),  # official page (promotional)
        ("gpt-6.2-sol", 2.0, 0.1, 10.0),  # official page
        ("gpt-5-pro", 15.0, None, 120.0),  # official page: no cached price
        ("gpt-5.4-pro", 30.0, None, 180.0),  # official page: no cached price
        ("gpt-5.4", 2.5, 0.25, 15.0),
        ("gpt-5.4-mini", 0.75, 0.075, 4.5),
        ("gpt-5.4-nano", 0.2, 0.02, 1.25),
        ("gpt-5.5", 5.0, 0.5, 30.0),
        ("o3-pro", 20.0, None, 80.0),
    ],
)
def test_current_model_prices(
    registry: ModelRegistry, model: str, inp: float, cached: float | None, out: float
) -> None:
    prices = registry.get_capabilities(model).prices
    assert prices is not None
    assert (prices.input, prices.cached_input, prices.output) == (inp, cached, out)


def test_a_model_without_a_cached_price_costs_cached_tokens_at_the_input_price() -> None:
    cost = estimate_cost("gpt-5-pro", 1_000_000, 1_000_000, cached_input_tokens=500_000)
    assert cost is not None
    assert (cost.input_cost, cost.cached_input_cost, cost.output_cost) == (7.5, 7.5, 120.0)
    assert cost.total == 135.0


@pytest.mark.parametrize("model", NAMES)
def test_current_models_cite_an_official_page_or_say_why_not(
    registry: ModelRegistry, model: str
) -> None:
    sources = registry.get_capabilities(model).sources
    for figure in ("context_window", "max_output_tokens", "prices", "parameters"):
        entry = sources[figure]
        assert entry["ref"], f"{model}.{figure}"
        if not entry["verified"]:
            kinds = {registry.sources[ref]["kind"] for ref in entry["ref"]}
            assert entry.get("note") or kinds == {"secondary"}, f"{model}.{figure}"
