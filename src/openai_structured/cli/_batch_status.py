"""``ostruct batch --status OUT.jsonl`` and ``--cancel OUT.jsonl``: the Batch API batches of
a run, read from its journal without taking its lock (the run may be polling them)."""

from __future__ import annotations

from typing import Any

import click

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
    client = build_client(
        ClientOptions(base_url, api_key_env, server, max_retries), secrets, asynchronous=False
    )
    if cancel_of is not None:
        return _cancel(client, parts)
    rows = [("part", "batch", "status", "completed", "failed", "total", "file")]
    for part in parts:
        status, counts = part.status or part.state, dict(part.counts or {})
        if part.batch_id is not None and part.state != "ended":
            live = client.batches.retrieve(part.batch_id)  # the server's word, not the journal's
            status = live.status
            rc = live.request_counts
            if rc is not None:
                counts = {"completed": rc.completed, "failed": rc.failed, "total": rc.total}
        rows.append((
            str(part.part), part.batch_id or f"(not created: {part.state})", status,
            f"{counts.get('completed', 0):,}", f"{counts.get('failed', 0):,}",
            f"{counts.get('total', part.lines):,}", part.file_id or "-",
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    click.echo(f"{output}: {len(parts)} batch file{'s' if len(parts) != 1 else ''}")
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return ExitCode.OK


def _cancel(client: Any, parts: list[Any]) -> ExitCode:
    running = [p for p in parts if p.batch_id is not None and p.state != "ended"]
    if not running:
        click.echo("nothing to cancel: every batch of this run has ended")
        return ExitCode.OK
    for part in running:
        batch = client.batches.cancel(part.batch_id)
        click.echo(f"cancelling {batch.id} (part {part.part}): {batch.status}")
    click.echo(
        "answered lines are kept; run the same ostruct batch command to collect them and send "
        "the rest"
    )
    return ExitCode.OK
