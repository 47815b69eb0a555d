"""Scoring and metrics: values checked against brute-force loops and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.scoring import (
    as_norm, as_norm_trials, compute_eer, compute_min_dcf, cosine_scores, det_curve, mean_embedding, metric_columns,
    plot_det, plot_score_histogram, results_table, score_trials, speaker_means,
)
from pipeline.utils.trials import read_trials


# ---------------------------------------------------------------- independent references (plain loops)

def brute_force_eer(scores, labels):
    """Walk up every distinct score as a threshold (accept score >= t); the EER is the miss rate at the first
    threshold where the false-alarm rate has dropped to the miss rate."""
    tgt = [s for s, l in zip(scores, labels) if l == 1]
    non = [s for s, l in zip(scores, labels) if l == 0]
    for t in sorted(set(scores)):
        frr = sum(s < t for s in tgt) / len(tgt)
        far = sum(s >= t for s in non) / len(non)
        if far <= frr:
            return frr
    raise AssertionError("no crossing")


def kaldi_compute_eer_loop(scores, labels):
    """The position walk of Kaldi's compute-eer, written as a loop (distinct scores assumed)."""
    tgt = sorted(s for s, l in zip(scores, labels) if l == 1)
    non = sorted(s for s, l in zip(scores, labels) if l == 0)
    p = 0
    while p + 1 < len(tgt):
        k = len(non) * p // len(tgt)
        if non[max(len(non) - 1 - k, 0)] < tgt[p]:
            break
        p += 1
    return p / len(tgt), tgt[p]


def brute_force_min_dcf(scores, labels, p_target, c_miss=1.0, c_fa=1.0):
    tgt = [s for s, l in zip(scores, labels) if l == 1]
    non = [s for s, l in zip(scores, labels) if l == 0]
    best = float("inf")
    for t in sorted(set(scores)) + [float("inf")]:
        p_miss = sum(s < t for s in tgt) / len(tgt)
        p_fa = sum(s >= t for s in non) / len(non)
        best = min(best, c_miss * p_target * p_miss + c_fa * (1 - p_target) * p_fa)
    return best / min(c_miss * p_target, c_fa * (1 - p_target))


