"""GMM-UBM numerics (pipeline.models.gmm_ubm) against independent computations: scikit-learn's posteriors and
log-likelihoods, per-component loops, and the exact frame-averaged LLR on a synthetic speaker set."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from pipeline.errors import PipelineError
from pipeline.features.gmm import DiagGMM, fit_gmm
from pipeline.models.gmm_ubm import ExactScorer, GMMUBM, GMMUBMError, UBMStats, linear_scores, pool_stats
from pipeline.scoring.metrics import compute_eer


def random_gmm(rng: np.random.Generator, components: int, dim: int) -> DiagGMM:
    weights = rng.uniform(0.5, 1.5, components)
    return DiagGMM(weights=weights / weights.sum(), means=rng.normal(0, 2, (components, dim)),
                   variances=rng.uniform(0.5, 2.0, (components, dim)))


def frames_of(gmm: DiagGMM, rng: np.random.Generator, count: int) -> np.ndarray:
    which = rng.choice(gmm.num_components, count, p=gmm.weights)
    return (gmm.means[which] + rng.normal(size=(count, gmm.dim)) * np.sqrt(gmm.variances[which])).astype(np.float32)


def test_stats_match_sklearn_posteriors_on_first_num_ceps_dims():
    rng = np.random.default_rng(1)
    gmm = random_gmm(rng, components=6, dim=8)
    frames = frames_of(gmm, rng, 700)
    ubm = GMMUBM(gmm, num_ceps=5, chunk_frames=128)  # several chunks, the last one partial
    stats = ubm.stats(frames)

    marginal = DiagGMM(weights=gmm.weights, means=gmm.means[:, :5], variances=gmm.variances[:, :5])
    x = frames[:, :5].astype(np.float64)
    post = marginal.to_sklearn().predict_proba(x)
    assert stats.num_frames == 700
    # the posteriors come from a float32 GEMM: agreement to ~1e-5 relative is what float32 allows
    np.testing.assert_allclose(stats.zeroth, post.sum(0), rtol=2e-5, atol=1e-4)
    np.testing.assert_allclose(stats.first, post.T @ x, rtol=2e-5, atol=1e-3)
    np.testing.assert_allclose(stats.zeroth.sum(), 700, rtol=1e-6)


def test_pooled_stats_equal_stats_of_the_concatenated_frames():
    rng = np.random.default_rng(2)
    gmm = random_gmm(rng, components=5, dim=4)
    parts = [frames_of(gmm, rng, n) for n in (40, 1, 90)]
    ubm = GMMUBM(gmm)
    pooled = pool_stats(ubm.stats(p) for p in parts)
    whole = ubm.stats(np.concatenate(parts))
    assert pooled.num_frames == whole.num_frames == 131
    np.testing.assert_allclose(pooled.zeroth, whole.zeroth, rtol=1e-6)
    np.testing.assert_allclose(pooled.first, whole.first, rtol=1e-6, atol=1e-6)


def map_means_by_loop(gmm: DiagGMM, stats: UBMStats, relevance: float) -> np.ndarray:
    """Reynolds 2000, eq. (11)-(14) for the means, one component at a time."""
    adapted = gmm.means.copy()
    for c in range(gmm.num_components):
        n = stats.zeroth[c]
        if n > 0:
            alpha = n / (n + relevance)
            adapted[c] = alpha * stats.first[c] / n + (1 - alpha) * gmm.means[c]
    return adapted


def test_map_adaptation_matches_per_component_formula():
    rng = np.random.default_rng(3)
    gmm = random_gmm(rng, components=3, dim=2)
    # one unseen component (N = 0 keeps the UBM mean), one barely seen, one well seen
    stats = UBMStats(zeroth=np.array([0.0, 0.3, 50.0]), first=np.array([[0.0, 0.0], [0.9, -0.6], [40.0, 110.0]]),
                     num_frames=51)
    for relevance in (16.0, 4.0):
        adapted = GMMUBM(gmm, relevance=relevance).adapt_means(stats)
        np.testing.assert_allclose(adapted, map_means_by_loop(gmm, stats, relevance), rtol=1e-12)
    np.testing.assert_array_equal(GMMUBM(gmm).adapt_means(stats)[0], gmm.means[0])


def test_linear_scores_equal_the_per_component_sum():
    rng = np.random.default_rng(4)
    gmm = random_gmm(rng, components=3, dim=2)
    ubm = GMMUBM(gmm)
    enroll = [ubm.stats(frames_of(gmm, rng, n) + 0.3 * k) for k, n in enumerate((50, 8))]
    tests = [ubm.stats(frames_of(gmm, rng, n)) for n in (30, 5, 200)]
    ie, it = np.array([0, 0, 1, 1, 0]), np.array([0, 1, 2, 0, 2])
    scores = linear_scores(np.stack([ubm.enrollment_vector(s) for s in enroll]),
                           np.stack([ubm.test_vector(s) for s in tests]), ie, it)

    expected = []
    for e, t in zip(ie, it):
        adapted, test = map_means_by_loop(gmm, enroll[e], 16.0), tests[t]
        total = 0.0
        for c in range(gmm.num_components):
            centred = test.first[c] - test.zeroth[c] * gmm.means[c]
            total += float((adapted[c] - gmm.means[c]) @ (centred / gmm.variances[c]))
        expected.append(total / test.num_frames)
    np.testing.assert_allclose(scores, expected, rtol=1e-5)  # the vectors are float32


def test_exact_llr_matches_sklearn_log_likelihoods():
    rng = np.random.default_rng(5)
    gmm = random_gmm(rng, components=4, dim=3)
    ubm = GMMUBM(gmm, chunk_frames=64)
    adapted = ubm.adapt_means(ubm.stats(frames_of(gmm, rng, 300) + 0.5))
    test = frames_of(gmm, rng, 150)
    speaker = DiagGMM(weights=gmm.weights, means=adapted, variances=gmm.variances).to_sklearn()
    x = test.astype(np.float64)
    expected = float(np.mean(speaker.score_samples(x) - gmm.to_sklearn().score_samples(x)))
    assert ubm.exact_llr(adapted, test) == pytest.approx(expected, abs=1e-4)
    assert ubm.exact_llr(gmm.means, test) == pytest.approx(0.0, abs=1e-6)


def test_exact_scorer_lies_between_the_ubm_and_the_enrolment_alignment():
    rng = np.random.default_rng(8)
    gmm = random_gmm(rng, components=5, dim=3)
    ubm = GMMUBM(gmm, chunk_frames=50)  # several chunks, utterances across chunk borders
    tests = [frames_of(gmm, rng, n) + shift for n, shift in ((120, 0.0), (75, 0.4), (31, -0.3))]
    adapted = ubm.adapt_means(ubm.stats(frames_of(gmm, rng, 200) + 0.4))
    exact, aligned = ExactScorer(ubm, tests).scores(adapted, aligned=True)
    np.testing.assert_allclose(exact, [ubm.exact_llr(adapted, x) for x in tests], atol=1e-6)
    speaker = DiagGMM(weights=gmm.weights, means=adapted, variances=gmm.variances).to_sklearn()
    for x, value, llr in zip(tests, aligned, exact):
        x = x.astype(np.float64)
        # log N(x; m_s,c) - log N(x; m_c) per frame and component, weighted by either model's posteriors
        log_ratio = np.stack([-0.5 * (((x - m_s) ** 2 - (x - m) ** 2) / v).sum(1)
                              for m_s, m, v in zip(adapted, gmm.means, gmm.variances)], axis=1)
        assert value == pytest.approx(np.mean((speaker.predict_proba(x) * log_ratio).sum(1)), abs=1e-4)
        ubm_aligned = np.mean((gmm.to_sklearn().predict_proba(x) * log_ratio).sum(1))
        assert ubm_aligned <= llr + 1e-5 and llr <= value + 1e-5   # Jensen: the exact LLR lies between


def synthetic_speakers(rng: np.random.Generator, centres: np.ndarray, num_speakers: int):
    """Utterances of speakers who shift each shared Gaussian class (`centres`, within-class std 1) by their own
    offset (std 0.15), plus a small per-utterance channel shift (std 0.2): a GMM-UBM EER of 11-15%."""
    phones, dim = centres.shape
    offsets = rng.normal(0, 0.15, (num_speakers, phones, dim))

    def utterance(speaker: int) -> np.ndarray:
        length = int(rng.integers(100, 200))
        which = rng.integers(0, phones, length)
        return (centres[which] + offsets[speaker, which] + rng.normal(0, 0.2, dim)
                + rng.normal(size=(length, dim))).astype(np.float32)
    return utterance


def linear_and_exact_scores(seed: int, speakers: int = 120,
                            tests_per_speaker: int = 10) -> dict[str, np.ndarray]:
    """Linear, exact and second-order-term scores and labels of a synthetic trial list (one draw per seed)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2.5, (8, 20))  # 8 "phones" in 20 dimensions, shared by all speakers
    background = synthetic_speakers(rng, centres, 30)  # the UBM's own speakers, not tested
    gmm, _ = fit_gmm(np.concatenate([background(s) for s in range(30) for _ in range(2)]), 32, max_iter=50, seed=0)
    ubm = GMMUBM(gmm)

    # Each speaker is enrolled from the pooled stats of two utterances. Many speakers matter more than many
    # trials per speaker: the linear score's error is mostly an offset per enrolment model (see below).
    utterance = synthetic_speakers(rng, centres, speakers)
    enroll_stats = [pool_stats([ubm.stats(utterance(s)), ubm.stats(utterance(s))]) for s in range(speakers)]
    test_frames = [(s, utterance(s)) for s in range(speakers) for _ in range(tests_per_speaker)]
    test_stats = [ubm.stats(x) for _, x in test_frames]
    ie, it = [], []
    for j, (s, _) in enumerate(test_frames):  # each test utterance: its target and two nontarget models
        ie += [s, *rng.choice(np.delete(np.arange(speakers), s), 2, replace=False)]
        it += [j] * 3
    ie, it = np.array(ie), np.array(it)
    labels = ie == np.array([s for s, _ in test_frames])[it]

    linear = linear_scores(np.stack([ubm.enrollment_vector(s) for s in enroll_stats]),
                           np.stack([ubm.test_vector(s) for s in test_stats]), ie, it)
    adapted = [ubm.adapt_means(s) for s in enroll_stats]
    exact = np.array([ubm.exact_llr(adapted[e], test_frames[t][1]) for e, t in zip(ie, it)])
    # Linear scoring drops the second-order term of the LLR in the mean offset M (posteriors held fixed):
    # -1/2 sum_c N_c M_c' Sigma_c^-1 M_c / T. Restoring it must give back the exact ranking almost perfectly.
    offsets = [(a - gmm.means) ** 2 / gmm.variances for a in adapted]
    quadratic = np.array([-0.5 * (test_stats[t].zeroth @ offsets[e]).sum() / test_stats[t].num_frames
                          for e, t in zip(ie, it)])
    return {"linear": linear, "exact": exact, "quadratic": quadratic, "labels": labels}


