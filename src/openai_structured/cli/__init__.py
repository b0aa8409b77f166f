"""The ``ostruct`` command line (SPEC §5).

``run`` (templates -> model -> JSON), ``batch`` (the same over every record of an input,
journaled and resumable), ``models`` (the registry) and ``schema check`` (the
compiler's report). Exit codes are listed in :mod:`.exit_codes` and docs/cli.md.
"""

from __future__ import annotations

import click

from .. import __version__
from .batch import batch as batch_command
from .exit_codes import ExitCode
from .models import models as models_command
from .run import run as run_command
from .schema_check import schema as schema_group

__all__ = ["ExitCode", "cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ostruct")
def cli() -> None:
    """Run prompt templates against a language model and get schema-valid JSON back."""


cli.add_command(run_command)
cli.add_command(batch_command)
cli.add_command(models_command)
cli.add_command(schema_group)


def main() -> None:
    """Console-script entry point (``ostruct``)."""
    cli(prog_name="ostruct")
