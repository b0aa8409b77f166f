"""Run every local example on the embedded model and report field-level accuracy.

    python examples/measure_accuracy.py [--json] [--retries N ...] [example ...]
    python examples/measure_accuracy.py --retries 0 1 2     # validation re-ask, compared

Each example module has ``CASES`` (input text, expected answer) and ``extract()``. A field is
right when it equals the expected value after normalisation: strings compared case- and
whitespace-insensitively, lists as sets of normalised strings (the whole list is one field:
a missing or extra name makes it wrong). Also reports per-call latency. Always runs on the
embedded model (its own server), whatever provider the environment names.

``--retries`` asks every input once per value, passed to ``extract()`` as
``max_validation_retries`` (default: 0 alone, the original report); the values take turns
input by input (see :func:`run_settings`). Per example and value it
reports the valid answers (calls whose answer passed the example's validators, possibly after
re-asks; a call that fails scores zero fields), field accuracy, mean attempts per input, and
mean and median seconds per input (re-asks included). With ``--json`` and one value the report
is ``{"server_start_s", "examples": {name: {...}}}``; with several, ``"runs"`` maps each value
to such an ``examples`` report.
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

from openai_structured import InvalidResponseFormatError, ValidationError
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


def attempts_of(exc: BaseException) -> int:
    """Requests a failed call made. A validation failure that ran out of re-asks lists every
    attempt (itself included) in ``.attempts``; any other error lists the earlier ones."""
    earlier = len(getattr(exc, "attempts", ()) or ())
    if isinstance(exc, (ValidationError, InvalidResponseFormatError)):
        return max(1, earlier)
    return earlier + 1


def run(
    server: LocalModelServer, examples: tuple[str, ...] = EXAMPLES, retries: int = 0
) -> dict[str, Any]:
    """Per example: valid answers, fields right/total, attempts, per-call latencies, and every
    wrong answer."""
    return run_settings(server, examples, (retries,))[retries]


def run_settings(
    server: LocalModelServer, examples: tuple[str, ...], settings: tuple[int, ...]
) -> dict[int, dict[str, Any]]:
    """:func:`run` for each ``max_validation_retries`` value in ``settings``, interleaved:
    each input is asked with every value in turn, starting with a different value each input,
    so neither a change in the machine's load nor the server's prompt cache (it reuses the
    longest prefix shared with the previous request) favours one value. With several values,
    each example is first asked once untimed, so no value pays for the cold cache."""
    client = server.client()
    reports: dict[int, dict[str, Any]] = {n: {} for n in settings}
    for name in examples:
        module = importlib.import_module(name)
        if len(settings) > 1:
            _one(module, *module.CASES[0], client, server, 0)  # warm-up, not counted
        calls: dict[int, list[dict[str, Any]]] = {n: [] for n in settings}
        for i, (text, expected) in enumerate(module.CASES):
            turn = i % len(settings)
            for retries in settings[turn:] + settings[:turn]:
                calls[retries].append(_one(module, text, expected, client, server, retries))
        for retries in settings:
            reports[retries][name] = _summary(calls[retries], retries)
    return reports


def _one(
    module: Any,
    text: str,
    expected: dict[str, Any],
    client: Any,
    server: LocalModelServer,
    retries: int,
) -> dict[str, Any]:
    """One input: its fields scored, whether the answer was valid, attempts and seconds."""
    started = time.perf_counter()
    try:
        result = module.extract(text, client=client, model=server.model_name, retries=retries)
        got, valid, attempts = result.value.model_dump(), True, result.attempts
    except Exception as exc:  # a failed call scores zero, and is shown
        got, valid = {"error": f"{type(exc).__name__}: {exc}"}, False
        attempts = attempts_of(exc)
    latency = time.perf_counter() - started
    return {
        "text": text,
        "expected": expected,
        "got": got,
        "fields": score(expected, got),
        "valid": valid,
        "attempts": attempts,
        "latency_s": latency,
    }


def _summary(calls: list[dict[str, Any]], retries: int) -> dict[str, Any]:
    right = sum(sum(c["fields"].values()) for c in calls)
    total = sum(len(c["fields"]) for c in calls)
    valid = sum(c["valid"] for c in calls)
    latencies = [c["latency_s"] for c in calls]
    return {
        "retries": retries,
        "valid_answers": valid,
        "valid_rate": valid / len(calls),
        "fields_right": right,
        "fields_total": total,
        "accuracy": right / total,
        "cases": len(calls),
        "mean_attempts": round(statistics.mean(c["attempts"] for c in calls), 2),
        "mean_latency_s": round(statistics.mean(latencies), 2),
        "median_latency_s": round(statistics.median(latencies), 2),
        "max_latency_s": round(max(latencies), 2),
        "misses": [
            {k: c[k] for k in ("text", "expected", "got", "attempts")}
            for c in calls
            if not all(c["fields"].values())
        ],
    }


def _print_misses(r: dict[str, Any]) -> None:
    for miss in r["misses"]:
        print(
            f"    miss: {miss['text'][:60]!r}\n      expected {miss['expected']}\n"
            f"      got      {miss['got']}"
        )


def print_default(report: dict[str, Any]) -> None:
    """The original report: one line per example, then its misses."""
    for name, r in report.items():
        print(
            f"{name:15} {r['fields_right']:3}/{r['fields_total']:<3} fields right "
            f"({r['accuracy']:.0%}) over {r['cases']} inputs; "
            f"median {r['median_latency_s']:.2f} s, max {r['max_latency_s']:.2f} s per call"
        )
        _print_misses(r)


def print_table(runs: dict[int, dict[str, Any]]) -> None:
    """Example x retries: valid answers, fields right, mean attempts, seconds per input."""
    print(
        f"{'example':15} {'retries':>7}  {'valid':>11}  {'fields right':>12}  "
        f"{'attempts':>8}  {'s/input mean':>12}  {'median':>6}"
    )
    for name in next(iter(runs.values())):
        for retries, report in runs.items():
            r = report[name]
            valid = f"{r['valid_answers']}/{r['cases']} ({r['valid_rate']:.0%})"
            fields = f"{r['fields_right']}/{r['fields_total']} ({r['accuracy']:.0%})"
            print(
                f"{name:15} {retries:>7}  {valid:>11}  {fields:>12}  "
                f"{r['mean_attempts']:>8.2f}  {r['mean_latency_s']:>12.2f}  "
                f"{r['median_latency_s']:>6.2f}"
            )
    for retries, report in runs.items():
        for name, r in report.items():
            if r["misses"]:
                print(f"{name}, retries={retries}:")
                _print_misses(r)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument(
        "--retries",
        nargs="+",
        type=int,
        default=[0],
        metavar="N",
        help="max_validation_retries values to compare, e.g. 0 1 2 (default: 0)",
    )
    parser.add_argument(
        "examples",
        nargs="*",
        metavar="example",
        help=f"any of {', '.join(EXAMPLES)} (default: all)",
    )
    args = parser.parse_args()
    if unknown := set(args.examples) - set(EXAMPLES):
        parser.error(f"unknown example(s): {', '.join(sorted(unknown))}")
    if any(n < 0 for n in args.retries):
        parser.error("--retries values must be 0 or more")
    retries = list(dict.fromkeys(args.retries))
    started = time.perf_counter()
    with LocalModelServer() as server:
        ready = time.perf_counter() - started
        runs = run_settings(server, tuple(args.examples) or EXAMPLES, tuple(retries))
    if args.json:
        out: dict[str, Any] = {"server_start_s": round(ready, 2)}
        if len(runs) == 1:
            out["examples"] = next(iter(runs.values()))
        else:
            out["runs"] = {str(n): {"examples": report} for n, report in runs.items()}
        print(json.dumps(out, indent=2))
        return
    print(f"server start: {ready:.1f} s")
    if retries == [0]:
        print_default(runs[0])
    else:
        print_table(runs)


if __name__ == "__main__":
    main()
