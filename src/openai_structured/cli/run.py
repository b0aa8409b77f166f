"""``ostruct run TEMPLATE SCHEMA``: render a template, ask the model, print schema-valid JSON.

stdout carries only the result (or the dry-run report); everything else goes to stderr. Each
failure class has its own exit code (:mod:`.exit_codes`). Every option maps to something that
is really sent or really checked: the sampling flags become request fields, the system prompt
becomes its own message, and the dry run runs the same pre-flight checks as a real call.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from .._logging import LogEvent
from ..errors import OpenAIClientError, TokenBudgetError
from ._client import ClientOptions
from ._options import DEFAULT_MODEL, choose_model, render_limits, shared_options
from ._report import CliError, Secrets, in_cli_words, report
from .exit_codes import ExitCode, epilog

if TYPE_CHECKING:
    from .._usage import StructuredResult, TokenUsage, UsageTotals
    from ..servers import ServerProfile
    from ..templates import PathPolicy

__all__ = ["DEFAULT_MODEL", "run"]


#: Used when neither --model nor the template's front matter names a model.
def _usage_line(model: str, usage: Mapping[str, Any], *, priced: bool) -> str:
    """Tokens used and, when the server is one the registry's prices apply to, the cost."""
    from ..tokens import estimate_cost

    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return f"usage: {json.dumps(dict(usage))}"
    details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    cached = details.get("cached_tokens", 0) if isinstance(details, Mapping) else 0
    line = f"usage: {prompt:,} prompt + {completion:,} completion tokens"
    if not priced:
        # A local or third-party server may serve any model under an OpenAI name: no price.
        return line
    try:
        cost = estimate_cost(model, prompt, completion, cached_input_tokens=min(cached, prompt))
    except OpenAIClientError:
        cost = None
    if cost is not None:
        line += f"; estimated cost ${cost.total:.6f}"
    return line


def _verbose_logger(
    model: str, *, priced: bool, secrets: Secrets, answered_by: str | None = None
) -> Callable[[LogEvent, str], None]:
    """An ``on_log`` callback for --verbose: requests, retries, errors and usage on stderr.

    ``answered_by`` names the model that answers whatever the request's name (the embedded
    model), so the log does not suggest that the name sent is the model at work.

    The library has already redacted the event data; ``secrets`` also masks what only the CLI
    knows (``-V`` variables with a secret-like name, the URL's password). Per-chunk events are
    skipped: they would drown the terminal and cost time on long streams.
    """

    def echo(line: str) -> None:
        click.echo(secrets.redact(line), err=True)

    def on_log(event: LogEvent, level: str) -> None:
        data = dict(event.data)
        if event.type == "request.start":
            params = data.get("parameters") or {}
            shown = {k: v for k, v in params.items() if k not in ("response_format", "text")}
            served = f" (answered by {answered_by})" if answered_by else ""
            echo(
                f"[ostruct] request: model={data.get('model')}{served} api={data.get('api')} "
                f"stream={data.get('stream')} parameters={json.dumps(shown, default=str)}"
            )
        elif event.type in ("request.end", "stream.end"):
            latency = data.get("latency_s")
            timing = f" in {latency:.2f} s" if isinstance(latency, float) else ""
            echo(f"[ostruct] response {data.get('response_id')}{timing}")
            usage = data.get("usage")
            if isinstance(usage, Mapping):
                echo(f"[ostruct] {_usage_line(model, usage, priced=priced)}")
        elif event.type == "retry" and data.get("reason") == "validation":
            echo(_retry_line(data))
        elif event.type in ("retry", "error"):
            echo(f"[ostruct] {event.type}: {json.dumps(data, default=str)}")

    return on_log


#: Characters of an error quoted in a --verbose retry line.
_MAX_ERROR_TEXT = 300


def _retry_line(data: Mapping[str, Any]) -> str:
    """A validation re-ask, readably: which attempt failed, why (the error's first line, and
    its first detail when that line only announces the list), and that the model is asked again."""
    error = in_cli_words(str(data.get("error") or ""))
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    if not lines:
        reason = "no error text"
    elif len(lines) > 1 and lines[0].endswith(":"):
        reason = f"{lines[0]} {lines[1]}"
    else:
        reason = lines[0]
    if len(reason) > _MAX_ERROR_TEXT:
        reason = reason[: _MAX_ERROR_TEXT - 3] + "..."
    attempt, limit = data.get("attempt"), data.get("max_validation_retries")
    response = data.get("response_id")
    of = f" of {limit}" if limit is not None else ""
    source = f" (response {response})" if response else ""
    return (
        f"[ostruct] retry {attempt}{of}: attempt {attempt} failed validation{source}; "
        f"asking again with the errors: {reason}"
    )


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def _money(amount: float) -> str:
    """``$0.0031``, ``$1.50``: up to six decimals, at least two."""
    text = f"{amount:.6f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


