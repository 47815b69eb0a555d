"""Stage 4: train one experiment of the config into `exp/<model>/`, on one process, one GPU or several (torchrun).

Writes `models/epoch_<n>.pt` (every epoch: model, heads, optimizer, scheduler and RNG states), then
`models/final.pt` (the average of the last `train.avg_last` epochs, with the frozen config and what the results
table says of the model) and `config.yaml` beside it, and `train.log`. dGMM-ResNext trains in two steps, as in the
paper: both paths with their own AAM heads (`epoch_<n>.pt`), then, paths frozen, a Linear(512 -> 256) + AAM fusion
on their cached embeddings of training crops (`fusion_epoch_<n>.pt`). An experiment with `init_from` (a model's
large-margin phase, or a fine-tuned model) starts from that finished model (`warm_start.py`).

A finished model stays in place, with its config and its done marker, until the model that replaces it is complete.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from tqdm import tqdm

from pipeline.dataset.crops import RandomCropDataset
from pipeline.errors import PipelineError
from pipeline.experiment import (LARGE_MARGIN, build_network, current_training, front_end, gmm_root, load_gmm,
                                 merged, training_source)
from pipeline.models import build_head, count_parameters
from pipeline.recipe_layout import FINAL_MODEL, training_dir
from pipeline.systems import system_of
from pipeline.train.executor import Phase, averaged_model, run_phase
from pipeline.train.runtime import Runtime, gather_rows, start_runtime
from pipeline.train.tasks import CachedEmbeddingDataset, EmbeddingClassifier, TwoPathClassifier
from pipeline.train.warm_start import check_same_network, check_source_gmms, load_source, start_from_source
from pipeline.utils.atomic import checksum_path
from pipeline.utils.checkpoint import average_checkpoints, save_checkpoint
from pipeline.utils.config import save_config
from pipeline.utils.log import get_logger
from pipeline.utils.set_names import lgp_gmm_names
from pipeline.utils.stage import clear_done, is_done, mark_done

CACHE_EPOCH_KEY = 1_000_000  # crop keys of the dGMM fusion cache: far from any training epoch number


class TrainingError(PipelineError, RuntimeError):
    """A training run that cannot start or continue; the message says why and what to do."""


@torch.no_grad()
def cache_path_embeddings(model: nn.Module, dataset: RandomCropDataset, crops_per_utt: int, batch_size: int,
                          runtime: Runtime) -> tuple[torch.Tensor, torch.Tensor]:
    """[male | female] embeddings (M, 2E) of `crops_per_utt` random training crops per utterance, and labels.

    Crops are drawn as in training, under epoch keys no training epoch uses; each rank embeds its share and all
    ranks gather the whole cache.
    """
    model.eval()
    keys = [(CACHE_EPOCH_KEY + k, i, i) for i in range(len(dataset)) for k in range(crops_per_utt)]
    mine = keys[runtime.rank::runtime.world_size]
    chunks, labels = [], []
    for first in tqdm(range(0, len(mine), batch_size), desc="caching path embeddings", unit="batch", leave=False,
                      mininterval=2, disable=not runtime.is_main):
        items = [dataset[k] for k in mine[first:first + batch_size]]
        inputs = [torch.stack([item[0][j] for item in items]).to(runtime.device) for j in range(len(items[0][0]))]
        e_male, e_female = model.path_embeddings(inputs if len(inputs) == 2 else inputs[0])
        chunks.append(torch.cat((e_male, e_female), dim=1).float().cpu())
        labels.extend(item[1] for item in items)
    embeddings = torch.cat(chunks) if chunks else torch.zeros(0, 2 * model.emb_dim)
    label_tensor = torch.tensor(labels, dtype=torch.long)
    if runtime.distributed:
        embeddings, label_tensor = gather_rows(embeddings, label_tensor, len(keys), runtime)
    return embeddings, label_tensor



def classification_task(model: nn.Module, frozen: dict[str, Any], num_speakers: int) -> nn.Module:
    """What the first (or only) training phase optimises: the network with its classification head, or, for a
    two-step system (dGMM), each path with its own head."""
    head_cfg = frozen["model"]["head"]
    if system_of(frozen["model"]).training == "two_step":
        heads = nn.ModuleDict({p: build_head(head_cfg, model.emb_dim, num_speakers) for p in model.paths})
        return TwoPathClassifier(model.paths, heads)
    return EmbeddingClassifier(model, build_head(head_cfg, model.emb_dim, num_speakers))


def train_fusion(model: nn.Module, frozen: dict[str, Any], dataset: RandomCropDataset, settings: dict[str, Any],
                 runtime: Runtime, models_dir: Path, key: str, resume: bool, log: logging.Logger) -> None:
    """dGMM's step 2: paths frozen, the fusion layer (with a new head) on cached path embeddings of training crops."""
    model.freeze_paths()
    fusion_settings = merged(settings, settings.get("fusion"))
    embeddings, labels = cache_path_embeddings(model.to(runtime.device), dataset,
                                               int(fusion_settings.get("crops_per_utt", 4)),
                                               int(fusion_settings["batch_size"]), runtime)
    log.info("step 2: fusion layer on %d cached %d-d path embeddings", len(labels), embeddings.shape[1])
    fusion_head = build_head(frozen["model"]["head"], model.emb_dim, dataset.num_speakers)
    checkpoints = run_phase(Phase(EmbeddingClassifier(model.fusion, fusion_head),
                                  CachedEmbeddingDataset(embeddings, labels), fusion_settings, "fusion_", 0),
                            runtime, models_dir, key, resume, log)
    model.fusion.load_state_dict(averaged_model(checkpoints, int(settings["avg_last"]), log))


