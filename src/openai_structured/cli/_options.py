"""Command-line options that ``ostruct run`` and ``ostruct batch`` share: file limits, the
model and its sampling parameters, the server, template limits, timeouts and retries."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click

from .._apis import API_NAMES
from ..servers import PROFILE_ALIASES, PROFILES

F = TypeVar("F", bound=Callable[..., Any])

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


_SERVER_NAMES = sorted([*PROFILES, *PROFILE_ALIASES])


def choose_model(model: str | None, front_matter: Mapping[str, Any], template: str) -> str:
    """--model, else the template's front matter ``model``, else the default."""
    front = front_matter.get("model")
    if model is None and front is not None and not isinstance(front, str):
        from ._report import CliError
        from .exit_codes import ExitCode

        raise CliError(
            f"{template}: front matter 'model' must be text, got {front!r}.", ExitCode.INPUT
        )
    return model or front or DEFAULT_MODEL


def render_limits(specs: Sequence[str], timeout: float | None) -> Any:
    """The template render limits --template-limit and --template-timeout ask for."""
    from ..templates import DEFAULT_RENDER_LIMITS

    limits = DEFAULT_RENDER_LIMITS.with_specs(specs)
    if timeout is not None:
        limits = limits.replace(timeout=timeout or None)
    return limits


def base_url_option(help: str) -> Callable[[F], F]:
    """``--base-url URL``: the server (``run``, ``batch``, ``schema check``)."""
    return click.option("--base-url", default=None, metavar="URL", help=help)


def server_option() -> Callable[[F], F]:
    """``--server NAME``: the server profile, for URLs that do not say what they are."""
    return click.option(
        "--server",
        type=click.Choice(_SERVER_NAMES, case_sensitive=False),
        default=None,
        metavar="NAME",
        help=f"Server profile when the URL does not tell: {', '.join(PROFILES)}.",
    )


def shared_options(command: F) -> F:
    """Apply the shared options (in ``--help`` order) to ``command``."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


_OPTIONS: list[Callable[[Any], Any]] = [
    click.option(
        "--allow",
        multiple=True,
        metavar="DIR",
        type=click.Path(file_okay=False),
        help="Also allow input files under DIR (the working directory always is).",
    ),
    click.option(
        "--max-file-size", type=ByteSize(), default=None, help="Largest input file (default 1M)."
    ),
    click.option(
        "--max-total-size",
        type=ByteSize(),
        default=None,
        help="Most input read in total, stdin included (default 10M).",
    ),
    click.option(
        "-m",
        "--model",
        default=None,
        help=f"Model name. Default: front matter 'model', else {DEFAULT_MODEL}.",
    ),
    click.option(
        "--system-prompt",
        default=None,
        metavar="TEXT",
        help="System message (overrides the template's front matter; '' sends none).",
    ),
    click.option(
        "--system-prompt-file",
        default=None,
        metavar="FILE",
        type=click.Path(dir_okay=False),
        help="Read the system message from FILE.",
    ),
    click.option("--temperature", type=float, default=None, help="Sampling temperature."),
    click.option("--top-p", type=float, default=None, help="Nucleus sampling mass."),
    click.option("--frequency-penalty", type=float, default=None, help="Frequency penalty (chat)."),
    click.option("--presence-penalty", type=float, default=None, help="Presence penalty (chat)."),
    click.option(
        "--reasoning-effort",
        default=None,
        metavar="EFFORT",
        help="Reasoning effort for reasoning models (low, medium, high, ...).",
    ),
    click.option(
        "--max-output-tokens",
        type=click.IntRange(min=1),
        default=None,
        help="Output token limit (sent as the model's token parameter).",
    ),
    click.option("--seed", type=int, default=None, help="Sampling seed (chat API)."),
    click.option(
        "--api",
        type=click.Choice(list(API_NAMES)),
        default="chat",
        show_default=True,
        help="Chat Completions or the Responses API.",
    ),
    base_url_option("An OpenAI-compatible server (key from OPENAI_API_KEY or --api-key-env)."),
    click.option(
        "--api-key-env",
        default=None,
        metavar="VAR",
        help="Environment variable holding the API key (default OPENAI_API_KEY).",
    ),
    server_option(),
    click.option(
        "--template-timeout",
        type=click.FloatRange(min=0),
        default=None,
        metavar="SECONDS",
        help="Longest the template may take to render (default 10; 0: no limit).",
    ),
    click.option(
        "--template-limit",
        "template_limits",
        multiple=True,
        metavar="NAME=VALUE",
        help="Change a render limit: max_output_size (default 20000000), max_build_size, "
        "max_loop_iterations (1000000), max_range (100000), max_int_digits (4300), timeout. "
        "Repeatable.",
    ),
    click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        metavar="SECONDS",
        help="Total seconds for the answer, streamed or not (a deadline, not a per-read timeout).",
    ),
    click.option(
        "--max-retries",
        type=click.IntRange(min=0),
        default=None,
        help="Retries on rate limits and server errors (default: the SDK's, 2).",
    ),
    click.option(
        "--max-validation-retries",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        metavar="N",
        help="Re-ask up to N times, with the errors, when the answer fails the schema.",
    ),
    click.option(
        "--max-total-tokens",
        type=click.IntRange(min=1),
        default=None,
        metavar="N",
        help="Token budget over every attempt: a request that would pass it is not sent (exit 8).",
    ),
]
