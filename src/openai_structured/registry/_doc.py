"""Render the registry as the Markdown table in docs/models.md (kept in sync by a test)."""

from __future__ import annotations

from ._registry import ModelRegistry

__all__ = ["render_models_table"]


def _num(v: int | None) -> str:
    return f"{v:,}" if v is not None else "-"


def _price(v: float | None) -> str:
    return f"${v:g}" if v is not None else "-"


def render_models_table(registry: ModelRegistry | None = None) -> str:
    """The packaged models as a Markdown table (defaults to the packaged data only)."""
    reg = registry if registry is not None else ModelRegistry(use_env=False, use_cache=False)
    head = (
        "| model | min version | context | max output | stream | APIs | effort | sampling "
        "| input $/1M | cached $/1M | output $/1M | unverified figures |\n"
        "|---|---|---:|---:|:---:|---|---|---|---:|---:|---:|---|\n"
    )
    rows = []
    for c in reg.models():
        effort = c.parameters.get("reasoning_effort")
        sampling = ("temperature", "top_p", "frequency_penalty", "presence_penalty")
        allowed = [p for p in sampling if p in c.parameters]
        conditional = [p for p in allowed if c.parameters[p].requires]
        if not allowed:
            samp = "none"
        elif conditional:
            samp = ", ".join(allowed) + " (only with effort none)"
        else:
            samp = "all"
        unverified = sorted(
            k for k, v in c.sources.items() if isinstance(v, dict) and not v.get("verified")
        )
        p = c.prices
        rows.append(
            f"| {c.canonical} | {c.min_version or '-'} | {_num(c.context_window)} "
            f"| {_num(c.max_output_tokens)} | {'yes' if c.supports_streaming else 'no'} "
            f"| {' + '.join(c.apis)} | {', '.join(effort.values) if effort else '-'} | {samp} "
            f"| {_price(p.input if p else None)} | {_price(p.cached_input if p else None)} "
            f"| {_price(p.output if p else None)} | {', '.join(unverified) or '-'} |"
        )
    return head + "\n".join(rows) + "\n"
