"""Confidence intervals of an EER, minDCF, Cllr, minCllr and actDCF from one bootstrap over test speakers.

Trials that share a speaker are not independent: one speaker who is easy or hard moves all of their trials at once.
So the unit resampled is the speaker (the "subsets bootstrap" of Bolle, Ratha and Pankanti 2004): draw as many
speakers as the list has, with replacement, and rebuild the trials among the drawn speakers. A speaker drawn k times
brings k copies of their target trials, a non-target pair of speakers drawn k and l times brings k * l copies of
their trials, and trials with a speaker not drawn drop out.

Every trial of one speaker pair gets the same multiplicity, so the trials are first counted per pair below each
threshold (one pass over the scores); a replicate is then a weighted sum over pairs, and all replicates together are
one matrix product. The thresholds are all distinct scores, or `resolution` of them spaced by rank when there are more:
the replicates' EERs are then exact to within 1/resolution of the ranks, far inside the interval's width.

`speaker_bootstrap` takes every column's interval from the same resamplings: minDCF from the same miss and
false-alarm counts as the EER (its minimum over the same thresholds); for LLRs, Cllr and actDCF from per-pair sums of
the trials' costs (exact), and minCllr by PAV over the same threshold bins (exact when the scores have at most
`resolution` distinct values, else a PAV over rank bins: a coarser monotone map, so a replicate's minCllr errs high
by at most the cost of merging adjacent scores within one bin).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from scipy.optimize import isotonic_regression

from .metrics import bayes_threshold, compute_eer

__all__ = ["EERInterval", "paired_eer_difference", "replicate_eers", "speaker_bootstrap", "speaker_bootstrap_eer"]


@dataclass(frozen=True)
class EERInterval:
    """An EER (proportion, on the trials as given) and the bounds of its (1 - alpha) percentile interval."""
    eer: float
    low: float
    high: float
    replicates: int

    def __str__(self) -> str:
        return f"{100 * self.eer:.2f} [{100 * self.low:.2f}, {100 * self.high:.2f}]"


@dataclass(frozen=True)
class PairCounts:
    """Trials counted per speaker pair: below[p, j] trials of pair p score under thresholds[j]; pairs are unordered,
    a target pair has one speaker twice."""
    first: np.ndarray      # (P,) speaker index of each pair
    second: np.ndarray     # (P,)
    target: np.ndarray     # (P,) bool
    below: np.ndarray      # (P, B)
    total: np.ndarray      # (P,)
    pair_of_trial: np.ndarray | None = None   # (N,) the pair of each trial


def count_pairs(scores: np.ndarray, enroll: np.ndarray, test: np.ndarray, resolution: int) -> PairCounts:
    """Count the trials of each speaker pair below each threshold (speakers given as integer indices; a pair of one
    speaker holds the target trials, so the labels follow from the speakers)."""
    thresholds = np.unique(scores)
    if thresholds.size > resolution:
        thresholds = thresholds[np.linspace(0, thresholds.size - 1, resolution).round().astype(int)]
    thresholds = np.append(thresholds, np.inf)  # the last threshold rejects every trial
    low, high = np.minimum(enroll, test), np.maximum(enroll, test)
    pair_keys, pair_of_trial = np.unique(low.astype(np.int64) * (high.max() + 1) + high, return_inverse=True)
    first, second = pair_keys // (high.max() + 1), pair_keys % (high.max() + 1)
    bins = np.searchsorted(thresholds, scores, side="right")  # the first threshold above each score
    counts = np.zeros((pair_keys.size, thresholds.size + 1))
    np.add.at(counts, (pair_of_trial, bins), 1.0)
    return PairCounts(first, second, first == second, np.cumsum(counts, axis=1)[:, :-1], counts.sum(axis=1),
                      pair_of_trial)


@dataclass(frozen=True)
class ReplicateCounts:
    """Each replicate's (R,) target and non-target totals and (R, B) misses and false alarms at each threshold."""
    total_t: np.ndarray
    total_n: np.ndarray
    misses: np.ndarray
    false_alarms: np.ndarray


