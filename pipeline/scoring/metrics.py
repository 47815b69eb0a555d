"""Verification metrics on score arrays: EER, minDCF, actDCF and the DET curve.

All functions take `scores` (higher means "same speaker") and `labels` (1 target, 0 nontarget, or booleans) and
work in O(n log n): one sort, then cumulative counts. Error rates are proportions in [0, 1], not percent.

Decision rule everywhere: a trial is accepted when `score >= threshold`. So at threshold t the miss rate is the share
of target scores strictly below t and the false-alarm rate the share of nontarget scores at or above t.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["bayes_threshold", "compute_act_dcf", "compute_eer", "compute_min_dcf", "det_curve"]


def _checked(scores: ArrayLike, labels: ArrayLike, *, allow_infinite: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Return (scores float64, labels bool) as 1-D arrays, or raise ValueError saying what is wrong. NaN is always
    refused; +-inf only when `allow_infinite` (LLRs may be infinite: PAV gives them at the ends)."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.size == 0:
        raise ValueError("no scores given: cannot compute a verification metric on an empty trial list")
    if scores.shape != labels.shape:
        raise ValueError(f"{scores.size} scores but {labels.size} labels: give one label per score")
    bad = np.isnan(scores) if allow_infinite else ~np.isfinite(scores)
    n_bad = int(np.count_nonzero(bad))
    if n_bad:
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{n_bad} of {scores.size} scores are NaN or infinite (first at index {first}): "
                         "check the embeddings they came from (zero vectors, NaN in the network output)")
    if labels.dtype != np.bool_:
        if not np.all((labels == 0) | (labels == 1)):
            raise ValueError(f"labels must be 1 (target) or 0 (nontarget); got values {np.unique(labels)[:5]}")
        labels = labels == 1
    n_target = int(np.count_nonzero(labels))
    if n_target == 0 or n_target == labels.size:
        kind = "nontarget" if n_target == 0 else "target"
        raise ValueError(f"all {labels.size} trials are {kind}: a verification metric needs both target and "
                         "nontarget trials")
    return scores, labels


def det_curve(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Miss and false-alarm rates at every distinct threshold.

    Returns `(p_miss, p_fa, thresholds)`, three arrays of equal length. `thresholds` holds the distinct scores in
    ascending order followed by `+inf`; entry i gives the rates of the rule "accept when score >= thresholds[i]".
    The first point accepts everything (p_miss 0, p_fa 1), the last rejects everything (p_miss 1, p_fa 0);
    p_miss never decreases and p_fa never increases along the arrays. Tied scores form one point, since no
    threshold can separate them.
    """
    scores, labels = _checked(scores, labels)
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    sorted_labels = labels[order]
    n_target = int(np.count_nonzero(labels))
    n_nontarget = labels.size - n_target
    # targets / nontargets among the k lowest scores, k = 0..n
    targets_below = np.concatenate(([0], np.cumsum(sorted_labels)))
    nontargets_below = np.concatenate(([0], np.cumsum(~sorted_labels)))
    # a threshold can only sit at the first score of a group of equal scores, or above the maximum
    starts = np.flatnonzero(np.concatenate(([True], sorted_scores[1:] != sorted_scores[:-1])))
    cut = np.concatenate((starts, [scores.size]))
    p_miss = targets_below[cut] / n_target
    p_fa = (n_nontarget - nontargets_below[cut]) / n_nontarget
    thresholds = np.concatenate((sorted_scores[starts], [np.inf]))
    return p_miss, p_fa, thresholds


def compute_eer(scores: ArrayLike, labels: ArrayLike) -> tuple[float, float]:
    """Equal error rate as Kaldi's `compute-eer` defines it; returns `(eer, threshold)`, eer in [0, 1].

    Candidate thresholds are the target scores in ascending order. The EER is the miss rate at the first candidate
    where the false-alarm rate has fallen to the miss rate or below, and `threshold` is that target score. So
    the EER is the miss rate where the two curves cross, within one target trial (1 / n_target) of the crossing.
    If no candidate qualifies, the highest target score is returned with its miss rate, as Kaldi does.

    When the target scores are distinct, this gives the same EER and threshold as `compute-eer`. With tied
    target scores, Kaldi counts the miss rate as `position / n_target` along the sorted targets, so targets
    tied at the threshold can count as misses. Here the miss rate is the true share of targets scored strictly
    below the threshold. The EER also equals the miss rate at the first of *all* scores where
    false-alarm <= miss (a nontarget score there gives the same miss rate as the next target score).
    """
    scores, labels = _checked(scores, labels)
    target = np.sort(scores[labels])
    nontarget = np.sort(scores[~labels])
    n_target, n_nontarget = target.size, nontarget.size
    misses = np.searchsorted(target, target, side="left")  # targets strictly below each candidate
    false_alarms = n_nontarget - np.searchsorted(nontarget, target, side="left")  # nontargets at or above
    # p_fa <= p_miss compared in integers, so that the boundary case (exact crossing) is not lost to rounding
    crossed = false_alarms * n_target <= misses * n_nontarget
    index = int(np.argmax(crossed)) if crossed.any() else n_target - 1
    return float(misses[index] / n_target), float(target[index])


