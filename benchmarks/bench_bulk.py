"""Bulk runs (issue 13): ``BulkRun`` vs the asyncio floor, and ``BulkRun`` at a server's limits.

    python benchmarks/bench_bulk.py [--records 10000] [--concurrency 64] [--rounds 2]
                                    [--sync-rounds 1] [--text-chars 0]
                                    [--limited-records 1000] [--rpm 300] [--window 3]
                                    [--only throughput|limited]
    python benchmarks/bench_bulk.py --profile arun [--records 3000]   # cProfile, no comparison

1. Throughput: ``--records`` records against the loopback server (its own process, fixed 20 ms
   latency, no limits) at ``--concurrency``, for

   - **floor**: asyncio + ``openai.AsyncOpenAI`` + ``asyncio.Semaphore`` +
     ``Model.model_validate_json(resp.choices[0].message.content)``, no journal;
   - **ours: arun**: ``BulkRun(..., output=OUT.jsonl, concurrency=...)`` consumed with
     ``async for ... in run.arun(records)`` (journal included);
   - **ours: run**: the same consumed with the sync ``for ... in run.run(records)`` (the async
     core on its own loop thread).

   Each trial is its own subprocess, and the figure is that process's CPU time
   (``time.process_time``: all its threads, so the sync face's loop thread is counted) and
   wall time, from after the imports to the last outcome. A fresh process per trial keeps one
   contender's connection pool, heap and caches from helping or hurting the next; rounds
   alternate the contenders (the sync face, the slowest trial, only in the first
   ``--sync-rounds``, to keep the whole benchmark under 3 minutes) and the median is kept. The
   server is reset between trials. The SDK costs about 2 ms of CPU per request, so at 20 ms
   latency the client, not the latency, bounds the rate (64 / 20 ms would be 3,200 requests a
   second): wall time follows CPU time here.
2. Rate limited: the server allows ``--rpm`` requests per ``--window`` seconds (a token bucket
   starting full); ``BulkRun`` with ``rate_window`` equal and (a) no ``rpm`` (learned from the
   ``x-ratelimit-*`` headers), (b) ``rpm`` given. Achieved rate: requests the server accepted
   per window after the first window, as a fraction of ``--rpm``; 429s after the first window
   (polled from ``GET /_fake/stats``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import openai
from pydantic import BaseModel

from _common import served
from openai_structured.bulk import BulkRun
from openai_structured.schema import to_strict_schema

HERE = Path(__file__).parent
ANSWER = {"name": "x", "n": 1}
LATENCY = 0.02


class Item(BaseModel):
    name: str
    n: int


REVIEW = "arrived on time, works as described, would buy again. "


def records(count: int, chars: int = 0) -> list[dict[str, Any]]:
    """``{"id", "text"}`` records; ``chars`` pads each text to that length (0: one sentence)."""
    out = []
    for i in range(count):
        text = f"Review {i}: {REVIEW}"
        if chars > len(text):
            text = (text + REVIEW * (chars // len(REVIEW) + 1))[:chars]
        out.append({"id": i, "text": text})
    return out


# --- the contenders (each runs in a child process) ------------------------------------------


async def floor(url: str, items: list[dict[str, Any]], width: int, out: Path) -> int:
    """asyncio + AsyncOpenAI + Semaphore + model_validate_json: no journal, no limiter."""
    client = openai.AsyncOpenAI(base_url=url, api_key="x")
    strict = to_strict_schema(Item)
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "Item", "schema": strict, "strict": True},
    }
    gate = asyncio.Semaphore(width)

    async def one(record: dict[str, Any]) -> Item:
        async with gate:
            resp = await client.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": record["text"]}],
                response_format=response_format,  # type: ignore[arg-type]
            )
        return Item.model_validate_json(resp.choices[0].message.content or "")

    results = await asyncio.gather(*(one(r) for r in items))
    await client.close()
    return len(results)


def _bulk(url: str, width: int, out: Path, **limits: Any) -> BulkRun:
    return BulkRun(
        model="gpt-4o",
        request=lambda r: {"user_prompt": r["text"]},
        output_schema=Item,
        client=openai.AsyncOpenAI(base_url=url, api_key="x"),
        output=out,
        concurrency=width,
        **limits,
    )


async def ours_arun(url: str, items: list[dict[str, Any]], width: int, out: Path) -> int:
    done = 0
    async for outcome in _bulk(url, width, out).arun(items):
        assert outcome.ok, outcome.error
        done += 1
    return done


def ours_run(url: str, items: list[dict[str, Any]], width: int, out: Path) -> int:
    done = 0
    for outcome in _bulk(url, width, out).run(items):
        assert outcome.ok, outcome.error
        done += 1
    return done


def limited(
    url: str, items: list[dict[str, Any]], width: int, out: Path, window: float, rpm: int | None
) -> tuple[int, dict[str, Any]]:
    run = _bulk(url, width, out, rpm=rpm, rate_window=window)
    done = sum(1 for outcome in run.run(items) if outcome.ok)
    assert run.limiter is not None
    stats = run.limiter.stats(time.monotonic())
    return done, {"client_429": stats.rate_limited, "learned_rpm": stats.rpm}


CONTENDERS = {"floor": floor, "arun": ours_arun, "run": ours_run}


def child(args: argparse.Namespace) -> None:
    """One trial: run one contender, print {"wall", "cpu", "done", ...} as JSON."""
    items = records(args.records, args.text_chars)
    extra: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "OUT.jsonl"
        wall, cpu = time.perf_counter(), time.process_time()
        if args.child == "limited":
            done, extra = limited(
                args.url, items, args.concurrency, out, args.window, args.client_rpm
            )
        else:
            fn = CONTENDERS[args.child]
            result = fn(args.url, items, args.concurrency, out)
            done = asyncio.run(result) if asyncio.iscoroutine(result) else result
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if out.exists():
            lines = out.read_text().count("\n")
            assert lines == args.records, f"{lines} output lines for {args.records} records"
    print(json.dumps({"wall": wall, "cpu": cpu, "done": done, **extra}))


def trial(contender: str, url: str, *options: str) -> dict[str, Any]:
    line = subprocess.run(
        [sys.executable, __file__, "--child", contender, "--url", url, *options],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        cwd=HERE,
    ).stdout.splitlines()[-1]
    return json.loads(line)


# --- the server's counters -------------------------------------------------------------------


def control(url: str, path: str, *, post: bool = False) -> Any:
    root = url.removesuffix("/").removesuffix("/v1")
    req = urllib.request.Request(
        root + path, data=b"" if post else None, method="POST" if post else "GET"
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


class Poller:
    """``rate_limited`` from ``GET /_fake/stats`` every ``interval`` s, with the time polled
    (CLOCK_MONOTONIC is one clock for every process, the server's ``accepted_times`` too)."""

    def __init__(self, url: str, interval: float = 0.1) -> None:
        self.url, self.interval = url, interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append(
                (time.monotonic(), control(self.url, "/_fake/stats")["rate_limited"])
            )

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def before(self, t: float) -> int:
        """429s seen by the last poll at or before ``t`` (later ones count as after it)."""
        return max((n for when, n in self.samples if when <= t), default=0)


def rate_figures(accepted: list[float], rpm: int, window: float) -> dict[str, Any]:
    """Accepted per window after the first window, as a fraction of ``rpm``."""
    t0, end = accepted[0], accepted[-1]
    steady = [t for t in accepted if t >= t0 + window]
    span = end - (t0 + window)
    per_window = len(steady) / span * window if span > 0 else float("nan")
    full = int((end - t0) // window)
    counts = [
        sum(1 for t in accepted if t0 + k * window <= t < t0 + (k + 1) * window)
        for k in range(1, full)
    ]
    return {
        "t0": t0,
        "first_window": sum(1 for t in accepted if t < t0 + window),
        "per_window": per_window,
        "fraction": per_window / rpm,
        "windows": counts,
    }


# --- the parent ------------------------------------------------------------------------------


def throughput(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    options = [
        "--records", str(args.records), "--concurrency", str(args.concurrency),
        "--text-chars", str(args.text_chars),
    ]  # fmt: skip
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTENDERS}
    with served("--default-json", json.dumps(ANSWER), "--latency", str(LATENCY)) as url:
        for round_ in range(args.rounds):
            order = [n for n in CONTENDERS if n != "run" or round_ < args.sync_rounds]
            for name in order if round_ % 2 == 0 else order[::-1]:
                control(url, "/_fake/reset", post=True)
                got = trial(name, url, *options)
                assert got["done"] == args.records, got
                stats = control(url, "/_fake/stats")
                assert stats["requests"] == args.records and not stats["errors"], stats
                samples[name].append(got)
                print(
                    f"  round {round_ + 1} {name:6} wall {got['wall']:6.2f} s  "
                    f"CPU {got['cpu']:6.2f} s",
                    flush=True,
                )
    medians = {
        name: {key: statistics.median(s[key] for s in runs) for key in ("wall", "cpu")}
        for name, runs in samples.items()
        if runs
    }
    base = medians["floor"]
    n = args.records
    sync = min(args.sync_rounds, args.rounds)
    print(
        f"\n{n} records, concurrency {args.concurrency}, {LATENCY * 1000:.0f} ms latency, one"
        f" process per trial; median of {args.rounds} (sync run: {sync})"
        + (f"; texts of {args.text_chars} characters" if args.text_chars else "")
    )
    print(f"{'contender':10} {'wall s':>7} {'rec/s':>6} {'CPU/rec':>8} {'CPU':>6} {'wall':>6}")
    for name, m in medians.items():
        print(
            f"{name:10} {m['wall']:7.2f} {n / m['wall']:6.0f} {m['cpu'] / n * 1e6:6.0f}us"
            f" {m['cpu'] / base['cpu']:5.2f}x {m['wall'] / base['wall']:5.2f}x"
        )
    print("(CPU, wall: ours / floor, medians; targets 1.3x and 1.1x)")
    for name, runs in samples.items():
        if name != "floor" and runs:  # round by round: neighbours share the machine's load
            pairs = zip(runs, samples["floor"], strict=False)  # run: the first rounds
            text = "  ".join(
                f"{o['cpu'] / f['cpu']:.2f}/{o['wall'] / f['wall']:.2f}" for o, f in pairs
            )
            print(f"  {name} / floor by round (CPU/wall): {text}")
    return medians


def rate_limited(args: argparse.Namespace) -> None:
    options = [
        "--records", str(args.limited_records), "--concurrency", str(args.concurrency),
        "--window", str(args.window),
    ]  # fmt: skip
    server = (
        "--default-json", json.dumps(ANSWER), "--latency", str(LATENCY),
        "--rpm", str(args.rpm), "--window", str(args.window),
    )  # fmt: skip
    print(
        f"\nrate limited: server {args.rpm} requests per {args.window:g} s window, "
        f"{args.limited_records} records, concurrency {args.concurrency}, "
        f"rate_window={args.window:g}"
    )
    print(
        f"{'client':16} {'wall s':>6} {'1st window':>10} {'per window':>10} {'of N':>5}"
        f" {'429s':>4} {'429s after 1st':>14}  full windows after the 1st"
    )
    with served(*server) as url:
        for label, rpm in (("learned (no rpm)", None), (f"rpm={args.rpm}", args.rpm)):
            control(url, "/_fake/reset", post=True)
            with Poller(url) as poller:
                got = trial("limited", url, *options, *(["--client-rpm", str(rpm)] if rpm else []))
            stats = control(url, "/_fake/stats")
            assert got["done"] == args.limited_records, got
            fig = rate_figures(stats["accepted_times"], args.rpm, args.window)
            total = stats["rate_limited"]
            after = total - poller.before(fig["t0"] + args.window)
            print(
                f"{label:16} {got['wall']:6.2f} {fig['first_window']:10d} {fig['per_window']:10.1f}"
                f" {fig['fraction']:5.3f} {total:4d} {after:14d}  {fig['windows']}"
                f"  (limiter: rpm {got['learned_rpm']}, {got['client_429']} 429s)"
            )
    print("(per window: accepted by the server after the first window; target >= 0.95 of N)")


def profile(args: argparse.Namespace) -> None:
    """cProfile of one contender in this process (the server in its own): the library's own
    functions by cumulative time, then everything by own time."""
    items = records(args.records, args.text_chars)
    server = ("--default-json", json.dumps(ANSWER), "--latency", str(LATENCY))
    with served(*server) as url, tempfile.TemporaryDirectory() as tmp:
        prof = cProfile.Profile()
        prof.enable()
        result = CONTENDERS[args.profile](url, items, args.concurrency, Path(tmp) / "OUT.jsonl")
        if asyncio.iscoroutine(result):
            asyncio.run(result)
        prof.disable()
    stats = pstats.Stats(prof)
    stats.sort_stats("cumulative").print_stats(r"openai_structured", 45)
    stats.sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="floor and arun trials each")
    parser.add_argument(
        "--sync-rounds", type=int, default=1, help="rounds that also measure the sync run()"
    )
    parser.add_argument("--text-chars", type=int, default=0, help="pad each prompt to this")
    parser.add_argument("--limited-records", type=int, default=1000)
    parser.add_argument("--rpm", type=int, default=300, help="requests per window (server)")
    parser.add_argument("--window", type=float, default=3.0, help="the limit's window, s")
    parser.add_argument("--only", choices=("throughput", "limited"))
    parser.add_argument("--profile", choices=tuple(CONTENDERS))
    parser.add_argument("--child", choices=(*CONTENDERS, "limited"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--client-rpm", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if args.profile:
        return profile(args)
    if args.only != "limited":
        throughput(args)
    if args.only != "throughput":
        rate_limited(args)


if __name__ == "__main__":
    main()
