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

from pipeline.models.gmm_ubm import linear_scores

from .cosine import _cohort_mean_std, _trial_ids, speaker_means

__all__ = ["as_norm_linear", "linear_trial_scores"]


def _rows(vectors: Mapping[str, np.ndarray], ids: list[str]) -> np.ndarray:
    return np.stack([np.asarray(vectors[u], dtype=np.float64).ravel() for u in ids])


def linear_trial_scores(enroll: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray], trials: Any
                        ) -> np.ndarray:
    """e_a . t_b for every trial (a, b), in trials order."""
    a, b = _trial_ids(trials)
    ids, inverse = np.unique(np.concatenate((a, b)), return_inverse=True)
    ids = ids.tolist()
    return linear_scores(_rows(enroll, ids), _rows(test, ids), inverse[:a.size], inverse[a.size:])


def as_norm_linear(scores: np.ndarray, enroll: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray],
                   trials: Any, cohort_enroll: Mapping[str, np.ndarray], cohort_test: Mapping[str, np.ndarray],
                   utt2spk: Mapping[str, str], top_n: int) -> np.ndarray:
    """Adaptive symmetric normalisation of linear scores: each side's mean and std over its `top_n` highest scores
    against the cohort speakers (enrolment side: e_a . t_cohort; test side: e_cohort . t_b)."""
    _, cohort_e = speaker_means(cohort_enroll, utt2spk)
    _, cohort_t = speaker_means(cohort_test, utt2spk)
    top_n = min(int(top_n), cohort_e.shape[0])
    if top_n < 2:
        raise ValueError(f"AS-Norm needs a cohort of at least 2 speakers and top_n >= 2 (got {top_n})")
    a, b = _trial_ids(trials)
    ids, inverse = np.unique(np.concatenate((a, b)), return_inverse=True)
    ids = ids.tolist()
    mu_e, sd_e = _cohort_mean_std(_rows(enroll, ids), cohort_t, top_n)
    mu_t, sd_t = _cohort_mean_std(_rows(test, ids), cohort_e, top_n)
    ie, it = inverse[:a.size], inverse[a.size:]
    return 0.5 * ((scores - mu_e[ie]) / sd_e[ie] + (scores - mu_t[it]) / sd_t[it])
