"""The embedded model's speed (issue 15): grammar on vs off, and our server vs in-process.

    python benchmarks/bench_local.py [--rounds 3] [--tokens 96] [--threads N] [--json]

In one run, on the same prompts, interleaved round by round so that other jobs on the machine
slow every contender alike (the figures to quote are the ratios):

* **decode tokens/s** through our server (streamed; from the first token to the last, so the
  prompt is not counted): free text, and grammar-constrained JSON (``json_object`` + schema,
  our sampler); and in-process ``llama_cpp.Llama``: free, grammar with llama-cpp-python's own
  sampler chain (the grammar applied to all 262,144 candidates per token), grammar with ours.
  Grammar runs decode until the answer's grammar ends or ``--tokens``; free runs ``--tokens``.
* **the two halves of a token**, in-process: the decode (``Llama.eval``, median ms) and the
  sampler (``Llama.sample``, mean ms). The decode does not depend on the sampler, so the ratio
  (decode + grammar sampler) / (decode + free sampler) is the grammar's cost per token even
  when other jobs on the machine make the wall-clock rates of separate runs jump.
* **time to the first token** of a short prompt (~60 tokens) and a long one (~2,000 tokens),
  through our server (HTTP, streamed) and in-process (``Llama.create_completion``, streamed),
  each prompt evaluated from scratch.

Needs the ``[local]`` extra. Prints a table and the ratios (``--json``: the figures as JSON).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "vendor": {"type": "string"},
        "invoice_number": {"type": "string"},
        "date": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
        "total": {"type": "number"},
        "currency": {"enum": ["EUR", "USD", "GBP"]},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"description": {"type": "string"}, "quantity": {"type": "integer"}},
                "required": ["description", "quantity"],
            },
        },
        "notes": {"type": "string"},
    },
    "required": ["vendor", "invoice_number", "date", "total", "currency", "items", "notes"],
}
SYSTEM = "Extract the requested information from the text."
TEXT = (
    "Invoice INV-2024-0042 from ACME GmbH, Hauptstrasse 5, 10115 Berlin. Date: 1 March 2024.\n"
    "3 x widget, 1 x gearbox, 2 x shipping crate. Total due: 1,234.56 EUR within 30 days.\n"
    "Notes: deliver to the side entrance, ask for Ms Weber."
)
FREE = "Write a short story about a lighthouse keeper and a storm."
LONG_FILLER = (
    "The committee reviewed the quarterly figures line by line, compared them with the "
    "budget of the previous year and asked the treasurer to explain every deviation. "
)


def _messages(text: str, system: str | None = SYSTEM) -> list[dict[str, str]]:
    out = [{"role": "system", "content": system}] if system else []
    return [*out, {"role": "user", "content": text}]


def _long_text() -> str:
    return LONG_FILLER * 70 + "\nWho asked the treasurer to explain? Answer in one word."


class Stream:
    """Times of the chunks of one streamed answer."""

    def __init__(self, started: float, chunks: Iterator[Any], text_of: Callable[[Any], str]):
        self.first: float | None = None
        self.last = started
        self.tokens = 0
        for chunk in chunks:
            if not text_of(chunk):
                continue
            now = time.perf_counter()
            if self.first is None:
                self.first = now
            self.last = now
            self.tokens += 1
        self.ttft = (self.first or self.last) - started

    @property
    def tokens_per_s(self) -> float:
        if self.first is None or self.tokens < 2 or self.last <= self.first:
            return float("nan")
        return (self.tokens - 1) / (self.last - self.first)


def _chat_text(chunk: Any) -> str:
    return chunk.choices[0].delta.content or "" if chunk.choices else ""


def _completion_text(chunk: Any) -> str:
    return str(chunk["choices"][0]["text"])


class Server:
    def __init__(self, server: Any) -> None:
        self.client = server.client(max_retries=0, timeout=600)
        self.model = server.model_name

    def run(self, messages: list[dict[str, str]], *, tokens: int, grammar: bool) -> Stream:
        extra: dict[str, Any] = {}
        if grammar:
            extra["response_format"] = {"type": "json_object", "schema": SCHEMA}
        started = time.perf_counter()
        chunks = self.client.chat.completions.create(
            model=self.model,
            messages=messages,
            max_tokens=tokens,
            temperature=0,
            stream=True,
            **extra,
        )
        return Stream(started, iter(chunks), _chat_text)


class InProcess:
    """``llama_cpp.Llama`` in this process, llama-cpp-python's defaults but for the thread
    count (the server's) and the prompt format (the server's Gemma 3 format)."""

    def __init__(self, model_path: str, n_threads: int) -> None:
        import llama_cpp

        from openai_structured.local import _decoding
        from openai_structured.local._bounds import caps_for, grammar_schema, input_text
        from openai_structured.local._child import _avoid_amx_crash, format_gemma3

        self._llama_cpp = llama_cpp
        self._format = format_gemma3
        with contextlib.redirect_stdout(sys.stderr):  # stdout is the report
            _avoid_amx_crash()  # as the server does: an AMX build crashes loading the model
        # Our sampler becomes Llama._init_sampler; llama-cpp-python's own stays reachable.
        _decoding.install()
        self.ours = llama_cpp.Llama._init_sampler
        self.stock = self.ours.__wrapped__
        self.llm = llama_cpp.Llama(model_path, n_ctx=4096, n_threads=n_threads, verbose=False)
        caps = caps_for(input_text(_messages(TEXT)))
        self.gbnf = _decoding.to_gbnf(grammar_schema(SCHEMA, caps), caps)
        # Time the two halves of each token: the decode (Llama.eval of one token) and the
        # sampler (Llama.sample). The decode does not depend on the sampler, so these give
        # the grammar's cost even when other jobs make the wall-clock rates jump.
        self.times: dict[str, list[float]] = {"eval": [], "sample": []}
        for name in ("eval", "sample"):
            setattr(self.llm, name, self._timed(name, getattr(self.llm, name)))

    def _timed(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.times[name].append(time.perf_counter() - started)

        return timed

    def per_token_ms(self) -> dict[str, float]:
        """ms of one token's decode (median; prompt evaluations left out: the slow outliers are
        other jobs) and of one sample (mean: its slow outliers, the grammar applied to every
        candidate, are its own cost), since the last run; then forgets them."""
        decodes = self.times["eval"][1:]  # the first one is the prompt
        samples = self.times["sample"]
        out = {
            "decode": statistics.median(decodes) * 1000 if decodes else float("nan"),
            "sample": statistics.mean(samples) * 1000 if samples else float("nan"),
        }
        self.times = {"eval": [], "sample": []}
        return out

    def run(
        self, messages: list[dict[str, str]], *, tokens: int, sampler: str | None = None
    ) -> Stream:
        llama_cpp = self._llama_cpp
        llama_cpp.Llama._init_sampler = self.stock if sampler == "stock" else self.ours
        grammar = llama_cpp.LlamaGrammar.from_string(self.gbnf, verbose=False) if sampler else None
        prompt, stop = self._format(messages)
        self.llm.reset()  # the whole prompt evaluated, as the server does
        started = time.perf_counter()
        chunks = self.llm.create_completion(
            prompt,
            max_tokens=tokens,
            temperature=0.0,
            repeat_penalty=1.0,
            stop=stop,
            stream=True,
            grammar=grammar,
        )
        self.times = {"eval": [], "sample": []}
        stream = Stream(started, iter(chunks), _completion_text)
        llama_cpp.Llama._init_sampler = self.ours
        return stream


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=96, help="max tokens per decode run")
    parser.add_argument(
        "--threads", type=int, default=None, help="n_threads (default: the server's own)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from openai_structured.local import LocalModelServer, ensure_model

    samples: dict[str, list[float]] = {}

    def note(name: str, value: float) -> None:
        samples.setdefault(name, []).append(value)

    extraction, free, short, long = (
        _messages(TEXT),
        _messages(FREE, None),
        _messages("Say hello.", None),
        _messages(_long_text(), None),
    )
    load_before = os.getloadavg()
    with LocalModelServer(n_threads=args.threads) as managed:
        server = Server(managed)
        n_threads = int(managed_threads(managed))
        local = InProcess(str(ensure_model()), n_threads)
        server.run(short, tokens=4, grammar=False)  # warm-up: one-off costs of a fresh server
        local.run(short, tokens=4)
        for _ in range(args.rounds):
            for label, grammar in (("free", False), ("grammar", True)):
                messages = extraction if grammar else free
                stream = server.run(messages, tokens=args.tokens, grammar=grammar)
                note(f"server {label} tok/s", stream.tokens_per_s)
            for label, sampler in (
                ("free", None),
                ("stock grammar", "stock"),
                ("our grammar", "ours"),
            ):
                messages = extraction if sampler else free
                note(
                    f"in-process {label} tok/s",
                    local.run(messages, tokens=args.tokens, sampler=sampler).tokens_per_s,
                )
                cost = local.per_token_ms()
                note("in-process decode ms/token", cost["decode"])
                note(f"in-process {label} sampler ms/token", cost["sample"])
            for label, messages in (("short", short), ("long", long)):
                note(
                    f"server first token s ({label})",
                    server.run(messages, tokens=1, grammar=False).ttft,
                )
                note(f"in-process first token s ({label})", local.run(messages, tokens=1).ttft)
    figures = {name: statistics.median(values) for name, values in samples.items()}
    ratios = {
        "free / grammar, server": figures["server free tok/s"] / figures["server grammar tok/s"],
        "free / grammar, in-process (ours)": figures["in-process free tok/s"]
        / figures["in-process our grammar tok/s"],
        "free / grammar, in-process (llama-cpp-python's)": figures["in-process free tok/s"]
        / figures["in-process stock grammar tok/s"],
        # From the timed halves: (decode + grammar sampler) / (decode + free sampler).
        "grammar / free time per token, in-process, ours (decode + sampler)": (
            figures["in-process decode ms/token"]
            + figures["in-process our grammar sampler ms/token"]
        )
        / (figures["in-process decode ms/token"] + figures["in-process free sampler ms/token"]),
        "grammar / free time per token, in-process, llama-cpp-python's (decode + sampler)": (
            figures["in-process decode ms/token"]
            + figures["in-process stock grammar sampler ms/token"]
        )
        / (figures["in-process decode ms/token"] + figures["in-process free sampler ms/token"]),
        "server / in-process first token (short)": figures["server first token s (short)"]
        / figures["in-process first token s (short)"],
        "server / in-process first token (long)": figures["server first token s (long)"]
        / figures["in-process first token s (long)"],
    }
    report = {
        "figures": figures,
        "ratios": ratios,
        "rounds": args.rounds,
        "tokens": args.tokens,
        "n_threads": n_threads,
        "cpus": os.cpu_count(),
        "load_average_before_after": [load_before, os.getloadavg()],
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"median of {args.rounds} rounds, {n_threads} threads, {os.cpu_count()} CPUs")
        for name, value in figures.items():
            print(f"  {name:<44} {value:8.2f}")
        print("ratios (same run):")
        for name, value in ratios.items():
            print(f"  {name:<80} {value:6.2f}x")
        print(f"load average before/after: {load_before} / {os.getloadavg()}")
    return report


def managed_threads(server: Any) -> int:
    """The thread count the server was started with (its command line)."""
    from openai_structured.local._server import _default_threads

    return server.n_threads or _default_threads()


if __name__ == "__main__":
    main()
    sys.exit(0)
