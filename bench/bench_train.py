#!/usr/bin/env python3
"""Training speed of every model of a config on this machine, and whether the data loader keeps up.

    python bench/bench_train.py --config conf/demo.yaml [--models gmm_resnext,resnet34] [--batches 6]
    python bench/bench_train.py --config conf/demo.yaml --synthetic /tmp/demo_syn   # no corpus yet: build a
                                                        # synthetic one of the demo's size (stages 1-3, minutes)

For each model prints: parameters; samples/s of the data loader alone (with the configured workers), of the
training step alone (forward, backward, Adam on one batch held in memory), and of both together as training runs
them; and the epoch time that implies for the training set. The loader is not the bottleneck when its rate is well
above the step's and the end-to-end rate is close to the step's.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from pipeline.dataset.crops import EpochBatchSampler, RandomCropDataset, make_loader  # noqa: E402
from pipeline.dataset.features import FeatureSource  # noqa: E402
from pipeline.experiment import build_network, gmm_root, resolve_experiment, voiced_only  # noqa: E402
from pipeline.recipe_layout import training_dir  # noqa: E402
from pipeline.models import count_parameters  # noqa: E402
from pipeline.train.trainer import classification_task  # noqa: E402
from pipeline.utils.config import load_config  # noqa: E402


def build_synthetic_demo(root: Path, config_path: Path) -> None:
    """A synthetic corpus of the demo's size (50 training speakers x 20 utterances of 2-8 s), through stages 1-3."""
    import subprocess

    sys.path.insert(0, str(REPO / "tests"))
    from synthetic_corpus import make_corpus

    if not (root / "data" / "train").is_dir():
        make_corpus(root, "train", 50, 20, seconds=(2.0, 8.0))
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def stage(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=root, env=env, check=True)

    stage("make-mfcc", "--config", str(config_path), "--nj", "2", "data/train", "mfcc")
    stage("fit-gmm", "--config", str(config_path), "data/train", "exp/gmm")
    for gmm in load_config(config_path)["gmm"]["models"]:
        stage("make-lgp", "--config", str(config_path), "--nj", "2", "data/train", f"exp/gmm/{gmm}", f"lgp/{gmm}",
              f"data/train_lgp_{gmm}")


def rate(samples: int, seconds: float) -> float:
    return samples / max(seconds, 1e-9)


def bench_model(cfg: dict[str, Any], name: str, train_dir: Path, batches: int) -> dict[str, float]:
    frozen = resolve_experiment(cfg, name, train_dir)
    settings = frozen["train"]
    source = FeatureSource(train_dir, frozen["model"]["inputs"], voiced_only=voiced_only(frozen))
    dataset = RandomCropDataset(source, crop_frames=int(settings["crop_frames"]), seed=0)
    batch_size = int(settings["batch_size"])
    torch.manual_seed(0)
    task = classification_task(build_network(frozen["model"], gmm_root(frozen)), frozen, dataset.num_speakers)
    optimizer = torch.optim.Adam([p for p in task.parameters() if p.requires_grad], lr=1e-3)

    def step(inputs: list[torch.Tensor], labels: torch.Tensor) -> None:
        loss, _ = task(inputs, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def loader_for(epoch: int) -> Any:
        sampler = EpochBatchSampler(len(dataset), batch_size, seed=0)
        sampler.set_epoch(epoch)
        return make_loader(dataset, sampler, num_workers=int(settings.get("num_workers", 0)))

    # Loader alone (the first batch, which starts the workers, is not timed).
    iterator = iter(loader_for(1))
    first_inputs, first_labels = next(iterator)
    start = time.time()
    for _ in range(batches):
        next(iterator)
    loader_rate = rate(batches * batch_size, time.time() - start)
    del iterator

    # Training step alone, on one batch in memory.
    task.train()
    step(first_inputs, first_labels)  # warm-up: allocations, MKL-DNN kernel choice
    start = time.time()
    for _ in range(batches):
        step(first_inputs, first_labels)
    step_rate = rate(batches * batch_size, time.time() - start)

    # Both, as an epoch runs them.
    iterator = iter(loader_for(2))
    step(*next(iterator))
    start = time.time()
    for _ in range(batches):
        step(*next(iterator))
    both_rate = rate(batches * batch_size, time.time() - start)
    usable = len(dataset) // batch_size * batch_size
    return {"params_m": count_parameters(task.embedder) / 1e6, "loader": loader_rate, "step": step_rate,
            "both": both_rate, "epoch_s": usable / both_rate, "epochs": int(settings["epochs"]),
            "samples": usable}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "conf" / "demo.yaml"))
    parser.add_argument("--models", help="comma-separated names of the config's models (default: all)")
    parser.add_argument("--batches", type=int, default=6, help="timed batches per measurement")
    parser.add_argument("--synthetic", type=Path, help="build (or reuse) a synthetic demo-size corpus here")
    parser.add_argument("-o", "--override", action="append", default=[], help="config override key=value")
    args = parser.parse_args()

    config_path = Path(args.config).resolve()
    if args.synthetic:
        args.synthetic.mkdir(parents=True, exist_ok=True)
        build_synthetic_demo(args.synthetic, config_path)
        os.chdir(args.synthetic)
    cfg = load_config(config_path, args.override)
    train_dir = training_dir(cfg)   # the clean set under augment.mode online
    names = args.models.split(",") if args.models else list(cfg["models"])
    print(f"# {os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"training set {train_dir.resolve()}")
    # Figures from a busy machine are low: the load says how busy it was (more than the core count: shared).
    print("# load average at start: " + " ".join(f"{x:.1f}" for x in os.getloadavg()))
    print(f"{'model':<16} {'params':>8} {'loader':>10} {'step':>10} {'both':>10} {'epoch':>8} {'all epochs':>11}")
    print(f"{'':<16} {'(M)':>8} {'(samp/s)':>10} {'(samp/s)':>10} {'(samp/s)':>10} {'(s)':>8} {'(s)':>11}")
    for name in names:
        r = bench_model(cfg, name, train_dir, args.batches)
        print(f"{name:<16} {r['params_m']:>8.2f} {r['loader']:>10.0f} {r['step']:>10.1f} {r['both']:>10.1f} "
              f"{r['epoch_s']:>8.1f} {r['epoch_s'] * r['epochs']:>11.0f}", flush=True)


if __name__ == "__main__":
    main()
