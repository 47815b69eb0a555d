"""`validate-data-dir` and `fix-data-dir`: Kaldi's validate_data_dir.sh and fix_data_dir.sh."""
from __future__ import annotations

import shutil
from pathlib import Path

import click

from pipeline.utils.datadir import DataDir, DataDirError


@click.command("validate-data-dir")
@click.option("--no-files", is_flag=True, help="do not check that wav.scp files exist")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
def validate(no_files: bool, data_dir: str) -> None:
    """Check DATA_DIR: sorted, consistent tables, known speakers, audio present, trials valid."""
    try:
        data = DataDir.load(data_dir)
        data.validate(data_dir, check_files=not no_files)
    except DataDirError as err:
        raise click.ClickException(str(err)) from err
    for key, value in data.summary().items():
        click.echo(f"{key}: {value}")


@click.command("fix-data-dir")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
def fix(data_dir: str) -> None:
    """Sort DATA_DIR's tables and keep only utterances present in all of them (old tables go to .backup/)."""
    path = Path(data_dir)
    data = DataDir.load(path, check_sorted=False)
    fixed, dropped = data.fixed()
    backup = path / ".backup"
    backup.mkdir(exist_ok=True)
    for item in path.iterdir():
        if item.is_file():
            shutil.copy2(item, backup / item.name)
    fixed.save(path)
    click.echo(f"{path}: kept {len(fixed.utts)} utterances, dropped {dropped}; old tables in {backup}")
