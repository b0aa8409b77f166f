"""Counting tokens as the embedded model does: with its GGUF's own vocabulary, offline.

tiktoken's encodings are OpenAI's; Gemma 3 has a 262,144-token vocabulary of its own, and the
same prompt is a third longer in it than in ``o200k_base`` (measured: 40,911 tokens against
29,019). The vocabulary is read from the model file with ``llama_cpp.Llama(vocab_only=True)``
(about 0.5 s, no weights loaded, no server started) and kept for the process.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._errors import LocalModelNotInstalledError, ModelFileError
from ._model import ensure_model

__all__ = ["count_request_tokens", "count_text_tokens", "server_prompt"]


@contextlib.contextmanager
def _quiet_fd2() -> Iterator[None]:
    """Silence file descriptor 2 while llama.cpp loads: it prints a context warning from C
    even with ``verbose=False``, and ostruct's stderr stays silent on success."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_loaded: dict[Path, Any] = {}
_lock = threading.Lock()


def _close_all() -> None:
    """At exit, before module teardown: a ``Llama`` freed later raises from its ``__del__``
    (its bindings are already gone) and prints "Exception ignored" on stderr."""
    with _lock:
        vocabs = list(_loaded.values())
        _loaded.clear()
    for vocab in vocabs:
        with contextlib.suppress(Exception):
            vocab.close()


def _vocab(path: Path) -> Any:
    with _lock:
        vocab = _loaded.get(path)
        if vocab is None:
            vocab = _loaded[path] = _load(path)
            if len(_loaded) == 1:
                atexit.register(_close_all)
    return vocab


def _load(path: Path) -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise LocalModelNotInstalledError(["llama_cpp"]) from None
    try:
        with _quiet_fd2():
            return llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    except (ValueError, OSError, RuntimeError) as exc:
        raise ModelFileError(
            f"Cannot read the tokenizer of {str(path)!r}: {exc}. Check that it is a GGUF file "
            "(or unset OPENAI_STRUCTURED_LOCAL_MODEL to use the bundled model).",
            path=str(path),
        ) from exc


def server_prompt(messages: Sequence[Mapping[str, Any]], response_format: Any = None) -> str:
    """The prompt the embedded server evaluates for a chat request (pure): the extraction
    document it writes for an object schema (rules, worked example, the schema's fields; see
    :mod:`._prompting`), else the Gemma 3 chat format of ``messages``."""
    # Imported here, not at module level: ``python -m ..._child`` warns about a module
    # imported before it runs, and the server process imports this package.
    from ._child import format_gemma3
    from ._prompting import completion_prompt, schema_of

    items = list(messages)
    document = completion_prompt(items, schema_of(response_format))
    return (document or format_gemma3(items))[0]


def count_text_tokens(text: str, *, model_path: str | os.PathLike[str] | None = None) -> int:
    """Tokens of plain ``text`` in the embedded model's vocabulary (no BOS, no special tokens)."""
    vocab = _vocab(ensure_model(model_path))
    return len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def count_request_tokens(
    messages: Sequence[Mapping[str, Any]],
    response_format: Any = None,
    *,
    model_path: str | os.PathLike[str] | None = None,
) -> int:
    """Prompt tokens of a chat request on the embedded model: its vocabulary, the prompt its
    server builds (:func:`server_prompt`) and the BOS token, as the server counts them."""
    vocab = _vocab(ensure_model(model_path))
    prompt = server_prompt(messages, response_format).encode("utf-8")
    return len(vocab.tokenize(prompt, add_bos=True, special=True))
