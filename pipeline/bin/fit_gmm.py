"""`fit-gmm` (stage 2): the gender-independent, male and female diagonal GMMs (see `pipeline/stages/fit_gmm.py`)."""
from __future__ import annotations

from pathlib import Path

import click

from pipeline.stages.fit_gmm import fit_gmms
from pipeline.utils.config import load_config


@click.command("fit-gmm")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--override", "-o", multiple=True, help="config override, e.g. gmm.num_components=512")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("gmm_root", type=click.Path(file_okay=False))
def main(config_path: str, override: tuple[str, ...], data_dir: str, gmm_root: str) -> None:
    """Fit the GMMs of the config's `gmm:` section on DATA_DIR's features, into GMM_ROOT/<name>/."""
    fit_gmms(Path(data_dir), Path(gmm_root), load_config(config_path, override))
