"""Per-record CPU cost of the bulk journal: ``python tests/bulk/journal_bench.py [N]``.

Same run, same records: the floor (encode the line, one ``os.write``) against the journal's
``record_ok`` (commit + write), ``is_done`` (hit and miss) and ``record_key``. Prints
microseconds of CPU per record (``time.process_time``), best of three rounds.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from openai_structured.bulk._journal import Journal, record_key

RESULT = {"name": "Ada Lovelace", "born": 1815, "tags": ["math", "engines"], "note": "x" * 200}
PARAMS = {"temperature": 0.2, "max_output_tokens": 200}
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def per_record(n: int, run: Callable[[], None]) -> float:
    start = time.process_time()
    run()
    return (time.process_time() - start) / n * 1e6


def one_round(n: int, directory: Path) -> dict[str, float]:
    for path in directory.iterdir():
        path.unlink()
    messages = [[{"role": "user", "content": f"record {i}: " + "y" * 300}] for i in range(n)]
    keys: list[str] = []
    figures = {
        "record_key": per_record(
            n, lambda: keys.extend(record_key("gpt-4o", PARAMS, SCHEMA, m) for m in messages)
        )
    }
    fd = os.open(directory / "floor.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def floor() -> None:
        for i in range(n):
            line = json.dumps({"id": i, "result": RESULT}, ensure_ascii=False) + "\n"
            os.write(fd, line.encode())

    figures["floor (json + write)"] = per_record(n, floor)
    os.close(fd)
    with Journal.open(directory / "out.jsonl") as journal:
        figures["is_done (miss)"] = per_record(
            n, lambda: [journal.is_done(i, k) for i, k in enumerate(keys)]
        )

        def record() -> None:
            for i, key in enumerate(keys):
                journal.record_ok(i, key, RESULT, prompt_tokens=100, completion_tokens=40)

        figures["record_ok"] = per_record(n, record)
        figures["is_done (hit)"] = per_record(
            n, lambda: [journal.is_done(i, k) for i, k in enumerate(keys)]
        )
    return figures


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        rounds = [one_round(n, Path(tmp)) for _ in range(3)]
    print(f"{n} records, us of CPU per record (best of 3):")
    for name in rounds[0]:
        print(f"  {name:22} {min(r[name] for r in rounds):7.1f}")


if __name__ == "__main__":
    main()
