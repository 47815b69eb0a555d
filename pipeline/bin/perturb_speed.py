"""`perturb-speed` (stage 0, optional): SRC_DIR plus speed-perturbed copies as new speakers, as Kaldi's
utils/perturb_data_dir_speed.sh (see `pipeline/stages/perturb_speed.py`)."""
from __future__ import annotations

from pathlib import Path

import click

from pipeline.stages.perturb_speed import perturb_data_dir_speed
from pipeline.utils.config import load_config


@click.command("perturb-speed")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="read the factors from its `speed_perturb:` list")
@click.option("--override", "-o", multiple=True)
@click.option("--factors", help="space-separated speed factors, e.g. '0.9 1.1' (instead of --config)")
@click.option("--log-dir", type=click.Path(file_okay=False), help="default: exp/perturb_speed/<dst-set>")
@click.argument("src_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("dst_dir", type=click.Path(file_okay=False))
def main(config_path: str | None, override: tuple[str, ...], factors: str | None, log_dir: str | None,
         src_dir: str, dst_dir: str) -> None:
    """DST_DIR = SRC_DIR + a copy at each speed factor (wav.scp pipes through `sox speed`), ids prefixed sp<f>-."""
    if (factors is None) == (config_path is None):
        raise click.UsageError("give the factors with --factors '0.9 1.1' or a --config with `speed_perturb:`")
    if factors is not None:
        values = [float(f) for f in factors.split()]
    else:
        values = list(load_config(config_path, override).get("speed_perturb") or [])
        if not values:
            raise click.UsageError(f"{config_path}: `speed_perturb:` lists no factors")
    perturb_data_dir_speed(Path(src_dir), Path(dst_dir), values, log_dir=Path(log_dir) if log_dir else None)
