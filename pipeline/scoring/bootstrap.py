"""Confidence intervals of an EER from a bootstrap over test speakers.

Trials that share a speaker are not independent: one speaker who is easy or hard moves all of their trials at once.
So the unit resampled is the speaker (the "subsets bootstrap" of Bolle, Ratha and Pankanti 2004): draw as many
speakers as the list has, with replacement, and rebuild the trials among the drawn speakers. A speaker drawn k times
brings k copies of their target trials, a non-target pair of speakers drawn k and l times brings k * l copies of
their trials, and trials with a speaker not drawn drop out.

Every trial of one speaker pair gets the same multiplicity, so the trials are first counted per pair below each
threshold (one pass over the scores); a replicate is then a weighted sum over pairs, and all replicates together are
one matrix product. The thresholds are all distinct scores, or `resolution` of them spaced by rank when there are more:
the replicates' EERs are then exact to within 1/resolution of the ranks, far inside the interval's width.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .metrics import compute_eer

__all__ = ["EERInterval", "paired_eer_difference", "replicate_eers", "speaker_bootstrap_eer"]


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
    return PairCounts(first, second, first == second, np.cumsum(counts, axis=1)[:, :-1], counts.sum(axis=1))


def replicate_eers(counts: PairCounts, draws: np.ndarray) -> np.ndarray:
    """The EER of the list rebuilt from each row of `draws` (how many times each speaker was drawn), with the rule of
    `compute_eer`: the miss rate where the false-alarm rate first falls to the miss rate or below. NaN for a row
    that leaves no target or no non-target trial."""
    draws = np.asarray(draws, dtype=np.float64)
    weights = np.where(counts.target, draws[:, counts.first], draws[:, counts.first] * draws[:, counts.second])
    tgt, non = counts.target, ~counts.target
    total_t = weights[:, tgt] @ counts.total[tgt]
    total_n = weights[:, non] @ counts.total[non]
    misses = weights[:, tgt] @ counts.below[tgt]
    false_alarms = total_n[:, None] - weights[:, non] @ counts.below[non]
    crossed = false_alarms * total_t[:, None] <= misses * total_n[:, None]
    first = np.argmax(crossed, axis=1)  # the reject-all threshold always crosses
    with np.errstate(invalid="ignore", divide="ignore"):
        eers = misses[np.arange(len(first)), first] / total_t
    eers[(total_t <= 0) | (total_n <= 0)] = np.nan
    return eers


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
    """`replicates` finite values of `statistic(draws)` (one per row of speaker draw counts), drawn in batches: one
    matrix product each."""
    rng = np.random.default_rng(seed)
    values = np.empty(0)
    while values.size < replicates:
        draws = rng.multinomial(num_speakers, np.full(num_speakers, 1.0 / num_speakers), size=min(replicates, 500))
        batch = statistic(draws)
        values = np.concatenate([values, batch[np.isfinite(batch)]])
    return values[:replicates]
