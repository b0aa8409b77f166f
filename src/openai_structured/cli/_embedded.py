"""What ostruct says and checks when the embedded local model answers.

With no key and no base URL the embedded model answers every ``--model`` name: the registry's
figures for that name (gpt-4o-mini's tokenizer, context and prices) say nothing about it. So the
dry run and the pre-flight count with the model's own vocabulary and check against the context
its server will be started with (:func:`openai_structured.local.served_context`, the one place
that reads ``OPENAI_STRUCTURED_LOCAL_CONTEXT``), and the live panel, the spinner and
``--verbose`` name the model that answers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._request import PreparedCall
from ..errors import TokenLimitError

__all__ = [
    "EmbeddedFacts",
    "check_embedded_limits",
    "embedded_facts",
    "embedded_token_lines",
    "request_messages",
]

#: Room the suggested context leaves beyond the prompt: the server's extraction prompt (the
#: schema's fields) and the answer, which share the context with it.
_ROOM = 1024


@dataclass(frozen=True)
class EmbeddedFacts:
    """The embedded model a run would use: its name, its context, and where they come from."""

    name: str
    #: The context its server is started with.
    context: int
    #: The context it was trained with (None for a GGUF of the user's: not known here).
    trained: int | None
    env_var: str
    #: ``OPENAI_STRUCTURED_LOCAL_MODEL`` names another GGUF.
    custom_file: str | None = None

    @property
    def label(self) -> str:
        """``gemma-3-270m, the embedded local model``."""
        return f"{self.name}, the embedded local model"

    @property
    def tokenizer(self) -> str:
        """``the gemma-3-270m GGUF's own vocabulary``."""
        return f"the {self.custom_file or self.name} GGUF's own vocabulary"

    def context_note(self) -> str:
        """How the context is set and how far it goes, for the dry run."""
        top = f", up to {self.trained:,}" if self.trained else ""
        if os.environ.get(self.env_var, "").strip():
            return f"set by {self.env_var}{top}"
        return f"default; raise it with {self.env_var}{top}"


def embedded_facts() -> EmbeddedFacts:
    """The embedded model's facts for this process (raises ``LocalContextError`` for a bad
    ``OPENAI_STRUCTURED_LOCAL_CONTEXT``: exit 5)."""
    from ..local import CONTEXT_ENV_VAR, DEFAULT_MODEL_ALIAS, MODEL_ENV_VAR, served_context
    from ..registry import embedded_model

    context = served_context()
    custom = os.environ.get(MODEL_ENV_VAR) or None
    data = embedded_model()
    return EmbeddedFacts(
        name=DEFAULT_MODEL_ALIAS if custom else data.name,
        context=context,
        trained=None if custom else data.trained_context,
        env_var=CONTEXT_ENV_VAR,
        custom_file=Path(custom).name if custom else None,
    )


def request_messages(kwargs: Mapping[str, Any]) -> list[Any]:
    """The request's chat messages; Responses API input back in chat form (text parts)."""
    if kwargs.get("messages"):
        return list(kwargs["messages"])
    out = []
    for item in kwargs.get("input") or []:
        content = item.get("content")
        if isinstance(content, list):
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
        out.append({"role": item.get("role", "user"), "content": content})
    return out


def count_prompt(call: PreparedCall) -> int:
    """The prompt's tokens as the embedded server counts them (the prompt it builds included)."""
    from ..local._vocab import count_request_tokens

    kwargs = call.kwargs
    text = kwargs.get("text")
    response_format = kwargs.get("response_format") or (
        text.get("format") if isinstance(text, Mapping) else None
    )
    return count_request_tokens(request_messages(kwargs), response_format)


def _output_limit(params: Mapping[str, Any]) -> int | None:
    keys = ("max_output_tokens", "max_completion_tokens", "max_tokens")
    return next((params[k] for k in keys if params.get(k) is not None), None)


def _suggested(needed: int, facts: EmbeddedFacts) -> int:
    size = math.ceil((needed + _ROOM) / 1024) * 1024
    return min(size, facts.trained) if facts.trained else size


def check_embedded_limits(
    call: PreparedCall, params: Mapping[str, Any], facts: EmbeddedFacts
) -> int:
    """The prompt's token count; :class:`TokenLimitError` (exit 8) when the prompt, plus
    ``--max-output-tokens`` when given, does not fit the embedded server's context."""
    prompt = count_prompt(call)
    output = _output_limit(params) or 0
    needed = prompt + output
    if needed <= facts.context and prompt < facts.context:
        return prompt
    what = f"The prompt ({prompt:,} tokens, counted with {facts.tokenizer})"
    if output:
        what += f" plus --max-output-tokens {output:,} = {needed:,} tokens"
    lines = [f"{what} does not fit the context of {facts.label} ({facts.context:,} tokens)."]
    if facts.trained is not None and (needed > facts.trained or prompt >= facts.trained):
        lines.append(
            f"Not even its largest context ({facts.trained:,} tokens, what it was trained with) "
            f"holds it: shorten the input by at least {needed - facts.trained + _ROOM:,} tokens "
            "or split it (ostruct batch), or use a larger model (--base-url, or OPENAI_API_KEY)."
        )
    else:
        size = _suggested(needed, facts)
        top = f" (at most {facts.trained:,})" if facts.trained else ""
        lines.append(
            f"Raise the context: {facts.env_var}={size} ostruct run ...{top}; a larger context "
            "takes more memory and time. Or shorten the input by at least "
            f"{needed - facts.context + 1:,} tokens"
            + (", or lower --max-output-tokens." if output else ".")
        )
    raise TokenLimitError("\n".join(lines), requested_tokens=needed, model_limit=facts.context)


def embedded_token_lines(
    call: PreparedCall, params: Mapping[str, Any], facts: EmbeddedFacts
) -> list[str]:
    """The dry run's "tokens and cost" lines for a request the pre-flight has checked."""
    prompt = count_prompt(call)
    output = _output_limit(params)
    wanted = f" + {output:,} max output" if output else ""
    room = facts.context - prompt
    return [
        f"prompt tokens: {prompt:,} (tokenizer: {facts.tokenizer}; the prompt as the embedded "
        "server builds it from the messages and the schema, chat format included)",
        f"limits: ok ({prompt:,} prompt{wanted} within the server's context of "
        f"{facts.context:,} tokens, {room:,} left for the answer; {facts.context_note()})",
        f"cost: $0 ({facts.name} runs on this machine)",
    ]
