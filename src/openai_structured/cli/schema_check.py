"""``ostruct schema check FILE``: the schema compiler's report, before any request is paid for."""

from __future__ import annotations

import click

from ..schema import check_schema
from ._output import to_json

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
    from ._inputs import load_schema
    from ._output import emit
    from ._report import CliError

    try:
        doc = load_schema(file)
    except CliError as exc:
        # The same checks as `ostruct run` (regular file, size, JSON, an object, Unicode).
        click.echo(f"FAILED: {str(exc).removeprefix('SCHEMA ')}", err=True)
        raise SystemExit(1) from None
    try:
        report = check_schema(doc)
    except TypeError as exc:
        click.echo(f"FAILED: {file}: {exc}", err=True)
        raise SystemExit(1) from None
    text = report.format() + "\n"
    if show and report.schema is not None:
        text += "strict schema:\n" + to_json(report.schema, 2) + "\n"
    emit(text)
    raise SystemExit(0 if report.ok else 1)