def compute_min_dcf(scores: ArrayLike, labels: ArrayLike, p_target: float, c_miss: float = 1.0,
                    c_fa: float = 1.0) -> tuple[float, float]:
    """Minimum normalised detection cost; returns `(min_dcf, threshold)`.

    C_det(t) = c_miss * p_miss(t) * p_target + c_fa * p_fa(t) * (1 - p_target), minimised over the thresholds of
    `det_curve` and divided by C_default = min(c_miss * p_target, c_fa * (1 - p_target)). That is the cost of the
    best system that ignores its input, as in Kaldi's `sid/compute_min_dcf.py` and the NIST SRE plans. The
    result is at most 1. `threshold` is the one that reaches the minimum, under the rule "accept when
    score >= threshold" (`+inf` when rejecting every trial is best).

    If the scores are distinct, this equals Kaldi's value whenever Kaldi's is at most 1. Kaldi never tries
    "accept every trial", and it also tries splits inside groups of tied scores, which no threshold can make.
    """
    _check_costs(p_target, c_miss, c_fa)
    p_miss, p_fa, thresholds = det_curve(scores, labels)
    c_det = c_miss * p_target * p_miss + c_fa * (1.0 - p_target) * p_fa
    best = int(np.argmin(c_det))
    return float(c_det[best] / _default_cost(p_target, c_miss, c_fa)), float(thresholds[best])


def bayes_threshold(p_target: float, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """The LLR above which accepting costs less than rejecting: log(c_fa (1 - p_target) / (c_miss p_target)),
    i.e. -logit(p_target) for unit costs. Only LLRs (calibrated scores) may be thresholded here."""
    _check_costs(p_target, c_miss, c_fa)
    return float(np.log(c_fa * (1.0 - p_target)) - np.log(c_miss * p_target))


def compute_act_dcf(llrs: ArrayLike, labels: ArrayLike, p_target: float, c_miss: float = 1.0,
                    c_fa: float = 1.0) -> float:
    """Actual normalised detection cost of LLRs: the cost of `compute_min_dcf` at the one threshold that Bayes
    decision theory sets for LLRs, `bayes_threshold(p_target, c_miss, c_fa)` (accept when llr >= it), divided by
    the same C_default. So actDCF >= minDCF for the same prior and costs; the gap is the cost of miscalibration.
    Unlike minDCF it can exceed 1 (a system worse than ignoring its input). LLRs may be +-inf, not NaN.
    """
    llrs, labels = _checked(llrs, labels, allow_infinite=True)
    accepted = llrs >= bayes_threshold(p_target, c_miss, c_fa)
    # counts divided as det_curve divides them, so that the comparison with minDCF is exact
    p_miss = np.count_nonzero(labels & ~accepted) / np.count_nonzero(labels)
    p_fa = np.count_nonzero(~labels & accepted) / np.count_nonzero(~labels)
    c_det = c_miss * p_target * p_miss + c_fa * (1.0 - p_target) * p_fa
    return float(c_det / _default_cost(p_target, c_miss, c_fa))


def _check_costs(p_target: float, c_miss: float, c_fa: float) -> None:
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must lie strictly between 0 and 1, got {p_target}")
    if c_miss <= 0 or c_fa <= 0:
        raise ValueError(f"c_miss and c_fa must be positive, got c_miss={c_miss}, c_fa={c_fa}")


def _default_cost(p_target: float, c_miss: float, c_fa: float) -> float:
    """The cost of the best decision that ignores the scores (accept all or reject all): the DCFs' normaliser."""
    return min(c_miss * p_target, c_fa * (1.0 - p_target))
