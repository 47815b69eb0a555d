"""PLDA back end: its LLR against the two Gaussian hypotheses computed directly, its EM against the closed-form maximum
likelihood, its LDA against the scatter it promises, and speaker separation on synthetic embeddings."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from pipeline.scoring import PLDA, compute_eer, cosine_scores
from pipeline.utils.atomic import IntegrityError

DIM = 12


def speaker_model(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(global mean, between-speaker covariance of rank 6, anisotropic within-speaker covariance) in DIM dims."""
    rng = np.random.default_rng(seed)
    loading = rng.normal(size=(DIM, 6))
    within_root = rng.normal(size=(DIM, DIM)) * 0.3 + np.diag(rng.uniform(0.3, 2.0, DIM))
    return rng.normal(size=DIM) * 3.0, loading @ loading.T + 0.05 * np.eye(DIM), within_root @ within_root.T


def embeddings(model, speakers: int, per_speaker: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    mean, between, within = model
    rng = np.random.default_rng(seed)
    centres = rng.multivariate_normal(mean, between, speakers)
    noise = rng.multivariate_normal(np.zeros(DIM), within, speakers * per_speaker)
    return np.repeat(centres, per_speaker, axis=0) + noise, np.repeat(np.arange(speakers), per_speaker)


@pytest.fixture(scope="module")
def fitted() -> tuple[PLDA, tuple]:
    model = speaker_model(0)
    x, labels = embeddings(model, 150, 6, seed=1)
    return PLDA.fit(x, labels, lda_dim=8), model


def direct_llr(x_enroll, x_test, mean, between, within, n=1):
    """log N([e; t]; [[B + W/n, B], [B, B + W]]) - log N(e; B + W/n) - log N(t; B + W): same speaker against two."""
    joint = np.block([[between + within / n, between], [between, between + within]])
    same = multivariate_normal(np.concatenate([mean, mean]), joint).logpdf(np.concatenate([x_enroll, x_test]))
    return (same - multivariate_normal(mean, between + within / n).logpdf(x_enroll)
            - multivariate_normal(mean, between + within).logpdf(x_test))


@pytest.mark.parametrize("n", [1, 3])
def test_llr_equals_the_two_gaussian_hypotheses_in_the_plda_space(fitted, n):
    plda, _ = fitted
    rng = np.random.default_rng(2)
    u_enroll, u_test = rng.normal(size=(2, 5, 8)) * 2.0
    d = plda.psi.size
    expected = [direct_llr(e, t, np.zeros(d), np.diag(plda.psi), np.eye(d), n) for e, t in zip(u_enroll, u_test)]
    np.testing.assert_allclose(plda.llr(u_enroll, u_test, n), expected, rtol=1e-10, atol=1e-10)


def test_llr_equals_the_two_gaussian_hypotheses_before_diagonalisation(fitted):
    """Mapped back to the length-normalised LDA space, the model is mu, B = A^-1 diag(psi) A^-T, W = A^-1 A^-T with
    full matrices; the LLR of vectors there must be the LLR of their images u = A (x - mu)."""
    plda, _ = fitted
    inverse = np.linalg.inv(plda.plda_transform)
    between, within = inverse @ np.diag(plda.psi) @ inverse.T, inverse @ inverse.T
    rng = np.random.default_rng(3)
    x_enroll, x_test = rng.normal(size=(2, 4, 8)) * 2.0 + plda.plda_mean
    u_enroll, u_test = ((x - plda.plda_mean) @ plda.plda_transform.T for x in (x_enroll, x_test))
    for n in (1, 4):
        expected = [direct_llr(e, t, plda.plda_mean, between, within, n) for e, t in zip(x_enroll, x_test)]
        np.testing.assert_allclose(plda.llr(u_enroll, u_test, n), expected, rtol=1e-9, atol=1e-9)


def test_em_converges_to_the_closed_form_maximum_likelihood():
    """With every speaker seen n times, the two-covariance ML has a closed form: W = scatter about the speaker
    means / (N - S), B = covariance of the speaker means - W / n (when that is positive definite)."""
    x, labels = embeddings(speaker_model(4), 120, 5, seed=5)
    plda = PLDA.fit(x, labels, lda_dim=6, em_iters=300)
    projected = plda.project(x)
    means = projected.reshape(120, 5, -1).mean(axis=1)
    offsets = projected - np.repeat(means, 5, axis=0)
    within = offsets.T @ offsets / (x.shape[0] - 120)
    centred = means - means.mean(axis=0)
    between = centred.T @ centred / 120 - within / 5
    a = plda.plda_transform
    np.testing.assert_allclose(a @ within @ a.T, np.eye(6), atol=1e-9)
    np.testing.assert_allclose(a @ between @ a.T, np.diag(plda.psi), atol=1e-9)
    np.testing.assert_allclose(plda.plda_mean, means.mean(axis=0), atol=1e-12)


def test_lda_whitens_the_within_speaker_scatter_and_length_norm_scales_to_sqrt_dim(fitted):
    plda, model = fitted
    x, labels = embeddings(model, 150, 6, seed=1)  # the training embeddings of `fitted`
    lda_out = (x - plda.mean) @ plda.lda.T
    means = lda_out.reshape(150, 6, -1).mean(axis=1)
    offsets = lda_out - np.repeat(means, 6, axis=0)
    np.testing.assert_allclose(offsets.T @ offsets / x.shape[0], np.eye(8), atol=1e-9)
    between = means.T @ means / 150
    np.testing.assert_allclose(between, np.diag(np.diag(between)), atol=1e-9)
    assert np.all(np.diff(np.diag(between)) <= 1e-9)  # the directions kept are the most discriminant, in order
    np.testing.assert_allclose(np.linalg.norm(plda.project(x[:10]), axis=1), np.sqrt(8))


def test_plda_separates_unseen_speakers_better_than_cosine(fitted):
    plda, model = fitted
    x, labels = embeddings(model, 100, 2, seed=6)
    enroll, test = x[0::2], x[1::2]
    impostors = np.roll(test, 1, axis=0)
    trial_labels = np.concatenate([np.ones(100), np.zeros(100)])
    plda_eer = compute_eer(np.concatenate([plda.score(enroll, test), plda.score(enroll, impostors)]), trial_labels)[0]
    cosine_eer = compute_eer(np.concatenate([cosine_scores(enroll, test), cosine_scores(enroll, impostors)]),
                             trial_labels)[0]
    assert plda_eer < 0.1 < 0.5
    assert plda_eer < cosine_eer


def test_score_is_symmetric_for_single_embeddings_and_uses_the_enrolment_count(fitted):
    plda, model = fitted
    x, _ = embeddings(model, 10, 2, seed=7)
    a, b = x[0::2], x[1::2]
    np.testing.assert_allclose(plda.score(a, b), plda.score(b, a), rtol=1e-12)
    counts = np.arange(1, 11)
    by_row = plda.score(a, b, counts)
    for i in (0, 4, 9):
        assert by_row[i] == pytest.approx(plda.score(a[i], b[i], counts[i])[0], rel=1e-12)
    assert not np.allclose(by_row[1:], plda.score(a, b)[1:])


def test_save_and_load_npz(fitted, tmp_path):
    plda, model = fitted
    path = tmp_path / "plda.npz"
    plda.save_npz(path)
    loaded = PLDA.load_npz(path)
    x, _ = embeddings(model, 5, 2, seed=8)
    np.testing.assert_array_equal(loaded.score(x[0::2], x[1::2]), plda.score(x[0::2], x[1::2]))
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == ["lda", "mean", "plda_mean", "plda_transform", "psi"]
    path.write_bytes(path.read_bytes()[:-1] + b"x")
    with pytest.raises(IntegrityError, match="changed after it was written"):
        PLDA.load_npz(path)


def test_fit_and_score_refuse_bad_input(fitted):
    x, labels = embeddings(speaker_model(9), 30, 2, seed=9)
    with pytest.raises(ValueError, match="lda_dim must lie in 1..12"):
        PLDA.fit(x, labels, lda_dim=13)
    with pytest.raises(ValueError, match="no speaker has two embeddings"):
        PLDA.fit(x, np.arange(len(x)), lda_dim=4)
    with pytest.raises(ValueError, match="too few to estimate"):
        PLDA.fit(x[:12], labels[:12], lda_dim=4)
    with pytest.raises(ValueError, match="N labels"):
        PLDA.fit(x, labels[:-1], lda_dim=4)
    plda, _ = fitted
    with pytest.raises(ValueError, match="pair up one to one"):
        plda.score(x[:3], x[:4])
    with pytest.raises(ValueError, match="at least one embedding"):
        plda.score(x[:3], x[3:6], num_enroll=0)
