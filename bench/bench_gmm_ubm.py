#!/usr/bin/env python3
"""The classical GMM-UBM: linear and fixed-alignment scoring against the exact frame-averaged LLR on real trials,
and the cost of its statistics.

    python bench/bench_gmm_ubm.py --recipe . [--model gmm_ubm] [--set test] [--trials trials_O] [--pairs 300]

From a recipe whose stages 1-5 ran for the model: draws `--pairs` target and `--pairs` non-target trials of the list,
scores each with the exact LLR (the enrolment utterance's MAP-adapted GMM against the UBM, averaged over the test
utterance's frames, full log-sum-exp), with linear scoring and with the fixed-alignment score (linear plus its
quadratic term: the dot product stage 6 uses by default), and prints their EERs and Spearman correlations. Then the statistics' speed on one core for the UBM's size and for the paper
scale (512 components, 20 cepstra), which sets stage 5's cost.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from pipeline.dataset.features import FeatureSource  # noqa: E402
from pipeline.embed import load_embedder  # noqa: E402
from pipeline.features.gmm import DiagGMM  # noqa: E402
from pipeline.models.gmm_ubm import GMMUBM  # noqa: E402
from timing import best_time  # noqa: E402  (bench/, this script's directory)
from pipeline.scoring.metrics import compute_eer  # noqa: E402
from pipeline.utils.trials import read_trials  # noqa: E402


def sample_trials(path: Path, pairs: int, seed: int) -> tuple[list[str], list[str], np.ndarray]:
    trials = read_trials(path)
    rng = np.random.default_rng(seed)
    picks = np.concatenate([rng.choice(np.flatnonzero(trials.labels == label), size=pairs, replace=False)
                            for label in (1, 0)])
    return trials.enroll[picks].tolist(), trials.test[picks].tolist(), trials.labels[picks]


def statistics_speed(ubm: GMMUBM, frames: np.ndarray, repeats: int = 3) -> float:
    """Frames per second of `ubm.stats` on one core."""
    return len(frames) / best_time(lambda: ubm.stats(frames), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=Path("."), help="the recipe directory (data/, exp/)")
    parser.add_argument("--model", default="gmm_ubm")
    parser.add_argument("--set", default="test")
    parser.add_argument("--trials", default="trials_O")
    parser.add_argument("--pairs", type=int, default=300, help="target and non-target trials each")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    embedder = load_embedder(args.recipe / "exp" / args.model)
    ubm = embedder.ubm
    set_dir = args.recipe / "data" / args.set
    source = FeatureSource(set_dir, ["mfcc"], voiced_only=embedder.voiced_only)
    enroll, test, labels = sample_trials(set_dir / args.trials, args.pairs, args.seed)
    frames = {u: source.read(u)[0] for u in set(enroll) | set(test)}
    stats = {u: ubm.stats(x) for u, x in frames.items()}
    adapted = {u: ubm.adapt_means(stats[u]) for u in set(enroll)}
    scores = {"exact": np.array([ubm.exact_llr(adapted[e], frames[t]) for e, t in zip(enroll, test)])}
    for name, quadratic in (("linear", False), ("fixed-alignment", True)):
        scoring = GMMUBM(ubm.ubm, relevance=ubm.relevance, quadratic=quadratic)
        scores[name] = np.array([float(scoring.enrollment_vector(stats[e]).astype(np.float64)
                                       @ scoring.test_vector(stats[t])) for e, t in zip(enroll, test)])
    print(f"{args.model} on {args.set}/{args.trials}, {args.pairs} target + {args.pairs} non-target trials:")
    for name, values in scores.items():
        print(f"  {name:16s} EER {100 * compute_eer(values, labels)[0]:5.2f}%, Spearman correlation with the exact "
              f"LLR {spearmanr(values, scores['exact']).statistic:.4f}")

    every = np.concatenate(list(frames.values()))[:20000].astype(np.float32)
    print(f"  statistics, {ubm.ubm.num_components} x {ubm.num_ceps}: {statistics_speed(ubm, every):,.0f} frames/s "
          f"on one core")
    rng = np.random.default_rng(0)
    paper = GMMUBM(DiagGMM(np.full(512, 1 / 512), rng.standard_normal((512, 20)), rng.uniform(0.5, 2, (512, 20))))
    print(f"  statistics, 512 x 20 (paper scale): {statistics_speed(paper, every[:, :20]):,.0f} frames/s on one core")


if __name__ == "__main__":
    main()
