"""`make-lgp` (stage 3): normalised LGP archives of a data dir under one GMM (see `pipeline/stages/make_lgp.py`)."""
from __future__ import annotations

from pathlib import Path

import click

from pipeline.experiment import voiced_only
from pipeline.stages.make_lgp import make_lgp
from pipeline.utils.config import load_config


@click.command("make-lgp")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--nj", default=1, show_default=True)
@click.option("--cmd", default="local", show_default=True)
@click.option("--override", "-o", multiple=True)
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("gmm_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("lgp_dir", type=click.Path(file_okay=False))
@click.argument("out_data_dir", type=click.Path(file_okay=False))
def main(config_path: str, nj: int, cmd: str, override: tuple[str, ...], data_dir: str, gmm_dir: str,
         lgp_dir: str, out_data_dir: str) -> None:
    """LGP archives of DATA_DIR under the GMM in GMM_DIR, into LGP_DIR; data dir OUT_DATA_DIR."""
    cfg = load_config(config_path, override)
    out = Path(out_data_dir)
    make_lgp(Path(data_dir), Path(gmm_dir), Path(lgp_dir), out, Path(f"exp/make_lgp/{out.name}"), nj=nj,
             voiced_only=voiced_only(cfg), compress=bool((cfg.get("lgp") or {}).get("compress", False)), cmd=cmd,
             features=cfg.get("features"))
