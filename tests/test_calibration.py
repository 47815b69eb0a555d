"""Calibration and fusion by prior-weighted logistic regression, on synthetic scores whose true LLR is known."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.scoring import (Calibration, CalibrationError, Fusion, cllr, compute_act_dcf, compute_eer,
                              compute_min_dcf, fit_logistic_regression, min_cllr)

TARGET_MEAN, NONTARGET_MEAN, STD = 2.0, -1.0, 1.5


def gaussian_trials(seed: int, n_target: int = 10000, n_nontarget: int = 40000) -> tuple[np.ndarray, np.ndarray]:
    """Equal-variance Gaussian scores: their LLR is exactly linear, true_llr below."""
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.normal(TARGET_MEAN, STD, n_target), rng.normal(NONTARGET_MEAN, STD, n_nontarget)])
    return scores, np.concatenate([np.ones(n_target, dtype=int), np.zeros(n_nontarget, dtype=int)])


def true_llr(scores: np.ndarray) -> np.ndarray:
    """log N(s; mt, v) - log N(s; mn, v) = (mt - mn) / v * s - (mt^2 - mn^2) / (2 v)."""
    variance = STD ** 2
    return ((TARGET_MEAN - NONTARGET_MEAN) * scores - (TARGET_MEAN ** 2 - NONTARGET_MEAN ** 2) / 2) / variance


def wrong_scale(scores: np.ndarray) -> np.ndarray:
    return 37.0 * scores + 5.0


# ---------------------------------------------------------------- calibration

@pytest.mark.parametrize("p_target", [0.5, 0.05])
def test_calibration_recovers_the_true_llr(p_target):
    scores, labels = gaussian_trials(0)
    calibration = Calibration.fit(wrong_scale(scores), labels, p_target)
    grid = np.linspace(-3.0, 5.0, 50)  # where nearly all the scores lie
    np.testing.assert_allclose(calibration.apply(wrong_scale(grid)), true_llr(grid), atol=0.1)
    assert calibration.scale == pytest.approx((TARGET_MEAN - NONTARGET_MEAN) / STD ** 2 / 37.0, rel=0.03)
    assert (calibration.n_target, calibration.n_nontarget, calibration.p_target) == (10000, 40000, p_target)


def test_calibrated_costs_approach_their_minimum_on_held_out_trials():
    train, train_labels = gaussian_trials(1)
    test, test_labels = gaussian_trials(2)
    llrs = Calibration.fit(wrong_scale(train), train_labels).apply(wrong_scale(test))
    raw_cllr = cllr(wrong_scale(test), test_labels)
    assert min_cllr(test, test_labels) <= cllr(llrs, test_labels) < raw_cllr
    assert cllr(llrs, test_labels) - min_cllr(test, test_labels) < 0.01
    for p_target in (0.5, 0.1, 0.01):
        min_dcf = compute_min_dcf(test, test_labels, p_target)[0]
        act_dcf = compute_act_dcf(llrs, test_labels, p_target)
        assert min_dcf <= act_dcf < min_dcf + 0.03
        assert compute_act_dcf(wrong_scale(test), test_labels, p_target) > act_dcf + 0.04


def test_calibration_at_half_is_the_cllr_optimum_of_its_training_list():
    scores, labels = gaussian_trials(3, 300, 900)
    fitted = Calibration.fit(scores, labels)
    best = cllr(fitted.apply(scores), labels)
    for d_scale, d_offset in [(1.01, 0), (0.99, 0), (1, 0.02), (1, -0.02)]:
        assert cllr(fitted.scale * d_scale * scores + fitted.offset + d_offset, labels) > best


def test_constant_scores_calibrate_to_llr_zero():
    calibration = Calibration.fit(np.full(10, 3.0), [1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(calibration.apply([3.0]), 0.0, atol=1e-9)


def test_separable_scores_give_a_steep_finite_map():
    calibration = Calibration.fit([-2.0, -1.0, 1.0, 2.0], [0, 0, 1, 1])
    assert np.isfinite(calibration.scale) and calibration.scale > 5.0
    assert cllr(calibration.apply([-2.0, -1.0, 1.0, 2.0]), [0, 0, 1, 1]) < 1e-3


def test_calibration_json_round_trip_and_refusals():
    calibration = Calibration.fit(*gaussian_trials(4, 50, 100), p_target=0.2)
    assert Calibration.from_json(calibration.to_json()) == calibration
    with pytest.raises(ValueError, match="not a calibration record"):
        Calibration.from_json('{"kind": "fusion", "offset": 0}')
    with pytest.raises(ValueError, match="fields"):
        Calibration.from_json('{"kind": "calibration", "scale": 1.0}')


def test_the_score_threshold_of_an_llr_and_a_map_that_ranks_backwards():
    calibration = Calibration.fit(*gaussian_trials(4, 50, 100))
    threshold = calibration.score_at(np.log(99))
    assert calibration.apply(threshold) == pytest.approx(np.log(99))
    # scores where non-targets sit higher: a decreasing map has no score above which to accept
    backwards = Calibration.fit([2.0, 1.5, 1.0, -1.0, -1.5, -2.0], [0, 1, 0, 1, 0, 1])
    assert backwards.scale < 0
    with pytest.raises(CalibrationError, match="does not increase with the score"):
        backwards.score_at(0.0)


@pytest.mark.parametrize("scores, labels, p_target, message", [
    ([0.0, np.nan, 1.0], [0, 1, 1], 0.5, "NaN or infinite"),
    ([0.0, 1.0], [1, 1], 0.5, "all 2 trials are target"),
    ([0.0, 1.0], [0, 1, 1], 0.5, "2 scores but 3 labels"),
    ([0.0, 1.0], [0, 1], 1.0, "p_target"),
])
def test_calibration_refuses_bad_input(scores, labels, p_target, message):
    with pytest.raises(ValueError, match=message):
        Calibration.fit(scores, labels, p_target)


# ---------------------------------------------------------------- fusion

def two_noisy_copies(seed: int, n: int = 4000) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Two systems that see one informative score through independent noise, and one that sees nothing."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) < n // 4).astype(int)
    latent = np.where(labels == 1, 1.5, -1.5) + rng.normal(size=n)
    return {"a": latent + rng.normal(size=n), "b": 3.0 * (latent + rng.normal(size=n)) - 2.0,
            "random": rng.normal(size=n)}, labels


def test_fusion_of_two_noisy_copies_beats_either_on_held_out_trials():
    train, train_labels = two_noisy_copies(5)
    test, test_labels = two_noisy_copies(6)
    fused = Fusion.fit(train, train_labels).apply(test)
    for name in ("a", "b"):
        alone = Calibration.fit(train[name], train_labels).apply(test[name])
        assert cllr(fused, test_labels) < cllr(alone, test_labels) - 0.05
        assert compute_eer(fused, test_labels)[0] < compute_eer(alone, test_labels)[0] - 0.01


def test_fusion_weight_of_a_useless_system_is_near_zero():
    scores, labels = two_noisy_copies(7)
    fusion = Fusion.fit(scores, labels)
    # weight times the spread of the scores: each system's share of the fused LLR
    share = {name: abs(fusion.weights[name]) * scores[name].std() for name in scores}
    assert share["random"] < 0.1 * min(share["a"], share["b"])
    assert share["a"] == pytest.approx(share["b"], rel=0.25)  # the two copies are equally noisy


def test_fusion_of_one_system_is_its_calibration():
    scores, labels = gaussian_trials(8, 200, 600)
    fusion, calibration = Fusion.fit({"only": scores}, labels, 0.3), Calibration.fit(scores, labels, 0.3)
    assert fusion.weights["only"] == calibration.scale and fusion.offset == calibration.offset
    assert fit_logistic_regression(scores, labels, 0.3)[1] == calibration.offset


def test_fusion_apply_names_and_json():
    scores, labels = two_noisy_copies(9, 400)
    fusion = Fusion.fit(scores, labels)
    expected = sum(fusion.weights[k] * scores[k] for k in ("a", "b", "random")) + fusion.offset
    np.testing.assert_allclose(fusion.apply({**scores, "unused": np.zeros(400)}), expected)
    with pytest.raises(KeyError, match="random"):
        fusion.apply({"a": scores["a"], "b": scores["b"]})
    loaded = Fusion.from_json(fusion.to_json())
    assert loaded == fusion and list(loaded.weights) == ["a", "b", "random"]
    with pytest.raises(ValueError, match="2 scores but 3 labels"):
        Fusion.fit({"a": [0.0, 1.0, 2.0], "b": [0.0, 1.0]}, [0, 1, 1])
    with pytest.raises(ValueError, match="at least one system"):
        Fusion.fit({}, [0, 1])
