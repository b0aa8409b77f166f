"""Review of session five's grammar code on odd inputs: the bugs it found, one test each.

Driven through the server's pure entry point (``_decoding.shape_chat_request``) with
llama.cpp's own grammar parser on the bundled model's vocabulary (no weights, no server).
Both are fixed: a weekday range mentions abbreviated days too; strings are capped at 1,000
characters (llama.cpp refuses a longer repetition of a rule it reads later).
"""

from __future__ import annotations

import json
from typing import Any

from local_support import grammar_admits, grammar_parses

from openai_structured.local._decoding import shape_chat_request

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _shaped(model: Any, text: str, schema: dict[str, Any]) -> str:
    """The GBNF the server makes for ``schema`` and the user's ``text``."""
    seen: list[str] = []

    def parses(gbnf: str) -> bool:
        seen.append(gbnf)
        return grammar_parses(model, gbnf)

    shape_chat_request(
        {
            "messages": [
                {"role": "system", "content": "x"},
                {"role": "user", "content": text},
            ],
            "response_format": {"type": "json_object", "schema": schema},
        },
        count_tokens=lambda s: len(s) // 4,
        n_ctx=4096,
        parses=parses,
    )
    return seen[-1]


def test_weekday_range_mentions_abbreviated_days_in_between(vocab_model: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"days": {"type": "array", "items": {"type": "string", "enum": WEEKDAYS}}},
        "required": ["days"],
    }
    gbnf = _shaped(vocab_model, "Open Mon-Fri.", schema)
    answer = {"days": ["Mon", "Tue", "Wed", "Thu", "Fri"]}
    assert grammar_admits(vocab_model, gbnf, json.dumps(answer), ends=True)


def test_long_text_plain_string_grammar_parses(vocab_model: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"address": {"type": "string"}},
        "required": ["address"],
    }
    _shaped(vocab_model, "word " * 1600, schema)
