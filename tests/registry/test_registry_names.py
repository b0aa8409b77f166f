"""Name resolution: aliases, dated versions, newer versions, bad dates, unknown names."""

from __future__ import annotations

import json
from datetime import date
from importlib import resources

import pytest

from openai_structured.errors import (
    InvalidDateError,
    ModelNotSupportedError,
    ModelVersionError,
    OpenAIClientError,
    VersionTooOldError,
)
from openai_structured.registry import ModelRegistry, get_registry, reset_registry


@pytest.fixture
def registry() -> ModelRegistry:
    return ModelRegistry(use_cache=False)


SEED_FIGURES = [
    # model, min version, context window, max output, streams
    ("gpt-4o", "2024-08-06", 128_000, 16_384, True),
    ("gpt-4o-mini", "2024-07-18", 128_000, 16_384, True),
    ("o1", "2024-12-17", 200_000, 100_000, False),
    ("o3-mini", "2025-01-31", 200_000, 100_000, True),
]


@pytest.mark.parametrize(("model", "min_version", "context", "output", "streams"), SEED_FIGURES)
def test_seed_models_keep_the_seed_figures(
    registry: ModelRegistry, model: str, min_version: str, context: int, output: int, streams: bool
) -> None:
    caps = registry.get_capabilities(model)
    assert caps.min_version == min_version
    assert caps.context_window == context
    assert caps.max_output_tokens == output
    assert caps.supports_streaming is streams
    assert caps.supports_structured_output is True


def test_o3_keeps_the_seed_rule_that_it_does_not_stream(registry: ModelRegistry) -> None:
    caps = registry.get_capabilities("o3")
    assert caps.supports_streaming is False
    note = caps.sources["supports_streaming"]["note"]
    assert "today's o3 does stream" in note


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o1", "o3",
        "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-5.1", "gpt-5.2",
    ],
)  # fmt: skip
def test_current_structured_output_models_are_present(registry: ModelRegistry, model: str) -> None:
    caps = registry.get_capabilities(model)
    assert caps.canonical == model
    assert caps.supports_structured_output
    assert caps.encoding == "o200k_base"
    assert caps.prices is not None


def test_alias_resolves_to_itself_without_version(registry: ModelRegistry) -> None:
    caps = registry.get_capabilities("gpt-4o")
    assert (caps.name, caps.canonical, caps.version) == ("gpt-4o", "gpt-4o", None)


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("gpt-5-nano-2025-08-07", "gpt-5-nano"),
        ("gpt-5.1-2025-11-13", "gpt-5.1"),
    ],
)
def test_dated_names_map_to_the_model_whose_name_is_the_whole_prefix(
    registry: ModelRegistry, name: str, canonical: str
) -> None:
    caps = registry.get_capabilities(name)
    assert caps.canonical == canonical
    assert caps.name == name
    assert caps.version == date.fromisoformat(name[-10:])


def test_newer_dated_version_is_accepted_with_the_base_capabilities(
    registry: ModelRegistry,
) -> None:
    newer = registry.get_capabilities("gpt-4o-2024-11-20")
    base = registry.get_capabilities("gpt-4o")
    assert newer.canonical == "gpt-4o"
    assert newer.version == date(2024, 11, 20)
    assert (newer.context_window, newer.max_output_tokens) == (128_000, 16_384)
    assert newer.parameters == base.parameters
    unlisted = registry.get_capabilities("gpt-4o-2026-01-15")
    assert unlisted.canonical == "gpt-4o"


def test_too_old_version_raises_with_the_seed_message(registry: ModelRegistry) -> None:
    with pytest.raises(VersionTooOldError) as info:
        registry.get_capabilities("gpt-4o-2024-07-01")
    assert str(info.value) == (
        "Model 'gpt-4o-2024-07-01' version 2024-07-01 is too old.\n"
        "Minimum supported version: 2024-08-06\n"
        "Note: Use the alias 'gpt-4o' to always get the latest version"
    )
    assert info.value.model == "gpt-4o-2024-07-01"
    assert isinstance(info.value, ModelVersionError)
    assert isinstance(info.value, ValueError)


def test_too_old_mini_uses_its_own_minimum(registry: ModelRegistry) -> None:
    with pytest.raises(VersionTooOldError, match="Minimum supported version: 2024-07-18"):
        registry.get_capabilities("gpt-4o-mini-2024-07-17")


def test_invalid_month_raises_with_the_seed_message(registry: ModelRegistry) -> None:
    with pytest.raises(InvalidDateError) as info:
        registry.get_capabilities("gpt-4o-2024-13-01")
    assert str(info.value) == (
        "Invalid date format in model version: Month must be between 1 and 12\n"
        "Use format: YYYY-MM-DD (e.g. 2024-08-06)"
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("gpt-4o-2024-02-30", "Day 30 is out of range for month 2 of 2024"),
        ("gpt-4o-2025-02-29", "Day 29 is out of range for month 2 of 2025"),
        ("gpt-4o-2024-04-31", "Day 31 is out of range for month 4 of 2024"),
        ("gpt-4o-2024-08-32", "Day must be between 1 and 31"),
        ("gpt-4o-2024-08-00", "Day must be between 1 and 31"),
        ("gpt-4o-2024-00-10", "Month must be between 1 and 12"),
    ],
)
def test_invalid_day_names_the_reason_and_the_format(
    registry: ModelRegistry, name: str, reason: str
) -> None:
    with pytest.raises(InvalidDateError) as info:
        registry.get_capabilities(name)
    assert reason in str(info.value)
    assert "Use format: YYYY-MM-DD (e.g. 2024-08-06)" in str(info.value)


