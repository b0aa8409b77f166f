"""``ostruct schema check FILE``: the schema compiler's report, before any request is paid for."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..schema import check_schema

__all__ = ["schema"]


@click.group("schema", context_settings={"help_option_names": ["-h", "--help"]})
def schema() -> None:
    """Work with JSON Schema files."""


@schema.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--show", is_flag=True, help="Also print the strict schema that would be sent.")
def check(file: str, show: bool) -> None:
    """Report whether FILE (a JSON Schema in JSON) works in OpenAI strict mode.

    Lists every problem with its JSON-pointer path and a fix, and every rewrite the compiler
    makes. Exit code 0 when usable, 1 when not (or when FILE is not a JSON document).
    """
    try:
        doc = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        click.echo(f"FAILED: cannot read {file}: {reason}", err=True)
        raise SystemExit(1) from None
    except json.JSONDecodeError as exc:
        click.echo(f"FAILED: {file}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}", err=True)
        raise SystemExit(1) from None
    try:
        report = check_schema(doc)
    except TypeError as exc:
        click.echo(f"FAILED: {file}: {exc}", err=True)
        raise SystemExit(1) from None
    click.echo(report.format())
    if show and report.schema is not None:
        click.echo("strict schema:")
        click.echo(json.dumps(report.schema, indent=2, ensure_ascii=False))
    raise SystemExit(0 if report.ok else 1)
