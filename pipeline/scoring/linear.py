"""Scoring the classical GMM-UBM: linear-scoring LLRs (dot products of enrolment and test vectors) and their
AS-Norm.

An utterance has two vectors (`pipeline/models/gmm_ubm.py`): `e` (its MAP mean offset, used when it enrols) and `t`
(its centred statistics, used when it is tested); trial (a, b) scores e_a . t_b. AS-Norm is therefore asymmetric:
the enrolment side meets the cohort's test vectors and the test side the cohort's enrolment vectors, with raw dot
products, not cosines. A cohort speaker's vectors are the means of their utterances' vectors.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .cosine import _trial_ids, normalise_with_cohorts, speaker_means

__all__ = ["as_norm_linear", "cohort_vectors", "swapped", "trial_vectors"]

TrialVectors = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _rows(vectors: Mapping[str, np.ndarray], ids: list[str]) -> np.ndarray:
    return np.stack([np.asarray(vectors[u], dtype=np.float64).ravel() for u in ids])


def trial_vectors(enroll: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray], trials: Any) -> TrialVectors:
    """(enrolment rows, test rows, enrolment index, test index) of a trials list, each utterance gathered once:
    trial n scores `linear_scores(*trial_vectors(...))[n]` = e_a . t_b (`pipeline.models.gmm_ubm`)."""
    a, b = _trial_ids(trials)
    ids, inverse = np.unique(np.concatenate((a, b)), return_inverse=True)
    ids = ids.tolist()
    return _rows(enroll, ids), _rows(test, ids), inverse[:a.size], inverse[a.size:]


def swapped(vectors: TrialVectors) -> TrialVectors:
    """The same trials with the roles of their two utterances exchanged: e_b . t_a. A symmetric score averages the
    two (each utterance enrols once and is tested once), which the recipe's GMM-UBM does by default: 1.7 EER points
    better on the demo's lists, the largest of the classical system's levers (bench/gmm_ubm_levers.py)."""
    enroll, test, ie, it = vectors
    return enroll, test, it, ie


def cohort_vectors(cohort_enroll: Mapping[str, np.ndarray], cohort_test: Mapping[str, np.ndarray],
                   utt2spk: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """The cohort speakers' enrolment and test vectors: the means of their utterances' vectors."""
    return speaker_means(cohort_enroll, utt2spk)[1], speaker_means(cohort_test, utt2spk)[1]


def as_norm_linear(scores: np.ndarray, vectors: TrialVectors, cohort_enroll: np.ndarray, cohort_test: np.ndarray,
                   top_n: int) -> np.ndarray:
    """Adaptive symmetric normalisation of linear scores: each side's mean and std over its `top_n` highest scores
    against the cohort speakers (enrolment side: e_a . t_cohort; test side: e_cohort . t_b)."""
    top_n = min(int(top_n), cohort_enroll.shape[0])
    if top_n < 2:
        raise ValueError(f"AS-Norm needs a cohort of at least 2 speakers and top_n >= 2 (got {top_n})")
    enroll, test, ie, it = vectors
    return normalise_with_cohorts(scores, enroll, test, cohort_test, cohort_enroll, top_n, ie, it)
