"""``ostruct schema check FILE``: the schema compiler's report, before any request is paid for.

A verdict holds for a kind of server: OpenAI, Azure and unknown servers (``compatible``) take
strict-mode schemas; vLLM, Ollama and llama.cpp servers (the embedded model among them) take
the schema as written. The check reports for the server ``ostruct run`` would use with the same
``--server``/``--base-url`` and environment (found offline, as a dry run finds it), says which,
and notes when strict mode could not use a schema that this server takes.
"""

from __future__ import annotations

from typing import Any

import click

from ..errors import SchemaError
from ..schema import SchemaReport, check_schema, compile_schema
from ._options import base_url_option, server_option
from ._output import to_json

__all__ = ["schema"]


@click.group("schema", context_settings={"help_option_names": ["-h", "--help"]})
def schema() -> None:
    """Work with JSON Schema files."""


def _plain(doc: dict[str, Any], name: str) -> SchemaReport:
    """The verdict for a server that takes the schema as written (no strict mode)."""
    try:
        compiled = compile_schema(doc, strict=False)
    except SchemaError as exc:
        return SchemaReport(name=name, ok=False, errors=[exc], changes=[])
    return SchemaReport(name=name, ok=True, errors=[], changes=[], schema=compiled.schema)


def _plain_text(report: SchemaReport, profile: str) -> str:
    """:meth:`SchemaReport.format` for a schema sent as written: the same lines, its own verdict."""
    if report.ok:
        head = (
            f"OK: schema {report.name!r} can be used as written (the {profile} profile sends "
            "plain JSON Schema: no strict-mode rewrites)"
        )
    else:
        head = f"FAILED: schema {report.name!r} cannot be sent ({len(report.errors)} problem(s))"
    rest = report.format().splitlines()[1:]
    return "\n".join([head, *rest])


@schema.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--show", is_flag=True, help="Also print the schema as it would be sent.")
@server_option()
@base_url_option("The server the verdict is for, as with ostruct run (default: the environment's).")
def check(file: str, show: bool, server: str | None, base_url: str | None) -> None:
    """Report whether FILE (a JSON Schema in JSON) can be used by the server `ostruct run` would
    use: in strict mode (OpenAI, Azure, other servers) or as written (vLLM, Ollama, llama.cpp,
    the embedded model).

    Lists every problem with its JSON-pointer path and a fix, and every rewrite the compiler
    makes. Exit code 0 when usable, 1 when not (or when FILE is not a JSON document), 5 when
    the server's profile cannot be told (a bad OPENAI_STRUCTURED_SERVER).
    """
    from ._client import ClientOptions, server_target
    from ._inputs import load_schema
    from ._output import emit
    from ._report import CliError, Secrets, report

    secrets = Secrets()
    secrets.add_url(base_url)
    try:
        doc = load_schema(file)
    except CliError as exc:
        # The same checks as `ostruct run` (regular file, size, JSON, an object, Unicode).
        click.echo(f"FAILED: {str(exc).removeprefix('SCHEMA ')}", err=True)
        raise SystemExit(1) from None
    try:
        target = server_target(ClientOptions(base_url=base_url, server=server))
    except CliError as exc:
        raise SystemExit(int(report(exc, secrets=secrets, verbose=False))) from None
    try:
        strict = check_schema(doc)
    except TypeError as exc:
        click.echo(f"FAILED: {file}: {exc}", err=True)
        raise SystemExit(1) from None
    profile = target.profile
    scope = f"server: {target.label(from_option=server is not None)}"
    if profile.strict_schema:
        verdict, label = strict, "strict schema"
        head, *rest = strict.format().splitlines()
    else:
        verdict, label = _plain(doc, strict.name), "schema as sent"
        head, *rest = _plain_text(verdict, profile.name).splitlines()
        if verdict.ok and not strict.ok:
            rest.append(
                f"note: strict mode (the openai, azure and compatible profiles) cannot use it "
                f"({len(strict.errors)} problem(s)); ostruct schema check --server openai "
                f"{file} lists them."
            )
    text = "\n".join([head, scope, *rest]) + "\n"
    if show and verdict.schema is not None:
        text += f"{label}:\n" + to_json(verdict.schema, 2) + "\n"
    emit(secrets.redact(text))
    raise SystemExit(0 if verdict.ok else 1)
