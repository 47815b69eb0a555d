"""`score` (stage 6): score trials, EER / minDCF, DET plots, results table (see `pipeline/stages/score.py`)."""
from __future__ import annotations

from pathlib import Path

import click

from pipeline.stages.backend import BackendSettings
from pipeline.stages.score import score
from pipeline.utils.config import load_config
from pipeline.utils.log import get_logger


@click.command("score")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--override", "-o", multiple=True)
@click.option("--exp-root", default="exp", show_default=True, type=click.Path(file_okay=False))
@click.option("--models", required=True, help="space-separated model names (exp/<name>/)")
@click.option("--sets", required=True, help="space-separated test sets (data/<set>/trials*)")
@click.option("--cohort-set", required=True, help="training set: embedding mean and AS-Norm cohort")
def main(config_path: str, override: tuple[str, ...], exp_root: str, models: str, sets: str, cohort_set: str) -> None:
    """Score trials, compute EER / minDCF, draw DET curves and print the results table."""
    cfg = load_config(config_path, override)
    root = Path(exp_root)
    scoring = cfg.get("scoring") or {}
    click.echo(score(root, Path(cfg["data"]["root"]), models.split(), sets.split(), cohort_set,
                     int(scoring.get("asnorm_top_n", 300)), int(scoring.get("bootstrap_replicates", 1000)),
                     get_logger("score", root / "log" / "score.log"), BackendSettings.from_config(scoring),
                     cfg["data"].get("threshold_trials")))
