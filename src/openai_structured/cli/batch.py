"""``ostruct batch``: one template and schema over every record of a JSONL, CSV, directory or
stdin input, into ``OUT.jsonl``: one line per record, journaled, resumable (docs/bulk.md)."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import click

from ._client import ClientOptions
from ._options import choose_model, render_limits, shared_options
from ._report import Secrets, report
from .exit_codes import ExitCode, epilog


@click.command(
    "batch",
    epilog=epilog(),
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.argument("template", type=click.Path(dir_okay=False), required=False)
@click.argument("schema", type=click.Path(dir_okay=False), required=False)
@click.option(
    "-i",
    "--input",
    "input_path",
    default=None,
    metavar="IN",
    help="Records: a .jsonl or .csv file (keys/columns are template variables; 'id' names "
    "the record, else its number), a directory (one record per file, as 'file'), or - (JSONL "
    "on stdin).",
)
@click.option(
    "-o",
    "--output",
    default=None,
    metavar="OUT.jsonl",
    type=click.Path(dir_okay=False),
    help="One line per record, {id, result} or {id, error}; rerunning resumes it.",
)
@click.option(
    "--format",
    "input_format",
    type=click.Choice(["jsonl", "csv", "dir"]),
    default=None,
    help="Read IN as this format whatever its name.",
)
@click.option(
    "--glob",
    "globs",
    multiple=True,
    metavar="PATTERN",
    help="A directory input: only files matching PATTERN (repeatable; default *).",
)
@click.option("--recursive", is_flag=True, help="A directory input: include subdirectories.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Requests in flight at most (default 16; 1 on the embedded model).",
)
@click.option("--rpm", type=click.IntRange(min=1), default=None, help="Requests per minute.")
@click.option("--tpm", type=click.IntRange(min=1), default=None, help="Tokens per minute.")
@click.option(
    "--rate-window",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="The seconds --rpm/--tpm (and the server's limits) are per; for test servers.",
)
@click.option(
    "--max-cost",
    type=click.FloatRange(min=0),
    default=None,
    metavar="USD",
    help="Stop before a request would take the estimated cost over USD (exit 8).",
)
@click.option(
    "--max-requests",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Send at most N requests in this run (exit 8 when more were needed).",
)
@click.option("--retry-failed", is_flag=True, help="Request again the records that failed.")
@click.option(
    "--backend",
    type=click.Choice(["live", "openai-batch"]),
    default="live",
    show_default=True,
    help="live: one request per record now. openai-batch: the OpenAI Batch API (half the "
    "price, answers within 24 h; rerun the same command to go on after a stop).",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="--backend openai-batch: first wait between status checks; it grows by half each "
    "time, to 30 times this (5 minutes by default).",
)
@click.option(
    "--batch-lines",
    type=click.IntRange(min=1, max=50_000),
    default=50_000,
    show_default=True,
    metavar="N",
    help="--backend openai-batch: requests per batch file at most.",
)
@click.option(
    "--write-requests",
    default=None,
    metavar="REQUESTS.jsonl",
    type=click.Path(dir_okay=False),
    help="Write the requests the records still need to REQUESTS.jsonl, in the OpenAI batch "
    "format (vllm run-batch reads it); send nothing. OUT's journal remembers them.",
)
@click.option(
    "--import-results",
    default=None,
    metavar="RESULTS.jsonl",
    type=click.Path(dir_okay=False, exists=True),
    help="Decode a batch result file (the OpenAI batch output format, as vllm run-batch "
    "writes it) for the requests of --write-requests into OUT; send nothing.",
)
@click.option(
    "--status",
    "status_of",
    default=None,
    metavar="OUT.jsonl",
    type=click.Path(dir_okay=False),
    help="Show the Batch API batches of OUT.jsonl and their counts; send nothing else.",
)
@click.option(
    "--cancel",
    "cancel_of",
    default=None,
    metavar="OUT.jsonl",
    type=click.Path(dir_okay=False),
    help="Cancel the running Batch API batches of OUT.jsonl (answered lines are kept; the "
    "same command then sends the rest).",
)
@shared_options
@click.option(
    "--dry-run",
    is_flag=True,
    help="Count the records, tokens and estimated cost of the whole run; send nothing.",
)
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
def batch(**kwargs: Any) -> None:
    """Render TEMPLATE for every record of IN and write one JSON line per record to OUT.

    Rerunning the same command resumes: records already in OUT are not requested again. A
    progress bar shows on a terminal; in a pipe only the final summary line is printed
    (stderr).
    """
    secrets = Secrets()
    try:
        if kwargs["status_of"] is not None or kwargs["cancel_of"] is not None:
            from ._batch_status import batches_command

            code = batches_command(secrets=secrets, **kwargs)
        else:
            code = _batch(secrets=secrets, **kwargs)
    except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        raise
    except (Exception, KeyboardInterrupt) as exc:
        code = report(exc, secrets=secrets, verbose=kwargs["verbose"])
        summary = getattr(exc, "summary", None)
        if summary is not None:
            click.echo(secrets.redact(_summary_line(summary, stopped=True)), err=True)
        if isinstance(exc, KeyboardInterrupt):
            click.echo("ostruct: journal consistent; run the same command to go on.", err=True)
    raise SystemExit(int(code))


def _batch(
    *,
    secrets: Secrets,
    template: str | None,
    schema: str | None,
    input_path: str | None,
    output: str | None,
    input_format: str | None,
    globs: tuple[str, ...],
    recursive: bool,
    concurrency: int | None,
    rpm: int | None,
    tpm: int | None,
    rate_window: float,
    max_cost: float | None,
    max_requests: int | None,
    retry_failed: bool,
    backend: str,
    poll_interval: float,
    batch_lines: int,
    write_requests: str | None,
    import_results: str | None,
    status_of: str | None,
    cancel_of: str | None,
    allow: tuple[str, ...],
    max_file_size: int | None,
    max_total_size: int | None,
    model: str | None,
    system_prompt: str | None,
    system_prompt_file: str | None,
    temperature: float | None,
    top_p: float | None,
    frequency_penalty: float | None,
    presence_penalty: float | None,
    reasoning_effort: str | None,
    max_output_tokens: int | None,
    seed: int | None,
    api: Literal["chat", "responses"],
    base_url: str | None,
    api_key_env: str | None,
    server: str | None,
    template_timeout: float | None,
    template_limits: tuple[str, ...],
    timeout: float | None,
    max_retries: int | None,
    max_validation_retries: int,
    max_total_tokens: int | None,
    dry_run: bool,
    verbose: bool,
) -> ExitCode:
    from ..bulk import BulkRun, count_records, read_records
    from ..templates import (
        DEFAULT_MAX_FILE_SIZE,
        DEFAULT_MAX_TOTAL_SIZE,
        PathPolicy,
        render_template,
    )
    from ..templates.front_matter import split_front_matter
    from ._client import build_client, dry_run_target
    from ._inputs import check_template_file, load_schema, read_system_prompt_file

    if template is None or schema is None:
        raise click.UsageError(
            f"Missing argument '{'TEMPLATE' if template is None else 'SCHEMA'}'. (--status and "
            "--cancel OUT.jsonl are the only forms without TEMPLATE and SCHEMA.)"
        )
    if input_path is None or output is None:
        flag = "'-i' / '--input'" if input_path is None else "'-o' / '--output'"
        raise click.UsageError(f"Missing option {flag}.")
    if system_prompt is not None and system_prompt_file is not None:
        raise click.UsageError("Give --system-prompt or --system-prompt-file, not both.")
    connection = ClientOptions(base_url, api_key_env, server, max_retries)
    secrets.add_env(api_key_env)
    secrets.add_url(base_url)
    policy = PathPolicy(
        allowed_dirs=allow,
        max_file_size=max_file_size or DEFAULT_MAX_FILE_SIZE,
        max_total_size=max_total_size or DEFAULT_MAX_TOTAL_SIZE,
    )
    check_template_file(template, policy.max_file_size)
    front, _, _ = split_front_matter(Path(template).read_text(encoding="utf-8"), template)
    model_name = choose_model(model, front, template)
    schema_doc = load_schema(schema, policy.max_file_size)
    if system_prompt_file is not None:
        system_prompt = read_system_prompt_file(system_prompt_file, policy)
    limits = render_limits(template_limits, template_timeout)
    stdin = sys.stdin.buffer if input_path == "-" else None
    pattern: str | list[str] = list(globs) or "*"

    def records() -> Any:
        return read_records(
            input_path, format=input_format, stream=stdin, policy=policy, pattern=pattern,
            recursive=recursive,
        )  # fmt: skip

    def request(record: Any) -> Mapping[str, Any]:
        rendered = render_template(Path(template), record.variables, limits=limits)
        system = system_prompt if system_prompt is not None else rendered.system_prompt
        return {"system_prompt": system or None, "user_prompt": rendered.text}

    params = {
        "temperature": temperature,
        "top_p": top_p,
        "frequency_penalty": frequency_penalty,
        "presence_penalty": presence_penalty,
        "reasoning_effort": reasoning_effort,
        "max_output_tokens": max_output_tokens,
        "seed": seed,
        "timeout": timeout,
        "server": server,
        "max_total_tokens": max_total_tokens,
    }
    options: dict[str, Any] = {k: v for k, v in params.items() if v is not None}
    options["api"] = api
    if max_validation_retries:
        options["max_validation_retries"] = max_validation_retries

    if dry_run:
        from ._batch_report import dry_run_totals

        profile, where = dry_run_target(connection)
        text = dry_run_totals(
            records(), request, model=model_name, schema=schema_doc,
            profile=profile, where=where, options=options,
            batch_lines=batch_lines if backend == "openai-batch" else None,
        )  # fmt: skip
        click.echo(secrets.redact(text))
        return ExitCode.OK

    total = None
    if input_path != "-":
        total = count_records(
            input_path, format=input_format, policy=policy, pattern=pattern, recursive=recursive
        )
    chosen: Any = None
    if write_requests is not None or import_results is not None:
        from ..bulk import BatchFiles

        if write_requests is not None and import_results is not None:
            raise click.UsageError("Give --write-requests or --import-results, not both.")
        if backend != "live":
            raise click.UsageError(
                "--write-requests and --import-results are for another engine's batch runs; "
                "leave out --backend."
            )
        chosen = BatchFiles(write_requests=write_requests, import_results=import_results)
        client = None
    else:
        client = build_client(connection, secrets, asynchronous=True)
    if backend == "openai-batch":
        from ..bulk import OpenAIBatch

        chosen = OpenAIBatch(
            poll_interval=poll_interval, max_poll_interval=poll_interval * 30,
            max_lines=batch_lines,
        )  # fmt: skip
    run = BulkRun(
        model=model_name, request=request, schema=schema_doc, client=client, output=output,
        concurrency=concurrency, rpm=rpm, tpm=tpm, rate_window=rate_window, max_cost=max_cost,
        max_requests=max_requests, retry_failed=retry_failed,
        max_retries=2 if max_retries is None else max_retries, backend=chosen, **options,
    )  # fmt: skip
    from ._batch_report import Progress
    from ._progress import stderr_is_tty

    with Progress(run, total, enabled=stderr_is_tty()) as progress:
        for outcome in run.run(records()):
            progress.advance(outcome)
    assert run.summary is not None
    click.echo(secrets.redact(_summary_line(run.summary, stopped=False)), err=True)
    for note in run.notes:
        click.echo(f"ostruct batch: {secrets.redact(note)}", err=True)
    if run.duplicates:
        click.echo(
            f"ostruct batch: {run.duplicates} record(s) left out (DuplicateIdError): their id "
            "repeats an earlier record's; give each record its own id",
            err=True,
        )
    failed = run.summary.output.failed + run.duplicates
    if import_results is not None:
        failed += run.waiting  # not in the output yet: another round is needed
    return ExitCode.PARTIAL if failed else ExitCode.OK


def _summary_line(summary: Any, *, stopped: bool) -> str:
    from ._batch_report import summary_line

    return summary_line(summary, stopped=stopped, now=time.time())
