#!/usr/bin/env python3
"""Time stage 6's speaker bootstrap on a VoxCeleb1-O sized list: 37,720 trials among 40 test speakers, 1000 replicates.

    python bench/bench_bootstrap.py

Prints the seconds of the EER-only bootstrap (`speaker_bootstrap_eer`) and of the one that gives every column's
interval from the same resamplings (`speaker_bootstrap`: EER, minDCF at two priors, and for LLRs Cllr, minCllr and
actDCF), on synthetic LLRs with the list's shape (each speaker 8 recordings, 10% targets), best of three runs.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root

from pipeline.scoring.bootstrap import speaker_bootstrap, speaker_bootstrap_eer  # noqa: E402
from timing import best_time  # noqa: E402  (bench/, this script's directory)


def voxceleb1_o_like(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(llrs, labels, enrolment speakers, test speakers) of 37,720 trials among 40 speakers."""
    rng = np.random.default_rng(seed)
    trials, speakers = 37_720, 40
    enroll = rng.integers(0, speakers, trials)
    labels = rng.random(trials) < 0.1
    test = np.where(labels, enroll, (enroll + rng.integers(1, speakers, trials)) % speakers)
    llrs = np.where(labels, rng.normal(3.0, 2.0, trials), rng.normal(-3.0, 2.5, trials))
    return llrs, labels, enroll, test


def main() -> None:
    llrs, labels, enroll, test = voxceleb1_o_like()
    eer_only = best_time(lambda: speaker_bootstrap_eer(llrs, labels, enroll, test, replicates=1000))
    raw = best_time(lambda: speaker_bootstrap(llrs, labels, enroll, test, replicates=1000))
    every = best_time(lambda: speaker_bootstrap(llrs, labels, enroll, test, replicates=1000, llr_prior=0.01))
    print(f"37,720 trials, 40 speakers, 1000 replicates: EER only {eer_only:.2f} s; EER + minDCF x2 {raw:.2f} s; "
          f"EER + minDCF x2 + Cllr + minCllr + actDCF {every:.2f} s")


if __name__ == "__main__":
    main()