def replicate_counts(counts: PairCounts, weights: np.ndarray) -> ReplicateCounts:
    """The counts of every replicate, from its (R, P) multiplicity of each speaker pair."""
    tgt, non = counts.target, ~counts.target
    total_n = weights[:, non] @ counts.total[non]
    return ReplicateCounts(weights[:, tgt] @ counts.total[tgt], total_n, weights[:, tgt] @ counts.below[tgt],
                           total_n[:, None] - weights[:, non] @ counts.below[non])


def pair_weights(counts: PairCounts, draws: np.ndarray) -> np.ndarray:
    """(R, P): how many copies of each speaker pair's trials each row of speaker draw counts brings."""
    draws = np.asarray(draws, dtype=np.float64)
    return np.where(counts.target, draws[:, counts.first], draws[:, counts.first] * draws[:, counts.second])


def eers_of(rc: ReplicateCounts) -> np.ndarray:
    """The EER of each replicate, with the rule of `compute_eer`: the miss rate where the false-alarm rate first falls
    to the miss rate or below. NaN for a replicate with no target or no non-target trial."""
    crossed = rc.false_alarms * rc.total_t[:, None] <= rc.misses * rc.total_n[:, None]
    first = np.argmax(crossed, axis=1)  # the reject-all threshold always crosses
    with np.errstate(invalid="ignore", divide="ignore"):
        eers = rc.misses[np.arange(len(first)), first] / rc.total_t
    eers[(rc.total_t <= 0) | (rc.total_n <= 0)] = np.nan
    return eers


def min_dcfs_of(rc: ReplicateCounts, p_target: float) -> np.ndarray:
    """Each replicate's minDCF at `p_target` (unit costs, normalised as `compute_min_dcf`) over the thresholds."""
    with np.errstate(invalid="ignore", divide="ignore"):
        cost = (p_target * rc.misses / rc.total_t[:, None]
                + (1.0 - p_target) * rc.false_alarms / rc.total_n[:, None])
    return cost.min(axis=1) / min(p_target, 1.0 - p_target)


def replicate_eers(counts: PairCounts, draws: np.ndarray) -> np.ndarray:
    """The EER of the list rebuilt from each row of `draws` (how many times each speaker was drawn), with the rule of
    `compute_eer`: the miss rate where the false-alarm rate first falls to the miss rate or below. NaN for a row
    that leaves no target or no non-target trial."""
    return eers_of(replicate_counts(counts, pair_weights(counts, draws)))


@dataclass(frozen=True)
class LLRSums:
    """Per speaker pair: the summed Cllr costs of its trials (log(1 + e^-llr) of targets, log(1 + e^llr) of
    non-targets) and its errors at the Bayes threshold of `p_target`."""
    cost: np.ndarray     # (P,)
    errors: np.ndarray   # (P,)
    p_target: float


def llr_sums(llrs: np.ndarray, labels: np.ndarray, counts: PairCounts, p_target: float) -> LLRSums:
    size = counts.total.size
    cost = np.where(labels, np.logaddexp(0.0, -llrs), np.logaddexp(0.0, llrs))
    accepted = llrs >= bayes_threshold(p_target)
    errors = np.where(labels, ~accepted, accepted).astype(np.float64)
    return LLRSums(np.bincount(counts.pair_of_trial, weights=cost, minlength=size),
                   np.bincount(counts.pair_of_trial, weights=errors, minlength=size), p_target)


