"""The epoch loop shared by every model and by both dGMM steps (WeSpeaker's `utils/executor.py`): Adam, cosine
annealing with warm restarts stepped every batch, AAM margin warm-up, mixed precision on GPU, DDP, a checkpoint per
epoch, and an exact resume from the last one.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import Dataset
from tqdm import tqdm

from pipeline.dataset.crops import EpochBatchSampler, make_loader
from pipeline.models import MarginScheduler
from pipeline.train.runtime import Runtime
from pipeline.utils.checkpoint import average_state_dicts, epoch_checkpoints, load_checkpoint, save_checkpoint


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


@dataclass(frozen=True)
class Precision:
    """What a training step computes in: float32 (`dtype` None), or mixed precision under autocast to `dtype`, with
    the loss scaled when that is float16 (its narrow range underflows small gradients; bfloat16 has float32's)."""

    device_type: str
    dtype: torch.dtype | None = None

    @property
    def mixed(self) -> bool:
        return self.dtype is not None

    @property
    def scaled(self) -> bool:
        return self.dtype == torch.float16

    def describe(self) -> str:
        if not self.mixed:
            return "float32 (no AMP)"
        return f"AMP {str(self.dtype).removeprefix('torch.')} autocast" + (" + loss scaling" if self.scaled else "")

    def grad_scaler(self) -> torch.amp.GradScaler:
        return torch.amp.GradScaler(self.device_type, enabled=self.scaled)


def stage4_precision(settings: dict[str, Any], device: torch.device) -> Precision:
    """What stage 4 trains in: with `train.amp` on a GPU, float16 autocast with loss scaling; float32 on a CPU."""
    if bool(settings.get("amp", True)) and device.type == "cuda":
        return Precision("cuda", torch.float16)
    return Precision(device.type)


def training_step(task: nn.Module, inputs: list[torch.Tensor], labels: torch.Tensor, optimizer: torch.optim.Optimizer,
                  scaler: torch.amp.GradScaler, precision: Precision) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step of a task (inputs, labels -> loss, correct count) under `precision`; returns the loss and
    the correct count. The step stage 4 takes, and the one bench/bench_gpu_train.py times."""
    with torch.autocast(precision.device_type, dtype=precision.dtype, enabled=precision.mixed):
        loss, correct = task(inputs, labels)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss, correct


def margin_schedulers(task: nn.Module, settings: dict[str, Any]) -> list[MarginScheduler]:
    warmup = settings.get("margin_warmup")
    if not warmup:
        return []
    return [MarginScheduler(head, final_margin=head.margin, **warmup)
            for head in task.heads.values() if hasattr(head, "set_margin")]



def resume_point(phase: Phase, runtime: Runtime, models_dir: Path, key: str, resume: bool,
                 log: Any) -> dict[str, Any] | None:
    """The state of the last epoch checkpoint of `phase` written for `key` when `resume`, or None to start at epoch 1.

    Checkpoints that are not continued (not `resume`, or written for another config or other data) are removed, with
    one log line, and the phase starts afresh; a finished model, `final.pt`, is never among them.
    """
    done = epoch_checkpoints(models_dir, phase.prefix)
    if not done:
        return None
    last_path = done[-1][1]
    if resume:
        state = load_checkpoint(last_path, map_location=runtime.device)
        if state.get("fingerprint") == key:
            return state
        log.info("%s: %s was written for another config or other training data: training %safresh",
                 models_dir, last_path.name, phase.prefix.replace("_", " "))
    runtime.barrier()  # every rank has read the checkpoint before it goes
    if runtime.is_main:
        for _, path in done:
            path.unlink()
            (path.parent / (path.name + ".sha256")).unlink(missing_ok=True)
    runtime.barrier()
    return None


def run_phase(phase: Phase, runtime: Runtime, models_dir: Path, key: str, resume: bool, log: Any) -> list[Path]:
    """Train `phase.settings['epochs']` epochs (with `resume`, after the last `<prefix>epoch_<n>.pt` of `models_dir`
    written for the same training `key`); return the checkpoints of all epochs."""
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
    precision = stage4_precision(settings, runtime.device)
    scaler = precision.grad_scaler()
    log.info("%straining on %s in %s", phase.prefix.replace("_", " "), runtime.device, precision.describe())
    margins = margin_schedulers(task, settings)

    state = resume_point(phase, runtime, models_dir, key, resume, log)
    start_epoch = 1
    if state is not None:
        if state["epoch"] >= epochs:
            return [p for e, p in epoch_checkpoints(models_dir, phase.prefix) if e <= epochs]
        task.embedder.load_state_dict(state["model"])
        task.heads.load_state_dict(state["heads"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_states(state["rng"], runtime.device)
        start_epoch = state["epoch"] + 1
        log.info("resuming %sepoch %d of %d", phase.prefix, start_epoch, epochs)

    sampler = EpochBatchSampler(len(phase.dataset), int(settings["batch_size"]), seed=int(settings["seed"]),
                                rank=runtime.rank, world_size=runtime.world_size)
    loader = make_loader(phase.dataset, sampler, num_workers=phase.num_workers,
                         pin_memory=runtime.device.type == "cuda")
    model = task
    if runtime.distributed:
        model = nn.parallel.DistributedDataParallel(task, device_ids=[runtime.device] if runtime.device.type == "cuda"
                                                    else None)
    steps = len(sampler)
    run_start = time.time()
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
            loss, correct = training_step(model, inputs, labels, optimizer, scaler, precision)
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
            save_checkpoint({"epoch": epoch, "fingerprint": key, "stats": stats,
                             "model": task.embedder.state_dict(), "heads": task.heads.state_dict(),
                             "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                             "scaler": scaler.state_dict(), "rng": rng_states(runtime.device)},
                            models_dir / f"{phase.prefix}epoch_{epoch}.pt")
            margin_text = f", margin {margins[0].head.margin:.3f}" if margins else ""
            left = (time.time() - run_start) / (epoch - start_epoch + 1) * (epochs - epoch)
            log.info("%sepoch %d/%d: loss %.4f, accuracy %.1f%%, lr %.2e%s, %d samples, %.1f samples/s, "
                     "%.1f s (waiting for data %.1f s)%s", phase.prefix, epoch, epochs, stats["loss"],
                     100 * stats["accuracy"], stats["lr"], margin_text, stats["samples"],
                     stats["samples"] / seconds, seconds, data_wait,
                     f"; ETA {left / 60:.1f} min for the other {epochs - epoch}" if epoch < epochs else "")
        runtime.barrier()  # no rank starts the next epoch (or exits) before the checkpoint exists
    return [p for e, p in epoch_checkpoints(models_dir, phase.prefix) if e <= epochs]


def averaged_model(checkpoints: list[Path], avg_last: int, log: Any) -> dict[str, torch.Tensor]:
    chosen = checkpoints[-max(1, avg_last):]
    log.info("averaging %d checkpoints: %s", len(chosen), ", ".join(p.name for p in chosen))
    return average_state_dicts([load_checkpoint(p)["model"] for p in chosen])

