"""Field accuracy of the embedded model on extraction tasks it was not tuned on.

    python benchmarks/local_accuracy.py                      # both halves, a table
    python benchmarks/local_accuracy.py --half heldout --json
    python benchmarks/local_accuracy.py --half tune --retries 1 --tasks t01,t03

The tasks are ``tests/data/extraction/*.json`` (see the README there): a short text, a JSON
Schema and the gold answer each, split into a **tune** half (odd ids) and a **held-out** half
(even ids) by a rule fixed before any tuning. Prompt work may look at the tune half only; the
held-out half is the figure to report.

Every task is one :func:`~openai_structured.openai_structured_call_result` on the embedded model
(its own :class:`~openai_structured.local.LocalModelServer`, whatever provider the environment
names) with the task's schema, the task's text as the user prompt and the same generic system
prompt (:data:`SYSTEM_PROMPT`) for all tasks: what a new user would write, nothing per task.

**Field accuracy** (:func:`score_task`): the gold answer's leaves, each compared with the value
at the same place in the answer after light normalisation (:func:`same`):

* strings: case-insensitive, runs of whitespace as one space, surrounding whitespace and a
  trailing ``.`` ignored; ISO dates (``YYYY-MM-DD``) and date-times compared as dates, times
  ``H:MM[:00]`` as ``HH:MM``;
* numbers: numeric equality (``12 == 12.0``, relative tolerance 1e-9); booleans only equal
  booleans;
* ``null`` matches ``null`` or a missing key;
* a list of scalars is **one** field, right when the two lists are equal as multisets of
  normalised items (order ignored, duplicates count);
* a list of objects is compared element-wise in order: one field for its length, plus the
  leaves of each gold element against the answer's element at the same index (missing
  elements score their leaves wrong);
* a task's ``accept`` map may list other right values for a leaf (``{"vendor.name": [...]}``),
  only where the text is genuinely ambiguous (a title before a name, an abbreviation);
* keys the gold answer does not have are ignored; an answer that failed (invalid, cut off,
  any error) scores every one of its task's fields wrong.

Accuracy is fields right / fields in the gold answers of the half. **Valid rate**: answers
that passed the library's validation / tasks. **Seconds**: wall time of each call (re-asks
included), median and max per half; one untimed warm-up call comes first (the server's first
answer pays one-off costs).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import json
import math
import os
import re
import statistics
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TASK_DIR = ROOT / "tests" / "data" / "extraction"
LOCAL_SOURCES = ROOT / "src" / "openai_structured" / "local"

#: The one system prompt, the same for every task.
SYSTEM_PROMPT = "Extract the requested information from the text."

HALVES = ("tune", "heldout")

# --- tasks -------------------------------------------------------------------------------


def half_of(task_id: str) -> str:
    """The split rule, fixed before any tuning: odd ids tune, even ids are held out."""
    return "tune" if int(task_id.lstrip("t")) % 2 else "heldout"


def load_tasks(directory: Path = TASK_DIR) -> list[dict[str, Any]]:
    """Every task file, by id; each one's recorded half must follow :func:`half_of`."""
    tasks = [json.loads(p.read_text("utf-8")) for p in directory.glob("t*.json")]
    tasks.sort(key=lambda task: int(task["id"].lstrip("t")))  # t99 before t100
    for task in tasks:
        if task["half"] != half_of(task["id"]):
            raise ValueError(f"{task['id']}: half {task['half']!r} breaks the split rule")
    return tasks


# --- scoring -----------------------------------------------------------------------------

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(:00)?")


