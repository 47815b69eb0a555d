"""`extract` (stage 5): embeddings of a data dir's utterances with a trained model (see `pipeline/stages/extract.py`).

    python -m pipeline extract --exp-dir exp/gmm_resnext --data-dir data/test --out-dir exp/gmm_resnext/embeddings/test
"""
from __future__ import annotations

from pathlib import Path

import click

from pipeline.recipe_layout import embeddings_dir
from pipeline.stages.extract import extract_embeddings
from pipeline.utils.config import load_config


@click.command("extract")
@click.option("--exp-dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="a trained experiment, exp/<model>")
@click.option("--data-dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="the set to embed (its MFCC dir; LGP inputs are read from <set>_lgp_<gmm>)")
@click.option("--out-dir", type=click.Path(file_okay=False), help="default: <exp-dir>/embeddings/<set>")
@click.option("--nj", default=1, show_default=True, help="parallel jobs (split per speaker)")
@click.option("--cmd", default="local", show_default=True, help="job engine (see README: Scaling out)")
@click.option("--crops/--no-crops", default=True, show_default=True,
              help="also embed evenly spaced crops (xvector_crops.scp); a cohort or mean set needs none")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="the recipe's config: refuse a model trained under another one")
@click.option("--override", "-o", multiple=True, help="config override (with --config)")
def main(exp_dir: str, data_dir: str, out_dir: str | None, nj: int, cmd: str, crops: bool, config_path: str | None,
         override: tuple[str, ...]) -> None:
    """Embeddings of DATA_DIR's utterances (full and evenly spaced crops) with a trained model (stage 5)."""
    out = Path(out_dir) if out_dir else embeddings_dir(exp_dir, Path(data_dir).name)
    cfg = load_config(config_path, override) if config_path else None
    extract_embeddings(Path(exp_dir), Path(data_dir), out, nj=nj, cmd=cmd, with_crops=crops, cfg=cfg)
