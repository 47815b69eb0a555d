"""Cosine scoring of trials, with the authors' full-utterance-plus-crops averaging, and AS-Norm.

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

__all__ = ["cosine_scores", "score_trials", "as_norm", "as_norm_trials", "speaker_means", "mean_embedding"]

_CHUNK = 65536  # trials per block of paired dot products: bounds memory on VoxCeleb1-E/H sized lists


def _unit_rows(matrix: np.ndarray, what: str) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if zero.size:
        raise ValueError(f"{what}: row {int(zero[0])} is a zero vector ({zero.size} in all); cosine is undefined")
    return matrix / norms


def _paired_dot(a: np.ndarray, ia: np.ndarray, b: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """out[n] = a[ia[n]] . b[ib[n]], in blocks so that the gathered rows stay small."""
    out = np.empty(ia.size, dtype=np.float64)
    for start in range(0, ia.size, _CHUNK):
        stop = start + _CHUNK
        out[start:stop] = np.einsum("ij,ij->i", a[ia[start:stop]], b[ib[start:stop]])
    return out


def cosine_scores(enroll_emb: ArrayLike, test_emb: ArrayLike) -> np.ndarray:
    """Cosine similarity of paired rows: out[n] = cos(enroll_emb[n], test_emb[n]). Both arrays are (n, dim)."""
    enroll = np.atleast_2d(np.asarray(enroll_emb, dtype=np.float64))
    test = np.atleast_2d(np.asarray(test_emb, dtype=np.float64))
    if enroll.shape != test.shape:
        raise ValueError(f"enroll embeddings {enroll.shape} and test embeddings {test.shape} must pair row by row")
    index = np.arange(enroll.shape[0])
    return _paired_dot(_unit_rows(enroll, "enroll embeddings"), index, _unit_rows(test, "test embeddings"), index)


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
    if wanted (`as_norm` does).
    """
    if not embeddings:
        raise ValueError("no embeddings given: cannot build speaker means")
    utts = list(embeddings)
    unknown = [u for u in utts if u not in utt2spk]
    if unknown:
        raise ValueError(f"utterance {unknown[0]!r} has an embedding but no speaker in utt2spk "
                         f"({len(unknown)} such utterances); pass the utt2spk of the same data dir")
    matrix = np.stack([_full_vector(embeddings[u]) for u in utts])
    speakers, which = np.unique(np.array([utt2spk[u] for u in utts]), return_inverse=True)
    sums = np.zeros((speakers.size, matrix.shape[1]))
    np.add.at(sums, which, matrix)
    counts = np.bincount(which, minlength=speakers.size)[:, None]
    return speakers.tolist(), sums / counts


def _trial_ids(trials: Any) -> tuple[np.ndarray, np.ndarray]:
    """(enroll ids, test ids) from a `Trials` (or anything with .enroll/.test) or a sequence of (enroll, test, ...)."""
    if hasattr(trials, "enroll") and hasattr(trials, "test"):
        return np.asarray(trials.enroll), np.asarray(trials.test)
    pairs = list(trials)
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def _trial_utterances(embeddings: Mapping[str, ArrayLike], trials: Any,
                      mean: ArrayLike | None) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                     np.ndarray]:
    """Gather each distinct utterance of the trials once.

    Returns (ids, full unit vectors (U, dim), mean unit crop vectors (U, dim), has-crops mask (U,),
    enroll index into ids, test index into ids).
    """
    enroll, test = _trial_ids(trials)
    if enroll.size == 0:
        raise ValueError("no trials given")
    ids, inverse = np.unique(np.concatenate((enroll, test)), return_inverse=True)
    enroll_index, test_index = inverse[:enroll.size], inverse[enroll.size:]
    shift = 0.0 if mean is None else np.asarray(mean, dtype=np.float64)
    full, crops, has_crops = [], [], np.zeros(ids.size, dtype=bool)
    dim = None
    for n, utt in enumerate(ids.tolist()):
        if utt not in embeddings:
            where = np.flatnonzero((enroll == utt) | (test == utt))[0]
            raise ValueError(f"trial {int(where) + 1} names utterance {utt!r}, which has no embedding")
        value = np.asarray(embeddings[utt], dtype=np.float64)
        if value.ndim not in (1, 2) or value.shape[-1] == 0 or (value.ndim == 2 and value.shape[0] == 0):
            raise ValueError(f"embedding of {utt!r} has shape {value.shape}; expected (dim,) or (k, dim)")
        if dim is None:
            dim = value.shape[-1]
        elif value.shape[-1] != dim:
            raise ValueError(f"embedding of {utt!r} has dimension {value.shape[-1]}, others have {dim}")
        rows = _unit_rows(np.atleast_2d(value) - shift, f"embedding of {utt!r}")
        full.append(rows[0])
        if rows.shape[0] > 1:
            has_crops[n] = True
            crops.append(rows[1:].mean(axis=0))
        else:
            crops.append(np.zeros(dim))
    return ids.tolist(), np.stack(full), np.stack(crops), has_crops, enroll_index, test_index