def test_linear_scoring_tracks_the_exact_llr():
    scores = linear_and_exact_scores(seed=0)
    linear, exact, labels = scores["linear"], scores["exact"], scores["labels"]
    rho = spearmanr(linear, exact).statistic
    rho_second_order = spearmanr(linear + scores["quadratic"], exact).statistic
    eer_linear, _ = compute_eer(linear, labels)
    eer_exact, _ = compute_eer(exact, labels)
    print(f"\nGMM-UBM (32 comp., 20-dim, r=16) on {labels.sum()} target / {(~labels).sum()} nontarget trials: "
          f"EER linear {100 * eer_linear:.2f}%, exact {100 * eer_exact:.2f}%, Spearman rho {rho:.4f} "
          f"(with the second-order term {rho_second_order:.4f})")
    # Linear scoring is the first-order expansion of the LLR in the MAP mean offset, so it should rank trials
    # almost as the exact LLR does. Over 20 draws of this set-up (seeds 0-19): rho 0.969-0.983, second-order
    # rho 0.9990-0.9994, EER gap 0.00-0.83 points (mean 0.24) at EERs of 11.7-14.3%, linear better about as
    # often as worse. rho stays below 1 because the dropped quadratic term varies between enrolment models;
    # the bounds leave room for other BLAS or scikit-learn versions of the GMM fit.
    assert 0.05 < eer_exact < 0.25, "the synthetic task should be neither trivial nor hopeless"
    assert rho >= 0.95
    assert rho_second_order >= 0.998
    assert abs(eer_linear - eer_exact) <= 0.01


