"""The output layer for the candidates only, against llama.cpp's own, in a fresh interpreter.

    python tests/local/head_check.py MODEL.gguf      # prints one JSON object

Run by ``test_output_head.py`` in a subprocess: :func:`~openai_structured.local._decoding.install`
replaces llama-cpp-python internals for the whole process. Reports:

* ``logits``: our logits of every candidate against llama.cpp's, from one decode's hidden state;
* ``kv``: a run whose decodes stopped after the final norm, then one decode with its logits,
  against the same run decoded in full (the KV cache must be the same);
* ``answers``: chat completions with the partial output layer and without (the same text), and
  how the sampler chose (``partial``: from the candidates' logits);
* ``relogit``: the same requests with one candidate the grammar never admits, so that after
  every decode that skipped the output layer the sampler must decode the last token again.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from typing import Any

CASES = [
    (
        "Invoice INV-2024-0042 from ACME GmbH, Berlin. Date: 1 March 2024. Total due: "
        "1,234.56 EUR. Contact: Jana Novak, +49 30 1234567.",
        {
            "type": "object",
            "properties": {
                "vendor": {"type": "string"},
                "invoice_number": {"type": "string"},
                "total": {"type": "number"},
                "currency": {"enum": ["EUR", "USD", "GBP"]},
                "contact": {"type": ["string", "null"]},
                "issued": {"type": "string", "format": "date"},
            },
            "required": ["vendor", "invoice_number", "total", "currency", "contact", "issued"],
        },
    ),
    (
        "Standup moved to Thursday 9:30. Present: Ann, Bob and Chen. Topic: the Q3 roadmap.",
        {
            "type": "object",
            "properties": {
                "day": {"enum": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]},
                "attendees": {"type": "array", "items": {"type": "string"}},
                "summary": {"type": "string", "description": "one sentence, your own words"},
                "urgent": {"type": "boolean"},
            },
            "required": ["day", "attendees", "summary", "urgent"],
        },
    ),
    (
        "Order 5531: 3 x Blue Mug at 4.50, 2 x Teapot at 18.00. Ship to Ada Byron, 12 Elm "
        "Street, Leeds.",
        {
            "type": "object",
            "properties": {
                "order": {"type": "integer"},
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "quantity": {"type": "integer"},
                            "price": {"type": "number"},
                        },
                        "required": ["name", "quantity", "price"],
                    },
                },
                "customer": {"type": "string"},
            },
            "required": ["order", "items", "customer"],
        },
    ),
    (
        "Call the Riverside Bakery on 0113 496 0000 to order a birthday cake.",
        {
            "type": "object",
            "properties": {
                "business": {"type": "string"},
                "website": {"type": "string", "format": "uri"},
            },
            "required": ["business", "website"],
        },
    ),
]


def main(model_path: str) -> None:
    # Before numpy loads, as the server does (_child.main): its BLAS threads would spin-wait
    # beside llama.cpp's after every product the sampler computes.
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    import llama_cpp
    import numpy as np

    from openai_structured.local import _child, _decoding, _head
    from openai_structured.local._model import GEMMA3_CHAT_FORMAT
    from openai_structured.local._prompting import STYLE_ENV

    with contextlib.redirect_stdout(sys.stderr):  # stdout is the report
        _child._avoid_amx_crash()
    _child._register_gemma3()
    _decoding.install()
    llm = llama_cpp.Llama(
        model_path,
        n_ctx=2048,
        n_threads=2,
        logits_all=False,
        verbose=False,
        chat_format=GEMMA3_CHAT_FORMAT,
    )
    tap = llm._ctx._openai_structured_tap
    n_vocab = int(llm.n_vocab())
    n_embd = int(llama_cpp.llama_model_n_embd(llm._model.model))
    head = _head.OutputHead.load(_head.read_gguf(model_path), n_vocab, n_embd)
    assert head is not None
    report: dict[str, Any] = {}

    def last_logits() -> Any:
        row = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(row, shape=(n_vocab,)).copy()

    tokens = llm.tokenize(b"The invoice from ACME GmbH in Berlin is due on 1 March 2024." * 4)
    llm.reset()
    llm.eval(tokens[:40])
    theirs = last_logits()
    ids = np.arange(n_vocab, dtype=np.intc)
    ours = head.rows(ids) @ head.activation(tap.hidden)
    report["logits"] = {
        "max_abs_diff": float(np.abs(ours - theirs).max()),
        "same_best": int(ours.argmax()) == int(theirs.argmax()),
        "spread": float(theirs.max() - theirs.min()),
    }

    def decode(token: int, *, skip: bool) -> bool:
        """One token at the end of the context; whether the tap stopped its graph."""
        llm._batch.set_batch(batch=[token], n_past=llm.n_tokens, logits_all=True)
        tap.begin(skip=skip)
        llm._ctx.decode(llm._batch)
        llm.n_tokens += 1
        return bool(tap.stopped)

    def run(skip: bool) -> tuple[Any, list[bool], float]:
        llm.reset()
        llm.eval(tokens[:40])
        start = time.perf_counter()
        stopped = [decode(token, skip=skip) for token in tokens[40:70]]
        seconds = time.perf_counter() - start
        decode(tokens[70], skip=False)
        return last_logits(), stopped, seconds

    full, full_stopped, full_s = run(False)
    cut, cut_stopped, cut_s = run(True)
    report["kv"] = {
        "max_abs_diff": float(np.abs(full - cut).max()),
        "stopped_full": any(full_stopped),
        "stopped_cut": all(cut_stopped),
        "seconds_ratio": cut_s / full_s,
    }

    def answer(text: str, schema: dict[str, Any]) -> tuple[str, dict[str, int]]:
        messages = [
            {"role": "system", "content": "Extract the requested information from the text."},
            {"role": "user", "content": text},
        ]
        out = llm.create_chat_completion(
            messages=messages,
            response_format={"type": "json_object", "schema": schema},
            temperature=0.0,
            max_tokens=160,
        )
        return str(out["choices"][0]["message"]["content"]), dict(
            llm._openai_structured_sampler.counts
        )

    def answers() -> list[dict[str, Any]]:
        return [dict(zip(("text", "counts"), answer(t, s), strict=True)) for t, s in CASES]

    os.environ[STYLE_ENV] = "partial_head=false"
    without = answers()
    os.environ[STYLE_ENV] = ""
    with_head = answers()
    report["answers"] = [
        {"without": a["text"], "with": b["text"], "counts": b["counts"]}
        for a, b in zip(without, with_head, strict=True)
    ]

    # One candidate the grammar never admits: every decode that skipped the output layer
    # must be decoded again with it (and the answers stay those of the full logits).
    foreign = np.array(llm.tokenize("的".encode(), add_bos=False, special=False)[:1], np.intc)
    stock = _decoding._request_head

    def without_candidates(llama: Any, kwargs: Any) -> Any:
        made = stock(llama, kwargs)
        if made is not None:
            made = _head.RequestHead(head, foreign, made.probes, relogit=made.relogit)
        return made

    _decoding._request_head = without_candidates
    report["relogit"] = [
        {"without": a["text"], "with": b["text"], "counts": b["counts"]}
        for a, b in zip(without, answers(), strict=True)
    ]
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