def score_trials(embeddings: Mapping[str, ArrayLike], trials: Any, mean: ArrayLike | None = None) -> np.ndarray:
    """Cosine score of every trial, in trials order (see the module docstring for crops and `mean`).

    `trials` is a `Trials` from `read_trials` or a sequence of (enroll, test[, label]) tuples. A trial naming an
    utterance absent from `embeddings` raises ValueError naming it.
    """
    _, full, crops, has_crops, ie, it = _trial_utterances(embeddings, trials, mean)
    scores = _paired_dot(full, ie, full, it)
    both = has_crops[ie] & has_crops[it]
    if both.any():
        scores[both] = 0.5 * (scores[both] + _paired_dot(crops, ie[both], crops, it[both]))
    return scores


def top_mean_std(cohort_scores: np.ndarray, top_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (ddof 0) of the top_n highest scores of each row (one utterance's scores against the cohort)."""
    n_cohort = cohort_scores.shape[1]
    # partition, not sort: O(n_cohort) per row, the top_n land in the last top_n columns
    top = np.partition(cohort_scores, n_cohort - top_n, axis=1)[:, n_cohort - top_n:]
    return top.mean(axis=1), top.std(axis=1)


def _cohort_mean_std(unit: np.ndarray, cohort_unit: np.ndarray, top_n: int) -> tuple[np.ndarray, np.ndarray]:
    """`top_mean_std` of each row's dot products (cosines for unit rows) with the cohort, a block of rows at a time."""
    mean, std = np.empty(unit.shape[0]), np.empty(unit.shape[0])
    block = max(1, _CHUNK * 16 // max(cohort_unit.shape[0], 1))  # keep a score block near a million floats
    for start in range(0, unit.shape[0], block):
        mean[start:start + block], std[start:start + block] = top_mean_std(unit[start:start + block] @ cohort_unit.T,
                                                                           top_n)
    return mean, std


def as_norm(scores: ArrayLike, enroll_emb: ArrayLike, test_emb: ArrayLike, cohort: ArrayLike, top_n: int,
            enroll_index: ArrayLike | None = None, test_index: ArrayLike | None = None) -> np.ndarray:
    """Adaptive symmetric score normalisation (AS-Norm1, as in WeSpeaker's `score_norm.py`).

    For each enroll and each test embedding, take the cosine scores against every cohort row and keep the
    `top_n` highest. Their mean and standard deviation (ddof 0) give mu and sd, and the result is
    s' = 0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t).

    Without indices, row n of `enroll_emb` / `test_emb` belongs to score n. With `enroll_index` / `test_index`,
    score n uses row `enroll_index[n]` / `test_index[n]`, so that each utterance meets the cohort only once.
    Embeddings are used as given (subtract a mean first if the scores were computed after one). A `top_n` at
    or above the cohort size uses the whole cohort (S-Norm).
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.size == 0:
        raise ValueError("no scores given to AS-Norm")
    enroll = _unit_rows(np.atleast_2d(np.asarray(enroll_emb, dtype=np.float64)), "enroll embeddings")
    test = _unit_rows(np.atleast_2d(np.asarray(test_emb, dtype=np.float64)), "test embeddings")
    cohort_unit = _unit_rows(np.atleast_2d(np.asarray(cohort, dtype=np.float64)), "cohort")
    if cohort_unit.shape[0] < 2 or top_n < 2:
        raise ValueError(f"AS-Norm needs top_n >= 2 and a cohort of at least 2 rows "
                         f"(got top_n={top_n}, cohort of {cohort_unit.shape[0]}): a std of one score is 0")
    if not enroll.shape[1] == test.shape[1] == cohort_unit.shape[1]:
        raise ValueError(f"dimensions differ: enroll {enroll.shape[1]}, test {test.shape[1]}, "
                         f"cohort {cohort_unit.shape[1]}")
    ie = np.arange(scores.size) if enroll_index is None else np.asarray(enroll_index).ravel()
    it = np.arange(scores.size) if test_index is None else np.asarray(test_index).ravel()
    if ie.size != scores.size or it.size != scores.size or ie.max() >= enroll.shape[0] or \
            it.max() >= test.shape[0]:
        raise ValueError(f"{scores.size} scores do not pair with {enroll.shape[0]} enroll and "
                         f"{test.shape[0]} test rows (pass enroll_index/test_index when rows are shared)")
    top_n = min(int(top_n), cohort_unit.shape[0])
    return normalise_with_cohorts(scores, enroll, test, cohort_unit, cohort_unit, top_n, ie, it)


def normalise_with_cohorts(scores: np.ndarray, enroll: np.ndarray, test: np.ndarray, enroll_cohort: np.ndarray,
                           test_cohort: np.ndarray, top_n: int, ie: np.ndarray, it: np.ndarray) -> np.ndarray:
    """AS-Norm's core, s' = 0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t): score n's enrolment row `enroll[ie[n]]`
    meets `enroll_cohort` and its test row `test[it[n]]` meets `test_cohort`, each keeping its top_n scores (the
    cosine AS-Norm gives both sides the same cohort; the GMM-UBM's asymmetric scores give each side the other's)."""
    return _normalised(scores, _cohort_mean_std(enroll, enroll_cohort, top_n),
                       _cohort_mean_std(test, test_cohort, top_n), ie, it)


def normalise_with_cohort_scores(scores: np.ndarray, enroll_cohort_scores: np.ndarray, test_cohort_scores: np.ndarray,
                                 top_n: int, ie: np.ndarray, it: np.ndarray) -> np.ndarray:
    """AS-Norm of scores that are no dot products (an exact GMM-UBM LLR): row `ie[n]` of `enroll_cohort_scores` holds
    score n's enrolment side against every cohort speaker, row `it[n]` of `test_cohort_scores` its test side."""
    top_n = min(int(top_n), enroll_cohort_scores.shape[1], test_cohort_scores.shape[1])
    if top_n < 2:
        raise ValueError(f"AS-Norm needs a cohort of at least 2 speakers and top_n >= 2 (got {top_n})")
    return _normalised(scores, top_mean_std(enroll_cohort_scores, top_n), top_mean_std(test_cohort_scores, top_n),
                       ie, it)


def _normalised(scores: np.ndarray, enroll_side: tuple[np.ndarray, np.ndarray],
                test_side: tuple[np.ndarray, np.ndarray], ie: np.ndarray, it: np.ndarray) -> np.ndarray:
    (mu_e, sd_e), (mu_t, sd_t) = enroll_side, test_side
    if not (np.all(sd_e > 0) and np.all(sd_t > 0)):
        raise ValueError("an embedding scores identically against its top cohort rows (std 0): the cohort "
                         "holds duplicate rows; de-duplicate it or raise top_n")
    return 0.5 * ((scores - mu_e[ie]) / sd_e[ie] + (scores - mu_t[it]) / sd_t[it])


def as_norm_trials(scores: ArrayLike, embeddings: Mapping[str, ArrayLike], trials: Any, cohort: ArrayLike,
                   top_n: int, mean: ArrayLike | None = None) -> np.ndarray:
    """AS-Norm of `score_trials` output. Each utterance's cohort statistics come from its full-utterance
    embedding (row 0), and `mean`, if given, is subtracted from it and from the cohort before the cosines."""
    _, full, _, _, ie, it = _trial_utterances(embeddings, trials, mean)
    cohort = np.atleast_2d(np.asarray(cohort, dtype=np.float64))
    if mean is not None:
        cohort = cohort - np.asarray(mean, dtype=np.float64)
    return as_norm(scores, full, full, cohort, top_n, enroll_index=ie, test_index=it)