def _totals_line(
    model: str,
    usage: TokenUsage,
    *,
    attempts: int | None,
    cost_usd: float | None,
    unpriced: str | None,
    scope: str = "",
    free: str | None = None,
) -> str:
    """The --usage line: requests, tokens (cached and reasoning parts), total, estimated cost
    (``free``: the model that answered runs on this machine, at no price)."""
    requests = _plural(usage.requests, "request")
    if attempts is not None:
        requests += f" ({_plural(attempts, 'attempt')})"
    line = (
        f"ostruct: usage{scope}: {requests}, "
        f"{usage.prompt_tokens:,} prompt tokens ({usage.cached_tokens:,} cached), "
        f"{usage.completion_tokens:,} completion tokens ({usage.reasoning_tokens:,} reasoning), "
        f"{usage.total_tokens:,} total"
    )
    if usage.unreported:
        line += f" ({_plural(usage.unreported, 'response')} without usage figures)"
    if free is not None:
        return line + f"; cost $0 ({free} runs on this machine)"
    if unpriced is not None:
        return line + f"; price unknown ({unpriced})"
    if cost_usd is None:
        return line + f"; price unknown (no prices for {model})"
    return line + f"; estimated cost {_money(cost_usd)} ({model} prices from the model registry)"


def _price(model: str, usage: TokenUsage) -> float | None:
    from ..tokens import estimate_cost

    try:
        cost = estimate_cost(
            model,
            usage.prompt_tokens,
            usage.completion_tokens,
            cached_input_tokens=min(usage.cached_tokens, usage.prompt_tokens),
        )
    except OpenAIClientError:
        return None
    return cost.total if cost is not None else None


def _unpriced(profile: ServerProfile, model: str) -> str | None:
    """Why the registry's prices do not apply to ``model`` on this server (None: they do)."""
    try:
        permissive = profile.capabilities(model).permissive_profile
    except OpenAIClientError:  # an unknown model on OpenAI: the call reports it, unsent
        return None
    if not permissive:
        return None
    if profile.registry == "off":
        # Such a server may serve any model under an OpenAI name.
        return f"the {profile.name} profile does not use the registry's prices"
    return f"no prices for {model}"


def _usage_from_error(exc: BaseException) -> tuple[TokenUsage, int | None, bool] | None:
    """What a failed stream spent, from its error: (usage, attempts, complete?), None when
    unknown.

    A ``TokenBudgetError`` carries the earlier attempts' usage summed (complete). Any other
    error carries its own attempt's ``usage``: complete when there were no re-asks, else only
    the last attempt (the stream's summary is not kept on failure)."""
    from .._usage import TokenUsage

    usage = getattr(exc, "usage", None)
    if not isinstance(usage, Mapping):
        return None
    if isinstance(exc, TokenBudgetError):
        names = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")
        figures = {
            name: value
            for name in (*names, "requests")
            if isinstance(value := usage.get(name), int)
        }
        return TokenUsage(**figures), len(exc.attempts), True
    if getattr(exc, "attempts", ()):
        return TokenUsage.from_api(usage), None, False
    return TokenUsage.from_api(usage), 1, True


@dataclass
class _Spending:
    """What the run spent, filled in as it goes, for --usage and --verbose."""

    #: Set once a request is about to be sent (None: nothing was, e.g. a dry run).
    model: str | None = None
    #: Why no cost is estimated (None: the registry's prices apply).
    unpriced: str | None = None
    #: The model that answered runs on this machine (the embedded model): cost $0.
    free: str | None = None
    #: Calls: every attempt of the call, failed ones included.
    totals: UsageTotals | None = None
    #: A finished run: the result's usage and cost.
    result: StructuredResult[Any] | None = None

    def line(self, error: BaseException | None = None) -> str | None:
        model = self.model
        if model is None:
            return None
        if self.result is not None:
            result = self.result
            return _totals_line(
                model, result.usage, attempts=result.attempts, cost_usd=result.cost_usd,
                unpriced=self.unpriced, free=self.free,
            )  # fmt: skip
        if self.totals is not None and self.totals.calls:
            totals = self.totals
            return _totals_line(
                model, totals.usage, attempts=totals.attempts,
                cost_usd=None if totals.unpriced else totals.cost_usd, unpriced=self.unpriced,
                free=self.free,
            )  # fmt: skip
        if isinstance(error, TokenBudgetError) and not getattr(error, "usage", None):
            return "ostruct: usage: nothing was sent (0 tokens)"
        found = None if self.totals is not None or error is None else _usage_from_error(error)
        if found is None or not found[0].requests:
            return "ostruct: usage: no tokens reported (no answer was received)"
        usage, attempts, complete = found
        return _totals_line(
            model, usage, attempts=attempts, cost_usd=_price(model, usage),
            unpriced=self.unpriced, scope="" if complete else " (last attempt only)",
            free=self.free,
        )  # fmt: skip


