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
    return p


def build_server(args: argparse.Namespace) -> FakeOpenAIServer:
    """The server the command line describes (not started)."""
    server = FakeOpenAIServer(host=args.host, port=args.port)
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
    if server.default_reply is not None and args.chunk_size is not None:
        server.default_reply = server.default_reply.with_options(chunk_size=args.chunk_size)
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
