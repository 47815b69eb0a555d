"""The paper-size GMM-ResNext training on a GPU, fed by the real loader, taking stage 4's own step: crops/s, step
time, the share of time spent waiting for data, peak GPU memory, and the precision and memory layout it ran with.
One prepared run of a few minutes; refuses to run without CUDA (bench/bench_train.py measures the CPU).

    python bench/bench_gpu_train.py [--seconds 150] [--batch 128] [--workers 8] [--utts 400] [--no-amp] [--small]

Synthetic 512-d Kaldi-compressed LGP archives (utterances of 300-1200 frames) are written to a temporary directory
as stage 3 writes them and read through `RandomCropDataset` (crop rows only) and the training DataLoader with
`--workers` processes; the model (C 512, depths 3-3-9-3, an AAM head over VoxCeleb2's 5,994 speakers) trains with
Adam through `pipeline.train.executor.training_step` under stage 4's precision (`stage4_precision`: with `train.amp`,
float16 autocast with loss scaling). Channels-last stays off, as in stage 4: GMM-ResNext's tensors are 3-D
(channels x frames), which have no channels-last layout. `--small` trains a tiny model: a check of the script.
"""
from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

VOXCELEB2_SPEAKERS = 5994
WARMUP_STEPS = 5  # loader workers started, kernels chosen
CHANNELS_LAST = "channels-last off (as stage 4: 3-D Conv1d tensors have no channels-last layout)"


@dataclass
class TrainingRate:
    crops: int
    steps: int
    seconds: float
    waiting: float          # seconds spent waiting for the next batch
    peak_gib: float | None  # peak allocated GPU memory; None on a CPU

    def line(self) -> str:
        peak = "n/a (CPU)" if self.peak_gib is None else f"{self.peak_gib:.2f} GiB"
        return (f"{self.crops / self.seconds:,.1f} crops/s, {1000 * self.seconds / self.steps:.1f} ms a step over "
                f"{self.steps} steps ({self.seconds:.0f} s), waiting for data {100 * self.waiting / self.seconds:.1f}%"
                f" of the time, peak memory {peak}")


def measure_training(task, loader, sampler, optimizer, precision, device, seconds: float,
                     warmup_steps: int = WARMUP_STEPS) -> TrainingRate:
    """Train `task` with stage 4's step for `seconds` after `warmup_steps` steps; epochs repeat as needed."""
    import torch

    from pipeline.train.executor import training_step

    scaler = precision.grad_scaler()
    crops = steps = 0
    waiting = 0.0
    began = None
    epoch = 0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    while began is None or time.time() - began < seconds:
        epoch += 1
        sampler.set_epoch(epoch)
        ready = time.time()
        for inputs, labels in loader:
            if began is not None:
                waiting += time.time() - ready
            inputs = [x.to(device, non_blocking=True) for x in inputs]
            labels = labels.to(device, non_blocking=True)
            training_step(task, inputs, labels, optimizer, scaler, precision)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if began is None:
                warmup_steps -= 1
                if warmup_steps <= 0:
                    began = time.time()
            else:
                crops, steps = crops + len(labels), steps + 1
            ready = time.time()
            if began is not None and ready - began >= seconds and steps:
                break
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None
    return TrainingRate(crops, steps, time.time() - began, waiting, peak)


@click.command()
@click.option("--seconds", default=150.0, show_default=True, help="training time measured (after warm-up)")
@click.option("--batch", default=128, show_default=True)
@click.option("--workers", default=8, show_default=True, help="DataLoader processes")
@click.option("--utts", default=400, show_default=True, help="utterances in the synthetic archive")
@click.option("--amp/--no-amp", default=True, show_default=True, help="train.amp: stage 4's mixed precision")
@click.option("--small", is_flag=True, help="a tiny model and batch: a quick check of the script")
def main(seconds: float, batch: int, workers: int, utts: int, amp: bool, small: bool) -> None:
    import torch

    if not torch.cuda.is_available():
        sys.exit("bench_gpu_train.py: no CUDA device (torch.cuda.is_available() is False); it measures GPU "
                 "training, bench/bench_train.py the CPU")
    from bench_loader import COLS, CROP, write_set
    from pipeline.dataset.crops import EpochBatchSampler, RandomCropDataset, make_loader
    from pipeline.dataset.features import FeatureSource
    from pipeline.models import build_head, build_model
    from pipeline.train.executor import stage4_precision
    from pipeline.train.tasks import EmbeddingClassifier

    device = torch.device("cuda")
    channels, depths = (32, [1, 1, 1, 1]) if small else (512, [3, 3, 9, 3])
    batch = min(batch, 8) if small else batch
    rng = np.random.default_rng(0)
    names = sorted(f"spk{i % VOXCELEB2_SPEAKERS:04d}-utt{i:05d}" for i in range(utts))
    lgp = {u: (rng.standard_normal((int(rng.integers(300, 1201)), COLS)) + rng.standard_normal(COLS))
           .astype(np.float32) for u in names}
    with tempfile.TemporaryDirectory() as tmp:
        data = write_set(Path(tmp), "train", lgp, compress=True, input_name="lgp_gi")
        dataset = RandomCropDataset(FeatureSource(data, ["lgp_gi"]), crop_frames=CROP, seed=0)
        sampler = EpochBatchSampler(len(dataset), batch, seed=0)
        loader = make_loader(dataset, sampler, num_workers=workers, pin_memory=True)
        torch.manual_seed(0)
        model = build_model({"arch": "gmm_resnext", "in_channels": COLS, "channels": channels, "depths": depths,
                             "emb_dim": 256})
        head = build_head({"type": "aam_softmax", "margin": 0.2, "scale": 30.0}, 256,
                          max(VOXCELEB2_SPEAKERS, dataset.num_speakers))
        task = EmbeddingClassifier(model, head).to(device)
        optimizer = torch.optim.Adam(task.parameters(), lr=1e-3, weight_decay=2e-5)
        precision = stage4_precision({"amp": amp}, device)
        rate = measure_training(task, loader, sampler, optimizer, precision, device, seconds)
    size = "paper-size GMM-ResNext (C 512, depths 3-3-9-3)" if not small else f"small GMM-ResNext (C {channels})"
    print(f"{size} on {torch.cuda.get_device_name(device)}, batch {batch} of {CROP}-frame crops, {workers} loader "
          f"workers; {precision.describe()}; {CHANNELS_LAST}")
    print(rate.line())


if __name__ == "__main__":
    main()