def _collect_variables(
    *,
    files: Sequence[str],
    dirs: Sequence[str],
    values: Sequence[str],
    json_values: Sequence[str],
    globs: Sequence[str],
    recursive: bool,
    policy: PathPolicy,
) -> dict[str, Any]:
    from ..templates import collect_inputs, read_stdin

    # Piped stdin becomes the variable ``stdin``; an empty pipe or /dev/null (cron, CI) does not
    # define it, so `-V stdin=...` and templates that test `stdin is defined` keep working.
    stdin = read_stdin(policy=policy) or None
    return collect_inputs(
        files=files,
        dirs=dirs,
        values=values,
        json_values=json_values,
        stdin=stdin,
        policy=policy,
        pattern=list(globs) if globs else "*",
        recursive=recursive,
    )


def _result_from_stream(
    client: Any,
    model: str,
    schema: Mapping[str, Any],
    options: Mapping[str, Any],
    spending: _Spending | None = None,
    answering: str | None = None,
) -> StructuredResult[Any]:
    """Run a streaming call; draw the partial object on a terminal; return the final value
    with the usage and cost of every attempt (the ``Finished`` event's summary). When the
    stream fails, what its attempts spent goes into ``spending``."""
    from ..client import openai_structured_events
    from ..streaming import Finished, PartialUpdate
    from ._progress import LiveObject, stderr_is_tty

    live_view = stderr_is_tty()
    result: StructuredResult[Any] | None = None
    finished = False
    with (
        openai_structured_events(
            client=client, model=model, schema=schema, partials=live_view, items=False, **options
        ) as events,
        LiveObject(enabled=live_view, title=f"{answering or model}: answer so far") as live,
    ):
        try:
            for event in events:
                if isinstance(event, PartialUpdate):
                    if live.wants_update():
                        live.update(event.snapshot())
                elif isinstance(event, Finished):
                    result, finished = event.summary, True
        except BaseException:
            summary = events.summary
            if spending is not None and summary is not None and summary.usage.requests:
                spending.result = summary  # every attempt, the failed one too
            raise
    if not finished:
        raise RuntimeError("the stream ended without a Finished event")
    if result is None:
        raise RuntimeError("the stream's Finished event carries no summary")
    return result


@contextlib.contextmanager
def _local_notices(verbose: bool) -> Iterator[None]:
    """With --verbose, the embedded model's start notice on stderr every time. Without, the
    library's rule holds: once per terminal session, and never in a pipe."""
    if not verbose:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[ostruct] %(message)s"))
    logger = logging.getLogger("openai_structured.local")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_text(what: str, text: str | None) -> None:
    """Refuse text UTF-8 cannot carry (a lone surrogate: an undecodable byte in a -V value on
    the command line, or a \\uD800-style escape in -J or front matter) before it is sent."""
    found = _SURROGATE.search(text or "")
    if found is not None:
        raise CliError(
            f"{what} holds U+{ord(found.group()):04X} at character {found.start()}, a lone "
            "surrogate, which is not Unicode text and cannot be sent.\n"
            "Check the -V/-J values and the files it came from (an undecodable byte in a "
            "command-line argument, or an unpaired \\uD800-\\uDFFF escape in JSON).",
            ExitCode.INPUT,
        )


