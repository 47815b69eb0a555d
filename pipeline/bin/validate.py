"""`validate`: re-hash the outputs of every finished stage below some directories and name each changed file."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from pipeline.validate import validate_done_outputs

DEFAULT_ROOTS = ("data", "exp")  # where run.sh's stages leave their done markers


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, file_okay=False))
def main(paths: tuple[str, ...]) -> None:
    """Check that every output recorded by a `.done.*` marker below PATHS (default: data/ exp/) still has the sha256
    recorded when its stage finished; print one line per changed file and exit 1 if there is any."""
    roots = paths or [root for root in DEFAULT_ROOTS if Path(root).is_dir()]
    if not roots:
        raise click.ClickException(f"none of {', '.join(DEFAULT_ROOTS)} here: name the recipe's directories")
    report = validate_done_outputs(roots)
    for line in report.problems:
        click.echo(line)
    click.echo(f"validate {' '.join(map(str, roots))}: {report.summary()}")
    if report.problems:
        sys.exit(1)
