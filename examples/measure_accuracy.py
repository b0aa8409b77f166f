"""Run every local example on the embedded model and report field-level accuracy.

    python examples/measure_accuracy.py [--json] [example ...]   # e.g. local_review

Each example module has ``CASES`` (input text, expected answer) and ``extract()``. A field is
right when it equals the expected value after normalisation: strings compared case- and
whitespace-insensitively, lists as sets of normalised strings (the whole list is one field:
a missing or extra name makes it wrong). Also reports per-call latency. Always runs on the
embedded model (its own server), whatever provider the environment names.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from openai_structured.local import LocalModelServer

EXAMPLES = ("local_person", "local_meeting", "local_review")


def normalise(value: Any) -> Any:
    """The form two answers are compared in."""
    if isinstance(value, str):
        return " ".join(value.lower().split())
    if isinstance(value, list):
        return frozenset(normalise(v) for v in value)
    return value


def score(expected: dict[str, Any], got: dict[str, Any]) -> dict[str, bool]:
    """Field name -> whether ``got`` has the expected value."""
    return {k: normalise(got.get(k)) == normalise(v) for k, v in expected.items()}


def run(server: LocalModelServer, examples: tuple[str, ...] = EXAMPLES) -> dict[str, Any]:
    """Per example: fields right/total, per-call latencies, and every wrong answer."""
    client = server.client()
    report: dict[str, Any] = {}
    for name in examples:
        module = importlib.import_module(name)
        right = total = 0
        latencies: list[float] = []
        misses: list[dict[str, Any]] = []
        for text, expected in module.CASES:
            started = time.perf_counter()
            try:
                got = module.extract(text, client=client, model=server.model_name).model_dump()
            except Exception as exc:  # a failed call scores zero, and is shown
                got = {"error": f"{type(exc).__name__}: {exc}"}
            latencies.append(time.perf_counter() - started)
            fields = score(expected, got)
            right += sum(fields.values())
            total += len(fields)
            if not all(fields.values()):
                misses.append({"text": text, "expected": expected, "got": got})
        report[name] = {
            "fields_right": right,
            "fields_total": total,
            "accuracy": right / total,
            "cases": len(module.CASES),
            "median_latency_s": round(statistics.median(latencies), 2),
            "max_latency_s": round(max(latencies), 2),
            "misses": misses,
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument(
        "examples",
        nargs="*",
        metavar="example",
        help=f"any of {', '.join(EXAMPLES)} (default: all)",
    )
    args = parser.parse_args()
    if unknown := set(args.examples) - set(EXAMPLES):
        parser.error(f"unknown example(s): {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    with LocalModelServer() as server:
        ready = time.perf_counter() - started
        report = run(server, tuple(args.examples) or EXAMPLES)
    if args.json:
        print(json.dumps({"server_start_s": round(ready, 2), "examples": report}, indent=2))
        return
    print(f"server start: {ready:.1f} s")
    for name, r in report.items():
        print(
            f"{name:15} {r['fields_right']:3}/{r['fields_total']:<3} fields right "
            f"({r['accuracy']:.0%}) over {r['cases']} inputs; "
            f"median {r['median_latency_s']:.2f} s, max {r['max_latency_s']:.2f} s per call"
        )
        for miss in r["misses"]:
            print(
                f"    miss: {miss['text'][:60]!r}\n      expected {miss['expected']}\n"
                f"      got      {miss['got']}"
            )


if __name__ == "__main__":
    main()