@pytest.mark.parametrize("frames, message", [
    (np.zeros((0, 4), dtype=np.float32), "no frames"),
    (np.zeros((10, 5), dtype=np.float32), r"frames x 4 matrix.*\(10, 5\)"),
    (np.zeros(4, dtype=np.float32), r"frames x 4 matrix.*\(4,\)"),
    (np.full((3, 4), np.nan, dtype=np.float32), "NaN"),
])
def test_unusable_frames_raise(frames, message):
    rng = np.random.default_rng(6)
    gmm = random_gmm(rng, components=3, dim=4)
    ubm = GMMUBM(gmm, num_ceps=2)  # the full GMM dimension (4) is expected even when only 2 are used
    assert issubclass(GMMUBMError, ValueError) and issubclass(GMMUBMError, PipelineError)
    with pytest.raises(GMMUBMError, match=message):
        ubm.stats(frames)
    with pytest.raises(GMMUBMError, match=message):
        ubm.exact_llr(gmm.means[:, :2], frames)


def test_bad_settings_and_mismatched_inputs_raise():
    rng = np.random.default_rng(7)
    gmm = random_gmm(rng, components=3, dim=4)
    with pytest.raises(GMMUBMError, match="num_ceps=5"):
        GMMUBM(gmm, num_ceps=5)
    with pytest.raises(GMMUBMError, match="relevance"):
        GMMUBM(gmm, relevance=0)
    with pytest.raises(GMMUBMError, match="no statistics to pool"):
        pool_stats([])
    ubm = GMMUBM(gmm, num_ceps=2)
    stats = GMMUBM(gmm).stats(frames_of(gmm, rng, 10))  # 4-dim statistics offered to a 2-dim UBM
    with pytest.raises(GMMUBMError, match="do not belong"):
        ubm.enrollment_vector(stats)
    with pytest.raises(GMMUBMError, match="different UBMs"):
        linear_scores(np.zeros((2, 6)), np.zeros((2, 8)), [0], [1])
    with pytest.raises(GMMUBMError, match="test_index out of range"):
        linear_scores(np.zeros((2, 6)), np.zeros((2, 6)), [0], [2])


