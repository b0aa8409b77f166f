"""The scoring rule of benchmarks/local_accuracy.py, and the data set it scores (no model)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "local_accuracy", ROOT / "benchmarks" / "local_accuracy.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


la = _load()


def rights(gold: dict[str, Any], got: dict[str, Any] | None, **kw: Any) -> dict[str, bool]:
    return {f["path"]: f["right"] for f in la.score_task(gold, got, **kw)}


def test_strings_ignore_case_whitespace_and_a_trailing_period() -> None:
    assert la.same("Kestrel  Design\nStudio", " kestrel design studio. ")
    assert not la.same("Kestrel Design Studio", "Kestrel Design")
    assert not la.same("5521", 5521)


def test_numbers_compare_numerically_and_booleans_only_as_booleans() -> None:
    assert la.same(12, 12.0)
    assert la.same(1201.2, 1201.2000000000001)
    assert not la.same(1201.2, 1201.21)
    assert not la.same(True, 1)
    assert not la.same(0, False)
    assert la.same(False, False)


def test_dates_and_times_compare_as_dates_and_times() -> None:
    assert la.same("2024-09-03", "2024-09-03")
    assert not la.same("2024-09-03", "2024-03-09")
    assert not la.same("2024-09-03", "3 September 2024")
    assert la.same("2024-09-03T10:00:00Z", "2024-09-03T10:00:00+00:00")
    assert la.same("06:45", "6:45")
    assert la.same("20:00", "20:00:00")


def test_null_matches_null_or_a_missing_key_but_not_a_value() -> None:
    gold = {"po": None, "name": "A"}
    assert rights(gold, {"name": "a"}) == {"po": True, "name": True}
    assert rights(gold, {"po": None, "name": "a"}) == {"po": True, "name": True}
    assert rights(gold, {"po": "", "name": "a"})["po"] is False


def test_a_scalar_list_is_one_field_compared_as_a_multiset() -> None:
    gold = {"skills": ["SQL", "Python", "Power BI"]}
    assert rights(gold, {"skills": ["python", "power bi", "SQL"]}) == {"skills": True}
    assert rights(gold, {"skills": ["SQL", "Python"]}) == {"skills": False}
    assert rights(gold, {"skills": ["SQL", "Python", "Power BI", "SQL"]}) == {"skills": False}
    assert rights({"x": []}, {"x": []}) == {"x": True}
    assert rights({"x": []}, {"x": None}) == {"x": False}


def test_a_list_of_objects_scores_its_length_and_each_element_by_position() -> None:
    gold = {"items": [{"name": "a", "qty": 1}, {"name": "b", "qty": 2}]}
    got = {"items": [{"name": "A", "qty": 1}]}
    assert rights(gold, got) == {
        "items[#]": False,
        "items[0].name": True,
        "items[0].qty": True,
        "items[1].name": False,
        "items[1].qty": False,
    }
    swapped = {"items": [{"name": "b", "qty": 2}, {"name": "a", "qty": 1}]}
    assert sum(rights(gold, swapped).values()) == 1  # the length only


def test_nested_objects_and_accepted_alternatives() -> None:
    gold = {"vendor": {"name": "Brightline Ltd", "vat": None}, "doctor": "Dr. L. Haddad"}
    got = {"vendor": {"name": "brightline ltd"}, "doctor": "L. Haddad"}
    assert rights(gold, got) == {"vendor.name": True, "vendor.vat": True, "doctor": False}
    accept = {"doctor": ["L. Haddad"]}
    assert rights(gold, got, accept=accept)["doctor"] is True


def test_a_failed_answer_scores_every_field_wrong_even_nulls() -> None:
    assert rights({"a": None, "b": "x"}, None) == {"a": False, "b": False}


def test_summary_figures() -> None:
    results = [
        {"valid": True, "fields_right": 3, "fields_total": 4, "seconds": 1.0, "attempts": 1},
        {"valid": False, "fields_right": 0, "fields_total": 6, "seconds": 9.0, "attempts": 1},
        {"valid": True, "fields_right": 5, "fields_total": 5, "seconds": 2.0, "attempts": 2},
    ]
    summary = la.summarise(results)
    assert summary["valid"] == 2 and summary["valid_rate"] == pytest.approx(0.6667)
    assert (summary["fields_right"], summary["fields_total"]) == (8, 15)
    assert summary["median_s"] == 2.0 and summary["max_s"] == 9.0


def test_the_data_set_follows_its_own_rules() -> None:
    tasks = la.load_tasks()
    assert len(tasks) >= 24
    halves = [t["half"] for t in tasks]
    assert halves.count("tune") == halves.count("heldout")
    for task in tasks:
        assert task["half"] == la.half_of(task["id"])
        assert 40 <= len(task["text"].split()) <= 200, task["id"]
        jsonschema.validate(task["gold"], task["schema"])
        # The gold answer scores itself perfectly, and every accepted path exists.
        fields = la.score_task(task["gold"], task["gold"], task.get("accept"))
        assert all(f["right"] for f in fields), task["id"]
        paths = {f["path"] for f in fields}
        assert set(task.get("accept", {})) <= paths, task["id"]
