"""Stage 4: train one model of the config's `models:` section, on one process, one GPU or several (torchrun).

    python -m pipeline train --config conf/demo.yaml --model gmm_resnext --exp-dir exp/gmm_resnext [--resume]
    torchrun --nproc-per-node 2 -m pipeline train --config conf/demo.yaml --model gmm_resnext --resume

Writes `exp/<model>/config.yaml` (the frozen config later stages read), `models/epoch_<n>.pt` (every epoch: model,
heads, optimizer, scheduler and RNG states), `models/final.pt` (the average of the last `train.avg_last` epochs:
the model stages 5 and 6 use) and `train.log`. dGMM-ResNext trains in two steps, as in the paper: both paths with
their own AAM heads (`epoch_<n>.pt`), then, paths frozen, a Linear(512 -> 256) + AAM fusion on their cached
embeddings of training crops (`fusion_epoch_<n>.pt`).
"""
from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset
from tqdm import tqdm

from pipeline.dataset.crops import EpochBatchSampler, RandomCropDataset, make_loader
from pipeline.dataset.features import FeatureSource, input_data_dir, input_names
from pipeline.models import ARCHITECTURES, MarginScheduler, build_head, build_model, count_parameters
from pipeline.utils.archive import ArchiveError
from pipeline.utils.checkpoint import (CheckpointError, average_state_dicts, epoch_checkpoints, load_checkpoint,
                                       save_checkpoint)
from pipeline.utils.config import load_config, save_config
from pipeline.utils.datadir import DataDirError
from pipeline.utils.logging import get_logger
from pipeline.utils.stage import clear_done, inputs_fingerprint, is_done, mark_done

# Keys of a `models:` entry that are not constructor arguments of the network.
MODEL_ENTRY_KEYS = ("input", "inputs", "head", "train", "extract")
# `train:` keys that change how fast a run goes, not what it computes: left out of the fingerprint.
RUNTIME_KEYS = ("num_workers", "progress")
DEFAULT_TRAIN: dict[str, Any] = {
    "epochs": 10, "batch_size": 128, "crop_frames": 200, "num_workers": 2, "avg_last": 3, "amp": True,
    "optimizer": {"lr": 1e-3, "weight_decay": 2e-5},
    "scheduler": {"T_0": 10, "T_mult": 2, "eta_min": 1e-5},
    "margin_warmup": None, "progress": True,
    "fusion": {"epochs": 10, "batch_size": 128, "crops_per_utt": 4},
}
DEFAULT_HEAD = {"type": "aam_softmax", "margin": 0.2, "scale": 30.0}
GMM_LAYER_KEYS = ("gmm_layer", "male_gmm_layer", "female_gmm_layer")
# The constructor argument that sets each architecture's input size.
INPUT_SIZE_KEY = {"gmm_resnext": "in_channels", "dgmm_resnext": "in_channels", "resnet34": "feat_dim",
                  "ecapa_tdnn": "feat_dim"}
CACHE_EPOCH_KEY = 1_000_000  # crop keys of the dGMM fusion cache: far from any training epoch number


class TrainingError(RuntimeError):
    """A training run that cannot start or continue; the message says why and what to do."""


