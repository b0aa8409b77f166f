"""ServerProfile.capabilities(): which server profiles apply the registry, and to which names."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import pytest

from openai_structured.errors import (
    InvalidDateError,
    ModelNotSupportedError,
    OpenAIClientError,
    TokenLimitError,
    VersionTooOldError,
)
from openai_structured.registry import ENV_VAR, ModelRegistry, reset_registry
from openai_structured.servers import PROFILES, ServerProfile, get_profile, profile_for

COMPATIBLE = PROFILES["compatible"]
PERMISSIVE_PROFILES = ["vllm", "ollama", "llama.cpp"]
STRICT_PROFILES = ["openai", "azure"]


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry(use_env=False, use_cache=False)


# --- which profile does what ------------------------------------------------------------------


def test_each_profile_says_how_it_applies_the_registry() -> None:
    modes = {name: profile.registry for name, profile in PROFILES.items()}
    assert modes == {
        "openai": "required",
        "azure": "required",
        "compatible": "known",
        "vllm": "off",
        "ollama": "off",
        "llama.cpp": "off",
    }


def test_uses_registry_is_true_only_where_every_name_must_be_in_the_registry() -> None:
    assert {name for name, p in PROFILES.items() if p.uses_registry} == {"openai", "azure"}


def test_a_profile_with_an_unknown_registry_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="'required', 'known' or 'off'"):
        ServerProfile("mine", registry="sometimes", strict_schema=True)  # type: ignore[arg-type]


def test_the_loopback_test_server_gets_the_compatible_profile() -> None:
    # The premise of the end-to-end tests: FakeOpenAIServer's client is a "compatible" server.
    from openai_structured.testing import FakeOpenAIServer

    with FakeOpenAIServer() as server:
        client = server.client()
        try:
            assert profile_for(client) is COMPATIBLE
        finally:
            client.close()


# --- compatible: known names get the registry ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "canonical", "version"),
    [
        ("o1", "o1", None),
        ("o1-2024-12-17", "o1", date(2024, 12, 17)),
        ("gpt-4o", "gpt-4o", None),
        ("gpt-4o-2024-11-20", "gpt-4o", date(2024, 11, 20)),
        ("gpt-5.6", "gpt-5.6-sol", None),
        ("gpt-5.4-mini-2026-03-17", "gpt-5.4-mini", date(2026, 3, 17)),
    ],
)
def test_compatible_gives_known_names_the_registry_entry(
    registry: ModelRegistry, name: str, canonical: str, version: date | None
) -> None:
    caps = COMPATIBLE.capabilities(name, registry=registry)
    assert caps.permissive_profile is False
    assert (caps.name, caps.canonical, caps.version) == (name, canonical, version)
    assert caps == registry.get_capabilities(name)


def test_compatible_o1_refuses_temperature_streaming_and_too_many_tokens(
    registry: ModelRegistry,
) -> None:
    caps = COMPATIBLE.capabilities("o1", registry=registry)
    with pytest.raises(OpenAIClientError, match="reasoning model"):
        caps.validate_parameters({"temperature": 0.5})
    with pytest.raises(OpenAIClientError, match="does not support streaming"):
        caps.check_streaming()
    with pytest.raises(TokenLimitError) as info:
        caps.validate_parameters({"max_output_tokens": 100_001})
    assert (info.value.requested_tokens, info.value.model_limit) == (100_001, 100_000)
    assert caps.token_parameter("chat") == "max_completion_tokens"
    assert caps.token_parameter("responses") == "max_output_tokens"
    assert (caps.context_window, caps.max_output_tokens) == (200_000, 100_000)


def test_compatible_known_base_with_a_bad_date_gets_the_registry_verdict(
    registry: ModelRegistry,
) -> None:
    with pytest.raises(VersionTooOldError, match="Minimum supported version: 2024-08-06"):
        COMPATIBLE.capabilities("gpt-4o-2024-07-01", registry=registry)
    with pytest.raises(InvalidDateError, match="Month must be between 1 and 12"):
        COMPATIBLE.capabilities("gpt-4o-2024-13-01", registry=registry)


# --- compatible: unknown names pass unchecked -----------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "llama-3.2-local",
        "unknown-model",
        "unknown-model-2025-01-01",  # dated, but the registry does not know the base
        "gpt-3.5-turbo-2024-13-01",  # an impossible date on an unknown base is not judged
        "openai/gpt-4o",  # a gateway's provider-prefixed name is not a registry name
        "GPT-4O",  # names are case-sensitive, as OpenAI's are
    ],
)
def test_compatible_lets_unknown_names_through_with_the_permissive_profile(
    registry: ModelRegistry, name: str
) -> None:
    caps = COMPATIBLE.capabilities(name, registry=registry)
    assert caps.permissive_profile is True
    assert (caps.name, caps.canonical) == (name, name)
    assert (caps.context_window, caps.max_output_tokens) == (None, None)
    caps.validate_parameters({"temperature": 7.0, "max_tokens": 10_000_000})
    caps.check_streaming()
    assert caps.token_parameter("chat") == "max_tokens"


# --- the other profiles ---------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PERMISSIVE_PROFILES)
@pytest.mark.parametrize("name", ["o1", "gpt-4o", "gpt-4o-2024-07-01", "llama3.2:1b"])
def test_local_server_profiles_check_nothing_even_for_openai_names(
    registry: ModelRegistry, profile: str, name: str
) -> None:
    caps = get_profile(profile).capabilities(name, registry=registry)
    assert caps.permissive_profile is True
    assert caps.canonical == name
    caps.validate_parameters({"temperature": 1.5, "max_tokens": 1_000_000})
    caps.check_streaming()


@pytest.mark.parametrize("profile", STRICT_PROFILES)
def test_openai_and_azure_refuse_names_the_registry_does_not_know(
    registry: ModelRegistry, profile: str
) -> None:
    with pytest.raises(ModelNotSupportedError) as info:
        get_profile(profile).capabilities("llama-3.2-local", registry=registry)
    assert info.value.model == "llama-3.2-local"
    assert "Available models:" in str(info.value)
    caps = get_profile(profile).capabilities("o3-mini-2025-01-31", registry=registry)
    assert (caps.canonical, caps.permissive_profile) == ("o3-mini", False)


# --- which registry -------------------------------------------------------------------------------


def _registry_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.json"
    entry = {"context_window": 32_768, "max_output_tokens": 4_096, "encoding": "o200k_base"}
    path.write_text(json.dumps({"models": {"acme-finetune": entry}}), encoding="utf-8")
    return path


def test_a_model_added_in_a_user_registry_is_known_to_the_compatible_profile(
    tmp_path: Path,
) -> None:
    mine = ModelRegistry(_registry_file(tmp_path), use_env=False, use_cache=False)
    caps = COMPATIBLE.capabilities("acme-finetune", registry=mine)
    assert caps.permissive_profile is False
    with pytest.raises(TokenLimitError):
        caps.validate_parameters({"max_output_tokens": 5_000})
    packaged = ModelRegistry(use_env=False, use_cache=False)
    assert COMPATIBLE.capabilities("acme-finetune", registry=packaged).permissive_profile


def test_capabilities_defaults_to_the_shared_registry_and_its_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert COMPATIBLE.capabilities("acme-finetune").permissive_profile is True
    monkeypatch.setenv(ENV_VAR, str(_registry_file(tmp_path)))
    reset_registry()
    caps = COMPATIBLE.capabilities("acme-finetune")
    assert (caps.canonical, caps.max_output_tokens) == ("acme-finetune", 4_096)
    assert caps.permissive_profile is False


def test_a_profile_copy_with_the_registry_off_is_the_escape_hatch(
    registry: ModelRegistry,
) -> None:
    # A gateway that serves its own model under an OpenAI name: pass this profile as server=.
    unchecked = dataclasses.replace(COMPATIBLE, registry="off")
    caps = unchecked.capabilities("o1", registry=registry)
    assert caps.permissive_profile is True
    assert unchecked.strict_schema is COMPATIBLE.strict_schema


# --- ModelRegistry.knows --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "known"),
    [
        ("gpt-4o", True),
        ("gpt-5.6", True),  # an alias
        ("gpt-4o-2024-08-06", True),
        ("gpt-4o-2031-01-01", True),
        ("gpt-4o-2024-07-01", True),  # known base: too old, but the registry's to judge
        ("gpt-4o-2024-13-01", True),
        ("gpt-4o-mini-2024-07-18", True),
        ("gpt-4", False),
        ("gpt-4o-mini-preview", False),
        ("unknown-model-2025-01-01", False),
        ("", False),
    ],
)
def test_knows_accepts_names_and_dated_names_of_registry_models(
    registry: ModelRegistry, name: str, known: bool
) -> None:
    assert registry.knows(name) is known