def train_model(cfg: dict[str, Any], name: str, exp_dir: Path, *, resume: bool = False) -> Path:
    """Train model `name` of `cfg` into `exp_dir`; return `models/final.pt`. Nothing is done when the finished model
    there was trained with the same key (config, data and the features it read)."""
    runtime = start_runtime()
    train_dir = training_dir(cfg)
    frozen, key = current_training(cfg, name, exp_dir)
    final_path = exp_dir / FINAL_MODEL
    models_dir = final_path.parent
    log = get_logger(f"train[{exp_dir.resolve()}]", exp_dir / "train.log" if runtime.is_main else None)
    if not runtime.is_main:
        log.setLevel(logging.WARNING)  # one log, written by rank 0
    if is_done(exp_dir, "train", key):
        log.info("%s: training is complete and current, nothing to do", exp_dir)
        return final_path
    source_model = None   # the finished model it starts from, if any
    if frozen.get("init_from"):
        check_source_current(cfg, frozen)
        source_model = load_source(frozen, exp_dir)
        check_same_network(source_model, frozen)
        check_source_gmms(source_model, frozen, gmm_root(frozen))
    training = system_of(frozen["model"]).training
    if training == "none":  # nothing to train: the UBM, as stage 2 fitted it, is the model
        if runtime.is_main:
            gmm = load_gmm(gmm_root(frozen), frozen["model"]["gmm"])
            state = {name: torch.from_numpy(getattr(gmm, name)) for name in ("weights", "means", "variances")}
            publish_final_model(exp_dir, frozen, key, state, num_speakers=0,
                                params=gmm.num_components * (1 + 2 * gmm.dim))
            log.info("%s: GMM-UBM on %s/%s: %s", name, gmm_root(frozen), frozen["model"]["gmm"], front_end(frozen))
        runtime.barrier()
        return final_path

    settings = dict(frozen["train"], seed=int(frozen.get("seed", 0)))
    torch.manual_seed(settings["seed"])  # same seed, same initial weights and heads
    model = build_network(frozen["model"], gmm_root(frozen))
    source = training_source(frozen, train_dir)
    dataset = RandomCropDataset(source, crop_frames=int(settings["crop_frames"]), seed=settings["seed"])
    if model.input_dim != source.dims()[0]:
        raise TrainingError(f"model {name!r} reads {model.input_dim}-dim input but {source.names[0]} of "
                            f"{train_dir} is {source.dims()[0]}-dim")
    log.info("%s: %s, %.2f M parameters, inputs %s, %d utterances of %d speakers, %d processes on %s",
             name, frozen["model"]["arch"], count_parameters(model) / 1e6, source.names, len(dataset),
             dataset.num_speakers, runtime.world_size, runtime.device)
    augmenter = getattr(source, "augmenter", None)
    found = online_sources(augmenter) if augmenter is not None else None
    if augmenter is not None:   # augment.mode: online
        log.info("inputs computed from the audio of %s; %.0f%% of crops augmented in the loader (%s; weights %s)",
                 train_dir, 100 * source.probability, ", ".join(augmenter.kinds),
                 ", ".join(f"{p:.2f}" for p in augmenter.probabilities))
        for kind, why in augmenter.unavailable.items():
            log.warning("augmentation %s left out: %s", kind, why)
        log.info("online augmentation found codecs %s, room files %s, MUSAN files %s", found["codecs"] or "none",
                 found["rirs"] or "none", found["musan"] or "none")
    start = time.time()
    workers = int(settings.get("num_workers", 0))
    task = classification_task(model, frozen, dataset.num_speakers)
    speakers = list(dataset.spk2label)
    if source_model is not None:
        start_from_source(model, task, source_model, frozen, speakers, log)
    checkpoints = run_phase(Phase(task, dataset, settings, "", workers), runtime, models_dir, key, resume, log)
    # The heads, averaged as the network is, stay in final.pt: a model trained further on the same speakers keeps them.
    heads = average_checkpoints(checkpoints[-max(1, int(settings["avg_last"])):], key="heads")
    if training == "two_step":
        model.paths.load_state_dict(averaged_model(checkpoints, int(settings["avg_last"]), log))
        train_fusion(model, frozen, dataset, settings, runtime, models_dir, key, resume, log)
        final_state = {k: v.cpu() for k, v in model.state_dict().items()}
    else:
        final_state = averaged_model(checkpoints, int(settings["avg_last"]), log)
    if runtime.is_main:
        publish_final_model(exp_dir, frozen, key, final_state, num_speakers=dataset.num_speakers,
                            params=count_parameters(model), speakers=speakers, heads=heads,
                            online=found)
        log.info("%s: final model %s (%.1f s)", name, final_path, time.time() - start)
    runtime.barrier()
    return final_path