# ---------------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------------
def merged(base: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """`base` with `override` applied recursively (mappings merged, everything else replaced)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else copy.deepcopy(value)
    return out


def model_entry(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    models = cfg.get("models") or {}
    if name not in models:
        raise TrainingError(f"model {name!r} is not in the config's `models:` section "
                            f"(it has: {', '.join(models) or 'none'})")
    return dict(models[name])


def network_config(entry: dict[str, Any]) -> dict[str, Any]:
    """The constructor config of the network (`arch` plus its kwargs) from a `models:` entry."""
    return {k: v for k, v in entry.items() if k not in MODEL_ENTRY_KEYS}


def fill_input_dim(net_cfg: dict[str, Any], data_dim: int) -> dict[str, Any]:
    """Set the input size (`in_channels` or `feat_dim`) from the data when the config leaves it out, so that
    `-o gmm.num_components=128` needs no second edit; a model with a GMM layer takes its size from the GMM."""
    net_cfg = dict(net_cfg)
    key = INPUT_SIZE_KEY.get(net_cfg.get("arch"))
    if key and not any(net_cfg.get(k) for k in GMM_LAYER_KEYS):
        net_cfg.setdefault(key, data_dim)
    return net_cfg


def resolve_experiment(cfg: dict[str, Any], name: str, train_dir: Path) -> dict[str, Any]:
    """The frozen config of experiment `name`: the whole config plus `model_name`, `model` (the network config
    with its input size filled in, its inputs and head), `train` and `extract` merged with the entry's own."""
    entry = model_entry(cfg, name)
    names = input_names(entry)
    dims = FeatureSource(train_dir, names[:1], voiced_only=voiced_only(cfg)).dims()
    frozen = copy.deepcopy(cfg)
    frozen["model_name"] = name
    frozen["model"] = {**fill_input_dim(network_config(entry), dims[0]), "inputs": names,
                       "head": merged(merged(DEFAULT_HEAD, (cfg.get("train") or {}).get("head")), entry.get("head"))}
    frozen["train"] = merged(merged(DEFAULT_TRAIN, cfg.get("train")), entry.get("train"))
    frozen["train"].pop("head", None)  # it lives in `model.head`
    frozen["extract"] = merged(cfg.get("extract") or {}, entry.get("extract"))
    return frozen


def voiced_only(cfg: dict[str, Any]) -> bool:
    return bool((cfg.get("gmm") or {}).get("voiced_only", True))


def training_fingerprint(frozen: dict[str, Any], train_dir: Path) -> str:
    """What a finished run was computed from: model, head, training settings, seed and the training data."""
    train_cfg = {k: v for k, v in frozen["train"].items() if k not in RUNTIME_KEYS}
    files = [train_dir / "utt2spk"]
    for name in frozen["model"]["inputs"]:
        files.append(input_data_dir(train_dir, name) / "feats.scp")
    for key in GMM_LAYER_KEYS:
        if frozen["model"].get(key):
            files.append(Path(frozen["model"][key]["npz"]))
    return inputs_fingerprint([frozen["model"], train_cfg, frozen.get("seed", 0)], files)


# ---------------------------------------------------------------------------------------------------------------
# Processes and devices
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Runtime:
    """Where this process runs: device, DDP rank and world size (1 without torchrun)."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def start_runtime() -> Runtime:
    """One process per GPU (or per CPU share) under torchrun, which sets RANK/WORLD_SIZE; else a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return Runtime(device=device, rank=rank, world_size=world_size)


# ---------------------------------------------------------------------------------------------------------------
# What is optimised: a network part (`embedder`, the part kept after training) and its classification heads
# ---------------------------------------------------------------------------------------------------------------
def head_loss(head: nn.Module, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of the margin logits, and the correct top-1 count of the margin-free logits (what the
    embedding alone separates). In float32 even under mixed precision: cos(theta + m) at scale 30 needs it."""
    with torch.autocast(embeddings.device.type, enabled=False):
        embeddings = embeddings.float()
        loss = F.cross_entropy(head(embeddings, labels), labels)
        with torch.no_grad():
            correct = (head(embeddings).argmax(dim=1) == labels).sum()
    return loss, correct


class EmbeddingClassifier(nn.Module):
    """One network, one AAM head: loss and correct count of a batch. Also dGMM step 2, where the network is the
    fusion layer and its single input the cached (male, female) path embeddings."""

    def __init__(self, model: nn.Module, head: nn.Module):
        super().__init__()
        self.embedder = model
        self.heads = nn.ModuleDict({"main": head})

    def forward(self, inputs: list[torch.Tensor], labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return head_loss(self.heads["main"], self.embedder(inputs[0] if len(inputs) == 1 else inputs), labels)


class TwoPathClassifier(nn.Module):
    """dGMM step 1: the male and the female path, each with its own head; the loss is their sum and the
    accuracy their mean."""

    def __init__(self, paths: nn.ModuleDict, heads: nn.ModuleDict):
        super().__init__()
        self.embedder = paths
        self.heads = heads

    def forward(self, inputs: list[torch.Tensor], labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_male, x_female = inputs if len(inputs) == 2 else (inputs[0], inputs[0])
        loss, correct = torch.zeros((), device=labels.device), torch.zeros((), device=labels.device)
        for name, x in (("male", x_male), ("female", x_female)):
            path_loss, path_correct = head_loss(self.heads[name], self.embedder[name](x), labels)
            loss, correct = loss + path_loss, correct + path_correct
        return loss, correct / 2


class CachedEmbeddingDataset(Dataset):
    """Sample keys (epoch, position, index) -> ([embedding], label), from tensors in memory."""

    def __init__(self, embeddings: torch.Tensor, labels: torch.Tensor):
        self.embeddings = embeddings
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: tuple[int, int, int]) -> tuple[list[torch.Tensor], int]:
        index = key[2]
        return [self.embeddings[index]], int(self.labels[index])


# ---------------------------------------------------------------------------------------------------------------
# The epoch loop, shared by every model and by both dGMM steps
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Phase:
    """One run of epochs: what to optimise, on which data, saved as `<prefix>epoch_<n>.pt`."""

    task: nn.Module
    dataset: Dataset
    settings: dict[str, Any]  # the `train:` section (or its `fusion:` overrides)
    prefix: str = ""
    num_workers: int = 0


def rng_states(device: torch.device) -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def set_rng_states(states: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def margin_schedulers(task: nn.Module, settings: dict[str, Any]) -> list[MarginScheduler]:
    warmup = settings.get("margin_warmup")
    if not warmup:
        return []
    return [MarginScheduler(head, final_margin=head.margin, **warmup)
            for head in task.heads.values() if hasattr(head, "set_margin")]


def run_phase(phase: Phase, runtime: Runtime, models_dir: Path, fingerprint: str, log: Any) -> list[Path]:
    """Train `phase.settings['epochs']` epochs, resuming after the last `<prefix>epoch_<n>.pt` in `models_dir`;
    return the checkpoints of all epochs."""
    settings = phase.settings
    epochs = int(settings["epochs"])
    task = phase.task.to(runtime.device)
    trainable = [p for p in task.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=float(settings["optimizer"]["lr"]),
                                 weight_decay=float(settings["optimizer"].get("weight_decay", 0.0)))
    sched = settings["scheduler"]
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=int(sched.get("T_0", 10)), T_mult=int(sched.get("T_mult", 2)),
        eta_min=float(sched.get("eta_min", 0.0)))
    use_amp = bool(settings.get("amp", True)) and runtime.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    margins = margin_schedulers(task, settings)

    done = epoch_checkpoints(models_dir, phase.prefix)
    start_epoch = 1
    if done:
        last_epoch, last_path = done[-1]
        state = load_checkpoint(last_path, map_location=runtime.device)
        if state.get("fingerprint") != fingerprint or last_epoch > epochs:
            raise TrainingError(f"{last_path} was written for another config or other training data; remove "
                                f"{models_dir} or train without --resume")
        if last_epoch == epochs:
            return [p for _, p in done]
        task.embedder.load_state_dict(state["model"])
        task.heads.load_state_dict(state["heads"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_states(state["rng"], runtime.device)
        start_epoch = last_epoch + 1
        log.info("resuming %sepoch %d of %d from %s", phase.prefix, start_epoch, epochs, last_path)

    sampler = EpochBatchSampler(len(phase.dataset), int(settings["batch_size"]), seed=int(settings["seed"]),
                                rank=runtime.rank, world_size=runtime.world_size)
    loader = make_loader(phase.dataset, sampler, num_workers=phase.num_workers,
                         pin_memory=runtime.device.type == "cuda")
    model = task
    if runtime.distributed:
        model = nn.parallel.DistributedDataParallel(task, device_ids=[runtime.device] if runtime.device.type == "cuda"
                                                    else None)
    steps = len(sampler)
    for epoch in range(start_epoch, epochs + 1):
        sampler.set_epoch(epoch)
        task.train()
        totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, samples
        start = time.time()
        data_wait = 0.0
        ready = time.time()
        progress = tqdm(loader, total=steps, desc=f"{phase.prefix}epoch {epoch}/{epochs}", unit="batch",
                        leave=False, mininterval=2, disable=not (runtime.is_main and settings.get("progress", True)))
        for step, (inputs, labels) in enumerate(progress):
            data_wait += time.time() - ready
            fraction = epoch - 1 + step / steps
            scheduler.step(fraction)  # cosine annealing with warm restarts, stepped every batch
            for margin in margins:
                margin.step(fraction)
            inputs = [x.to(runtime.device, non_blocking=True) for x in inputs]
            labels = labels.to(runtime.device, non_blocking=True)
            with torch.autocast(runtime.device.type, dtype=torch.float16, enabled=use_amp):
                loss, correct = model(inputs, labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            totals += torch.tensor([loss.item() * len(labels), correct.item(), len(labels)], dtype=torch.float64)
            ready = time.time()
        if runtime.distributed:  # the log line reports all ranks' samples (NCCL reduces GPU tensors only)
            reduced = totals.to(runtime.device)
            dist.all_reduce(reduced)
            totals = reduced.cpu()
        seconds = time.time() - start
        stats = {"loss": totals[0].item() / totals[2].item(), "accuracy": totals[1].item() / totals[2].item(),
                 "samples": int(totals[2].item()), "seconds": round(seconds, 2),
                 "lr": optimizer.param_groups[0]["lr"]}
        if runtime.is_main:
            save_checkpoint({"epoch": epoch, "fingerprint": fingerprint, "stats": stats,
                             "model": task.embedder.state_dict(), "heads": task.heads.state_dict(),
                             "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                             "scaler": scaler.state_dict(), "rng": rng_states(runtime.device)},
                            models_dir / f"{phase.prefix}epoch_{epoch}.pt")
            margin_text = f", margin {margins[0].head.margin:.3f}" if margins else ""
            log.info("%sepoch %d/%d: loss %.4f, accuracy %.1f%%, lr %.2e%s, %d samples, %.1f samples/s, "
                     "%.1f s (waiting for data %.1f s)", phase.prefix, epoch, epochs, stats["loss"],
                     100 * stats["accuracy"], stats["lr"], margin_text, stats["samples"],
                     stats["samples"] / seconds, seconds, data_wait)
        runtime.barrier()  # no rank starts the next epoch (or exits) before the checkpoint exists
    return [p for e, p in epoch_checkpoints(models_dir, phase.prefix) if e <= epochs]


def averaged_model(checkpoints: list[Path], avg_last: int, log: Any) -> dict[str, torch.Tensor]:
    chosen = checkpoints[-max(1, avg_last):]
    log.info("averaging %d checkpoints: %s", len(chosen), ", ".join(p.name for p in chosen))
    return average_state_dicts([load_checkpoint(p)["model"] for p in chosen])


# ---------------------------------------------------------------------------------------------------------------
# dGMM-ResNext step 2: cached path embeddings of training crops
# ---------------------------------------------------------------------------------------------------------------
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


def gather_rows(rows: torch.Tensor, labels: torch.Tensor, total: int, runtime: Runtime
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Undo the `keys[rank::world]` split: every rank gets all rows in the original key order."""
    size = -(-total // runtime.world_size)
    # NCCL gathers GPU tensors only; gloo takes CPU ones.
    padded_rows = torch.zeros(size, rows.shape[1], device=runtime.device)
    padded_labels = torch.full((size,), -1, dtype=torch.long, device=runtime.device)
    padded_rows[:len(rows)], padded_labels[:len(labels)] = rows.to(runtime.device), labels.to(runtime.device)
    all_rows = [torch.zeros_like(padded_rows) for _ in range(runtime.world_size)]
    all_labels = [torch.zeros_like(padded_labels) for _ in range(runtime.world_size)]
    dist.all_gather(all_rows, padded_rows)
    dist.all_gather(all_labels, padded_labels)
    interleaved_rows = torch.stack(all_rows, dim=1).reshape(-1, rows.shape[1])[:total].cpu()
    interleaved_labels = torch.stack(all_labels, dim=1).reshape(-1)[:total].cpu()
    return interleaved_rows, interleaved_labels


# ---------------------------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------------------------
def train_model(cfg: dict[str, Any], name: str, exp_dir: Path, *, resume: bool = False) -> Path:
    """Train model `name` of `cfg` into `exp_dir`; return `models/final.pt`. Skipped when already complete."""
    runtime = start_runtime()
    train_dir = Path(cfg["data"]["root"]) / cfg["data"]["train"]
    frozen = resolve_experiment(cfg, name, train_dir)
    models_dir, final_path = exp_dir / "models", exp_dir / "models" / "final.pt"
    fingerprint = training_fingerprint(frozen, train_dir)
    log = get_logger(f"train[{exp_dir.resolve()}]", exp_dir / "train.log" if runtime.is_main else None)
    if not runtime.is_main:
        log.setLevel(logging.WARNING)  # one log, written by rank 0
    if is_done(exp_dir, "train", fingerprint, [final_path, exp_dir / "config.yaml"]):
        log.info("%s: training is complete and current, nothing to do", exp_dir)
        return final_path
    if runtime.is_main:
        # A final model of other settings must never sit beside this config, and a fresh run must not resume
        # from another run's epochs.
        clear_done(exp_dir, "train")
        final_path.unlink(missing_ok=True)
        if not resume:
            for stale in models_dir.glob("*.pt"):
                stale.unlink()
        save_config(frozen, exp_dir / "config.yaml")
    runtime.barrier()

    settings = dict(frozen["train"], seed=int(frozen.get("seed", 0)))
    torch.manual_seed(settings["seed"])  # same seed, same initial weights and heads
    model = build_model(network_config(frozen["model"]))
    source = FeatureSource(train_dir, frozen["model"]["inputs"], voiced_only=voiced_only(frozen))
    dataset = RandomCropDataset(source, crop_frames=int(settings["crop_frames"]), seed=settings["seed"])
    if model.input_dim != source.dims()[0]:
        raise TrainingError(f"model {name!r} reads {model.input_dim}-dim input but {source.names[0]} in "
                            f"{input_data_dir(train_dir, source.names[0])} is {source.dims()[0]}-dim")
    head_cfg = frozen["model"]["head"]
    log.info("%s: %s, %.2f M parameters, inputs %s, %d utterances of %d speakers, %d processes on %s",
             name, frozen["model"]["arch"], count_parameters(model) / 1e6, source.names, len(dataset),
             dataset.num_speakers, runtime.world_size, runtime.device)
    start = time.time()
    workers = int(settings.get("num_workers", 0))
    if isinstance(model, ARCHITECTURES["dgmm_resnext"]):
        heads = nn.ModuleDict({p: build_head(head_cfg, model.emb_dim, dataset.num_speakers) for p in model.paths})
        step1 = run_phase(Phase(TwoPathClassifier(model.paths, heads), dataset, settings, "", workers),
                          runtime, models_dir, fingerprint, log)
        model.paths.load_state_dict(averaged_model(step1, int(settings["avg_last"]), log))
        model.freeze_paths()
        fusion_settings = merged(settings, settings.get("fusion"))
        embeddings, labels = cache_path_embeddings(model.to(runtime.device), dataset,
                                                   int(fusion_settings.get("crops_per_utt", 4)),
                                                   int(fusion_settings["batch_size"]), runtime)
        log.info("step 2: fusion layer on %d cached %d-d path embeddings", len(labels), embeddings.shape[1])
        fusion_head = build_head(head_cfg, model.emb_dim, dataset.num_speakers)
        step2 = run_phase(Phase(EmbeddingClassifier(model.fusion, fusion_head), CachedEmbeddingDataset(embeddings, labels),
                                fusion_settings, "fusion_", 0), runtime, models_dir, fingerprint, log)
        model.fusion.load_state_dict(averaged_model(step2, int(settings["avg_last"]), log))
        final_state = {k: v.cpu() for k, v in model.state_dict().items()}
    else:
        head = build_head(head_cfg, model.emb_dim, dataset.num_speakers)
        checkpoints = run_phase(Phase(EmbeddingClassifier(model, head), dataset, settings, "", workers),
                                runtime, models_dir, fingerprint, log)
        final_state = averaged_model(checkpoints, int(settings["avg_last"]), log)
    if runtime.is_main:
        save_checkpoint({"model": final_state, "model_name": name, "config": frozen,
                         "num_speakers": dataset.num_speakers, "fingerprint": fingerprint}, final_path)
        mark_done(exp_dir, "train", fingerprint)
        log.info("%s: final model %s (%.1f s)", name, final_path, time.time() - start)
    runtime.barrier()
    return final_path


@click.command("train")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--model", "model_name", required=True, help="a key of the config's `models:` section")
@click.option("--exp-dir", type=click.Path(file_okay=False), help="default: exp/<model>")
@click.option("--resume", is_flag=True, help="continue from the last epoch checkpoint (a fresh start if none)")
@click.option("--override", "-o", multiple=True, help="config override, e.g. train.epochs=20")
def main(config_path: str, model_name: str, exp_dir: str | None, resume: bool, override: tuple[str, ...]) -> None:
    """Train MODEL (stage 4); launch with torchrun for several GPUs or processes."""
    cfg = load_config(config_path, override)
    try:
        train_model(cfg, model_name, Path(exp_dir or f"exp/{model_name}"), resume=resume)
    except (TrainingError, CheckpointError, DataDirError, ArchiveError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