def test_the_quadratic_term_is_one_more_dot_product():
    """With `quadratic`, e+ . t+ = linear score - 1/2 sum_c (N_c / T) ||Sigma_c^-1/2 (m_s,c - m_c)||^2: the LLR
    with the UBM's alignment held fixed, still a product of two stored vectors."""
    rng = np.random.default_rng(11)
    gmm = random_gmm(rng, components=5, dim=6)
    linear_ubm, quadratic_ubm = GMMUBM(gmm, num_ceps=4), GMMUBM(gmm, num_ceps=4, quadratic=True)
    enroll, test = (linear_ubm.stats(rng.normal(0, 1.5, (n, 6)).astype(np.float32)) for n in (300, 120))
    linear = float(linear_ubm.enrollment_vector(enroll).astype(np.float64) @ linear_ubm.test_vector(test))
    offset = linear_ubm.adapt_means(enroll) - linear_ubm.ubm.means
    expected = linear - 0.5 * float((test.zeroth / test.num_frames) @ (offset ** 2 / linear_ubm.ubm.variances).sum(1))
    got = float(quadratic_ubm.enrollment_vector(enroll).astype(np.float64) @ quadratic_ubm.test_vector(test))
    assert got == pytest.approx(expected, rel=1e-5)
    assert quadratic_ubm.vector_dim == 5 * 4 + 5 == quadratic_ubm.test_vector(test).size


def test_the_ubm_cuts_wider_frames_to_the_cepstra_it_models():
    """Stage 5 hands the GMM-UBM all 80 MFCC of a frame; the UBM (fitted on the first 20) is the one place that cuts
    them, and a frame of any other width is refused, never cut silently."""
    rng = np.random.default_rng(12)
    gmm = random_gmm(rng, components=4, dim=3)
    wide = np.concatenate([frames_of(gmm, rng, 50), rng.normal(size=(50, 5)).astype(np.float32)], axis=1)
    ubm = GMMUBM(gmm, input_dim=8)
    np.testing.assert_array_equal(ubm.stats(wide).first, GMMUBM(gmm).stats(wide[:, :3]).first)
    with pytest.raises(GMMUBMError, match="frames x 8 matrix"):
        ubm.stats(wide[:, :3])
    with pytest.raises(GMMUBMError, match="cannot feed"):
        GMMUBM(gmm, input_dim=2)
