"""`train` (stage 4): train one model of the config's `models:` section (see `pipeline/train/trainer.py`).

    python -m pipeline train --config conf/demo.yaml --model gmm_resnext --exp-dir exp/gmm_resnext [--resume]
    torchrun --nproc-per-node 2 -m pipeline train --config conf/demo.yaml --model gmm_resnext --resume
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from pipeline.experiment import current_training
from pipeline.utils.config import load_config
from pipeline.utils.log import get_logger
from pipeline.utils.stage import is_done


@click.command("train")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--model", "model_name", required=True,
              help="a key of the config's `models:` section, or <key>_lm for its large-margin phase")
@click.option("--exp-dir", type=click.Path(file_okay=False), help="default: exp/<model>")
@click.option("--resume", is_flag=True, help="continue from the last epoch checkpoint of the same config "
                                             "(a fresh start if there is none)")
@click.option("--override", "-o", multiple=True, help="config override, e.g. train.epochs=20")
def main(config_path: str, model_name: str, exp_dir: str | None, resume: bool, override: tuple[str, ...]) -> None:
    """Train MODEL (stage 4); launch with torchrun for several GPUs, processes or nodes."""
    cfg, exp = load_config(config_path, override), Path(exp_dir or f"exp/{model_name}")
    # A rerun's finished model: said and done before torch is imported (2 s of each no-op stage 4 per model).
    if is_done(exp, "train", current_training(cfg, model_name, exp)[1]):
        if os.environ.get("RANK", "0") == "0":   # one line under torchrun, as the trainer's log
            get_logger(f"train[{exp.resolve()}]", exp / "train.log").info(
                "%s: training is complete and current, nothing to do", exp)
        return
    from pipeline.train.trainer import train_model
    try:
        train_model(cfg, model_name, exp, resume=resume)
    finally:
        dist = sys.modules.get("torch.distributed")
        if dist is not None and dist.is_initialized():
            dist.destroy_process_group()
