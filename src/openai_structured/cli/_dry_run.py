"""``ostruct run --dry-run``: everything a real run would check, and what it would send, offline.

The request is built by the same pure builder a real run uses (:func:`prepare_call`), so the
pre-flight verdicts (model, parameters, schema, token limits) and the exit codes are identical;
only the transport is skipped. Token counts use the model's real tokenizer (tiktoken, seeded
from the packaged encodings, so no download); a model the registry does not know gets no count
rather than a guess.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from .._request import prepare_call
from ..errors import OpenAIClientError, TokenLimitError
from ..registry import ModelCapabilities, get_registry
from ..servers import ServerProfile
from ..tokens import count_message_tokens, estimate_cost, validate_token_limits

__all__ = ["dry_run_report"]


def _capabilities(model: str) -> ModelCapabilities | None:
    try:
        return get_registry().get_capabilities(model)
    except OpenAIClientError:
        return None


def _usd(value: float) -> str:
    return f"${value:,.6f}".rstrip("0").rstrip(".") if value else "$0"


def _section(title: str, body: str) -> list[str]:
    return [f"--- {title} ---", body.rstrip("\n"), ""]


def dry_run_report(
    *,
    model: str,
    api: Literal["chat", "responses"],
    profile: ServerProfile,
    where: str,
    system_prompt: str | None,
    user_prompt: str,
    schema: Mapping[str, Any],
    params: Mapping[str, Any],
    extra: Mapping[str, Any],
    stream: bool,
    server_option: str | None,
) -> str:
    """The dry-run report (for stdout). Raises the same pre-flight errors as a real run."""
    call = prepare_call(
        model=model,
        profile=profile,
        api=api,
        stream=stream,
        schema=schema,
        system_prompt=system_prompt,
        user_prompt=user_prompt,
        params=params,
        extra=extra,
    )
    # Prompts, schema and model have their own lines; stream/timeout are transport settings.
    hidden = ("messages", "input", "model", "stream", "stream_options", "timeout")
    sent = {k: v for k, v in call.kwargs.items() if k not in hidden}
    format_key = call.api.format_field
    schema_sent = sent.pop(format_key, None)
    lines = [
        "ostruct dry run: nothing was sent.",
        f"model:   {model}",
        f"server:  {where} (profile {profile.name}"
        + (", from --server" if server_option else "")
        + ")",
        f"api:     {api}" + (" (stream)" if stream else ""),
        "request parameters: "
        + (", ".join(f"{k}={json.dumps(v)}" for k, v in sent.items()) or "(none)"),
        "",
    ]
    lines += _section("system prompt", system_prompt if system_prompt is not None else "(none)")
    lines += _section("user prompt", user_prompt)
    assert call.compiled is not None  # ostruct always sends a schema
    lines += _section(
        f"schema as sent ({format_key}, {'strict' if call.compiled.strict else 'not strict'})",
        json.dumps(schema_sent, indent=2, ensure_ascii=False),
    )
    lines += _section("tokens and cost", "\n".join(_tokens(call.kwargs, model, params, profile)))
    return "\n".join(lines).rstrip("\n") + "\n"


def _tokens(
    kwargs: Mapping[str, Any], model: str, params: Mapping[str, Any], profile: ServerProfile
) -> list[str]:
    caps = _capabilities(model)
    if caps is None:
        return [
            f"prompt tokens: unavailable: {model!r} is not in the model registry, so its "
            "tokenizer is unknown (ostruct does not guess).",
            "limits: not checked; cost: unknown (no prices for this model).",
        ]
    messages = kwargs.get("messages") or _chat_messages(kwargs.get("input") or [])
    prompt = count_message_tokens(messages, model)
    out: list[str] = [
        f"prompt tokens: {prompt:,} ({caps.encoding} tokenizer of {caps.canonical}, chat framing "
        "included; the response schema adds more and is not counted)"
    ]
    limit = next(
        (params[k] for k in ("max_output_tokens", "max_completion_tokens", "max_tokens")
         if params.get(k) is not None),
        None,
    )  # fmt: skip
    try:
        validate_token_limits(model, messages=messages, max_output_tokens=limit, registry=caps)
    except TokenLimitError as exc:
        # With a registry-checked server prepare_call has raised already; elsewhere it is advice.
        out.append(f"limits: WARNING: {exc}".replace("\n", " "))
    else:
        window = f"{caps.context_window:,}" if caps.context_window else "unknown"
        wanted = f" + {limit:,} max output" if limit else ""
        out.append(f"limits: ok ({prompt:,} prompt{wanted} within a context of {window})")
    if profile.capabilities(model).permissive_profile:
        out.append(
            f"note: the {profile.name} server profile does not enforce the registry's limits; "
            "the figures above are those of the registry model of that name."
        )
    output = limit if limit is not None else caps.max_output_tokens
    cost = estimate_cost(model, prompt, output or 0)
    if cost is None:
        out.append("cost: unknown (the registry has no prices for this model)")
    elif output:
        source = "--max-output-tokens" if limit is not None else "the model's output limit"
        out.append(
            f"cost: input {_usd(cost.input_cost)}; output at most {_usd(cost.output_cost)} "
            f"({output:,} tokens, {source}); total at most {_usd(cost.total)} {cost.currency}"
        )
    else:
        out.append(f"cost: input {_usd(cost.input_cost)} {cost.currency} (output not bounded)")
    return out


def _chat_messages(items: Any) -> list[dict[str, Any]]:
    """Responses API input back in chat form, for counting (text parts only)."""
    out = []
    for item in items:
        content = item.get("content")
        if isinstance(content, list):
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
        out.append({"role": item.get("role", "user"), "content": content})
    return out