@click.command(
    "run",
    epilog=epilog(),
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.argument("template", type=click.Path(dir_okay=False))
@click.argument("schema", type=click.Path(dir_okay=False))
@click.option(
    "-f",
    "--file",
    "files",
    multiple=True,
    metavar="NAME=PATH",
    help="A file as variable NAME (content read when the template uses it).",
)
@click.option(
    "-d",
    "--dir",
    "dirs",
    multiple=True,
    metavar="NAME=DIR",
    help="The files of a directory as list variable NAME.",
)
@click.option(
    "--glob",
    "globs",
    multiple=True,
    metavar="PATTERN",
    help="Only files matching PATTERN in -d directories (repeatable; default *).",
)
@click.option("--recursive", is_flag=True, help="Include subdirectories of -d directories.")
@click.option(
    "--allow-empty",
    is_flag=True,
    help="Send even when a -d matches no file or the prompt has no text (refused by default).",
)
@click.option(
    "-V", "--var", "values", multiple=True, metavar="NAME=VALUE", help="A string variable."
)
@click.option(
    "-J",
    "--json-var",
    "json_values",
    multiple=True,
    metavar="NAME=JSON",
    help="A variable parsed from JSON.",
)
@shared_options
@click.option(
    "--stream", is_flag=True, help="Stream; on a terminal, show the object filling in on stderr."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Render, check, count tokens and estimate cost; print to stdout; send nothing.",
)
@click.option(
    "-o",
    "--output-file",
    default=None,
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Write the JSON to FILE (atomically, through symlinks, keeping its mode).",
)
@click.option(
    "--indent",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="JSON indentation; 0 prints one compact line.",
)
@click.option(
    "--usage",
    "show_usage",
    is_flag=True,
    help="Print the tokens used (every attempt) and the estimated cost to stderr at the end.",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Log requests, re-asks and usage to stderr (totals at the end); tracebacks on errors.",
)
def run(**kwargs: Any) -> None:
    """Render TEMPLATE (Jinja) into a prompt and get JSON matching SCHEMA (a JSON Schema file).

    The result is printed on stdout; progress and errors go to stderr. Piped stdin is
    available to the template as the variable `stdin`.
    """
    secrets = Secrets()
    spending = _Spending()
    show_usage = kwargs.pop("show_usage") or kwargs["verbose"]
    try:
        with _local_notices(kwargs["verbose"]):
            _run(secrets=secrets, spending=spending, **kwargs)
    except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        raise
    except (Exception, KeyboardInterrupt) as exc:
        code = report(exc, secrets=secrets, verbose=kwargs["verbose"])
        # Tokens spent on a failed run were paid for too.
        line = spending.line(exc) if show_usage else None
        if line is not None:
            click.echo(secrets.redact(line), err=True)
        raise SystemExit(int(code)) from None
    line = spending.line() if show_usage else None
    if line is not None:
        click.echo(secrets.redact(line), err=True)


def _run(
    *,
    secrets: Secrets,
    spending: _Spending,
    template: str,
    template_timeout: float | None,
    template_limits: Sequence[str],
    schema: str,
    files: tuple[str, ...],
    dirs: tuple[str, ...],
    globs: tuple[str, ...],
    recursive: bool,
    allow_empty: bool,
    values: tuple[str, ...],
    json_values: tuple[str, ...],
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
    timeout: float | None,
    max_retries: int | None,
    max_validation_retries: int,
    max_total_tokens: int | None,
    stream: bool,
    dry_run: bool,
    output_file: str | None,
    indent: int,
    verbose: bool,
) -> None:
    from .._apis import get_api
    from ..templates import (
        DEFAULT_MAX_FILE_SIZE,
        DEFAULT_MAX_TOTAL_SIZE,
        PathPolicy,
        TemplateUndefinedError,
        render_template,
    )
    from ._client import build_client, server_target
    from ._dry_run import preflight, unknown_model_note
    from ._embedded import embedded_facts
    from ._inputs import (
        check_dir_inputs,
        check_prompt_text,
        check_template_file,
        file_list_error,
        load_schema,
        read_system_prompt_file,
    )
    from ._output import check_destination, to_json, write_output_file, write_stdout
    from ._progress import stderr_is_tty

    if system_prompt is not None and system_prompt_file is not None:
        raise click.UsageError("Give --system-prompt or --system-prompt-file, not both.")
    if seed is not None and "seed" in get_api(api).rejected_parameters:
        raise CliError(
            "--seed is not supported by the Responses API.\nUse --api chat to send it, or "
            "leave it out.",
            ExitCode.CONFIG,
        )
    connection = ClientOptions(base_url, api_key_env, server, max_retries)
    secrets.add_env(api_key_env)
    secrets.add_url(base_url)
    secrets.add_variables(values, json_values)
    # Nowhere to deliver the result (stdout closed, its reader gone, -o in a missing
    # directory): stop before anything is paid for. A dry run prints its report on stdout,
    # and checks -o for the real run it stands for.
    check_destination(None if dry_run else output_file)
    if dry_run and output_file is not None:
        check_destination(output_file)

    policy = PathPolicy(
        allowed_dirs=allow,
        max_file_size=max_file_size or DEFAULT_MAX_FILE_SIZE,
        max_total_size=max_total_size or DEFAULT_MAX_TOTAL_SIZE,
    )
    variables = _collect_variables(
        files=files, dirs=dirs, values=values, json_values=json_values, globs=globs,
        recursive=recursive, policy=policy,
    )  # fmt: skip
    if not allow_empty:
        check_dir_inputs(dirs, variables, globs=globs, recursive=recursive)
    check_template_file(template, policy.max_file_size)
    limits = render_limits(template_limits, template_timeout)
    try:
        rendered = render_template(Path(template), variables, limits=limits)
    except TemplateUndefinedError as exc:
        hint = file_list_error(exc, dirs=dirs, template=template, schema=schema)
        if hint is None:
            raise
        raise hint from None
    if system_prompt_file is not None:
        system_prompt = read_system_prompt_file(system_prompt_file, policy)
    if system_prompt is None:
        system_prompt = rendered.system_prompt
    # An explicit empty --system-prompt means "no system message", also over front matter.
    system = system_prompt or None
    model_name = choose_model(model, rendered.front_matter, template)
    _check_text("the model name", model_name)
    _check_text("the system prompt", system)
    _check_text("the rendered prompt", rendered.text)
    if not allow_empty:
        check_prompt_text(rendered.text, template)
    schema_doc = load_schema(schema, policy.max_file_size, template=template)

    params = {
        "temperature": temperature,
        "top_p": top_p,
        "frequency_penalty": frequency_penalty,
        "presence_penalty": presence_penalty,
        "reasoning_effort": reasoning_effort,
        "max_output_tokens": max_output_tokens,
    }
    params = {k: v for k, v in params.items() if v is not None}
    extra: dict[str, Any] = {} if seed is None else {"seed": seed}

    # Every offline check, dry or not, before anything is started or sent (building the
    # client may start the embedded model). A dry run needs no server: with none configured it
    # checks as for OpenAI, and says so.
    target = server_target(connection)
    embedded = embedded_facts() if target.embedded else None
    if not dry_run:
        if not target.configured:
            build_client(connection, secrets)  # raises "no server configured", with the ways out
        spending.model = model_name  # --usage reports from here on, a refusal unsent included
    call = preflight(
        model=model_name, api=api, profile=target.profile, system_prompt=system,
        user_prompt=rendered.text, schema=schema_doc, params=params, extra=extra,
        stream=stream, max_total_tokens=max_total_tokens, embedded=embedded,
    )  # fmt: skip
    if dry_run:
        from ._dry_run import dry_run_report

        report_text = dry_run_report(
            call, target=target, system_prompt=system,
            user_prompt=rendered.text, params=params, server_option=server,
            max_total_tokens=max_total_tokens, embedded=embedded,
        )  # fmt: skip
        write_stdout(secrets.redact(report_text))
        return

    client = build_client(connection, secrets)
    options: dict[str, Any] = {
        "system_prompt": system,
        "user_prompt": rendered.text,
        "api": api,
        **params,
        **extra,
    }
    if timeout is not None:
        options["timeout"] = timeout
    if server is not None:
        options["server"] = server
    if max_validation_retries:
        options["max_validation_retries"] = max_validation_retries
    if max_total_tokens is not None:
        options["max_total_tokens"] = max_total_tokens
    from ..servers import profile_for

    profile = profile_for(client, server)
    unpriced = _unpriced(profile, model_name)
    # The model that answers: the embedded one answers every name.
    answering = embedded.label if embedded is not None else model_name
    if verbose:
        options["on_log"] = _verbose_logger(
            model_name, priced=unpriced is None, secrets=secrets,
            answered_by=None if embedded is None else embedded.label,
        )  # fmt: skip
    spending.model, spending.unpriced = model_name, unpriced
    spending.free = None if embedded is None else embedded.name
    note = None if embedded is not None else unknown_model_note(model_name, profile)
    if note is not None and (verbose or stderr_is_tty()):
        # Only where someone reads it: in a pipe, stderr stays silent on success.
        click.echo(secrets.redact(f"ostruct: note: {note}"), err=True)

    if stream:
        spending.result = _result_from_stream(
            client, model_name, schema_doc, options, spending,
            answering=None if embedded is None else embedded.name,
        )  # fmt: skip
    else:
        from ..client import StructuredClient
        from ._progress import spinner

        # The object style for its running totals: they count a failed call's attempts too.
        calls = StructuredClient(client)
        spending.totals = calls.totals
        with spinner(f"Waiting for {answering}...", enabled=stderr_is_tty()):
            spending.result = calls.complete_result(model_name, schema=schema_doc, **options)

    text = to_json(spending.result.value, indent) + "\n"
    if output_file is not None:
        write_output_file(output_file, text)
        click.echo(f"ostruct: wrote the result to {output_file}", err=True)
    else:
        write_stdout(text)
