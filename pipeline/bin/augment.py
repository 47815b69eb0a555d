"""`augment-data-dir` (stage 0, optional): an augmented copy of a training data dir and the clean + augmented union,
as Kaldi's egs/voxceleb/v2 makes `data/train_aug` and `data/train_combined` (see `pipeline/stages/augment.py`)."""
from __future__ import annotations

from pathlib import Path

import click

from pipeline.augment.augmenter import AugmentOptions
from pipeline.stages.augment import augment_data_dir
from pipeline.utils.config import load_config
from pipeline.utils.log import get_logger


@click.command("augment-data-dir")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--override", "-o", multiple=True, help="config override, e.g. augment.musan=/data/musan")
@click.option("--nj", default=1, show_default=True, help="parallel jobs (split per speaker)")
@click.option("--cmd", default="local", show_default=True, help="job engine: local, dask://HOST:PORT, slurm[:OPTS]")
@click.option("--log-dir", type=click.Path(file_okay=False), help="default: exp/augment/<src-set>")
@click.argument("src_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("aug_dir", type=click.Path(file_okay=False))
@click.argument("audio_dir", type=click.Path(file_okay=False))
@click.argument("combined_dir", type=click.Path(file_okay=False), required=False)
def main(config_path: str, override: tuple[str, ...], nj: int, cmd: str, log_dir: str | None, src_dir: str,
         aug_dir: str, audio_dir: str, combined_dir: str | None) -> None:
    """Augmented copy of SRC_DIR as data dir AUG_DIR (audio in AUDIO_DIR), and SRC_DIR + AUG_DIR as COMBINED_DIR.

    Options come from the config's `augment:` section; with `augment.enabled: false`, or `augment.mode: online`
    (the training loader augments), nothing is done.
    """
    cfg = load_config(config_path, override)
    opts = AugmentOptions.from_config(cfg.get("augment"), default_seed=int(cfg.get("seed", 0)))
    if not opts.enabled:
        get_logger("augment").info("augment.enabled is false in %s: nothing to do", config_path)
        return
    if opts.online:
        get_logger("augment").info("augment.mode is online in %s: the training loader augments, no copy is "
                                   "written", config_path)
        return
    features = cfg.get("features") or {}
    augment_data_dir(Path(src_dir), Path(aug_dir), Path(audio_dir), Path(combined_dir) if combined_dir else None,
                     opts, nj=nj, cmd=cmd, log_dir=Path(log_dir) if log_dir else None,
                     sample_rate=int(features.get("sample_rate", 16000)),
                     resample=bool(features.get("resample", False)))
