"""Cllr, minCllr (PAV) and actDCF: values worked by hand, brute-force loops, and pyllr where it is installed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.scoring import bayes_threshold, cllr, compute_act_dcf, compute_min_dcf, min_cllr, pav_llrs


def random_trials(seed: int, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    labels = np.zeros(n, dtype=int)
    labels[rng.choice(n, size=int(rng.integers(3, n - 3)), replace=False)] = 1
    scores = rng.normal(size=n) + labels * rng.uniform(0.0, 4.0)
    return (np.round(scores, 1) if ties else scores), labels


def cllr_loop(llrs, labels):
    """The BOSARIS definition, one trial at a time."""
    tar = [math.log(1 + math.exp(-s)) for s, l in zip(llrs, labels) if l == 1]
    non = [math.log(1 + math.exp(s)) for s, l in zip(llrs, labels) if l == 0]
    return (sum(tar) / len(tar) + sum(non) / len(non)) / (2 * math.log(2))


# ---------------------------------------------------------------- Cllr and minCllr worked by hand

def test_uninformative_llr_costs_one_bit():
    assert cllr(np.zeros(7), [1, 0, 0, 1, 0, 0, 0]) == pytest.approx(1.0, abs=1e-15)


def test_perfectly_separated_scores_have_min_cllr_zero():
    assert min_cllr([-3.0, -1.0, 0.5, 2.0, 7.0], [0, 0, 1, 1, 1]) == 0.0
    np.testing.assert_array_equal(pav_llrs([-3.0, -1.0, 0.5, 2.0], [0, 0, 1, 1]), [-np.inf, -np.inf, np.inf, np.inf])


def test_four_trials_by_hand():
    """Scores 1, 2, 3, 4 with labels non, tar, non, tar. Cllr of them as LLRs -1, 1, -1, 1 (every trial on its
    right side by one nat): log(1 + e^-1) / log 2 = 0.45194. PAV of labels 0 1 0 1 pools the middle pair: p = 0, 1/2,
    1/2, 1 and, with T = N = 2, LLRs -inf, 0, 0, +inf; only the pooled pair costs, log 2 nats each, so
    minCllr = (log 2 / 2 + log 2 / 2) / (2 log 2) = 1/2."""
    labels = [0, 1, 0, 1]
    assert cllr([-1.0, 1.0, -1.0, 1.0], labels) == pytest.approx(math.log1p(math.exp(-1)) / math.log(2), abs=1e-15)
    assert cllr([-1.0, 1.0, -1.0, 1.0], labels) == pytest.approx(0.4519410830830, abs=1e-12)
    np.testing.assert_array_equal(pav_llrs([1.0, 2.0, 3.0, 4.0], labels), [-np.inf, 0.0, 0.0, np.inf])
    assert min_cllr([1.0, 2.0, 3.0, 4.0], labels) == pytest.approx(0.5, abs=1e-15)


def test_pav_llrs_include_the_prior_of_the_list():
    """One block of 1 target and 3 non-targets beside a pure block: p = 1/4 with T/N = 2/4, LLR log(1/3) - log(1/2)."""
    llrs = pav_llrs([1, 2, 3, 4, 5, 6], [0, 1, 0, 0, 0, 1])  # blocks {0}, {1 0 0 0}, {1}
    assert llrs[0] == -np.inf and llrs[-1] == np.inf
    np.testing.assert_allclose(llrs[1:5], math.log(1 / 3) - math.log(2 / 4))


def test_tied_scores_get_one_llr_whatever_their_order():
    """A target and a non-target on the same score cannot be told apart: ties pool, they are never split in the
    optimistic order (which would give minCllr 0 here)."""
    assert min_cllr([0.0, 0.0, 1.0, 1.0], [0, 1, 0, 1]) == pytest.approx(1.0)
    assert min_cllr([5.0, 5.0], [1, 0]) == pytest.approx(1.0)
    assert min_cllr([5.0, 5.0], [0, 1]) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(5))
def test_cllr_matches_loop_and_min_cllr_bounds(seed):
    scores, labels = random_trials(seed)
    assert cllr(scores, labels) == pytest.approx(cllr_loop(scores, labels), rel=1e-12)
    assert 0.0 <= min_cllr(scores, labels) <= min(1.0, cllr(scores, labels)) + 1e-12
    # PAV is invariant to any increasing map of the scores
    assert min_cllr(np.exp(scores), labels) == pytest.approx(min_cllr(scores, labels), abs=1e-12)


def test_pav_llrs_are_monotone_in_the_scores():
    scores, labels = random_trials(7, ties=True)
    llrs = pav_llrs(scores, labels)
    order = np.argsort(scores, kind="stable")
    np.testing.assert_array_equal(llrs[order], np.sort(llrs))
    for value in np.unique(scores):
        assert np.unique(llrs[scores == value]).size == 1


def test_infinite_llrs():
    assert cllr([np.inf, -np.inf], [1, 0]) == 0.0
    assert cllr([-np.inf, -np.inf], [1, 0]) == np.inf
    with pytest.raises(ValueError, match="NaN"):
        cllr([np.nan, 0.0], [1, 0])


@pytest.mark.parametrize("seed, ties", [(0, False), (1, False), (2, True), (3, True)])
def test_agrees_with_pyllr(seed, ties):
    pyllr_cllr = pytest.importorskip("pyllr.cllr")
    pyllr_pav = pytest.importorskip("pyllr.pav_rocch")
    scores, labels = random_trials(seed, ties)
    tar, non = scores[labels == 1], scores[labels == 0]
    assert cllr(scores, labels) == pytest.approx(pyllr_cllr.cllr(tar, non), abs=1e-12)
    assert min_cllr(scores, labels) == pytest.approx(pyllr_cllr.min_cllr(pyllr_pav.PAV(scores, labels)), abs=1e-12)


# ---------------------------------------------------------------- actDCF

def test_bayes_threshold():
    assert bayes_threshold(0.5) == 0.0
    assert bayes_threshold(0.01) == pytest.approx(math.log(99))
    assert bayes_threshold(0.01, c_miss=10.0, c_fa=1.0) == pytest.approx(math.log(99 / 10))


def test_act_dcf_by_hand():
    labels = [0, 1, 0, 1]
    assert compute_act_dcf([-2.0, 1.0, -1.0, 2.0], labels, 0.5) == 0.0
    # threshold 0: the target at -1 is missed, the non-target at 1 accepted: (0.5 * 0.5 + 0.5 * 0.5) / 0.5
    assert compute_act_dcf([-2.0, -1.0, 1.0, 2.0], labels, 0.5) == pytest.approx(1.0)
    # threshold log 99 = 4.6 rejects all: cost 0.01 * 1, normalised by min(0.01, 0.99)
    assert compute_act_dcf([-2.0, -1.0, 1.0, 2.0], labels, 0.01) == pytest.approx(1.0)
    # a confident wrong system costs more than ignoring its input: accepting both non-targets at p = 0.01
    assert compute_act_dcf([9.0, -9.0, 9.0, -9.0], labels, 0.01) == pytest.approx((0.01 + 0.99) / 0.01)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("p_target, c_miss, c_fa", [(0.5, 1, 1), (0.01, 1, 1), (0.05, 10, 1), (0.9, 1, 3)])
def test_act_dcf_never_below_min_dcf(seed, p_target, c_miss, c_fa):
    scores, labels = random_trials(seed, ties=seed % 2 == 1)
    for shift in (-3.0, 0.0, 2.0):
        act = compute_act_dcf(scores + shift, labels, p_target, c_miss, c_fa)
        assert act >= compute_min_dcf(scores + shift, labels, p_target, c_miss, c_fa)[0]


def test_act_dcf_equals_min_dcf_at_the_bayes_threshold():
    """Scores shifted so that the Bayes threshold falls between minDCF's threshold and the score below it."""
    scores, labels = random_trials(11)
    min_dcf, threshold = compute_min_dcf(scores, labels, 0.1)
    below = scores[scores < threshold].max()
    shifted = scores - (below + threshold) / 2 + bayes_threshold(0.1)
    assert compute_act_dcf(shifted, labels, 0.1) == min_dcf
