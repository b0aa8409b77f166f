"""The ``ostruct`` command line (SPEC §5)."""

from __future__ import annotations

import click

from .. import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ostruct")
def cli() -> None:
    """Run prompt templates against a language model and get schema-valid JSON back."""


def main() -> None:
    cli()
