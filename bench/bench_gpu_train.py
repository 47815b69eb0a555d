"""The paper-size GMM-ResNext training on an accelerator, fed by the real loader: samples/s, the share of time spent
waiting for data, peak device memory. One prepared run of at most a few minutes.

    python bench/bench_gpu_train.py [--seconds 150] [--batch 128] [--workers 8] [--utts 400]
    python bench/bench_gpu_train.py --device cpu --small --seconds 20     # a check of the script itself

Synthetic 512-d Kaldi-compressed LGP archives (utterances of 300-1200 frames) are written to a temporary directory
as stage 3 writes them and read through `RandomCropDataset` (crop rows only) and the training DataLoader with
`--workers` processes; the model (C 512, depths 3-3-9-3, AAM head over 5,994 classes, VoxCeleb2's speakers) trains
with mixed precision (bf16 autocast where supported, else fp16 with a grad scaler) and Adam, as stage 4 does.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


@click.command()
@click.option("--seconds", default=150.0, show_default=True, help="training time measured (after warm-up)")
@click.option("--batch", default=128, show_default=True)
@click.option("--workers", default=8, show_default=True, help="DataLoader processes")
@click.option("--utts", default=400, show_default=True, help="utterances in the synthetic archive")
@click.option("--device", default="cuda", show_default=True)
@click.option("--small", is_flag=True, help="a tiny model and batch: checks the script on a CPU")
def main(seconds: float, batch: int, workers: int, utts: int, device: str, small: bool) -> None:
    import torch

    from bench_loader import COLS, CROP, write_set
    from pipeline.dataset.crops import EpochBatchSampler, RandomCropDataset, make_loader
    from pipeline.dataset.features import FeatureSource
    from pipeline.models import build_head, build_model
    from pipeline.train.tasks import EmbeddingClassifier

    dev = torch.device(device)
    channels, depths, classes = (32, [1, 1, 1, 1], 50) if small else (512, [3, 3, 9, 3], 5994)
    batch = min(batch, 8) if small else batch
    rng = np.random.default_rng(0)
    names = sorted(f"spk{i % classes:04d}-utt{i:05d}" for i in range(utts))
    lgp = {u: (rng.standard_normal((int(rng.integers(300, 1201)), COLS)) + rng.standard_normal(COLS))
           .astype(np.float32) for u in names}
    with tempfile.TemporaryDirectory() as tmp:
        data = write_set(Path(tmp), "train", lgp, compress=True, input_name="lgp_gi")
        dataset = RandomCropDataset(FeatureSource(data, ["lgp_gi"]), crop_frames=CROP, seed=0)
        sampler = EpochBatchSampler(len(dataset), batch, seed=0)
        loader = make_loader(dataset, sampler, num_workers=workers, pin_memory=dev.type == "cuda")
        torch.manual_seed(0)
        model = build_model({"arch": "gmm_resnext", "in_channels": COLS, "channels": channels, "depths": depths,
                             "emb_dim": 256})
        task = EmbeddingClassifier(model, build_head({"type": "aam_softmax", "margin": 0.2, "scale": 30.0}, 256,
                                                     dataset.num_speakers)).to(dev)
        optimizer = torch.optim.Adam(task.parameters(), lr=1e-3, weight_decay=2e-5)
        bf16 = dev.type == "cuda" and torch.cuda.is_bf16_supported()
        dtype = torch.bfloat16 if bf16 or dev.type == "cpu" else torch.float16
        scaler = torch.amp.GradScaler(enabled=dev.type == "cuda" and not bf16)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        samples = steps = 0
        waited = 0.0
        began = None
        epoch = 0
        while True:
            epoch += 1
            sampler.set_epoch(epoch)
            ready = time.time()
            for inputs, labels in loader:
                now = time.time()
                if began is not None:
                    waited += now - ready
                inputs = [x.to(dev, non_blocking=True) for x in inputs]
                labels = labels.to(dev, non_blocking=True)
                with torch.autocast(dev.type, dtype=dtype):
                    loss, _ = task(inputs, labels)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                steps += 1
                if began is None and steps == 5:  # warm-up: workers started, kernels chosen
                    began, steps = time.time(), 0
                elif began is not None:
                    samples += len(labels)
                ready = time.time()
                if began is not None and ready - began >= seconds:
                    break
            if began is not None and time.time() - began >= seconds:
                break
        total = time.time() - began
    peak = torch.cuda.max_memory_allocated(dev) / 2 ** 30 if dev.type == "cuda" else float("nan")
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    size = "paper-size GMM-ResNext" if not small else f"small GMM-ResNext (C {channels})"
    print(f"{size} on {name}, batch {batch}, {'bf16' if dtype == torch.bfloat16 else 'fp16'} "
          f"autocast, {workers} loader workers: {samples / total:,.0f} samples/s over {total:.0f} s ({steps} steps), "
          f"waiting for data {100 * waited / total:.1f}% of the time, peak memory {peak:.1f} GiB")


if __name__ == "__main__":
    main()
