"""``ostruct run TEMPLATE SCHEMA``: render a template, ask the model, print schema-valid JSON.

stdout carries only the result (or the dry-run report); everything else goes to stderr. Each
failure class has its own exit code (:mod:`.exit_codes`). Every option maps to something that
is really sent or really checked: the sampling flags become request fields, the system prompt
becomes its own message, and the dry run runs the same pre-flight checks as a real call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from .._apis import API_NAMES
from .._logging import LogEvent
from ..errors import OpenAIClientError
from ..servers import PROFILE_ALIASES, PROFILES
from ._client import ClientOptions
from ._report import CliError, Secrets, report
from .exit_codes import ExitCode, epilog

if TYPE_CHECKING:
    from ..templates import PathPolicy

__all__ = ["DEFAULT_MODEL", "run"]

#: Used when neither --model nor the template's front matter names a model.
DEFAULT_MODEL = "gpt-4o-mini"

_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
#: The largest size limit accepted: a file is read into memory and into a prompt, and no model
#: takes a gigabyte of text (a larger limit would only move the failure to a memory error).
MAX_SIZE = 1024**3


class ByteSize(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    """A byte count: ``1048576``, ``512K``, ``2M``, ``1G`` (binary units)."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = _SIZE.match(str(value))
        if not match or not match.group(1).strip("0"):
            self.fail(f"{value!r} is not a positive size such as 1048576, 512K or 2M", param, ctx)
        digits = match.group(1).lstrip("0")
        unit = (match.group(2) or "").lower()[:1]
        # Compared by length first: int() refuses numbers of more than 4,300 digits.
        size = int(digits) * _UNITS[unit] if len(digits) <= 12 else MAX_SIZE + 1
        if size > MAX_SIZE:
            self.fail(f"{value!r} is more than the largest size allowed, 1G", param, ctx)
        return size


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
    model: str, *, priced: bool, secrets: Secrets
) -> Callable[[LogEvent, str], None]:
    """An ``on_log`` callback for --verbose: requests, retries, errors and usage on stderr.

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
            echo(
                f"[ostruct] request: model={data.get('model')} api={data.get('api')} "
                f"stream={data.get('stream')} parameters={json.dumps(shown, default=str)}"
            )
        elif event.type in ("request.end", "stream.end"):
            latency = data.get("latency_s")
            timing = f" in {latency:.2f} s" if isinstance(latency, float) else ""
            echo(f"[ostruct] response {data.get('response_id')}{timing}")
            usage = data.get("usage")
            if isinstance(usage, Mapping):
                echo(f"[ostruct] {_usage_line(model, usage, priced=priced)}")
        elif event.type in ("retry", "error"):
            echo(f"[ostruct] {event.type}: {json.dumps(data, default=str)}")

    return on_log


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
    client: Any, model: str, schema: Mapping[str, Any], options: Mapping[str, Any]
) -> Any:
    """Run a streaming call; draw the partial object on a terminal; return the final value."""
    from ..client import openai_structured_events
    from ..streaming import Finished, PartialUpdate
    from ._progress import LiveObject, stderr_is_tty

    live_view = stderr_is_tty()
    result: Any = None
    finished = False
    with (
        openai_structured_events(
            client=client, model=model, schema=schema, partials=live_view, items=False, **options
        ) as events,
        LiveObject(enabled=live_view, title=f"{model}: answer so far") as live,
    ):
        for event in events:
            if isinstance(event, PartialUpdate):
                if live.wants_update():
                    live.update(event.snapshot())
            elif isinstance(event, Finished):
                result, finished = event.result, True
    if not finished:
        raise RuntimeError("the stream ended without a Finished event")
    return result


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


_SERVER_NAMES = sorted([*PROFILES, *PROFILE_ALIASES])


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
@click.option(
    "--allow",
    multiple=True,
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Also allow input files under DIR (the working directory always is).",
)
@click.option(
    "--max-file-size", type=ByteSize(), default=None, help="Largest input file (default 1M)."
)
@click.option(
    "--max-total-size",
    type=ByteSize(),
    default=None,
    help="Most input read in total, stdin included (default 10M).",
)
@click.option(
    "-m",
    "--model",
    default=None,
    help=f"Model name. Default: front matter 'model', else {DEFAULT_MODEL}.",
)
@click.option(
    "--system-prompt",
    default=None,
    metavar="TEXT",
    help="System message (overrides the template's front matter; '' sends none).",
)
@click.option(
    "--system-prompt-file",
    default=None,
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Read the system message from FILE.",
)
@click.option("--temperature", type=float, default=None, help="Sampling temperature.")
@click.option("--top-p", type=float, default=None, help="Nucleus sampling mass.")
@click.option("--frequency-penalty", type=float, default=None, help="Frequency penalty (chat).")
@click.option("--presence-penalty", type=float, default=None, help="Presence penalty (chat).")
@click.option(
    "--reasoning-effort",
    default=None,
    metavar="EFFORT",
    help="Reasoning effort for reasoning models (low, medium, high, ...).",
)
@click.option(
    "--max-output-tokens",
    type=click.IntRange(min=1),
    default=None,
    help="Output token limit (sent as the model's token parameter).",
)
@click.option("--seed", type=int, default=None, help="Sampling seed (chat API).")
@click.option(
    "--api",
    type=click.Choice(list(API_NAMES)),
    default="chat",
    show_default=True,
    help="Chat Completions or the Responses API.",
)
@click.option(
    "--base-url",
    default=None,
    metavar="URL",
    help="An OpenAI-compatible server (key from OPENAI_API_KEY or --api-key-env).",
)
@click.option(
    "--api-key-env",
    default=None,
    metavar="VAR",
    help="Environment variable holding the API key (default OPENAI_API_KEY).",
)
@click.option(
    "--server",
    type=click.Choice(_SERVER_NAMES, case_sensitive=False),
    default=None,
    metavar="NAME",
    help=f"Server profile when the URL does not tell: {', '.join(PROFILES)}.",
)
@click.option(
    "--template-timeout",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Longest the template may take to render (default 10; 0: no limit).",
)
@click.option(
    "--template-limit",
    "template_limits",
    multiple=True,
    metavar="NAME=VALUE",
    help="Change a render limit: max_output_size (default 20000000), max_build_size, "
    "max_loop_iterations (1000000), max_range (100000), max_int_digits (4300), timeout. "
    "Repeatable.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Total seconds for the answer, streamed or not (a deadline, not a per-read timeout).",
)
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    default=None,
    help="Retries on rate limits and server errors (default: the SDK's, 2).",
)
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
    "-v", "--verbose", is_flag=True, help="Log requests and usage to stderr; tracebacks on errors."
)
def run(**kwargs: Any) -> None:
    """Render TEMPLATE (Jinja) into a prompt and get JSON matching SCHEMA (a JSON Schema file).

    The result is printed on stdout; progress and errors go to stderr. Piped stdin is
    available to the template as the variable `stdin`.
    """
    secrets = Secrets()
    try:
        _run(secrets=secrets, **kwargs)
    except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        raise
    except (Exception, KeyboardInterrupt) as exc:
        raise SystemExit(int(report(exc, secrets=secrets, verbose=kwargs["verbose"]))) from None


def _run(
    *,
    secrets: Secrets,
    template: str,
    template_timeout: float | None,
    template_limits: Sequence[str],
    schema: str,
    files: tuple[str, ...],
    dirs: tuple[str, ...],
    globs: tuple[str, ...],
    recursive: bool,
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
        DEFAULT_RENDER_LIMITS,
        PathPolicy,
        render_template,
    )
    from ._client import build_client, dry_run_target
    from ._inputs import check_template_file, load_schema, read_system_prompt_file
    from ._output import check_destination, to_json, write_output_file, write_stdout

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
    # directory): stop before anything is paid for.
    check_destination(None if dry_run else output_file)

    policy = PathPolicy(
        allowed_dirs=allow,
        max_file_size=max_file_size or DEFAULT_MAX_FILE_SIZE,
        max_total_size=max_total_size or DEFAULT_MAX_TOTAL_SIZE,
    )
    variables = _collect_variables(
        files=files, dirs=dirs, values=values, json_values=json_values, globs=globs,
        recursive=recursive, policy=policy,
    )  # fmt: skip
    check_template_file(template, policy.max_file_size)
    limits = DEFAULT_RENDER_LIMITS.with_specs(template_limits)
    if template_timeout is not None:
        limits = limits.replace(timeout=template_timeout or None)
    rendered = render_template(Path(template), variables, limits=limits)
    if system_prompt_file is not None:
        system_prompt = read_system_prompt_file(system_prompt_file, policy)
    if system_prompt is None:
        system_prompt = rendered.system_prompt
    # An explicit empty --system-prompt means "no system message", also over front matter.
    system = system_prompt or None
    front_model = rendered.front_matter.get("model")
    if model is None and front_model is not None and not isinstance(front_model, str):
        raise CliError(
            f"{template}: front matter 'model' must be text, got {front_model!r}.",
            ExitCode.INPUT,
        )
    model_name = model or front_model or DEFAULT_MODEL
    _check_text("the model name", model_name)
    _check_text("the system prompt", system)
    _check_text("the rendered prompt", rendered.text)
    schema_doc = load_schema(schema, policy.max_file_size)

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

    if dry_run:
        from ._dry_run import dry_run_report

        profile, where = dry_run_target(connection)
        report_text = dry_run_report(
            model=model_name, api=api, profile=profile, where=where, system_prompt=system,
            user_prompt=rendered.text, schema=schema_doc, params=params, extra=extra,
            stream=stream, server_option=server,
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
    if verbose:
        from ..servers import profile_for

        priced = not profile_for(client, server).capabilities(model_name).permissive_profile
        options["on_log"] = _verbose_logger(model_name, priced=priced, secrets=secrets)

    if stream:
        result = _result_from_stream(client, model_name, schema_doc, options)
    else:
        from ..client import openai_structured_call
        from ._progress import spinner, stderr_is_tty

        with spinner(f"Waiting for {model_name}...", enabled=stderr_is_tty()):
            result = openai_structured_call(
                client=client, model=model_name, schema=schema_doc, **options
            )

    text = to_json(result, indent) + "\n"
    if output_file is not None:
        write_output_file(output_file, text)
        click.echo(f"ostruct: wrote the result to {output_file}", err=True)
    else:
        write_stdout(text)
