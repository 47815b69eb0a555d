"""Training that starts from a finished model (a frozen config's `init_from`) instead of random weights: a model's
large-margin phase (`<model>_lm`, from `exp/<model>`), and a trained model fine-tuned on other data
(`train.init_from: <exp dir>`).

The network takes the source's weights; it must be the same network reading the same inputs. The classification
head is kept when the training speakers are the source's, else a new one is trained. The GMM front end stays the
source's: the LGP maps it reads must be computed under the GMMs the source carries in its final.pt (stage 2 writes
those into `gmm.root` under `train.init_from`, `pipeline/stages/fit_gmm.py`).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from pipeline.embed import load_final_model
from pipeline.errors import PipelineError
from pipeline.experiment import LARGE_MARGIN, model_checksum, network_config
from pipeline.features.gmm import DiagGMM
from pipeline.recipe_layout import FINAL_MODEL
from pipeline.utils.checkpoint import average_checkpoints, epoch_checkpoints, load_checkpoint


class SourceModelError(PipelineError):
    """The model a training run would start from cannot be used for it; the message names both and says why."""


def source_dir(frozen: dict[str, Any]) -> Path:
    return Path(frozen["init_from"]["model"])


def load_source(frozen: dict[str, Any], exp_dir: Path) -> dict[str, Any]:
    """The final checkpoint the experiment of `frozen` starts from: the one whose checksum its key holds."""
    source = source_dir(frozen)
    if source.resolve() == exp_dir.resolve():
        raise SourceModelError(f"{exp_dir}: a model cannot be fine-tuned into its own directory (train.init_from is "
                               f"{source}): give the fine-tuned model another name in `models:`, or run in another "
                               f"recipe directory")
    if model_checksum(source) != frozen["init_from"]["checksum"]:
        raise SourceModelError(f"{source / FINAL_MODEL} changed while {exp_dir} was being set up: run stage 4 again")
    return load_final_model(source)


def describe_network(model_cfg: dict[str, Any]) -> str:
    net = {k: v for k, v in network_config(model_cfg).items() if k != "arch"}
    return f"{model_cfg['arch']} on {'+'.join(model_cfg['inputs'])} ({', '.join(f'{k} {v}' for k, v in net.items())})"


def check_same_network(source: dict[str, Any], frozen: dict[str, Any]) -> None:
    """SourceModelError naming both when the source is not the network the experiment trains, on the same inputs."""
    theirs, ours = source["config"]["model"], frozen["model"]
    if network_config(theirs) != network_config(ours) or theirs["inputs"] != ours["inputs"]:
        differ = sorted(k for k in set(network_config(theirs)) | set(network_config(ours)) | {"inputs"}
                        if theirs.get(k) != ours.get(k))
        raise SourceModelError(
            f"{source_dir(frozen)} is {describe_network(theirs)}, but the config's {frozen['model_name']!r} is "
            f"{describe_network(ours)}: a model starts from one of the same network and inputs (they differ in "
            f"{', '.join(differ)}); make the `models:` entry match the source or train it from scratch")


def check_source_gmms(source: dict[str, Any], frozen: dict[str, Any], gmm_dir: Path) -> None:
    """SourceModelError when the GMMs the experiment's LGP inputs are computed under (`frozen['lgp_gmms']`, from
    `gmm_dir`) are not the ones the source was trained on and carries: its network would read other features."""
    carried = source.get("gmms") or {}
    for name, fingerprint in frozen.get("lgp_gmms", {}).items():
        if name not in carried:
            raise SourceModelError(f"{source_dir(frozen) / FINAL_MODEL} does not carry the GMM {name!r} its LGP inputs "
                                   f"need (published by an older version, or another model): retrain the source")
        theirs = DiagGMM.from_arrays({k: v.numpy() for k, v in carried[name].items()}).fingerprint()
        if theirs != fingerprint:
            raise SourceModelError(f"{gmm_dir / name} is not the GMM {name!r} that {source_dir(frozen)} was trained "
                                   f"on: rerun stage 2 (with train.init_from it writes the source's GMMs there) and "
                                   f"stage 3, or give gmm.root a directory of its own")


def source_heads(source: dict[str, Any], frozen: dict[str, Any], log: logging.Logger) -> dict[str, torch.Tensor] | None:
    """The classification heads of the source, averaged as its final model was; from the epoch checkpoints it
    averaged when its final.pt predates the heads being kept there. None when neither is there."""
    if source.get("heads") is not None:
        return source["heads"]
    models_dir = source_dir(frozen) / FINAL_MODEL.parent
    written = [path for _, path in epoch_checkpoints(models_dir)
               if load_checkpoint(path).get("fingerprint") == source["fingerprint"]]
    if not written:
        return None
    avg_last = int(source["config"]["train"]["avg_last"])
    log.info("%s holds no heads: averaging those of %s", source_dir(frozen) / FINAL_MODEL,
             ", ".join(p.name for p in written[-avg_last:]))
    return average_checkpoints(written[-avg_last:], key="heads")


def same_speakers(source: dict[str, Any], frozen: dict[str, Any], speakers: list[str]) -> bool:
    """Whether the source was trained on `speakers` (in the same class order). A final.pt that predates the list is
    known to be only for the large-margin phase, whose key requires its model trained on this very set."""
    recorded = source.get("speakers")
    if recorded is None:
        return frozen["init_from"]["kind"] == LARGE_MARGIN
    return list(recorded) == list(speakers)


def start_from_source(model: nn.Module, task: nn.Module, source: dict[str, Any], frozen: dict[str, Any],
                      speakers: list[str], log: logging.Logger) -> None:
    """Load the source's weights into `model`, and its heads into `task` when the speakers are the same (else the
    task keeps its new heads)."""
    model.load_state_dict(source["model"])
    heads = source_heads(source, frozen, log) if same_speakers(source, frozen, speakers) else None
    if heads is not None:
        task.heads.load_state_dict(heads)
        log.info("starting from %s (%s): its weights and classification head (%d speakers)", source_dir(frozen),
                 frozen["init_from"]["kind"].replace("_", " "), len(speakers))
    else:
        log.info("starting from %s (%s): its weights, a new classification head for %d speakers (it was trained on "
                 "%s)", source_dir(frozen), frozen["init_from"]["kind"].replace("_", " "), len(speakers),
                 f"{source.get('num_speakers')} speakers" if source.get("speakers") is None or
                 len(source["speakers"]) != len(speakers) else "other speakers")
