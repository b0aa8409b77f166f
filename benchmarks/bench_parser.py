"""Micro-benchmark: the streaming core against the floor, in memory (SPEC §9, issue 4).

    python benchmarks/bench_parser.py [--repeat 3] [--chunk 16384] [--profile]

Builds a ~293 KB JSON document (``{"records": [...]}``, ~1000 structured records), turns it into
the Chat Completions SSE byte stream a server sends with 4-character deltas, and measures CPU time
(``time.process_time``, best of ``--repeat``) of:

* floor: split SSE lines, ``jiter.from_json`` each data line, take ``choices[0].delta.content``
  (what a bare loop over the SDK's raw stream does, minus HTTP), and join the text;
* ours: ``StreamDecoder`` with partial updates and item events on, validating every record
  (pydantic) and the whole value, fed the same chunks.

At 1/4x, 1x, 2x and 4x the size, so the ratios show both the overhead and the linearity.
Target: ours <= ~1.3x the floor, and 4x the size <= 4.4x the time.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jiter
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from openai_structured.streaming import (
    Finished,
    ItemCompleted,
    PartialUpdate,
    StreamConfig,
    StreamDecoder,
)

# The 4x document is one value of ~1.2 MB: above the default 1 MiB buffer limit.
CONFIG = StreamConfig(max_buffer_size=64 * 2**20, cleanup_threshold=32 * 2**20)


class Address(BaseModel):
    street: str
    city: str
    zip: str


class Record(BaseModel):
    id: int
    name: str
    email: str
    age: int
    score: float
    active: bool
    tags: list[str]
    address: Address
    notes: str
    manager: str | None


class Records(BaseModel):
    records: list[Record]


WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa café naïve 東京 größe".split()  # noqa: SIM905


def make_document(n: int, seed: int = 0) -> str:
    """``n`` records as the compact JSON a model would stream (~293 bytes per record)."""
    rnd = random.Random(seed)
    records = []
    for i in range(n):
        records.append(
            {
                "id": i,
                "name": f"{rnd.choice(WORDS).title()} {rnd.choice(WORDS).title()}",
                "email": f"user{i}@example.com",
                "age": rnd.randint(18, 90),
                "score": round(rnd.uniform(0, 100), 3),
                "active": rnd.random() < 0.5,
                "tags": [rnd.choice(WORDS) for _ in range(rnd.randint(1, 4))],
                "address": {
                    "street": f"{rnd.randint(1, 999)} {rnd.choice(WORDS).title()} St",
                    "city": rnd.choice(WORDS).title(),
                    "zip": f"{rnd.randint(10000, 99999)}",
                },
                "notes": " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(3, 9)))
                + ' with "quotes"\n',
                "manager": None if rnd.random() < 0.7 else f"m{rnd.randint(1, 50)}",
            }
        )
    return json.dumps({"records": records}, ensure_ascii=False, separators=(",", ": "))


def chat_sse(text: str, step: int = 4) -> bytes:
    """The Chat Completions SSE body for ``text`` streamed in ``step``-character deltas."""
    head = (
        '{"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion.chunk",'
        '"created":1741570283,"model":"gpt-4o-2024-08-06","service_tier":"default",'
        '"system_fingerprint":"fp_eb9dce56a8","choices":[{"index":0,"delta":{"content":'
    )
    tail = '},"logprobs":null,"finish_reason":null}]}'
    out = [
        b'data: {"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion.chunk",'
        b'"created":1741570283,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":'
        b'{"role":"assistant","content":"","refusal":null},"logprobs":null,'
        b'"finish_reason":null}]}\n\n'
    ]
    for i in range(0, len(text), step):
        piece = json.dumps(text[i : i + step], ensure_ascii=False)
        out.append(f"data: {head}{piece}{tail}\n\n".encode())
    out.append(
        b'data: {"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion.chunk",'
        b'"created":1741570283,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{},'
        b'"logprobs":null,"finish_reason":"stop"}]}\n\n'
    )
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def chunked(data: bytes, size: int) -> list[bytes]:
    """``data`` cut every ``size`` bytes; size 0 cuts after each event (one read per event, as
    when the client keeps up with the server)."""
    if size == 0:
        return [event + b"\n\n" for event in data.split(b"\n\n") if event]
    return [data[i : i + size] for i in range(0, len(data), size)]


def floor(chunks: list[bytes]) -> str:
    """Raw SSE + jiter decoding, no parsing or validation: the bar."""
    buf = b""
    parts: list[str] = []
    for chunk in chunks:
        buf += chunk
        lines = buf.split(b"\n")
        buf = lines.pop()
        for line in lines:
            if line.startswith(b"data: "):
                data = line[6:]
                if data == b"[DONE]":
                    break
                delta = jiter.from_json(data)["choices"][0]["delta"]
                text = delta.get("content")
                if text:
                    parts.append(text)
    return "".join(parts)


def ours(chunks: list[bytes]) -> Records:
    decoder = StreamDecoder(
        api="chat", output_type=Records, partials=True, items=True, config=CONFIG
    )
    partials = items = 0
    for chunk in chunks:
        for event in decoder.feed(chunk):
            if type(event) is PartialUpdate:
                partials += 1
            elif type(event) is ItemCompleted:
                items += 1
    (finished,) = [e for e in decoder.close() if isinstance(e, Finished)]
    assert items > 0 and partials > 0
    result: Records = finished.result
    return result


def best(fn: Callable[[list[bytes]], object], chunks: list[bytes], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn(chunks)
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--records", type=int, default=1000)
    ap.add_argument(
        "--chunk",
        type=int,
        action="append",
        help="transport chunk size in bytes (repeatable); default 16384 and 1024",
    )
    ap.add_argument("--profile", action="store_true", help="cProfile ours at 1x and print it")
    args = ap.parse_args()
    sizes = args.chunk or [65536, 16384, 0]

    base_text = make_document(args.records)
    print(
        f"document: {len(base_text.encode()) / 1000:.0f} KB, {args.records} records, "
        "4-character deltas; CPU seconds, best of",
        args.repeat,
    )
    for chunk_size in sizes:
        print(f"\ntransport chunks of {chunk_size} bytes" if chunk_size else "\none event per read")
        print(f"{'size':>5} {'KB':>6} {'events':>7} {'floor':>8} {'ours':>8} {'ratio':>6}")
        results: dict[float, tuple[float, float]] = {}
        for factor in (0.25, 1, 2, 4):
            text = make_document(max(1, int(args.records * factor)))
            raw = chat_sse(text)
            chunks = chunked(raw, chunk_size)
            assert floor(chunks) == text
            assert ours(chunks) == Records.model_validate_json(text)
            f = best(floor, chunks, args.repeat)
            o = best(ours, chunks, args.repeat)
            results[factor] = (f, o)
            print(
                f"{factor:>5} {len(text.encode()) / 1000:>6.0f} {raw.count(b'data: '):>7} "
                f"{f:>8.3f} {o:>8.3f} {o / f:>6.2f}"
            )
        f1, o1 = results[1]
        f4, o4 = results[4]
        print(f"linearity 1x -> 4x: floor x{f4 / f1:.2f}, ours x{o4 / o1:.2f} (bar: <= 4.4)")

    if args.profile:
        chunks = chunked(chat_sse(base_text), sizes[0])
        profiler = cProfile.Profile()
        profiler.runcall(ours, chunks)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
