"""`validate-data-dir`, `fix-data-dir` (Kaldi's validate_data_dir.sh and fix_data_dir.sh) and `import-data-dir`
(a user's evaluation set into the recipe's data root)."""
from __future__ import annotations

import shutil
from pathlib import Path

import click

from pipeline.recipe_layout import recipe_sets
from pipeline.utils.config import load_config
from pipeline.utils.datadir import DataDir, import_data_dir


@click.command("validate-data-dir")
@click.option("--no-files", is_flag=True, help="do not check that wav.scp files exist")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
def validate(no_files: bool, data_dir: str) -> None:
    """Check DATA_DIR: sorted, consistent tables, known speakers, audio present, trials valid."""
    data = DataDir.load(data_dir)
    data.validate(data_dir, check_files=not no_files)
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


@click.command("import-data-dir")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--override", "-o", multiple=True)
@click.argument("src_dir", type=click.Path(exists=True, file_okay=False))
def import_data_dir_command(config_path: str, override: tuple[str, ...], src_dir: str) -> None:
    """Copy the evaluation set SRC_DIR (wav.scp, utt2spk, trials*) into the config's data root, validated, never over
    a set of the recipe; print its name."""
    cfg = load_config(config_path, override)
    # the names of the recipe's derived dirs are refused by import_data_dir for every set
    click.echo(import_data_dir(src_dir, cfg["data"]["root"], recipe_sets(cfg)).name)