def llr_statistics(counts: PairCounts, sums: LLRSums, weights: np.ndarray, rc: ReplicateCounts
                   ) -> dict[str, np.ndarray]:
    """Each replicate's Cllr (bits), actDCF at `sums.p_target` and minCllr (PAV over the threshold bins)."""
    tgt, non = counts.target, ~counts.target
    p = sums.p_target
    with np.errstate(invalid="ignore", divide="ignore"):
        cllr = (weights[:, tgt] @ sums.cost[tgt] / rc.total_t + weights[:, non] @ sums.cost[non] / rc.total_n) \
            / (2.0 * np.log(2.0))
        act_dcf = (p * (weights[:, tgt] @ sums.errors[tgt]) / rc.total_t
                   + (1.0 - p) * (weights[:, non] @ sums.errors[non]) / rc.total_n) / min(p, 1.0 - p)
    # trials per threshold bin: bin j holds the scores in [threshold j - 1, threshold j)
    in_bin_t = np.diff(rc.misses, axis=1, prepend=0.0)
    below_n = rc.total_n[:, None] - rc.false_alarms
    in_bin_n = np.diff(below_n, axis=1, prepend=0.0)
    min_cllr = np.array([_pav_cllr(t, n) for t, n in zip(in_bin_t, in_bin_n)])
    return {"Cllr": cllr, "minCllr": min_cllr, f"actDCF{p:g}": act_dcf}


def _pav_cllr(targets: np.ndarray, nontargets: np.ndarray) -> float:
    """minCllr of weighted trials grouped into ordered bins (`cllr.pav_llrs` on bins, whose members share an LLR)."""
    totals = targets + nontargets
    keep = totals > 0
    targets, nontargets, totals = targets[keep], nontargets[keep], totals[keep]
    n_target, n_nontarget = targets.sum(), nontargets.sum()
    if n_target <= 0 or n_nontarget <= 0:
        return np.nan
    posterior = isotonic_regression(targets / totals, weights=totals).x   # scipy's: no per-call validation
    prior = n_target / (n_target + n_nontarget)
    # log(1 + e^-llr) = log(1 + (1 - q) prior / (q (1 - prior))) for the block posterior q; bins of one class cost 0
    with np.errstate(invalid="ignore", divide="ignore"):
        odds = (posterior / (1.0 - posterior)) / (prior / (1.0 - prior))
        target_cost = np.where(targets > 0, targets * np.log1p(1.0 / odds), 0.0).sum() / n_target
        nontarget_cost = np.where(nontargets > 0, nontargets * np.log1p(odds), 0.0).sum() / n_nontarget
    return float((target_cost + nontarget_cost) / (2.0 * np.log(2.0)))


def speaker_bootstrap(scores: ArrayLike, labels: ArrayLike, enroll_speakers: ArrayLike, test_speakers: ArrayLike,
                      *, min_dcf_priors: tuple[float, ...] = (0.01, 0.001), llr_prior: float | None = None,
                      replicates: int = 1000, alpha: float = 0.05, seed: int = 0, resolution: int = 4000
                      ) -> dict[str, tuple[float, float]]:
    """The (1 - alpha) percentile intervals of the EER and the minDCF at each of `min_dcf_priors` (keys "EER",
    "minDCF0.01", ...), and for LLRs (`llr_prior` given) of Cllr, minCllr and actDCF at `llr_prior` ("Cllr",
    "minCllr", "actDCF0.01"), all from the same `replicates` speaker resamplings (`speaker_bootstrap_eer`'s, for
    the same seed): a resampling that leaves no target or no non-target trial is drawn again, for every column."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    num_speakers, enroll, test = _speaker_indices(labels, enroll_speakers, test_speakers)
    counts = count_pairs(scores, enroll, test, resolution)
    sums = None if llr_prior is None else llr_sums(scores, labels, counts, llr_prior)

    def statistics(draws: np.ndarray) -> np.ndarray:
        weights = pair_weights(counts, draws)
        rc = replicate_counts(counts, weights)
        columns = {"EER": eers_of(rc), **{f"minDCF{p:g}": min_dcfs_of(rc, p) for p in min_dcf_priors}}
        if sums is not None:
            columns.update(llr_statistics(counts, sums, weights, rc))
        names.extend(name for name in columns if name not in names)
        return np.column_stack([columns[name] for name in names])

    names: list[str] = []
    values = _replicates(statistics, num_speakers, replicates, seed)
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2], axis=0)
    return {name: (float(low[k]), float(high[k])) for k, name in enumerate(names)}


def speaker_bootstrap_eer(scores: ArrayLike, labels: ArrayLike, enroll_speakers: ArrayLike,
                          test_speakers: ArrayLike, *, replicates: int = 1000, alpha: float = 0.05, seed: int = 0,
                          resolution: int = 4000) -> EERInterval:
    """The EER of the trials and its (1 - alpha) percentile interval over `replicates` speaker resamplings.

    `enroll_speakers` and `test_speakers` name the speaker of each side of each trial; a target trial has the same
    speaker on both sides. Resamplings that leave no target or no non-target trial are drawn again.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    num_speakers, enroll, test = _speaker_indices(labels, enroll_speakers, test_speakers)
    counts = count_pairs(scores, enroll, test, resolution)
    values = _replicates(lambda draws: replicate_eers(counts, draws), num_speakers, replicates, seed)
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return EERInterval(compute_eer(scores, labels)[0], float(low), float(high), replicates)