def kaldi_min_dcf_loop(scores, labels, p_target):
    """Kaldi's compute_min_dcf.py: reject the i+1 lowest-scored trials, for every i."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    n_tgt = sum(labels)
    n_non = len(labels) - n_tgt
    misses = kept_non = 0
    best = float("inf")
    for i in order:
        misses += labels[i]
        kept_non += 1 - labels[i]
        best = min(best, misses / n_tgt * p_target + (1 - kept_non / n_non) * (1 - p_target))
    return best / min(p_target, 1 - p_target)


def random_trials(seed, n_target, n_nontarget, separation=1.5, decimals=None):
    rng = np.random.default_rng(seed)
    scores = np.concatenate((rng.normal(separation, 1.0, n_target), rng.normal(0.0, 1.0, n_nontarget)))
    if decimals is not None:
        scores = np.round(scores, decimals)  # forces ties
    labels = np.concatenate((np.ones(n_target, int), np.zeros(n_nontarget, int)))
    perm = rng.permutation(scores.size)
    return scores[perm], labels[perm]


# ---------------------------------------------------------------- EER

@pytest.mark.parametrize("seed,n_target,n_nontarget,decimals", [
    (0, 50, 300, None), (1, 200, 200, None), (2, 7, 500, None), (3, 300, 11, None), (4, 120, 240, 1),
    (5, 80, 400, 2),
])
def test_eer_matches_brute_force(seed, n_target, n_nontarget, decimals):
    scores, labels = random_trials(seed, n_target, n_nontarget, decimals=decimals)
    eer, threshold = compute_eer(scores, labels)
    assert eer == pytest.approx(brute_force_eer(scores.tolist(), labels.tolist()), abs=1e-12)
    # the threshold realises the EER: miss rate equal to it, false-alarm rate not above it
    assert np.mean(scores[labels == 1] < threshold) == pytest.approx(eer)
    assert np.mean(scores[labels == 0] >= threshold) <= eer + 1e-12


@pytest.mark.parametrize("seed", range(6))
def test_eer_equals_kaldi_compute_eer_on_distinct_scores(seed):
    scores, labels = random_trials(seed + 10, 40 + 30 * seed, 400 - 50 * seed, separation=seed * 0.5)
    eer, threshold = compute_eer(scores, labels)
    kaldi_eer, kaldi_threshold = kaldi_compute_eer_loop(scores.tolist(), labels.tolist())
    assert eer == pytest.approx(kaldi_eer, abs=1e-12)
    assert threshold == kaldi_threshold


def test_eer_hand_made_cases():
    # targets 0.2 0.6 0.9, nontargets 0.1 0.3 0.4 0.7: at t=0.6 one target of 3 is missed and one nontarget
    # of 4 is accepted (1/4 <= 1/3), while at t=0.2 no target is missed but 3/4 nontargets are accepted
    eer, threshold = compute_eer([0.2, 0.6, 0.9, 0.1, 0.3, 0.4, 0.7], [1, 1, 1, 0, 0, 0, 0])
    assert (eer, threshold) == (pytest.approx(1 / 3), 0.6)
    # symmetric case: at t=0.7 one target (0.2) below, one nontarget (0.75) above -> 25%
    eer, threshold = compute_eer([0.9, 0.8, 0.7, 0.2, 0.1, 0.3, 0.4, 0.75], [1, 1, 1, 1, 0, 0, 0, 0])
    assert (eer, threshold) == (0.25, 0.7)


def test_perfect_separation_gives_zero_eer_and_min_dcf():
    scores = [0.5, 0.6, 0.9, -0.2, 0.1, 0.3]
    labels = [1, 1, 1, 0, 0, 0]
    assert compute_eer(scores, labels) == (0.0, 0.5)
    assert compute_min_dcf(scores, labels, 0.01)[0] == 0.0
    assert compute_min_dcf(scores, labels, 0.001) == (0.0, 0.5)


def test_eer_accepts_boolean_labels():
    scores, labels = random_trials(7, 30, 60)
    assert compute_eer(scores, labels.astype(bool)) == compute_eer(scores, labels)


# ---------------------------------------------------------------- minDCF and DET

@pytest.mark.parametrize("seed,p_target,c_miss,c_fa,decimals", [
    (0, 0.01, 1, 1, None), (1, 0.001, 1, 1, None), (2, 0.05, 10, 1, None), (3, 0.5, 1, 1, 1), (4, 0.01, 1, 1, 2),
    (5, 0.9, 1, 1, None),
])
def test_min_dcf_matches_brute_force(seed, p_target, c_miss, c_fa, decimals):
    scores, labels = random_trials(seed, 60, 300, separation=2.0, decimals=decimals)
    value, threshold = compute_min_dcf(scores, labels, p_target, c_miss, c_fa)
    expected = brute_force_min_dcf(scores.tolist(), labels.tolist(), p_target, c_miss, c_fa)
    assert value == pytest.approx(expected, abs=1e-12)
    # the returned threshold achieves the returned cost
    p_miss = np.mean(scores[labels == 1] < threshold)
    p_fa = np.mean(scores[labels == 0] >= threshold)
    cost = (c_miss * p_target * p_miss + c_fa * (1 - p_target) * p_fa) / min(c_miss * p_target,
                                                                               c_fa * (1 - p_target))
    assert cost == pytest.approx(value, abs=1e-12)


@pytest.mark.parametrize("seed,p_target", [(0, 0.01), (1, 0.001), (2, 0.05)])
def test_min_dcf_equals_kaldi_script_on_distinct_scores(seed, p_target):
    scores, labels = random_trials(seed + 20, 80, 500, separation=2.0)
    value, _ = compute_min_dcf(scores, labels, p_target)
    assert value == pytest.approx(kaldi_min_dcf_loop(scores.tolist(), labels.tolist(), p_target), abs=1e-12)


def test_min_dcf_hand_computed():
    # targets 0.2 0.6 0.9, nontargets 0.1 0.3 0.4 0.7, p_target 0.25: accepting only 0.9 misses 2/3 targets and
    # accepts no nontarget: C = 0.25 * 2/3 = 1/6, the lowest over all thresholds; C_default = 0.25 -> 2/3
    value, threshold = compute_min_dcf([0.2, 0.6, 0.9, 0.1, 0.3, 0.4, 0.7], [1, 1, 1, 0, 0, 0, 0], 0.25)
    assert value == pytest.approx(2 / 3)
    assert threshold == 0.9


def test_min_dcf_never_exceeds_one():
    # every target below every nontarget: the best is to reject (or accept) everything, cost = C_default
    scores = [0.1, 0.2, 0.3, 0.8, 0.9]
    labels = [1, 1, 1, 0, 0]
    for p in (0.01, 0.5, 0.9):
        assert compute_min_dcf(scores, labels, p)[0] == pytest.approx(1.0)


def test_det_curve_shape_and_endpoints():
    scores, labels = random_trials(3, 40, 90, decimals=1)
    p_miss, p_fa, thresholds = det_curve(scores, labels)
    assert p_miss.shape == p_fa.shape == thresholds.shape == (np.unique(scores).size + 1,)
    assert (p_miss[0], p_fa[0], p_miss[-1], p_fa[-1], thresholds[-1]) == (0.0, 1.0, 1.0, 0.0, np.inf)
    assert np.all(np.diff(p_miss) >= 0) and np.all(np.diff(p_fa) <= 0) and np.all(np.diff(thresholds) > 0)
    for i in (1, len(thresholds) // 2, len(thresholds) - 2):
        assert p_miss[i] == np.mean(scores[labels == 1] < thresholds[i])
        assert p_fa[i] == np.mean(scores[labels == 0] >= thresholds[i])


@pytest.mark.parametrize("scores,labels,message", [
    ([], [], "empty"),
    ([0.1, 0.2], [1, 1], "all 2 trials are target"),
    ([0.1, 0.2], [0, 0], "all 2 trials are nontarget"),
    ([0.1, float("nan"), 0.3], [1, 0, 0], "NaN"),
    ([0.1, 0.2, 0.3], [1, 0], "labels"),
    ([0.1, 0.2], [1, 2], "1 \\(target\\) or 0"),
])
def test_metrics_reject_bad_input(scores, labels, message):
    for metric in (compute_eer, det_curve, lambda s, l: compute_min_dcf(s, l, 0.01)):
        with pytest.raises(ValueError, match=message):
            metric(scores, labels)


def test_min_dcf_rejects_bad_costs():
    with pytest.raises(ValueError, match="p_target"):
        compute_min_dcf([0.1, 0.9], [0, 1], 1.0)
    with pytest.raises(ValueError, match="c_miss"):
        compute_min_dcf([0.1, 0.9], [0, 1], 0.01, c_miss=0)


# ---------------------------------------------------------------- cosine scoring

def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def test_cosine_scores_paired_rows():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(20, 8)), rng.normal(size=(20, 8))
    expected = [unit(x) @ unit(y) for x, y in zip(a, b)]
    np.testing.assert_allclose(cosine_scores(a, b), expected, atol=1e-12)
    np.testing.assert_allclose(cosine_scores(a, 3 * a), 1.0)
    with pytest.raises(ValueError, match="zero vector"):
        cosine_scores(np.zeros((2, 8)), b[:2])


def test_score_trials_full_plus_crops_matches_pairwise_loop():
    rng = np.random.default_rng(1)
    emb = {
        "a": rng.normal(size=(11, 16)),  # full + 10 crops, as the authors test
        "b": rng.normal(size=(11, 16)),
        "c": rng.normal(size=(4, 16)),  # a different number of crops
        "d": rng.normal(size=16),  # full utterance only
    }
    trials = [("a", "b", 1), ("a", "c", 0), ("c", "b", 0), ("a", "d", 0), ("d", "c", 1), ("b", "a", 1)]
    mean = rng.normal(size=16) * 0.3

    def reference(e, t, shift):
        e, t = np.atleast_2d(emb[e]) - shift, np.atleast_2d(emb[t]) - shift
        full = unit(e[0]) @ unit(t[0])
        if len(e) == 1 or len(t) == 1:
            return full
        crops = np.mean([unit(x) @ unit(y) for x in e[1:] for y in t[1:]])
        return 0.5 * (full + crops)

    for shift in (None, mean):
        got = score_trials(emb, trials, mean=shift)
        expected = [reference(e, t, 0.0 if shift is None else shift) for e, t, _ in trials]
        np.testing.assert_allclose(got, expected, atol=1e-12)


def test_score_trials_accepts_trials_tuple_and_plain_vectors(tmp_path):
    path = tmp_path / "trials"
    path.write_text("u1 u2 target\nu1 u3 nontarget\n")
    rng = np.random.default_rng(2)
    emb = {u: rng.normal(size=5) for u in ("u1", "u2", "u3")}
    got = score_trials(emb, read_trials(path))
    np.testing.assert_allclose(got, [unit(emb["u1"]) @ unit(emb["u2"]), unit(emb["u1"]) @ unit(emb["u3"])])


def test_score_trials_unknown_utterance_is_named():
    emb = {"u1": np.ones(4)}
    with pytest.raises(ValueError, match="trial 2 names utterance 'ghost'"):
        score_trials(emb, [("u1", "u1", 1), ("u1", "ghost", 0)])
    with pytest.raises(ValueError, match="dimension"):
        score_trials({"u1": np.ones(4), "u2": np.ones(5)}, [("u1", "u2", 1)])


def test_speaker_means_and_mean_embedding():
    emb = {"s1-a": np.array([1.0, 0.0]), "s1-b": np.array([3.0, 2.0]), "s2-a": np.array([[0.0, 4.0], [9.0, 9.0]])}
    utt2spk = {"s1-a": "s1", "s1-b": "s1", "s2-a": "s2"}
    speakers, means = speaker_means(emb, utt2spk)
    assert speakers == ["s1", "s2"]
    np.testing.assert_allclose(means, [[2.0, 1.0], [0.0, 4.0]])  # row 0 (full utterance) of a matrix value
    np.testing.assert_allclose(mean_embedding(emb), [4 / 3, 2.0])
    with pytest.raises(ValueError, match="'s1-b' has an embedding but no speaker"):
        speaker_means(emb, {"s1-a": "s1", "s2-a": "s2"})


# ---------------------------------------------------------------- AS-Norm

def as_norm_loop(scores, enroll, test, cohort, top_n):
    """Direct AS-Norm: per trial, full sort of the cohort scores of both sides."""
    out = []
    for s, e, t in zip(scores, enroll, test):
        stats = []
        for x in (e, t):
            c = sorted((unit(x) @ unit(y) for y in cohort), reverse=True)[:top_n]
            stats.append((np.mean(c), np.std(c)))
        (mu_e, sd_e), (mu_t, sd_t) = stats
        out.append(0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t))
    return np.array(out)


@pytest.mark.parametrize("top_n", [2, 7, 30, 500])
def test_as_norm_matches_loop(top_n):
    rng = np.random.default_rng(3)
    enroll, test, cohort = rng.normal(size=(25, 12)), rng.normal(size=(25, 12)), rng.normal(size=(40, 12))
    scores = cosine_scores(enroll, test)
    np.testing.assert_allclose(as_norm(scores, enroll, test, cohort, top_n),
                               as_norm_loop(scores, enroll, test, cohort, min(top_n, 40)), atol=1e-10)


def test_as_norm_with_shared_rows_and_trials_wrapper():
    rng = np.random.default_rng(4)
    emb = {f"u{i}": rng.normal(size=(3, 10)) for i in range(6)}
    trials = [("u0", "u1", 1), ("u0", "u2", 0), ("u3", "u1", 0), ("u5", "u4", 1), ("u0", "u5", 0)]
    cohort, mean = rng.normal(size=(30, 10)), rng.normal(size=10) * 0.2
    scores = score_trials(emb, trials, mean=mean)
    got = as_norm_trials(scores, emb, trials, cohort, top_n=10, mean=mean)
    full = {u: v[0] - mean for u, v in emb.items()}
    expected = as_norm_loop(scores, [full[e] for e, _, _ in trials], [full[t] for _, t, _ in trials],
                            cohort - mean, 10)
    np.testing.assert_allclose(got, expected, atol=1e-10)


def test_as_norm_rejects_degenerate_cohort():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="top_n >= 2"):
        as_norm([0.5, 0.5], x, x, np.eye(3), top_n=1)
    with pytest.raises(ValueError, match="std 0"):
        as_norm([0.5, 0.5], x, x, np.ones((4, 3)), top_n=3)


# ---------------------------------------------------------------- report

def test_plot_det_and_histogram_write_png(tmp_path):
    curves = {"gmm-resnext": random_trials(0, 200, 2000, separation=3.0),
              "resnet34": random_trials(1, 200, 2000, separation=2.0),
              "perfect": ([0.9, 0.8, 0.1], [1, 1, 0])}
    det_png = tmp_path / "plots" / "det.png"
    plot_det(curves, det_png, "VoxCeleb1-O")
    hist_png = tmp_path / "hist.png"
    plot_score_histogram(*curves["resnet34"], hist_png, "resnet34")
    for png in (det_png, hist_png):
        data = png.read_bytes()
        assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.rglob("*.tmp"))


def test_results_table_rows_columns_and_missing():
    scores, labels = random_trials(0, 50, 200)
    row_a = {"model": "GMM-ResNext", "params": 2_500_000, "front end": "LGP-512", "trials": "Vox1-O",
             **metric_columns(scores, labels), **metric_columns(scores, labels, suffix=" AS-Norm")}
    row_b = {"trials": "Vox1-O", "model": "ECAPA|TDNN", "EER %": 2.5, "notes": "baseline"}
    table = results_table([row_a, row_b])
    lines = table.strip().split("\n")
    assert len(lines) == 2 + 2  # header, separator, one line per row
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["model", "params", "front end", "trials", "EER %", "minDCF0.01", "minDCF0.001",
                      "EER % AS-Norm", "minDCF0.01 AS-Norm", "minDCF0.001 AS-Norm", "notes"]
    cells_b = [c.strip() for c in lines[3].strip("|").split(" | ")]
    assert cells_b[0] == "ECAPA\\|TDNN" and cells_b[1] == "-" and cells_b[4] == "2.5000"
    assert cells_b[5:10] == ["-"] * 5 and cells_b[10] == "baseline"
    assert "2,500,000" in lines[2] and f"{100 * compute_eer(scores, labels)[0]:.4f}" in lines[2]


def test_as_norm_of_cohort_scores_is_as_norm_of_their_dot_products():
    """AS-Norm from score matrices (what an exact GMM-UBM LLR gives) equals the scorer interface's AS-Norm of the
    linear scores they came from (enrolment side against the cohort's test vectors, test side against its
    enrolment vectors)."""
    from pipeline.scoring import ASNorm, LinearScorer
    from pipeline.scoring.cosine import normalise_with_cohort_scores

    rng = np.random.default_rng(3)
    enroll, test, enroll_cohort, test_cohort = (rng.normal(size=(n, 6)) for n in (5, 4, 9, 9))
    ie, it = rng.integers(0, 5, 12), rng.integers(0, 4, 12)
    scores = np.einsum("ij,ij->i", enroll[ie], test[it])
    rows = {name: np.stack([e, t], axis=1) for name, e, t in
            (("enroll", enroll, np.zeros_like(enroll)), ("test", np.zeros_like(test), test),
             ("cohort", test_cohort, enroll_cohort))}
    np.testing.assert_allclose(LinearScorer().score(rows["enroll"], rows["test"], ie, it), scores, rtol=1e-12)
    expected = ASNorm(LinearScorer(), rows["cohort"], 4).normalise(scores, rows["enroll"], rows["test"], ie, it)
    np.testing.assert_allclose(normalise_with_cohort_scores(scores, enroll @ enroll_cohort.T, test @ test_cohort.T, 4,
                                                            ie, it), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="top_n >= 2"):
        normalise_with_cohort_scores(scores, enroll @ enroll_cohort.T, test @ test_cohort.T, 1, ie, it)


def test_symmetric_linear_scorer_scores_each_trial_both_ways():
    """The GMM-UBM's symmetric score: the mean of e_a . t_b and e_b . t_a, the same for (a, b) and (b, a)."""
    from pipeline.scoring import LinearScorer, Symmetric, score_trials_with
    rng = np.random.default_rng(3)
    recordings = {u: rng.normal(size=(2, 6)) for u in "abc"}   # rows: enrolment vector, test vector
    pairs = [("a", "b"), ("b", "a"), ("c", "a")]
    one_way = score_trials_with(LinearScorer(), recordings, pairs)
    symmetric = score_trials_with(Symmetric(LinearScorer()), recordings, pairs)
    assert one_way[0] == pytest.approx(recordings["a"][0] @ recordings["b"][1])
    assert one_way[1] == pytest.approx(recordings["b"][0] @ recordings["a"][1])
    assert symmetric[0] == pytest.approx(0.5 * (one_way[0] + one_way[1])) and symmetric[0] == pytest.approx(symmetric[1])
    assert one_way[0] != pytest.approx(one_way[1])
