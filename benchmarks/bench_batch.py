"""The Batch API backend (issue 14): client CPU per record and peak memory, against the live
runner and a hand-written SDK batch script, in the same run.

    python benchmarks/bench_batch.py [--records 20000] [--batch-lines 5000] [--rounds 1]

``--records`` records against the loopback server's Batch API emulator (its own process), for

- **batch**: ``BulkRun(..., backend=OpenAIBatch(max_lines=--batch-lines))``: build the request
  lines (request builder, record keys), split into files, upload, create, poll, download the
  output, decode every line through the outcome table, journal and write the output;
- **sdk batch**: the floor a user writes by hand with the openai SDK: ``json.dumps`` the lines
  (one strict ``response_format`` built once), upload and create per file, poll, download,
  ``Model.model_validate_json`` each answer, write the output; no journal, no resume, no
  re-asks, no typed outcomes;
- **live**: ``BulkRun(..., concurrency=64)`` (one request per record, journal included) against
  the same server without latency.

Each trial is its own subprocess; CPU is ``time.process_time`` from after the imports to the
last outcome (every thread), peak memory the process's ``ru_maxrss`` minus its size after the
imports (the records themselves included: every contender holds them). The batches finish at
their first status check (``BatchPlan(polls=0)``), so the figures are the client's work, not
the emulator's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import openai
from pydantic import BaseModel

from _common import served
from openai_structured.bulk import BulkRun, OpenAIBatch
from openai_structured.schema import to_strict_schema

HERE = Path(__file__).parent
ANSWER = {"name": "x", "n": 1}
REVIEW = "arrived on time, works as described, would buy again. "


class Item(BaseModel):
    name: str
    n: int


def records(count: int) -> list[dict[str, Any]]:
    return [{"id": i, "text": f"review {i}: {REVIEW}"} for i in range(count)]


def _run(url: str, out: Path, **kwargs: Any) -> BulkRun:
    return BulkRun(
        model="gpt-4o-mini",
        request=lambda r: {"user_prompt": r["text"]},
        output_schema=Item,
        client=openai.AsyncOpenAI(base_url=url, api_key="x"),
        output=out,
        **kwargs,
    )


def ours_batch(url: str, items: list[dict[str, Any]], lines: int, out: Path) -> int:
    backend = OpenAIBatch(poll_interval=0.05, max_poll_interval=0.05, max_lines=lines)
    return sum(o.ok for o in _run(url, out, backend=backend).run(items))


def ours_live(url: str, items: list[dict[str, Any]], lines: int, out: Path) -> int:
    return sum(o.ok for o in _run(url, out, concurrency=64).run(items))


async def _sdk_batch(url: str, items: list[dict[str, Any]], lines: int, out: Path) -> int:
    client = openai.AsyncOpenAI(base_url=url, api_key="x")
    schema = to_strict_schema(Item.model_json_schema())
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "Item", "schema": schema, "strict": True},
    }
    batches = []
    for start in range(0, len(items), lines):
        data = "".join(
            json.dumps({
                "custom_id": str(r["id"]), "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "response_format": response_format,
                         "messages": [{"role": "user", "content": r["text"]}]},
            }) + "\n"
            for r in items[start : start + lines]
        ).encode()  # fmt: skip
        file = await client.files.create(file=("in.jsonl", data), purpose="batch")
        batches.append(
            await client.batches.create(
                input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
        )
    done = 0
    with open(out, "w") as handle:
        for batch in batches:
            while batch.status not in ("completed", "failed", "expired", "cancelled"):
                await asyncio.sleep(0.05)
                batch = await client.batches.retrieve(batch.id)
            assert batch.output_file_id is not None
            content = (await client.files.content(batch.output_file_id)).content
            for raw in content.splitlines():
                line = json.loads(raw)
                body = line["response"]["body"]
                item = Item.model_validate_json(body["choices"][0]["message"]["content"])
                handle.write(json.dumps({"id": int(line["custom_id"]),
                                         "result": item.model_dump()}) + "\n")  # fmt: skip
                done += 1
    await client.close()
    return done


def sdk_batch(url: str, items: list[dict[str, Any]], lines: int, out: Path) -> int:
    return asyncio.run(_sdk_batch(url, items, lines, out))


CONTENDERS = {"batch": ours_batch, "sdk batch": sdk_batch, "live": ours_live}


def child(args: argparse.Namespace) -> None:
    items = records(args.records)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "OUT.jsonl"
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        wall, cpu = time.perf_counter(), time.process_time()
        done = CONTENDERS[args.child](args.url, items, args.batch_lines, out)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        lines = out.read_text().count("\n")
        assert lines == args.records == done, (lines, done, args.records)
    print(json.dumps({"wall": wall, "cpu": cpu, "done": done, "peak_kb": peak - base,
                      "rss_kb": peak}))  # fmt: skip


def trial(contender: str, url: str, *options: str) -> dict[str, Any]:
    line = subprocess.run(
        [sys.executable, __file__, "--child", contender, "--url", url, *options],
        check=True, stdout=subprocess.PIPE, text=True, cwd=HERE,
    ).stdout.splitlines()[-1]  # fmt: skip
    return json.loads(line)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch-lines", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child", choices=tuple(CONTENDERS), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    options = ["--records", str(args.records), "--batch-lines", str(args.batch_lines)]
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTENDERS}
    with served("--default-json", json.dumps(ANSWER)) as url:
        for round_ in range(args.rounds):
            order = list(CONTENDERS) if round_ % 2 == 0 else list(CONTENDERS)[::-1]
            for name in order:
                got = trial(name, url, *options)
                samples[name].append(got)
                print(f"  round {round_ + 1} {name:9} wall {got['wall']:6.2f} s  CPU "
                      f"{got['cpu']:6.2f} s  peak +{got['peak_kb'] / 1024:6.1f} MB",
                      flush=True)  # fmt: skip
    n = args.records
    med = {
        name: {k: statistics.median(s[k] for s in runs) for k in ("wall", "cpu", "peak_kb")}
        for name, runs in samples.items()
    }
    base = med["sdk batch"]
    print(f"\n{n} records, batch files of {args.batch_lines}, one process per trial, "
          f"median of {args.rounds}")  # fmt: skip
    print(f"{'contender':10} {'wall s':>7} {'CPU/rec':>8} {'CPU':>6} {'peak MB':>8} "
          f"{'KB/rec':>7} {'vs sdk batch (CPU, peak)':>26}")  # fmt: skip
    for name, m in med.items():
        cpu_ratio, peak_ratio = m["cpu"] / base["cpu"], m["peak_kb"] / max(base["peak_kb"], 1)
        print(f"{name:10} {m['wall']:7.2f} {m['cpu'] / n * 1e6:6.0f}us {m['cpu']:6.2f} "
              f"{m['peak_kb'] / 1024:8.1f} {m['peak_kb'] / n:7.2f} "
              f"{cpu_ratio:12.2f}x {peak_ratio:10.2f}x")  # fmt: skip
    live = med["live"]
    print(f"batch / live: CPU {med['batch']['cpu'] / live['cpu']:.2f}x, "
          f"peak memory {med['batch']['peak_kb'] / max(live['peak_kb'], 1):.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