def paired_eer_difference(scores: ArrayLike, reference_scores: ArrayLike, labels: ArrayLike,
                          enroll_speakers: ArrayLike, test_speakers: ArrayLike, *, replicates: int = 1000,
                          alpha: float = 0.05, seed: int = 0, resolution: int = 4000) -> EERInterval:
    """EER(scores) - EER(reference_scores) of two systems on the same trials, and its (1 - alpha) interval over
    speaker resamplings shared by both: far narrower than the two EERs' own intervals, since a hard speaker is hard
    for both. An interval that excludes 0 is a difference the speakers of the list support."""
    labels = np.asarray(labels).ravel().astype(bool)
    num_speakers, enroll, test = _speaker_indices(labels, enroll_speakers, test_speakers)
    counts = [count_pairs(np.asarray(s, dtype=np.float64).ravel(), enroll, test, resolution)
              for s in (scores, reference_scores)]
    values = _replicates(lambda draws: replicate_eers(counts[0], draws) - replicate_eers(counts[1], draws),
                         num_speakers, replicates, seed)
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    difference = compute_eer(scores, labels)[0] - compute_eer(reference_scores, labels)[0]
    return EERInterval(float(difference), float(low), float(high), replicates)


def _speaker_indices(labels: np.ndarray, enroll_speakers: ArrayLike, test_speakers: ArrayLike
                     ) -> tuple[int, np.ndarray, np.ndarray]:
    """(number of speakers, integer speaker of each trial's enrolment side, of its test side); ValueError when a
    label disagrees with the speakers."""
    speakers, index = np.unique(np.concatenate([np.asarray(enroll_speakers), np.asarray(test_speakers)]),
                                return_inverse=True)
    enroll, test = index[:labels.size], index[labels.size:]
    if np.any(labels != (enroll == test)):
        raise ValueError("a trial's label disagrees with its speakers: targets must have one speaker on both sides")
    return speakers.size, enroll, test


def _replicates(statistic, num_speakers: int, replicates: int, seed: int) -> np.ndarray:
    """`replicates` values of `statistic(draws)` (one per row of speaker draw counts; a row of values for several
    columns) with every column finite, drawn in batches: one matrix product each."""
    rng = np.random.default_rng(seed)
    values = None
    while values is None or len(values) < replicates:
        draws = rng.multinomial(num_speakers, np.full(num_speakers, 1.0 / num_speakers), size=min(replicates, 500))
        batch = np.asarray(statistic(draws))
        finite = np.isfinite(batch) if batch.ndim == 1 else np.isfinite(batch).all(axis=1)
        values = batch[finite] if values is None else np.concatenate([values, batch[finite]])
    return values[:replicates]
