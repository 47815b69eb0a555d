"""The log-likelihood-ratio cost Cllr, and its minimum over monotone recalibrations (minCllr, by PAV).

Cllr (Brümmer & du Preez, "Application-independent evaluation of speaker detection", Computer Speech and Language
20, 2006; BOSARIS toolkit `cllr.m`) scores natural-log LLRs, in bits:

    Cllr = 1 / (2 log 2) * ( mean_tar log(1 + exp(-llr)) + mean_non log(1 + exp(llr)) )

It is 0 for LLRs that are infinitely confident and always right, 1 for the system that always says llr = 0, and
unbounded for confident mistakes. minCllr is Cllr after the best monotone non-decreasing map of the scores to LLRs,
so it measures discrimination alone, and Cllr - minCllr the loss to miscalibration (BOSARIS `min_cllr.m`, pyllr's
`min_cllr`). That map is the pool-adjacent-violators (PAV) solution: the isotonic regression of the labels on the
scores gives each block of trials a posterior p = n_tar / (n_tar + n_non), and its LLR is
logit(p) - log(T / N) (T, N: the target and non-target totals, the prior PAV saw). A block of only non-targets
gets -inf, one of only targets +inf; they cost nothing, since their trials are all of the class they rule out.
Tied scores get one LLR: no monotone map can give them two, so they enter PAV as one point, not in an order.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import isotonic_regression

from .metrics import _checked

__all__ = ["cllr", "min_cllr", "pav_llrs"]


def cllr(llrs: ArrayLike, labels: ArrayLike) -> float:
    """Cllr in bits of natural-log `llrs` (1 target, 0 non-target labels). LLRs may be +-inf: one on the right side
    costs 0, one on the wrong side makes Cllr infinite."""
    llrs, labels = _checked(llrs, labels, allow_infinite=True)
    target_cost = np.mean(np.logaddexp(0.0, -llrs[labels]))
    nontarget_cost = np.mean(np.logaddexp(0.0, llrs[~labels]))
    return float((target_cost + nontarget_cost) / (2.0 * np.log(2.0)))


def pav_llrs(scores: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """The LLR of each trial under the PAV map of `scores` (the optimal monotone calibration on these very trials,
    an oracle, not a calibration to apply to other trials); +-inf at the ends where a block holds one class."""
    scores, labels = _checked(scores, labels, allow_infinite=True)
    values, point = np.unique(scores, return_inverse=True)
    targets = np.bincount(point, weights=labels, minlength=values.size)
    totals = np.bincount(point, minlength=values.size).astype(np.float64)
    fitted = isotonic_regression(targets / totals, weights=totals).x
    block = np.concatenate(([0], np.cumsum(fitted[1:] != fitted[:-1])))
    block_targets = np.bincount(block, weights=targets)
    block_nontargets = np.bincount(block, weights=totals - targets)
    n_target = block_targets.sum()
    with np.errstate(divide="ignore"):  # log 0 = -inf is the LLR of a one-class block
        block_llrs = (np.log(block_targets) - np.log(block_nontargets)
                      - np.log(n_target) + np.log(labels.size - n_target))
    return block_llrs[block][point]


def min_cllr(scores: ArrayLike, labels: ArrayLike) -> float:
    """Cllr after the optimal monotone calibration of `scores` (PAV): 0 for separable scores, at most 1."""
    return cllr(pav_llrs(scores, labels), labels)
