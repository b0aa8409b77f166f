"""Greedy output of the grammar sampler against llama-cpp-python's own, in a fresh interpreter.

    python tests/local/sampler_check.py MODEL.gguf      # prints one JSON object

Also reports the request defaults the server's routes would apply. Run by
``test_fast_valid.py`` in a subprocess: :func:`install` replaces llama-cpp-python
internals for the whole process, which the test process should not get. Each case is decoded
twice from a freshly evaluated prompt (same batches, same logits): once with the stock sampler
chain (the grammar applied to every candidate first) and once with ours.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import time
from typing import Any

CASES = [
    (
        "Extract the invoice fields.",
        "Invoice INV-2024-0042 from ACME GmbH, Berlin. Date: 1 March 2024. Items: 3 widgets, "
        "1 gearbox, shipping. Total due: 1,234.56 EUR.",
        {
            "type": "object",
            "properties": {
                "vendor": {"type": "string"},
                "invoice_number": {"type": "string"},
                "total": {"type": "number"},
                "currency": {"enum": ["EUR", "USD", "GBP"]},
                "items": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["vendor", "invoice_number", "total", "currency", "items"],
        },
    ),
    (
        "Extract the person.",
        "Maria Lopez, 34, works as a nurse in Valencia.",
        {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "age": {"type": "integer"},
                "city": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
            "required": ["name", "age", "city"],
        },
    ),
    (
        "Extract the meeting.",
        "Standup moved to Thursday 9:30. Present: Ann, Bob and Chen. Topic: the Q3 roadmap.",
        {
            "type": "object",
            "properties": {
                "day": {"enum": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]},
                "attendees": {"type": "array", "items": {"type": "string"}},
                "topic": {"type": "string"},
                "urgent": {"type": "boolean"},
            },
            "required": ["day", "attendees", "topic", "urgent"],
        },
    ),
]
MAX_TOKENS = 40


def main(model_path: str) -> None:
    import llama_cpp

    from openai_structured.local import _decoding
    from openai_structured.local._bounds import caps_for, grammar_schema, input_text
    from openai_structured.local._child import _avoid_amx_crash, format_gemma3

    with contextlib.redirect_stdout(sys.stderr):  # stdout is the report
        _avoid_amx_crash()  # as the server does: an AMX build crashes loading the model without
    from openai_structured.local._prompting import STYLE_ENV

    os.environ[STYLE_ENV] = "null_bias=0"  # the stock sampler's choices, to compare
    _decoding.install()
    # What the server's routes parse a request without temperature / repeat_penalty into.
    app = importlib.import_module("llama_cpp.server.app")
    request = app.CreateChatCompletionRequest(messages=[])
    defaults = {"temperature": request.temperature, "repeat_penalty": request.repeat_penalty}
    ours = llama_cpp.Llama._init_sampler
    stock = ours.__wrapped__
    llm = llama_cpp.Llama(model_path, n_ctx=1024, n_threads=2, logits_all=False, verbose=False)
    results = []
    counts = {"first": 0, "top": 0, "wide": 0, "all": 0, "loop": 0}

    def answer(system: str, text: str, schema: dict[str, Any]) -> str:
        """The greedy answer from a freshly evaluated prompt (the same logits every time)."""
        messages = [{"role": "system", "content": system}, {"role": "user", "content": text}]
        caps = caps_for(input_text(messages))
        gbnf = _decoding.to_gbnf(grammar_schema(schema, caps), caps)
        prompt, stop = format_gemma3(messages)
        llm.reset()
        out = llm.create_completion(
            prompt,
            max_tokens=MAX_TOKENS,
            temperature=0.0,
            repeat_penalty=1.0,
            stop=stop,
            grammar=llama_cpp.LlamaGrammar.from_string(gbnf, verbose=False),
        )
        return str(out["choices"][0]["text"])

    for system, text, schema in CASES:
        outputs = {}
        seconds = {}
        for name, init in (("stock", stock), ("ours", ours)):
            llama_cpp.Llama._init_sampler = init
            start = time.perf_counter()
            outputs[name] = answer(system, text, schema)
            seconds[name] = time.perf_counter() - start
            if name == "ours":
                for key, value in getattr(llm._sampler, "counts", {}).items():
                    counts[key] = counts.get(key, 0) + value
        llama_cpp.Llama._init_sampler = ours
        results.append({"text": text, **outputs, "seconds": seconds})
    # The one deliberate difference from the stock sampler: null made likelier where a value
    # begins (Style.null_bias; 0 above). A bias no logit gap outweighs gives every nullable
    # value null and changes nothing else.
    os.environ[STYLE_ENV] = "null_bias=1000"
    system, text, schema = CASES[1]
    biased = {"text": text, "stock": results[1]["stock"], "ours": answer(system, text, schema)}
    report = {"results": results, "counts": counts, "defaults": defaults, "biased": biased}
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
