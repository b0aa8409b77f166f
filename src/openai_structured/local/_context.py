"""How large a context the embedded model's server gets: read in this one place.

``LocalModelServer()`` without ``n_ctx=``, the shared server of calls without ``client=``, and
``ostruct``'s dry run and pre-flight checks all ask :func:`served_context`, so the check before a
request and the server that answers it agree. The default and the bounds are data
(``registry/embedded.json``): 4,096 tokens served, at most the 32,768 the model was trained
with. A larger context costs memory (the server reserves it at start) and a 270M model reads
long prompts slowly, hence the small default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ._errors import LocalModelError
from ._model import MODEL_ENV_VAR

__all__ = ["CONTEXT_ENV_VAR", "LocalContextError", "check_context", "served_context"]

#: The embedded server's context in tokens (default: the data file's ``served_context``).
CONTEXT_ENV_VAR = "OPENAI_STRUCTURED_LOCAL_CONTEXT"


class LocalContextError(LocalModelError, ValueError):
    """The embedded model's context setting is not a usable number of tokens."""

    def __init__(self, message: str, *, value: object) -> None:
        super().__init__(message)
        self.value = value


def _limit(bundled: bool) -> int | None:
    """The largest context allowed: the bundled model's trained context (None for another
    GGUF, whose figures this package does not know: llama.cpp warns itself)."""
    if not bundled:
        return None
    from ..registry import embedded_model

    return embedded_model().trained_context


def check_context(value: object, *, source: str, bundled: bool = True) -> int:
    """``value`` as a context size, or a :class:`LocalContextError` naming ``source`` and the
    range (a positive whole number of tokens, at most the bundled model's trained context)."""
    limit = _limit(bundled)
    allowed = f"a whole number of tokens from 1 to {limit:,}" if limit else "a positive integer"
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().replace("_", "").replace(",", "").isdigit():
        number = int(value.strip().replace("_", "").replace(",", ""))
    if number is None or number < 1:
        raise LocalContextError(
            f"{source} is {value!r}, not a context size: give {allowed} (the default is "
            f"{_default():,}).",
            value=value,
        )
    if limit is not None and number > limit:
        raise LocalContextError(
            f"{source} is {number:,} tokens, more than the {limit:,} the embedded model was "
            f"trained with. Give at most {limit:,} (the default is {_default():,}), or split the "
            "input into smaller requests.",
            value=value,
        )
    return number


def _default() -> int:
    from ..registry import embedded_model

    return embedded_model().served_context


def served_context(env: Mapping[str, str] | None = None) -> int:
    """The context the embedded server is started with: ``$OPENAI_STRUCTURED_LOCAL_CONTEXT``
    when set, else the default from the data file; raises :class:`LocalContextError` for a
    value that is not a usable size."""
    env = os.environ if env is None else env
    raw = env.get(CONTEXT_ENV_VAR, "").strip()
    if not raw:
        return _default()
    return check_context(raw, source=CONTEXT_ENV_VAR, bundled=not env.get(MODEL_ENV_VAR))
