"""Batch API prices: the data, parsing and validation, overrides, cost estimates, display."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from openai_structured.cli import cli
from openai_structured.cli.models import model_record
from openai_structured.errors import OpenAIClientError
from openai_structured.registry import (
    ENV_VAR,
    ModelRegistry,
    Prices,
    get_registry,
    registry_cache_path,
    reset_registry,
)
from openai_structured.tokens import Cost, estimate_cost

#: The source that states the Batch API's 50% discount (OpenAI's API reference, via its spec).
RULE_SOURCE = "openai-batch-discount"

#: Models with standard prices that are known not to be offered on the Batch API: their data
#: says ``"batch": null``. None of the packaged (text) models is; realtime and audio models,
#: which the Batch API does not serve, are not in the registry.
NOT_ON_BATCH_API: frozenset[str] = frozenset()


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry(use_env=False, use_cache=False)


def _packaged() -> dict[str, Any]:
    text = resources.files("openai_structured.registry").joinpath("models.json").read_text("utf-8")
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


PACKAGED = _packaged()
PRICED = [name for name, model in PACKAGED["models"].items() if model.get("prices") is not None]
WITH_BATCH = [n for n in PRICED if PACKAGED["models"][n]["prices"].get("batch") is not None]
#: Models whose batch prices are derived from the official 50% rule (their source cites it).
BY_RULE = [
    n for n in WITH_BATCH if RULE_SOURCE in PACKAGED["models"][n]["sources"]["prices.batch"]["ref"]
]


def write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def user_registry(tmp_path: Path, models: dict[str, Any]) -> ModelRegistry:
    return ModelRegistry(write(tmp_path / "r.json", {"models": models}), use_cache=False)


# --- the packaged data ---------------------------------------------------------------------------


def test_every_priced_model_has_batch_prices_or_is_listed_as_not_on_the_batch_api(
    registry: ModelRegistry,
) -> None:
    assert PRICED, "the packaged file has priced models"
    for name in PRICED:
        raw = PACKAGED["models"][name]["prices"]
        # Stated either way in the data: an object, or null for "not on the Batch API".
        assert "batch" in raw, f"{name}: prices has no 'batch' entry (give one, or null)"
        batch = registry.get_capabilities(name).prices.batch  # type: ignore[union-attr]
        if name in NOT_ON_BATCH_API:
            assert raw["batch"] is None and batch is None, name
        else:
            assert batch is not None, f"{name} has standard prices but no batch prices"
    assert {n for n in PRICED if PACKAGED["models"][n]["prices"]["batch"] is None} == set(
        NOT_ON_BATCH_API
    )


def test_every_batch_figure_names_its_sources_and_verification() -> None:
    sources = PACKAGED["sources"]
    for name in PRICED:
        entry = PACKAGED["models"][name]["sources"].get("prices.batch")
        assert entry is not None, f"{name}.prices.batch has no source"
        assert entry["ref"], name
        assert isinstance(entry["verified"], bool), name
        for ref in entry["ref"]:
            assert ref in sources, f"{name}.prices.batch cites unknown source {ref}"
        kinds = {sources[r]["kind"] for r in entry["ref"]}
        if entry["verified"]:
            assert kinds & {"official", "seed"}, f"{name}: verified without an official source"
        else:
            assert entry.get("note"), f"{name}.prices.batch is unverified without a note"


@pytest.mark.parametrize("model", BY_RULE)
def test_batch_prices_derived_from_the_50_percent_rule_say_so(model: str) -> None:
    entry = PACKAGED["models"][model]["sources"]["prices.batch"]
    prices = PACKAGED["models"][model]["prices"]
    # A derived figure is not a figure an official page states: unverified, and the note says.
    assert entry["verified"] is False
    assert "50%" in entry["note"] and "derived" in entry["note"]
    assert prices["batch"]["input"] == prices["input"] / 2
    assert prices["batch"]["output"] == prices["output"] / 2
    if prices["batch"].get("cached_input") is None:
        assert "batch input price" in entry["note"]


def test_the_sources_of_the_batch_discount_are_listed() -> None:
    sources = PACKAGED["sources"]
    rule = sources[RULE_SOURCE]
    assert rule["kind"] == "official"
    assert "50% discount" in rule["title"]
    assert rule["url"].startswith("https://github.com/openai/")
    cited = {r for n in PRICED for r in PACKAGED["models"][n]["sources"]["prices.batch"]["ref"]}
    for sid in cited:
        assert sources[sid]["kind"] in ("official", "secondary"), sid
        assert sources[sid]["url"].startswith("https://"), sid
        assert sources[sid]["checked"], sid
    assert all(sources[s]["checked"] == "2026-12-01" for s in cited - {"tokenmix-pricing"})


def test_the_batch_rule_covers_every_model_with_batch_prices() -> None:
    assert BY_RULE == WITH_BATCH
    assert len(WITH_BATCH) == len(PRICED) - len(NOT_ON_BATCH_API)


def test_packaged_batch_prices_parse_into_a_batch_tier(registry: ModelRegistry) -> None:
    prices = registry.get_capabilities("gpt-4o").prices
    assert prices is not None
    assert prices.batch == Prices(input=1.25, output=5.0)
    assert prices.batch.batch is None
    assert prices.tier("standard") is prices
    assert prices.tier("batch") is prices.batch
    # Dated names share the base model's batch prices.
    dated = registry.get_capabilities("gpt-4o-2024-11-20").prices
    assert dated is not None and dated.batch == prices.batch


# --- the Prices value ----------------------------------------------------------------------------


def test_batch_prices_cannot_have_batch_prices_of_their_own() -> None:
    inner = Prices(input=1.0, output=2.0, batch=Prices(input=0.5, output=1.0))
    with pytest.raises(ValueError, match="cannot have batch prices of their own"):
        Prices(input=2.0, output=4.0, batch=inner)


def test_an_unknown_price_tier_is_refused() -> None:
    with pytest.raises(ValueError, match="Unknown price tier 'flex'"):
        Prices(input=1.0, output=2.0).tier("flex")  # type: ignore[arg-type]


# --- parsing and validation ----------------------------------------------------------------------


def test_a_user_file_gives_batch_prices_with_a_cached_price(tmp_path: Path) -> None:
    reg = user_registry(
        tmp_path,
        {
            "mine": {
                "prices": {
                    "input": 2,
                    "output": 8,
                    "batch": {"input": 1, "output": 4, "cached_input": 0.25},
                }
            },
            "no-batch": {"prices": {"input": 2, "output": 8}},
            "null-batch": {"prices": {"input": 2, "output": 8, "batch": None}},
        },
    )
    prices = reg.get_capabilities("mine").prices
    assert prices == Prices(
        input=2.0, output=8.0, batch=Prices(input=1.0, output=4.0, cached_input=0.25)
    )
    for name in ("no-batch", "null-batch"):
        other = reg.get_capabilities(name).prices
        assert other is not None and other.batch is None, name


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ("cheap", "prices.batch: expected an object"),
        (0.5, "prices.batch: expected an object"),
        ([1, 2], "prices.batch: expected an object"),
        ({"input": 1}, "prices.batch: output price required"),
        ({"output": 1}, "prices.batch: input price required"),
        ({}, "prices.batch: input and output price required"),
        ({"input": None, "output": 1}, "prices.batch: input price required"),
        ({"input": "1", "output": 2}, "prices.batch.input: expected a number, got '1'"),
        ({"input": 1, "output": True}, "prices.batch.output: expected a number, got True"),
        ({"input": 1, "output": 2, "cached_input": "x"}, "prices.batch.cached_input: expected"),
        ({"input": 1, "output": 2, "cached": 0.1}, "unknown field(s) cached. Known fields"),
        (
            {"input": 1, "output": 2, "batch": {"input": 0.5, "output": 1}},
            "batch prices cannot have batch prices of their own",
        ),
    ],
)
def test_bad_batch_prices_are_reported_with_the_model_and_field(
    tmp_path: Path, batch: Any, message: str
) -> None:
    with pytest.raises(OpenAIClientError) as info:
        user_registry(tmp_path, {"x": {"prices": {"input": 2, "output": 8, "batch": batch}}})
    text = str(info.value)
    assert "Registry model 'x'.prices.batch" in text
    assert message in text


def test_an_error_says_how_to_give_no_batch_prices(tmp_path: Path) -> None:
    with pytest.raises(OpenAIClientError, match="leave 'batch' out or set it to null"):
        user_registry(tmp_path, {"x": {"prices": {"input": 2, "output": 8, "batch": {}}}})


# --- overrides -----------------------------------------------------------------------------------


def test_a_user_file_changes_a_packaged_models_batch_prices(tmp_path: Path) -> None:
    reg = user_registry(
        tmp_path,
        {
            "gpt-4o": {
                "prices": {
                    "input": 2.5,
                    "cached_input": 1.25,
                    "output": 10.0,
                    "batch": {"input": 1.0, "output": 4.0, "cached_input": 0.5},
                }
            }
        },
    )
    caps = reg.get_capabilities("gpt-4o")
    assert caps.prices is not None
    assert caps.prices.batch == Prices(input=1.0, output=4.0, cached_input=0.5)
    assert caps.context_window == 128_000  # the rest of the packaged entry is kept
    cost = estimate_cost(
        "gpt-4o", 1_000_000, 1_000_000, cached_input_tokens=500_000, registry=reg, batch=True
    )
    assert cost is not None
    assert (cost.input_cost, cost.cached_input_cost, cost.output_cost) == (0.5, 0.25, 4.0)


def test_prices_are_replaced_as_a_whole_so_an_override_without_batch_has_none(
    tmp_path: Path,
) -> None:
    # New standard prices never keep stale batch prices from the packaged data.
    reg = user_registry(tmp_path, {"gpt-4o": {"prices": {"input": 9.0, "output": 9.0}}})
    prices = reg.get_capabilities("gpt-4o").prices
    assert prices is not None and prices.input == 9.0 and prices.batch is None
    assert estimate_cost("gpt-4o", 10, 10, registry=reg, batch=True) is None
    assert estimate_cost("gpt-4o", 10, 10, registry=reg) is not None


def test_a_user_file_can_mark_a_model_as_not_on_the_batch_api(tmp_path: Path) -> None:
    prices = {"input": 2.0, "cached_input": 0.5, "output": 8.0, "batch": None}
    reg = user_registry(tmp_path, {"o3": {"prices": prices}})
    assert estimate_cost("o3", 1000, 1000, registry=reg, batch=True) is None


def test_batch_prices_from_the_environment_file_and_the_cache_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = registry_cache_path()
    cached.parent.mkdir(parents=True)
    prices = {"input": 4, "output": 8, "batch": {"input": 2, "output": 4}}
    write(cached, {"models": {"cached-model": {"prices": prices}}})
    batch = {"input": 0.5, "output": 1}
    env = {"models": {"env-model": {"prices": {"input": 1, "output": 2, "batch": batch}}}}
    monkeypatch.setenv(ENV_VAR, str(write(tmp_path / "env.json", env)))
    reset_registry()
    reg = get_registry()
    for name, expected in (("cached-model", Prices(2.0, 4.0)), ("env-model", Prices(0.5, 1.0))):
        prices = reg.get_capabilities(name).prices
        assert prices is not None and prices.batch == expected, name
    cost = estimate_cost("env-model", 1_000_000, 1_000_000, batch=True)
    assert cost is not None and cost.total == 1.5


# --- estimate_cost -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", BY_RULE)
def test_batch_cost_is_half_the_standard_cost_for_models_under_the_50_percent_rule(
    model: str,
) -> None:
    standard = estimate_cost(model, 1_234_567, 765_432)
    batch = estimate_cost(model, 1_234_567, 765_432, batch=True)
    assert standard is not None and batch is not None
    assert (standard.tier, batch.tier) == ("standard", "batch")
    assert batch.input_cost == pytest.approx(standard.input_cost / 2)
    assert batch.output_cost == pytest.approx(standard.output_cost / 2)
    assert batch.total == pytest.approx(standard.total / 2)
    assert (batch.model, batch.input_tokens, batch.output_tokens) == (model, 1_234_567, 765_432)


@pytest.mark.parametrize("model", WITH_BATCH)
def test_cached_tokens_at_batch_prices_use_the_batch_cached_or_input_price(
    registry: ModelRegistry, model: str
) -> None:
    prices = registry.get_capabilities(model).prices
    assert prices is not None and prices.batch is not None
    cost = estimate_cost(model, 1_000_000, 0, cached_input_tokens=400_000, batch=True)
    assert cost is not None
    per_token = prices.batch.cached_input
    if per_token is None:  # no batch cached price in any source: the batch input price
        per_token = prices.batch.input
    assert cost.cached_input_cost == pytest.approx(0.4 * per_token)
    assert cost.input_cost == pytest.approx(0.6 * prices.batch.input)
    # Never more than the same request at standard prices.
    standard = estimate_cost(model, 1_000_000, 0, cached_input_tokens=400_000)
    assert standard is not None and cost.total <= standard.total


def test_the_batch_estimate_of_gpt_4o() -> None:
    cost = estimate_cost("gpt-4o", 1_000_000, 1_000_000, batch=True)
    assert cost == Cost(
        model="gpt-4o",
        input_tokens=1_000_000,
        cached_input_tokens=0,
        output_tokens=1_000_000,
        input_cost=1.25,
        cached_input_cost=0.0,
        output_cost=5.0,
        tier="batch",
    )
    assert cost.total == 6.25


def test_a_model_without_batch_prices_has_no_batch_estimate(tmp_path: Path) -> None:
    reg = user_registry(
        tmp_path,
        {"standard-only": {"prices": {"input": 2, "output": 4}}, "unpriced": {}},
    )
    assert estimate_cost("standard-only", 10, 10, registry=reg, batch=True) is None
    standard = estimate_cost("standard-only", 1_000_000, 0, registry=reg)
    assert standard is not None and standard.total == 2.0 and standard.tier == "standard"
    assert estimate_cost("unpriced", 10, 10, registry=reg, batch=True) is None


@pytest.mark.parametrize("model", ["gpt-4o", "o3-pro", "gpt-6-luna", "gpt-5.6-sol"])
def test_batch_false_is_the_standard_estimate_unchanged(
    registry: ModelRegistry, model: str
) -> None:
    prices = registry.get_capabilities(model).prices
    assert prices is not None
    default = estimate_cost(model, 900_000, 300_000, cached_input_tokens=100_000)
    explicit = estimate_cost(model, 900_000, 300_000, cached_input_tokens=100_000, batch=False)
    assert default == explicit and default is not None
    assert default.tier == "standard"
    cached = prices.cached_input if prices.cached_input is not None else prices.input
    assert default.input_cost == pytest.approx(0.8 * prices.input)
    assert default.cached_input_cost == pytest.approx(0.1 * cached)
    assert default.output_cost == pytest.approx(0.3 * prices.output)


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_batch_must_be_a_bool(value: Any) -> None:
    with pytest.raises(OpenAIClientError, match="batch must be True or False"):
        estimate_cost("gpt-4o", 10, 10, batch=value)


# --- ostruct models ------------------------------------------------------------------------------


def test_ostruct_models_json_carries_the_batch_prices(registry: ModelRegistry) -> None:
    record = model_record(registry.get_capabilities("gpt-4o"))
    assert record["prices_usd_per_1m"]["batch"] == {
        "input": 1.25,
        "cached_input": None,
        "output": 5.0,
    }
    assert record["prices_usd_per_1m"]["input"] == 2.5


def test_ostruct_models_json_says_null_for_a_model_without_batch_prices(tmp_path: Path) -> None:
    reg = user_registry(tmp_path, {"standard-only": {"prices": {"input": 2, "output": 4}}})
    record = model_record(reg.get_capabilities("standard-only"))
    assert record["prices_usd_per_1m"]["batch"] is None


def test_ostruct_models_table_shows_the_batch_column() -> None:
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    assert "batch in / out" in result.output
    assert "$1.25 / $5" in result.output  # gpt-4o's batch input / output
    out = CliRunner().invoke(cli, ["models", "--json"])
    records = {r["name"]: r for r in json.loads(out.output)}
    assert records["o3-pro"]["prices_usd_per_1m"]["batch"]["output"] == 40.0
