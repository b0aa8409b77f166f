"""Streaming cost (SPEC §9): consumer-thread CPU for one streamed structured answer, same
loopback server (its own process), same run, at three sizes, 4-character deltas.

Contenders:
- floor: raw httpx2 SSE lines + jiter decoding of each event, no validation;
- ours (values): ``openai_structured_stream``;
- ours (events): ``openai_structured_events`` with partials and item events, all consumed;
- SDK create(stream=True): the openai SDK's plain chunk loop;
- SDK .stream(response_format=...): the SDK's structured stream helper (quadratic: run only at
  the sizes where it finishes in reasonable time).

    python benchmarks/bench_stream.py [--rounds 3] [--sdk-helper-max-kb 80]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import httpx2
import jiter
import openai
from pydantic import BaseModel

import openai_structured
from _common import compare, cpu, served
from openai_structured import ItemCompleted, openai_structured_events, openai_structured_stream


class Address(BaseModel):
    street: str
    city: str
    postcode: str


class Record(BaseModel):
    id: int
    name: str
    email: str
    score: float
    active: bool
    tags: list[str]
    address: Address


class Document(BaseModel):
    title: str
    records: list[Record]


MESSAGES = [{"role": "user", "content": "List the records."}]


def document(records: int) -> dict[str, Any]:
    return {
        "title": "Customer export",
        "records": [
            {
                "id": i,
                "name": f"Customer number {i}",
                "email": f"customer{i}@example.org",
                "score": round(i * 1.37 % 100, 2),
                "active": i % 3 != 0,
                "tags": ["retail", f"region-{i % 7}", "priority" if i % 5 == 0 else "standard"],
                "address": {
                    "street": f"{i} Long Street",
                    "city": ["London", "Paris", "Berlin"][i % 3],
                    "postcode": f"P{i:05d}",
                },
            }
            for i in range(records)
        ],
    }


def floor(http: httpx2.Client, url: str) -> None:
    body = {"model": "gpt-4o", "messages": MESSAGES, "stream": True}
    with http.stream("POST", f"{url}/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunk = jiter.from_json(line[6:].encode())
                for choice in chunk["choices"]:
                    choice["delta"].get("content")


def measure(
    url: str, http: httpx2.Client, records: int, args: argparse.Namespace
) -> dict[str, float]:
    """Every contender on one document size (the server already serves that document)."""
    client = openai.OpenAI(base_url=url, api_key="sk-bench", max_retries=0)

    def ours() -> None:
        (result,) = openai_structured_stream(
            client=client, model="gpt-4o", output_schema=Document, messages=MESSAGES
        )
        assert len(result.records) == records

    def events() -> None:
        items = 0
        with openai_structured_events(
            client=client, model="gpt-4o", output_schema=Document, messages=MESSAGES
        ) as stream:
            for event in stream:
                if isinstance(event, ItemCompleted):
                    items += event.item is not None
        assert items >= records

    def sdk_loop() -> None:
        stream = client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
        )
        parts = [c.choices[0].delta.content or "" for c in stream if c.choices]
        Document.model_validate_json("".join(parts))

    def sdk_helper() -> None:
        with client.chat.completions.stream(
            model="gpt-4o",
            messages=MESSAGES,  # type: ignore[arg-type]
            response_format=Document,
        ) as stream:
            for _ in stream:
                pass
            stream.get_final_completion()

    ours()  # warm-up: schema compilation, connections
    floor(http, url)
    result = compare(
        {
            FLOOR: lambda: floor(http, url),
            OURS: ours,
            EVENTS: events,
            "SDK create(stream=True) loop": sdk_loop,
        },
        rounds=args.rounds,
    )
    if records <= args.sdk_helper_max_records:
        result["SDK .stream(response_format=...)"] = cpu(sdk_helper)
    return result


FLOOR = "floor (httpx2 SSE + jiter)"
OURS = "ours: openai_structured_stream"
EVENTS = "ours: events (partials+items)"


def main() -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--sdk-helper-max-records",
        type=int,
        default=400,
        help="run the SDK's quadratic .stream() helper only up to this many records "
        "(1344 records take minutes)",
    )
    args = parser.parse_args()
    print(f"measuring openai_structured from {Path(openai_structured.__file__).parent}")

    rows = []
    http = httpx2.Client(timeout=60)
    for records in (84, 336, 1344):
        text = json.dumps(document(records), separators=(",", ":"))
        kb = len(text) / 1000
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "doc.json"
            path.write_text(text)
            with served("--default-file", str(path), "--chunk-size", "4") as url:
                result = measure(url, http, records, args)
        rows.append({"kb": kb, **result})
        base = result[FLOOR]
        print(f"\n{kb:.0f} KB, {len(text) // 4:,} deltas (median of {args.rounds})")
        for name, seconds in result.items():
            print(f"  {name:36} {seconds:8.3f} s  {seconds / base:7.2f}x floor")
    _, middle, large = rows
    print(f"\nscaling from {middle['kb']:.0f} KB to {large['kb']:.0f} KB (4x the size):")
    for name in (FLOOR, OURS, EVENTS):
        print(f"  {name:36} {large[name] / middle[name]:6.2f}x the time")
    return rows


if __name__ == "__main__":
    main()
