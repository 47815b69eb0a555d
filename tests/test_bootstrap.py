"""The speaker bootstrap of an EER: weighted EERs against explicit replication, and intervals with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.scoring.bootstrap import count_pairs, paired_eer_difference, replicate_eers, speaker_bootstrap_eer
from pipeline.scoring.metrics import compute_eer


def toy_trials(n_speakers: int, per_pair: int, rng: np.random.Generator, separation=None):
    """All speaker pairs (targets on the diagonal), `per_pair` trials each; `separation[s]` sets how far speaker
    s's target scores sit above the non-targets (one value for all when None)."""
    enroll, test, scores = [], [], []
    for a in range(n_speakers):
        for b in range(a, n_speakers):
            shift = (1.0 if separation is None else separation[a]) if a == b else 0.0
            enroll += [a] * per_pair
            test += [b] * per_pair
            scores += list(rng.normal(shift, 1.0, per_pair))
    enroll, test = np.array(enroll), np.array(test)
    return np.array(scores), enroll == test, enroll, test


def rebuilt_eer(scores, labels, enroll, test, drawn):
    """The EER of the list rebuilt by hand: a speaker drawn k times brings their targets k times, a pair of speakers
    drawn k and l times brings their non-targets k * l times."""
    keep = []
    for s_e, s_t, index in zip(enroll, test, range(scores.size)):
        keep += [index] * int(drawn[s_e] if s_e == s_t else drawn[s_e] * drawn[s_t])
    return compute_eer(scores[keep], labels[keep])[0]


def test_drawing_every_speaker_once_gives_the_plain_eer():
    rng = np.random.default_rng(0)
    scores, labels, enroll, test = toy_trials(12, 20, rng)
    counts = count_pairs(scores, enroll, test, resolution=10**6)
    assert replicate_eers(counts, np.ones((1, 12)))[0] == pytest.approx(compute_eer(scores, labels)[0], abs=1e-15)


def test_replicates_equal_lists_rebuilt_by_hand():
    rng = np.random.default_rng(1)
    scores, labels, enroll, test = toy_trials(6, 15, rng)
    counts = count_pairs(scores, enroll, test, resolution=10**6)
    draws = rng.multinomial(6, np.full(6, 1 / 6), size=30)
    draws = draws[[bool(np.any(d > 0) and np.count_nonzero(d) > 1) for d in draws]]
    got = replicate_eers(counts, draws)
    for row, value in zip(draws, got):
        assert value == pytest.approx(rebuilt_eer(scores, labels, enroll, test, row), abs=1e-12), row


def test_a_coarser_threshold_grid_moves_replicates_by_little():
    rng = np.random.default_rng(2)
    scores, labels, enroll, test = toy_trials(30, 10, rng)
    draws = rng.multinomial(30, np.full(30, 1 / 30), size=50)
    exact = replicate_eers(count_pairs(scores, enroll, test, 10**6), draws)
    coarse = replicate_eers(count_pairs(scores, enroll, test, 400), draws)
    assert np.max(np.abs(exact - coarse)) < 0.02


def test_speakers_alike_give_a_point_interval():
    """Every speaker has the same target scores and every pair the same non-target scores: any resampling of
    speakers gives the same EER, so the interval is that EER."""
    n, targets, nontargets = 8, [0.5, 0.9, 0.3, 0.95], [0.1, 0.6, 0.2, 0.35]
    enroll, test, scores = [], [], []
    for a in range(n):
        for b in range(a, n):
            values = targets if a == b else nontargets
            enroll += [a] * 4
            test += [b] * 4
            scores += values
    scores = np.array(scores) + 1e-9 * np.arange(len(scores)) % 1e-7  # distinct, same order within each group
    labels = np.array(enroll) == np.array(test)
    interval = speaker_bootstrap_eer(scores, labels, enroll, test, replicates=200, seed=3)
    assert interval.low == interval.eer == interval.high == compute_eer(scores, labels)[0]


def test_one_bad_speaker_widens_the_interval_around_the_eer():
    rng = np.random.default_rng(4)
    alike = speaker_bootstrap_eer(*toy_trials(20, 10, rng), replicates=300)
    separation = np.full(20, 2.0)
    separation[:4] = -1.0  # four speakers whose targets score like non-targets
    mixed = speaker_bootstrap_eer(*toy_trials(20, 10, rng, separation), replicates=300)
    assert mixed.low <= mixed.eer <= mixed.high and alike.low <= alike.eer <= alike.high
    assert mixed.high - mixed.low > 2 * (alike.high - alike.low)