def normalise(value: Any) -> Any:
    """The form a scalar is compared in (see the module docstring)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = " ".join(value.split())
        if _DATE.fullmatch(text):
            try:
                return date.fromisoformat(text)
            except ValueError:
                pass
        if _DATETIME.fullmatch(text):
            try:
                return datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                pass
        clock = _TIME.fullmatch(text)
        if clock:
            return f"{int(clock.group(1)):02d}:{clock.group(2)}"
        return text.rstrip(".").strip().casefold()
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    return value


def same(expected: Any, got: Any) -> bool:
    """Whether two scalars, or two lists of scalars (as multisets), are the same answer."""
    if isinstance(expected, list):
        if not isinstance(got, list):
            return False
        want = [_key(normalise(v)) for v in expected]
        have = [_key(normalise(v)) for v in got]
        return collections.Counter(want) == collections.Counter(have)
    a, b = normalise(expected), normalise(got)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b) and type(a) is type(b)


def _key(value: Any) -> Any:
    # Hashable and type-aware, so 1.0 (a number) and "1" (a string) never count as equal.
    return (type(value).__name__, value if not isinstance(value, (list, dict)) else repr(value))


def _leaves(gold: Any, got: Any, path: str) -> Iterable[tuple[str, Any, Any]]:
    """(path, gold leaf, answer's value there) for every scored field of ``gold``."""
    if isinstance(gold, Mapping):
        have = got if isinstance(got, Mapping) else {}
        for key, value in gold.items():
            yield from _leaves(value, have.get(key), f"{path}.{key}" if path else key)
    elif isinstance(gold, list) and gold and all(isinstance(v, Mapping) for v in gold):
        items = got if isinstance(got, list) else []
        yield f"{path}[#]", len(gold), len(items) if isinstance(got, list) else None
        for i, value in enumerate(gold):
            yield from _leaves(value, items[i] if i < len(items) else None, f"{path}[{i}]")
    else:
        yield path, gold, got


def score_task(
    gold: Mapping[str, Any],
    got: Mapping[str, Any] | None,
    accept: Mapping[str, Sequence[Any]] | None = None,
) -> list[dict[str, Any]]:
    """One entry per scored field: ``path``, ``expected``, ``got``, ``right``.

    ``got`` is None for a failed answer: every field is wrong.
    """
    accept = accept or {}
    fields = []
    for path, expected, value in _leaves(gold, got if got is not None else {}, ""):
        right = got is not None and (
            same(expected, value) or any(same(alt, value) for alt in accept.get(path, ()))
        )
        fields.append({"path": path, "expected": expected, "got": value, "right": right})
    return fields


def summarise(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Accuracy, valid rate and latency over some task results (see :func:`run_task`)."""
    if not results:
        return {"tasks": 0}
    right = sum(r["fields_right"] for r in results)
    total = sum(r["fields_total"] for r in results)
    valid = sum(bool(r["valid"]) for r in results)
    seconds = [r["seconds"] for r in results]
    return {
        "tasks": len(results),
        "valid": valid,
        "valid_rate": round(valid / len(results), 4),
        "fields_right": right,
        "fields_total": total,
        "accuracy": round(right / total, 4) if total else 0.0,
        "median_s": round(statistics.median(seconds), 2),
        "max_s": round(max(seconds), 2),
        "mean_attempts": round(statistics.mean(r["attempts"] for r in results), 2),
    }


# --- running -----------------------------------------------------------------------------


def run_task(
    task: Mapping[str, Any],
    client: Any,
    model: str,
    *,
    retries: int = 0,
    temperature: float | None = 0.0,
    max_output_tokens: int | None = None,
) -> dict[str, Any]:
    """Ask the model one task and score its answer."""
    from openai_structured import openai_structured_call_result

    options: dict[str, Any] = {"max_validation_retries": retries}
    if temperature is not None:
        options["temperature"] = temperature
    if max_output_tokens is not None:
        options["max_output_tokens"] = max_output_tokens
    started = time.perf_counter()
    got: dict[str, Any] | None
    tokens: dict[str, int] | None = None  # what the server counted (of a valid answer)
    try:
        result = openai_structured_call_result(
            client=client,
            model=model,
            schema=task["schema"],
            system_prompt=SYSTEM_PROMPT,
            user_prompt=task["text"],
            **options,
        )
        got, error, attempts = result.value, None, result.attempts
        tokens = {
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
        }
    except Exception as exc:  # a failed call scores zero, and is shown
        got, error = None, f"{type(exc).__name__}: {str(exc)[:300]}"
        attempts = _attempts_of(exc)
        partial = getattr(exc, "content", None)
    else:
        partial = None
    seconds = time.perf_counter() - started
    fields = score_task(task["gold"], got, task.get("accept"))
    return {
        "id": task["id"],
        "domain": task["domain"],
        "half": task["half"],
        "valid": got is not None,
        "error": error,
        "fields_right": sum(f["right"] for f in fields),
        "fields_total": len(fields),
        "seconds": round(seconds, 2),
        "attempts": attempts,
        "tokens": tokens,
        "wrong": [f for f in fields if not f["right"]],
        "answer": got,
        # What a cut-off or unparsable answer said (its start and end), to see what failed.
        "partial": _ends(partial) if isinstance(partial, str) else None,
    }


def _ends(text: str, head: int = 2000, tail: int = 200) -> str:
    return text if len(text) <= head + tail else f"{text[:head]} ... {text[-tail:]}"


def _attempts_of(exc: BaseException) -> int:
    from openai_structured import InvalidResponseFormatError, ValidationError

    earlier = len(getattr(exc, "attempts", ()) or ())
    if isinstance(exc, (ValidationError, InvalidResponseFormatError)):
        return max(1, earlier)
    return earlier + 1


def warm_up(client: Any, model: str) -> None:
    """One small untimed call: the first answer of a fresh server pays one-off costs."""
    from openai_structured import openai_structured_call

    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    openai_structured_call(
        client=client,
        model=model,
        schema=schema,
        system_prompt=SYSTEM_PROMPT,
        user_prompt="We met in Oslo.",
        temperature=0,
        max_output_tokens=20,
    )


def run(
    tasks: Sequence[Mapping[str, Any]],
    client: Any,
    model: str,
    *,
    progress: Any = None,
    **options: Any,
) -> dict[str, Any]:
    """Every task in turn; the report per half (``tune``, ``heldout``) and per task."""
    results = []
    for task in tasks:
        result = run_task(task, client, model, **options)
        results.append(result)
        if progress is not None:
            print(_line(result), file=progress, flush=True)
    halves = {h: summarise([r for r in results if r["half"] == h]) for h in HALVES}
    return {"halves": {h: s for h, s in halves.items() if s["tasks"]}, "tasks": results}


def code_state() -> dict[str, str]:
    """What was measured: the commit, and a hash of the local model package's sources (which
    change with uncommitted work; the commit alone would not say)."""
    digest = hashlib.sha256()
    for path in sorted(LOCAL_SOURCES.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    head = ROOT / ".git" / "HEAD"
    commit = "unknown"
    try:
        ref = head.read_text().strip()
        is_branch = ref.startswith("ref: ")
        commit = (ROOT / ".git" / ref[5:]).read_text().strip() if is_branch else ref
    except OSError:
        pass
    return {"commit": commit, "local_sources_sha256": digest.hexdigest()[:16]}


def _line(result: Mapping[str, Any]) -> str:
    """A task's progress line; a held-out task's wrong answers are not shown (nothing may be
    changed because of them; ``--json`` has them for an audit)."""
    status = "valid" if result["valid"] else (result["error"] or "invalid").split(":")[0]
    if result["half"] == "heldout":
        return (
            f"{result['id']} {result['half']:<7} {result['domain']:<22} "
            f"{result['fields_right']:>2}/{result['fields_total']:<2} {result['seconds']:>6.2f}s "
            f"{status}"
        )
    wrong = ", ".join(
        f"{w['path']}={json.dumps(w['got'], ensure_ascii=False)[:40]}" for w in result["wrong"]
    )
    return (
        f"{result['id']} {result['half']:<7} {result['domain']:<22} "
        f"{result['fields_right']:>2}/{result['fields_total']:<2} {result['seconds']:>6.2f}s "
        f"{status}" + (f"  wrong: {wrong}" if wrong else "")
    )


def _table(report: Mapping[str, Any]) -> str:
    rows = ["| half | tasks | valid | fields right | accuracy | median s | max s |"]
    rows.append("|---|---|---|---|---|---|---|")
    for half, s in report["halves"].items():
        rows.append(
            f"| {half} | {s['tasks']} | {s['valid']}/{s['tasks']} | "
            f"{s['fields_right']}/{s['fields_total']} | {s['accuracy']:.1%} | "
            f"{s['median_s']:.2f} | {s['max_s']:.2f} |"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--half", choices=("tune", "heldout", "both"), default="both")
    parser.add_argument("--tasks", help="comma-separated task ids (within --half)")
    parser.add_argument("--retries", type=int, default=0, help="max_validation_retries")
    parser.add_argument(
        "--temperature",
        default="0",
        help="sent with every call (default 0); 'none' sends none (the server's default)",
    )
    parser.add_argument(
        "--max-output-tokens",
        type=int,
        default=None,
        help="max_output_tokens per call (default: none given, the library's default)",
    )
    parser.add_argument(
        "--style",
        default="",
        help="how the server puts a request to the model, over the measured defaults: "
        "key=value,... of openai_structured.local._prompting.Style (e.g. fields=after,"
        "example=true, copy_values=false, document=false); for measuring, not a setting",
    )
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    args = parser.parse_args(argv)

    from openai_structured.local._prompting import STYLE_ENV, Style

    style = Style.parse(args.style)  # refused here, not in the server, when it is wrong
    os.environ[STYLE_ENV] = args.style

    tasks = load_tasks()
    if args.half != "both":
        tasks = [t for t in tasks if t["half"] == args.half]
    if args.tasks:
        wanted = set(args.tasks.split(","))
        tasks = [t for t in tasks if t["id"] in wanted]
    temperature = None if args.temperature.lower() == "none" else float(args.temperature)

    from openai_structured.local import LocalModelServer

    state = code_state()  # before the run: the sources the server is started from
    started = time.perf_counter()
    with LocalModelServer() as server:
        start_s = time.perf_counter() - started
        client = server.client()
        warm_up(client, server.model_name)
        report = run(
            tasks,
            client,
            server.model_name,
            progress=sys.stderr,
            retries=args.retries,
            temperature=temperature,
            max_output_tokens=args.max_output_tokens,
        )
    report["settings"] = {
        "system_prompt": SYSTEM_PROMPT,
        "retries": args.retries,
        "temperature": temperature,
        "max_output_tokens": args.max_output_tokens,
        "style": dataclasses.asdict(style),
        "server_start_s": round(start_s, 2),
        **state,
    }
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    else:
        print(_table(report))
        print(f"code state: {report['settings']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
