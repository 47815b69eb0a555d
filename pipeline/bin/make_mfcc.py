"""`make-mfcc` (stage 1): MFCC + energy VAD archives of a data dir (see `pipeline/stages/make_mfcc.py`)."""
from __future__ import annotations

from pathlib import Path

import click

from pipeline.features.mfcc import MfccOptions
from pipeline.stages.make_mfcc import make_mfcc
from pipeline.utils.config import load_config


@click.command("make-mfcc")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--nj", default=1, show_default=True, help="parallel jobs (split per speaker)")
@click.option("--cmd", default="local", show_default=True, help="job engine (see README: Scaling out)")
@click.option("--log-dir", type=click.Path(file_okay=False), help="default: exp/make_mfcc/<set>")
@click.option("--override", "-o", multiple=True, help="config override, e.g. features.compress=true")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("mfcc_dir", type=click.Path(file_okay=False))
def main(config_path: str, nj: int, cmd: str, log_dir: str | None, override: tuple[str, ...], data_dir: str,
         mfcc_dir: str) -> None:
    """Compute MFCC + VAD archives for DATA_DIR into MFCC_DIR."""
    cfg = load_config(config_path, override)
    data_path = Path(data_dir)
    make_mfcc(data_path, Path(mfcc_dir), Path(log_dir or f"exp/make_mfcc/{data_path.name}"),
              MfccOptions.from_config(cfg.get("features")), nj, cmd)
