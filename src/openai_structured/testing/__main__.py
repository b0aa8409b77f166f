"""Run the fake server as its own process: `python -m openai_structured.testing --port N`.

Benchmarks use this so the server's CPU time is not counted against the client. The first
line on stdout is the base URL, printed once the server accepts connections.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from ._batches import BatchPlan
from ._latency import Latency
from ._limits import RateLimits
from ._script import Reply, item_from_dict, reply_from_dict
from ._server import FakeOpenAIServer


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m openai_structured.testing",
        description="A scriptable OpenAI-compatible server on loopback.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    p.add_argument(
        "--script",
        metavar="FILE",
        help='JSON file: {"default": REPLY, "queue": [REPLY_OR_FAULT, ...]}',
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--default-json", metavar="JSON", help="default reply: this JSON value")
    src.add_argument("--default-text", metavar="TEXT", help="default reply: this exact text")
    src.add_argument("--default-file", metavar="PATH", help="default reply: the file's text")
    p.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="characters per stream delta of the default reply (default 4)",
    )
    limits = p.add_argument_group("rate limits (429 beyond them, x-ratelimit-* headers)")
    limits.add_argument("--rpm", type=int, metavar="N", help="requests per window")
    limits.add_argument("--tpm", type=int, metavar="N", help="tokens per window")
    limits.add_argument(
        "--window", type=float, default=60.0, metavar="SECONDS", help="the window (default 60)"
    )
    limits.add_argument(
        "--default-max-tokens",
        type=int,
        default=0,
        metavar="N",
        help="output tokens counted for a request without max_tokens (default 0)",
    )
    timing = p.add_argument_group("latency (before each Chat Completions / Responses answer)")
    timing.add_argument(
        "--latency", type=float, default=0.0, metavar="SECONDS", help="delay (default 0)"
    )
    timing.add_argument(
        "--latency-jitter",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="uniform in [latency - jitter, latency + jitter], floored at 0",
    )
    timing.add_argument("--seed", type=int, default=None, help="seed of the jitter")
    batch = p.add_argument_group(
        "Batch API (the default BatchPlan; POST /_fake/batch-plan for more)"
    )
    when = batch.add_mutually_exclusive_group()
    when.add_argument(
        "--batch-polls",
        type=int,
        default=None,
        metavar="N",
        help="retrieves that still see a batch in progress before it ends (default 0)",
    )
    when.add_argument(
        "--batch-seconds",
        type=float,
        default=None,
        metavar="SECONDS",
        help="a batch ends this many seconds after its creation instead",
    )
    return p


def _latency(args: argparse.Namespace) -> Latency | None:
    if args.latency_jitter < 0:
        raise SystemExit("--latency-jitter must be >= 0")
    if args.latency_jitter:
        low = max(0.0, args.latency - args.latency_jitter)
        return Latency.uniform(low, args.latency + args.latency_jitter, seed=args.seed)
    return Latency.fixed(args.latency) if args.latency else None


def _rate_limits(args: argparse.Namespace) -> RateLimits | None:
    if args.rpm is None and args.tpm is None:
        return None
    return RateLimits(
        requests_per_minute=args.rpm,
        tokens_per_minute=args.tpm,
        window=args.window,
        default_max_tokens=args.default_max_tokens,
    )


def build_server(args: argparse.Namespace) -> FakeOpenAIServer:
    """The server the command line describes (not started)."""
    try:
        server = FakeOpenAIServer(
            host=args.host,
            port=args.port,
            rate_limits=_rate_limits(args),
            latency=_latency(args),
        )
    except ValueError as exc:
        raise SystemExit(f"python -m openai_structured.testing: {exc}") from exc
    if args.script:
        with open(args.script, encoding="utf-8") as f:
            script = json.load(f)
        if script.get("default") is not None:
            server.default_reply = reply_from_dict(script["default"])
        server.queue(*(item_from_dict(d) for d in script.get("queue", [])))
    if args.default_json is not None:
        server.default_reply = Reply.json(json.loads(args.default_json))
    elif args.default_text is not None:
        server.default_reply = Reply.text(args.default_text)
    elif args.default_file is not None:
        with open(args.default_file, encoding="utf-8") as f:
            server.default_reply = Reply.text(f.read())
    if isinstance(server.default_reply, Reply) and args.chunk_size is not None:
        server.default_reply = server.default_reply.with_options(chunk_size=args.chunk_size)
    try:
        if args.batch_polls is not None:
            server.batches.default_plan = BatchPlan(polls=args.batch_polls)
        elif args.batch_seconds is not None:
            server.batches.default_plan = BatchPlan(seconds=args.batch_seconds)
    except ValueError as exc:
        raise SystemExit(f"python -m openai_structured.testing: {exc}") from exc
    return server


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM."""
    args = _parser().parse_args(argv)
    server = build_server(args)
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with server:
        print(server.base_url, flush=True)
        while not done.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