def check_source_current(cfg: dict[str, Any], frozen: dict[str, Any]) -> None:
    """TrainingError when a large-margin phase would start from a model not trained under the current config: it
    continues that model's training on the same data, so the model is trained first."""
    if frozen["init_from"]["kind"] != LARGE_MARGIN:
        return
    base_dir = Path(frozen["init_from"]["model"])
    if not is_done(base_dir, "train", current_training(cfg, base_dir.name, base_dir)[1]):
        raise TrainingError(f"{base_dir} is not trained under the current config: run stage 4 (training) for "
                            f"{base_dir.name} first; its large-margin phase {frozen['model_name']} starts from it")


def online_sources(augmenter: Any) -> dict[str, Any]:
    """What an online augmenter found on the machine that trained (final.pt's `online augmentation`): the kinds
    drawn, the codecs its sox made, the room and noise files by set; not in the training key
    (`experiment.online_augmentation`)."""
    return {"kinds": list(augmenter.kinds), "codecs": list(augmenter.codecs),
            "rirs": {k: len(v) for k, v in (augmenter.rirs or {}).items()},
            "musan": {k: len(v) for k, v in (augmenter.musan or {}).items()}, "left out": dict(augmenter.unavailable)}


def publish_final_model(exp_dir: Path, frozen: dict[str, Any], key: str, state: dict[str, torch.Tensor], *,
                        num_speakers: int, params: int, speakers: list[str] | None = None,
                        heads: dict[str, torch.Tensor] | None = None, online: dict[str, Any] | None = None) -> None:
    """Replace the finished model of `exp_dir`: marker first, then the checkpoint (with what stages 5 and 6 need to
    know of the model, the training speakers and averaged heads that a model trained from it reuses, and what an
    online augmenter found), its config, and the marker of the new one."""
    final_path = exp_dir / FINAL_MODEL
    # The GMMs of its LGP inputs travel with the model: scored under another GMM, its numbers would mean nothing.
    gmms = {gmm: {k: torch.from_numpy(v) for k, v in load_gmm(gmm_root(frozen), gmm).arrays().items()}
            for gmm in lgp_gmm_names(frozen["model"]["inputs"]).values()}
    clear_done(exp_dir, "train")
    save_checkpoint({"model": state, "model_name": frozen["model_name"], "config": frozen, "num_speakers": num_speakers,
                     "fingerprint": key, "params": params, "front_end": front_end(frozen), "gmms": gmms,
                     "speakers": speakers, "heads": heads, "online augmentation": online}, final_path)
    save_config(frozen, exp_dir / "config.yaml")
    mark_done(exp_dir, "train", key, [final_path, checksum_path(final_path), exp_dir / "config.yaml"])
