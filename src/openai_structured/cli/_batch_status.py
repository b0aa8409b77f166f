"""``ostruct batch --status OUT.jsonl`` and ``--cancel OUT.jsonl``: the Batch API batches of
a run, read from its journal without taking its lock (the run may be polling them)."""

from __future__ import annotations

from typing import Any

import click
import openai

from ._client import ClientOptions
from ._report import Secrets
from .exit_codes import ExitCode

__all__ = ["batches_command"]

_TERMINAL = frozenset({"completed", "expired", "cancelled", "failed"})


def batches_command(
    *,
    secrets: Secrets,
    status_of: str | None,
    cancel_of: str | None,
    base_url: str | None,
    api_key_env: str | None,
    server: str | None,
    max_retries: int | None,
    **_: Any,
) -> ExitCode:
    from ..bulk import Journal
    from ._client import build_client

    if status_of is not None and cancel_of is not None:
        raise click.UsageError("Give --status or --cancel, not both.")
    output = status_of if status_of is not None else cancel_of
    assert output is not None
    parts = Journal.read_batch_parts(output)
    if not parts:
        click.echo(f"{output}: no Batch API batches (the run used the live backend, or has not "
                   "sent any yet)")  # fmt: skip
        return ExitCode.OK
    secrets.add_env(api_key_env)
    secrets.add_url(base_url)
    running = [p for p in parts if p.batch_id is not None and p.state != "ended"]
    if cancel_of is not None and not running:
        click.echo("nothing to cancel: every batch of this run has ended")
        return ExitCode.OK
    # The server is asked only about batches still running: a finished run needs no key.
    client: Any = None
    if running:
        client = build_client(
            ClientOptions(base_url, api_key_env, server, max_retries), secrets, asynchronous=False
        )
    if cancel_of is not None:
        return _cancel(client, running)
    rows = [("part", "batch", "status", "completed", "failed", "total", "file")]
    unreachable: BaseException | None = None
    for part in parts:
        status, counts = part.status or part.state, dict(part.counts or {})
        if part in running and unreachable is None:
            try:
                live = client.batches.retrieve(part.batch_id)  # the server's word
            except openai.APIConnectionError as exc:
                unreachable = exc
            else:
                status = live.status
                rc = live.request_counts
                if rc is not None:
                    counts = {"completed": rc.completed, "failed": rc.failed, "total": rc.total}
        if part in running and unreachable is not None:
            status = f"{status} (last seen)"
        rows.append((
            str(part.part), part.batch_id or f"(not created: {part.state})", status,
            f"{counts.get('completed', 0):,}", f"{counts.get('failed', 0):,}",
            f"{counts.get('total', part.lines):,}", part.file_id or "-",
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    click.echo(f"{output}: {len(parts)} batch file{'s' if len(parts) != 1 else ''}")
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())
    if unreachable is not None:
        click.echo(
            f"ostruct batch: the server could not be reached ({secrets.redact(str(unreachable))}):"
            " the statuses marked 'last seen' are the journal's",
            err=True,
        )
        return ExitCode.API
    return ExitCode.OK


def _cancel(client: Any, running: list[Any]) -> ExitCode:
    for part in running:
        try:
            batch = client.batches.cancel(part.batch_id)
        except (openai.ConflictError, openai.NotFoundError) as exc:  # it ended meanwhile
            click.echo(f"not cancelled {part.batch_id} (part {part.part}): {exc.message}")
            continue
        click.echo(f"cancelling {batch.id} (part {part.part}): {batch.status}")
    click.echo(
        "answered lines are kept; run the same ostruct batch command to collect them and send "
        "the rest"
    )
    return ExitCode.OK
