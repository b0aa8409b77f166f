"""The embedded local model's figures, from ``embedded.json`` (shipped beside ``models.json``).

Not a registry entry: the registry's models are names a server must know (``gpt-4o`` on
OpenAI), and a ``gemma-3-270m`` entry there would let ``--model gemma-3-270m`` pass OpenAI's
checks. This is the one model that answers when the embedded fallback is chosen, whatever the
``model=`` name; its context depends on how its server is started (see
:mod:`openai_structured.local._context`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any

from ..errors import OpenAIClientError

__all__ = ["EmbeddedModel", "embedded_model"]

_FILE = "embedded.json"


@dataclass(frozen=True)
class EmbeddedModel:
    """What the embedded model is: its name, contexts, output limit, tokenizer and prices."""

    name: str
    title: str
    #: The context its server is started with by default (``--n_ctx``).
    served_context: int
    #: The context the model was trained with: the most a server of it may be given.
    trained_context: int
    #: None: no limit of its own, the answer shares the served context with the prompt.
    max_output_tokens: int | None
    #: ``"gguf"``: the model file's own vocabulary.
    tokenizer: str
    input_price: float
    output_price: float
    sources: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


def _int(raw: Mapping[str, Any], key: str, *, optional: bool = False) -> Any:
    value = raw.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OpenAIClientError(
            f"The packaged {_FILE}: {key!r} must be a positive integer, got {value!r}. "
            "Reinstall openai-structured."
        )
    return value


def parse_embedded_model(raw: Mapping[str, Any]) -> EmbeddedModel:
    """An :class:`EmbeddedModel` from the parsed data file (checked: a bad file says so)."""
    prices = raw.get("prices")
    if not isinstance(prices, Mapping) or not all(
        isinstance(prices.get(k), (int, float)) for k in ("input", "output")
    ):
        raise OpenAIClientError(f"The packaged {_FILE}: 'prices' needs input and output.")
    model = EmbeddedModel(
        name=str(raw["name"]),
        title=str(raw.get("title", raw["name"])),
        served_context=_int(raw, "served_context"),
        trained_context=_int(raw, "trained_context"),
        max_output_tokens=_int(raw, "max_output_tokens", optional=True),
        tokenizer=str(raw["tokenizer"]),
        input_price=float(prices["input"]),
        output_price=float(prices["output"]),
        sources=MappingProxyType(dict(raw.get("sources", {}))),
    )
    if model.served_context > model.trained_context:
        raise OpenAIClientError(
            f"The packaged {_FILE}: served_context {model.served_context} is over "
            f"trained_context {model.trained_context}."
        )
    return model


@functools.lru_cache(maxsize=1)
def embedded_model() -> EmbeddedModel:
    """The embedded model's figures (read once per process)."""
    text = resources.files(__package__).joinpath(_FILE).read_text(encoding="utf-8")
    return parse_embedded_model(json.loads(text))
