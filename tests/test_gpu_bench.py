"""bench/bench_gpu_train.py where there is no GPU: it refuses in one line, and its measuring loop (stage 4's own
step over the real loader) runs and reports on a tiny model on the CPU, so the GPU box does not find its bugs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import bench_gpu_train  # noqa: E402
from bench_loader import COLS, write_set  # noqa: E402
from pipeline.dataset.crops import EpochBatchSampler, RandomCropDataset, make_loader  # noqa: E402
from pipeline.dataset.features import FeatureSource  # noqa: E402
from pipeline.models import build_head, build_model  # noqa: E402
from pipeline.train.executor import Precision  # noqa: E402
from pipeline.train.tasks import EmbeddingClassifier  # noqa: E402


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the bench runs")
def test_refuses_to_run_without_cuda_in_one_line():
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "bench_gpu_train.py"), "--seconds", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "no CUDA device" in proc.stderr


def test_the_measuring_loop_reports_crops_per_second_step_time_and_memory(tmp_path):
    rng = np.random.default_rng(0)
    lgp = {utt: rng.standard_normal((int(rng.integers(60, 120)), COLS)).astype(np.float32)
           for utt in sorted(f"spk{i % 4:04d}-utt{i:05d}" for i in range(16))}
    dataset = RandomCropDataset(FeatureSource(write_set(tmp_path, "train", lgp, compress=True, input_name="lgp_gi"),
                                              ["lgp_gi"]), crop_frames=50, seed=0)
    assert dataset.num_speakers == 4   # the speaker is the utterance id's prefix, as in Kaldi
    sampler = EpochBatchSampler(len(dataset), 4, seed=0)
    model = build_model({"arch": "gmm_resnext", "in_channels": COLS, "channels": 16, "depths": [1, 1, 1, 1],
                         "emb_dim": 32})
    task = EmbeddingClassifier(model, build_head({"type": "aam_softmax", "margin": 0.2, "scale": 30.0}, 32, 10))
    optimizer = torch.optim.Adam(task.parameters(), lr=1e-3)
    rate = bench_gpu_train.measure_training(task, make_loader(dataset, sampler), sampler, optimizer,
                                            Precision("cpu", torch.bfloat16), torch.device("cpu"), seconds=0.2,
                                            warmup_steps=1)
    assert rate.steps >= 1 and rate.crops == 4 * rate.steps and rate.seconds >= 0.2 and rate.peak_gib is None
    line = rate.line()
    assert "crops/s" in line and "ms a step" in line and "peak memory n/a (CPU)" in line
