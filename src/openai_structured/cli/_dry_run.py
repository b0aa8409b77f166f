"""The pre-flight of ``ostruct run``, and its ``--dry-run`` report: everything a real run
checks, and what it would send, offline.

:func:`preflight` runs before every request, dry or not, and before a real run builds its
client (which may start the embedded model): the request is built by the same pure builder the
library uses (:func:`prepare_call`) for the profile of the server a real run would use, and
checked against ``--max-total-tokens`` as the library checks each attempt. So the verdicts
(model, parameters, schema, token limits, budget) and the exit codes of a dry run and a real
run are the same, and a real run fails before it starts anything. Token counts use the model's
real tokenizer (tiktoken, seeded from the packaged encodings, so no download); a model the
registry does not know gets no count rather than a guess. When the embedded local model would
answer, whatever the model name, the counts, the context and the cost are its own
(:mod:`._embedded`).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any, Literal

from .._reask import Budget
from .._request import PreparedCall, prepare_call
from ..errors import OpenAIClientError, TokenLimitError
from ..registry import ModelCapabilities, get_registry
from ..servers import ServerProfile
from ..tokens import count_message_tokens, estimate_cost, validate_token_limits
from ._client import ServerTarget
from ._embedded import EmbeddedFacts, check_embedded_limits, embedded_token_lines, request_messages
from ._report import in_cli_words

__all__ = ["dry_run_report", "preflight", "unknown_model_note"]


def _capabilities(model: str) -> ModelCapabilities | None:
    try:
        return get_registry().get_capabilities(model)
    except OpenAIClientError:
        return None


def _usd(value: float) -> str:
    return f"${value:,.6f}".rstrip("0").rstrip(".") if value else "$0"


def _section(title: str, body: str) -> list[str]:
    return [f"--- {title} ---", body.rstrip("\n"), ""]


def preflight(
    *,
    model: str,
    api: Literal["chat", "responses"],
    profile: ServerProfile,
    system_prompt: str | None,
    user_prompt: str,
    schema: Mapping[str, Any],
    params: Mapping[str, Any],
    extra: Mapping[str, Any],
    stream: bool,
    max_total_tokens: int | None,
    embedded: EmbeddedFacts | None = None,
) -> PreparedCall:
    """The request a run would send, checked; raises what the library would raise before the
    first request (and nothing is sent either way). With ``embedded`` (the embedded model
    answers), the prompt is also checked against its server's context, in its own tokens."""
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
    # The first attempt's check; re-asks are checked again by the library as they come.
    Budget(max_total_tokens, model, call.limit.requested).check(call.kwargs, ())
    if embedded is not None:
        check_embedded_limits(call, params, embedded)
    return call


def unknown_model_note(model: str, profile: ServerProfile) -> str | None:
    """For a name the registry does not know on a server that takes any name: that the server
    decides what it means, and the closest registry name (a typo?). None otherwise."""
    registry = get_registry()
    if registry.knows(model) or not profile.capabilities(model).permissive_profile:
        return None
    close = difflib.get_close_matches(model, registry.aliases() + registry.dated_names(), n=1)
    guess = f"; did you mean {close[0]}?" if close else ""
    return (
        f"the model registry does not know {model!r}: the server (profile {profile.name}) "
        f"decides what it means{guess}"
    )


def dry_run_report(
    call: PreparedCall,
    *,
    target: ServerTarget,
    system_prompt: str | None,
    user_prompt: str,
    params: Mapping[str, Any],
    server_option: str | None,
    max_total_tokens: int | None,
    embedded: EmbeddedFacts | None = None,
) -> str:
    """The dry-run report (for stdout) of a request :func:`preflight` has checked."""
    model, profile = call.model, target.profile
    # Prompts, schema and model have their own lines; stream/timeout are transport settings.
    hidden = ("messages", "input", "model", "stream", "stream_options", "timeout")
    sent = {k: v for k, v in call.kwargs.items() if k not in hidden}
    format_key = call.api.format_field
    schema_sent = sent.pop(format_key, None)
    if embedded is not None:
        # It answers every name: what the registry knows of the name does not matter.
        model_line = f"{model} (answered by {embedded.label}, which serves every model name)"
    else:
        note = unknown_model_note(model, profile)
        model_line = model + (f" (note: {note})" if note else "")
    lines = [
        "ostruct dry run: nothing was sent.",
        f"model:   {model_line}",
        f"server:  {target.label(from_option=server_option is not None)}",
        f"api:     {call.api.name}" + (" (stream)" if call.stream else ""),
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
    if embedded is not None:
        tokens = embedded_token_lines(call, params, embedded)
    else:
        tokens = _tokens(call.kwargs, model, params, profile)
    if max_total_tokens is not None:
        tokens.append(
            f"budget: ok (the first request fits --max-total-tokens {max_total_tokens}; each "
            "re-ask is checked before it is sent)"
        )
    lines += _section("tokens and cost", "\n".join(tokens))
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
    messages = request_messages(kwargs)
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
        out.append(f"limits: WARNING: {in_cli_words(str(exc))}".replace("\n", " "))
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
