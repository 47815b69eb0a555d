"""`train` (stage 4): train one model of the config's `models:` section (see `pipeline/train/trainer.py`).

    python -m pipeline train --config conf/demo.yaml --model gmm_resnext --exp-dir exp/gmm_resnext [--resume]
    torchrun --nproc-per-node 2 -m pipeline train --config conf/demo.yaml --model gmm_resnext --resume
"""
from __future__ import annotations

from pathlib import Path

import click
import torch.distributed as dist

from pipeline.train.trainer import train_model
from pipeline.utils.config import load_config


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
    try:
        train_model(load_config(config_path, override), model_name, Path(exp_dir or f"exp/{model_name}"),
                    resume=resume)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
