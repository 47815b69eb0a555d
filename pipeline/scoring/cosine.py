"""Cosine scoring, with the authors' full-utterance-plus-crops averaging (scored by `scorer.CosineScorer`), and
AS-Norm's statistics.

Embedding values. An utterance's embedding is either a 1-D vector (the full utterance only) or a 2-D `(k, dim)`
matrix. In the matrix, row 0 is the embedding of the full utterance and rows 1..k-1 are embeddings of evenly
spaced fixed-length crops.

Averaging, as in the GMM-ResNext authors' test code (leizhenchun/gmm-resnext, voxceleb_core/voxceleb_experiment.py
and voxceleb_dataset.loadWAV). Each test utterance gives one full-utterance embedding and 10 crops of 400 frames
(64,240 samples = 4.015 s). The crops start at `linspace(0, len - crop_len, 10)`, and a shorter utterance is
first wrap-padded to the crop length. Every embedding is L2-normalised, and a trial's score is

    0.5 * ( cos(full_e, full_t) + mean over all 10 x 10 crop pairs (i, j) of cos(crop_e_i, crop_t_j) ).

The crop term averages all crop pairs, not only matching crops. The full-utterance term and the crop term
weigh the same, whatever the number of crops. Because the cosines are dot products of unit vectors, the mean over
all pairs is the dot product of the two mean unit crop vectors, so it costs one dot product per trial.

If either side of a trial has no crops, the score is the full-vs-full cosine alone. The authors do not subtract a
mean; `mean=` (the training-set mean, as WeSpeaker does) is our option and is subtracted from every row before
normalising.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["group_means", "mean_embedding", "normalise_with_cohort_scores", "speaker_means",
           "top_mean_std"]


def _unit_rows(matrix: np.ndarray, what: str) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if zero.size:
        raise ValueError(f"{what}: row {int(zero[0])} is a zero vector ({zero.size} in all); cosine is undefined")
    return matrix / norms


def _full_vector(value: Any) -> np.ndarray:
    """The full-utterance embedding of a dict value: the vector itself, or row 0 of a (k, dim) matrix."""
    value = np.asarray(value, dtype=np.float64)
    return value if value.ndim == 1 else value[0]


def mean_embedding(embeddings: Mapping[str, ArrayLike]) -> np.ndarray:
    """Mean of the full-utterance embeddings (row 0 of matrices): the training-set mean for `mean=`."""
    if not embeddings:
        raise ValueError("no embeddings given: cannot take their mean")
    return np.mean(np.stack([_full_vector(v) for v in embeddings.values()]), axis=0)


def speaker_means(embeddings: Mapping[str, ArrayLike],
                  utt2spk: Mapping[str, str]) -> tuple[list[str], np.ndarray]:
    """Per-speaker mean of the full-utterance embeddings, the AS-Norm cohort (as WeSpeaker's recipe builds it).

    Every utterance in `embeddings` must have a speaker in `utt2spk`. Returns (speaker ids in sorted order,
    (n_speakers, dim) matrix of means in that order). The means are of the raw vectors; normalise afterwards
    if wanted (the cosine scorer's `rows` does).
    """
    return group_means({u: _full_vector(v) for u, v in embeddings.items()}, utt2spk)


def group_means(values: Mapping[str, ArrayLike], utt2spk: Mapping[str, str]) -> tuple[list[str], np.ndarray]:
    """(speakers in sorted order, (n_speakers, ...) means of their utterances' arrays, all of one shape)."""
    if not values:
        raise ValueError("no embeddings given: cannot build speaker means")
    utts = list(values)
    unknown = [u for u in utts if u not in utt2spk]
    if unknown:
        raise ValueError(f"utterance {unknown[0]!r} has an embedding but no speaker in utt2spk "
                         f"({len(unknown)} such utterances); pass the utt2spk of the same data dir")
    matrix = np.stack([np.asarray(values[u], dtype=np.float64) for u in utts])
    speakers, which = np.unique(np.array([utt2spk[u] for u in utts]), return_inverse=True)
    sums = np.zeros((speakers.size,) + matrix.shape[1:])
    np.add.at(sums, which, matrix)
    counts = np.bincount(which, minlength=speakers.size).reshape((-1,) + (1,) * (matrix.ndim - 1))
    return speakers.tolist(), sums / counts


def _trial_ids(trials: Any) -> tuple[np.ndarray, np.ndarray]:
    """(enroll ids, test ids) from a `Trials` (or anything with .enroll/.test) or a sequence of (enroll, test, ...)."""
    if hasattr(trials, "enroll") and hasattr(trials, "test"):
        return np.asarray(trials.enroll), np.asarray(trials.test)
    pairs = list(trials)
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def top_mean_std(cohort_scores: np.ndarray, top_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (ddof 0) of the top_n highest scores of each row (one utterance's scores against the cohort)."""
    n_cohort = cohort_scores.shape[1]
    # partition, not sort: O(n_cohort) per row, the top_n land in the last top_n columns
    top = np.partition(cohort_scores, n_cohort - top_n, axis=1)[:, n_cohort - top_n:]
    return top.mean(axis=1), top.std(axis=1)


def normalise_with_cohort_scores(scores: np.ndarray, enroll_cohort_scores: np.ndarray, test_cohort_scores: np.ndarray,
                                 top_n: int, ie: np.ndarray, it: np.ndarray) -> np.ndarray:
    """AS-Norm of scores that are no dot products (an exact GMM-UBM LLR): row `ie[n]` of `enroll_cohort_scores` holds
    score n's enrolment side against every cohort speaker, row `it[n]` of `test_cohort_scores` its test side."""
    top_n = min(int(top_n), enroll_cohort_scores.shape[1], test_cohort_scores.shape[1])
    if top_n < 2:
        raise ValueError(f"AS-Norm needs a cohort of at least 2 speakers and top_n >= 2 (got {top_n})")
    return normalised(scores, top_mean_std(enroll_cohort_scores, top_n), top_mean_std(test_cohort_scores, top_n),
                       ie, it)


def normalised(scores: np.ndarray, enroll_side: tuple[np.ndarray, np.ndarray],
               test_side: tuple[np.ndarray, np.ndarray], ie: np.ndarray, it: np.ndarray) -> np.ndarray:
    """AS-Norm's s' = 0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t), score n's sides being rows ie[n] and it[n] of
    the (mean, std) of each side."""
    (mu_e, sd_e), (mu_t, sd_t) = enroll_side, test_side
    if not (np.all(sd_e > 0) and np.all(sd_t > 0)):
        raise ValueError("an embedding scores identically against its top cohort rows (std 0): the cohort "
                         "holds duplicate rows; de-duplicate it or raise top_n")
    return 0.5 * ((scores - mu_e[ie]) / sd_e[ie] + (scores - mu_t[it]) / sd_t[it])
