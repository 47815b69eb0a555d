"""The oracle of the LGP tests: scikit-learn's per-component log-likelihoods of a fitted diagonal GaussianMixture,
from its public fitted attributes only."""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp
from scipy.stats import norm
from sklearn.mixture import GaussianMixture


def weighted_log_prob(mixture: GaussianMixture, frames: np.ndarray) -> np.ndarray:
    """(frames, components): log w_k + log N(x_t; mu_k, diag(sigma2_k)), by scipy.stats. Its log-sum over the
    components is checked against sklearn's own `score_samples`, so it is sklearn's model and not a copy of ours."""
    frames = np.asarray(frames, dtype=np.float64)
    per_dim = norm.logpdf(frames[:, None, :], mixture.means_[None], np.sqrt(mixture.covariances_)[None])
    weighted = per_dim.sum(axis=2) + np.log(mixture.weights_)
    np.testing.assert_allclose(logsumexp(weighted, axis=1), mixture.score_samples(frames), rtol=1e-9, atol=1e-8)
    return weighted