def test_leap_day_is_a_real_date(registry: ModelRegistry) -> None:
    assert registry.get_capabilities("gpt-4o-2028-02-29").version == date(2028, 2, 29)


def test_single_digit_month_is_a_format_error_with_the_corrected_name(
    registry: ModelRegistry,
) -> None:
    with pytest.raises(InvalidDateError, match=r"e\.g\. gpt-4o-2024-08-06"):
        registry.get_capabilities("gpt-4o-2024-8-06")


def test_unknown_model_lists_dated_models_aliases_and_the_format(
    registry: ModelRegistry,
) -> None:
    with pytest.raises(ModelNotSupportedError) as info:
        registry.get_capabilities("unknown-model")
    msg = str(info.value)
    assert msg.startswith("Model 'unknown-model' is not supported.\nAvailable models:\n")
    assert "- Dated models: gpt-4o-2024-08-06, gpt-4o-2024-11-20, gpt-4o-mini-2024-07-18" in msg
    assert "o1-2024-12-17" in msg
    assert "- Aliases: gpt-4o, gpt-4o-mini" in msg
    assert "Note: For dated models, use format: base-YYYY-MM-DD (e.g. gpt-4o-2024-08-06)" in msg
    assert "OSTRUCT_MODEL_REGISTRY" in msg
    assert info.value.model == "unknown-model"
    assert isinstance(info.value, ValueError)


def test_unknown_base_with_a_date_is_not_supported_not_a_date_error(
    registry: ModelRegistry,
) -> None:
    with pytest.raises(ModelNotSupportedError):
        registry.get_capabilities("gpt-3.5-turbo-2024-13-01")


def test_near_miss_suggests_the_close_name(registry: ModelRegistry) -> None:
    with pytest.raises(ModelNotSupportedError, match=r"Did you mean: .*gpt-4o"):
        registry.get_capabilities("gpt4o")


def test_membership_and_iteration(registry: ModelRegistry) -> None:
    assert "gpt-4o-2024-11-20" in registry
    assert "gpt-4o-2024-07-01" not in registry
    assert "nope" not in registry
    assert 3 not in registry
    assert list(registry)[:2] == ["gpt-4o", "gpt-4o-mini"]


def test_lookup_for_a_custom_server_is_permissive(registry: ModelRegistry) -> None:
    caps = registry.lookup("llama3.2:1b", custom_server=True)
    assert caps.permissive_profile
    assert registry.lookup("gpt-4o").canonical == "gpt-4o"
    with pytest.raises(ModelNotSupportedError):
        registry.lookup("llama3.2:1b")


def test_get_registry_is_a_cached_singleton_that_can_be_reset() -> None:
    first = get_registry()
    assert get_registry() is first
    reset_registry()
    assert get_registry() is not first


# --- the data file ------------------------------------------------------------------------------

FIGURES = [
    "dated_versions",
    "min_version",
    "context_window",
    "max_output_tokens",
    "supports_streaming",
    "supports_structured_output",
    "parameters",
    "encoding",
    "chat_token_parameter",
    "prices",
]


def _packaged() -> dict[str, object]:
    text = resources.files("openai_structured.registry").joinpath("models.json").read_text("utf-8")
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


def test_data_file_explains_itself_and_lists_sources() -> None:
    data = _packaged()
    assert "$comment" in data and "verified" in str(data["$comment"])
    sources = data["sources"]
    assert isinstance(sources, dict) and sources
    for sid, src in sources.items():
        assert src["url"], sid
        assert src["checked"], sid
        assert src["kind"] in ("official", "secondary", "seed"), sid


def test_every_figure_of_every_model_names_a_source_and_its_verification() -> None:
    data = _packaged()
    sources = data["sources"]
    assert isinstance(sources, dict)
    models = data["models"]
    assert isinstance(models, dict)
    for name, model in models.items():
        # Optional fields name their source too when a model gives them.
        optional = [f for f in ("apis", "aliases") if model.get(f)]
        for figure in [*FIGURES, *optional]:
            entry = model["sources"].get(figure)
            assert entry is not None, f"{name}.{figure} has no source"
            assert isinstance(entry["verified"], bool)
            assert entry["ref"], f"{name}.{figure} has an empty ref"
            for ref in entry["ref"]:
                assert ref in sources, f"{name}.{figure} cites unknown source {ref}"
            if not entry["verified"]:
                assert entry.get("note") or all(
                    sources[r]["kind"] == "secondary" for r in entry["ref"]
                ), f"{name}.{figure} is unverified without a note"
            if entry["verified"]:
                assert any(sources[r]["kind"] in ("official", "seed") for r in entry["ref"]), (
                    f"{name}.{figure} is marked verified but cites only third-party sources"
                )


def test_a_broken_packaged_file_would_be_reported(tmp_path: object) -> None:
    # The registry validates what it loads; an unknown field in a model is an error, not ignored.
    import pathlib

    assert isinstance(tmp_path, pathlib.Path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"models": {"gpt-4o": {"context_windw": 1}}}))
    with pytest.raises(OpenAIClientError, match="unknown field"):
        ModelRegistry(bad, use_cache=False)