def test_labels_must_agree_with_speakers():
    with pytest.raises(ValueError, match="label disagrees"):
        speaker_bootstrap_eer([0.1, 0.9], [True, False], ["a", "a"], ["b", "a"])


def test_paired_difference_is_narrower_than_either_interval():
    """Two systems that share each speaker's difficulty: the difference's interval is that of the better system's
    gain alone, far narrower than the EERs' own intervals, and it excludes 0; a system against itself gives 0."""
    rng = np.random.default_rng(5)
    separation = rng.uniform(-0.5, 3.0, 20)   # speakers of very different difficulty
    scores, labels, enroll, test = toy_trials(20, 30, rng, separation)
    better = scores + 0.6 * labels + rng.normal(0, 0.05, scores.size)
    difference = paired_eer_difference(better, scores, labels, enroll, test, replicates=300)
    assert difference.eer == pytest.approx(compute_eer(better, labels)[0] - compute_eer(scores, labels)[0])
    assert difference.low <= difference.eer <= difference.high < 0
    each = [speaker_bootstrap_eer(s, labels, enroll, test, replicates=300) for s in (scores, better)]
    assert difference.high - difference.low < 0.5 * min(i.high - i.low for i in each)
    same = paired_eer_difference(scores, scores, labels, enroll, test, replicates=50)
    assert same.low == same.eer == same.high == 0


def test_every_column_of_the_full_resampling_is_the_plain_metric():
    """A replicate that draws each speaker once is the list itself: its EER, minDCF, Cllr, minCllr (PAV) and actDCF
    equal the metrics of the list (at a resolution that keeps every distinct score)."""
    from pipeline.scoring import cllr, compute_act_dcf, compute_min_dcf, min_cllr
    from pipeline.scoring.bootstrap import (eers_of, llr_statistics, llr_sums, min_dcfs_of, pair_weights,
                                            replicate_counts)

    rng = np.random.default_rng(5)
    scores, labels, enroll, test = toy_trials(10, 15, rng)
    llrs = np.round(2.0 * scores - 1.0, 2)   # ties, which PAV pools
    counts = count_pairs(llrs, enroll, test, resolution=10**6)
    weights = pair_weights(counts, np.ones((1, 10)))
    rc = replicate_counts(counts, weights)
    got = llr_statistics(counts, llr_sums(llrs, labels, counts, 0.05), weights, rc)
    assert eers_of(rc)[0] == pytest.approx(compute_eer(llrs, labels)[0], abs=1e-12)
    assert min_dcfs_of(rc, 0.01)[0] == pytest.approx(compute_min_dcf(llrs, labels, 0.01)[0], abs=1e-12)
    assert got["Cllr"][0] == pytest.approx(cllr(llrs, labels), abs=1e-12)
    assert got["minCllr"][0] == pytest.approx(min_cllr(llrs, labels), abs=1e-12)
    assert got["actDCF0.05"][0] == pytest.approx(compute_act_dcf(llrs, labels, 0.05), abs=1e-12)


def test_all_columns_come_from_the_eer_bootstraps_resamplings():
    """One bootstrap for every column: its EER interval is speaker_bootstrap_eer's for the same seed, every interval
    holds its column's value, and a column of LLRs alone appears only when a prior is given."""
    from pipeline.scoring import cllr, compute_min_dcf, min_cllr
    from pipeline.scoring.bootstrap import speaker_bootstrap

    rng = np.random.default_rng(6)
    scores, labels, enroll, test = toy_trials(16, 12, rng, separation=rng.uniform(0.5, 3.0, 16))
    eer = speaker_bootstrap_eer(scores, labels, enroll, test, replicates=300, seed=3)
    raw = speaker_bootstrap(scores, labels, enroll, test, replicates=300, seed=3)
    assert set(raw) == {"EER", "minDCF0.01", "minDCF0.001"}
    assert raw["EER"] == pytest.approx((eer.low, eer.high), abs=1e-12)
    every = speaker_bootstrap(scores, labels, enroll, test, replicates=300, seed=3, llr_prior=0.01)
    assert set(every) == set(raw) | {"Cllr", "minCllr", "actDCF0.01"} and every["EER"] == raw["EER"]
    for name, value in (("minDCF0.01", compute_min_dcf(scores, labels, 0.01)[0]), ("Cllr", cllr(scores, labels)),
                        ("minCllr", min_cllr(scores, labels))):
        low, high = every[name]
        assert low <= value <= high and low < high, name
