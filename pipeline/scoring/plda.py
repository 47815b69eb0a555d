"""Kaldi's PLDA back end for embeddings: mean removal, LDA, length normalisation, two-covariance PLDA scoring.

The chain of Kaldi's x-vector recipes (egs/voxceleb/v2, egs/sre16/v2), fitted here on training embeddings with
speaker labels and applied to both sides of a trial:

1. Subtract the training mean m (`ivector-mean`, `ivector-subtract-global-mean`).
2. LDA to `lda_dim` (`ivector-compute-lda`): with W the within-speaker covariance (scatter about each speaker's mean,
   over all N embeddings) and B the between-speaker one (total covariance minus W), whiten W (eigenvalues floored at
   1e-6 of the largest) and keep the `lda_dim` directions of largest projected B. The LDA output has unit W.
3. Length normalisation (`ivector-normalize-length`; Garcia-Romero & Espy-Wilson, "Analysis of i-vector length
   normalization in speaker recognition systems", Interspeech 2011): scale each vector to norm sqrt(lda_dim).
4. Two-covariance PLDA (Ioffe, "Probabilistic linear discriminant analysis", ECCV 2006; Prince & Elder, ICCV 2007;
   Kaldi `ivector/plda.cc`): a speaker's vectors are y + e with y ~ N(mu, B), e ~ N(0, W). B and W are trained by
   Kaldi's EM from W = B = I (`ivector-compute-plda`, 10 iterations), then one transform A makes W = I and
   B = diag(psi), psi descending (the simultaneous diagonalisation; u = A (x - mu)).

Scoring (Kaldi `Plda::TransformIvector` and `Plda::LogLikelihoodRatio`): an enrolment vector that is the mean of
n embeddings, mapped to u_e, and a test vector u_t (n = 1) are each scaled so that u^T (psi + 1/n)^-1 u = dim
(Kaldi's `--normalize-length=true`, the default of `ivector-plda-scoring`), and

    llr = log N(u_t; n psi / (n psi + 1) u_e, 1 + psi / (n psi + 1)) - log N(u_t; 0, 1 + psi)

per dimension (diagonal covariances), summed: the log-likelihood ratio of "same speaker" (the joint Gaussian of
[mean of the n enrolment vectors; test] with covariance [[B + W/n, B], [B, B + W]]) against "different speakers"
(block-diagonal [[B + W/n, 0], [0, B + W]]). For the n enrolment embeddings, average the raw embeddings (as
`ivector-mean` does) and pass n as `num_enroll`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.linalg import eigh

from pipeline.utils.atomic import atomic_file, checksum_path, verify_checksum, write_checksum

__all__ = ["PLDA"]

ARRAYS = ("mean", "lda", "plda_mean", "plda_transform", "psi")


@dataclass(frozen=True, eq=False)
class PLDA:
    """The fitted back end: `mean` (D,) removed first, `lda` (d, D), then length norm to sqrt(d), then PLDA:
    `plda_mean` (d,), `plda_transform` (d, d) making W = I and B = diag(`psi`) (d,)."""
    mean: np.ndarray
    lda: np.ndarray
    plda_mean: np.ndarray
    plda_transform: np.ndarray
    psi: np.ndarray

    @classmethod
    def fit(cls, embeddings: ArrayLike, labels: ArrayLike, lda_dim: int | None = None, *,
            em_iters: int = 10) -> "PLDA":
        """Fit on `embeddings` (N, D) of speakers `labels` (N,); `lda_dim` defaults to D (LDA then only rotates and
        scales). At least one speaker needs two embeddings, and N must exceed D for W to be invertible."""
        x = np.asarray(embeddings, dtype=np.float64)
        speakers = np.unique(np.asarray(labels), return_inverse=True)[1].ravel()
        if x.ndim != 2 or speakers.size != x.shape[0]:
            raise ValueError(f"need embeddings (N, D) and N labels; got shape {x.shape} and {speakers.size} labels")
        lda_dim = x.shape[1] if lda_dim is None else int(lda_dim)
        if not 0 < lda_dim <= x.shape[1]:
            raise ValueError(f"lda_dim must lie in 1..{x.shape[1]} (the embedding size), got {lda_dim}")
        if np.bincount(speakers).max() < 2:
            raise ValueError("no speaker has two embeddings: the within-speaker covariance cannot be estimated")
        if x.shape[0] <= x.shape[1]:
            raise ValueError(f"{x.shape[0]} embeddings of dimension {x.shape[1]}: too few to estimate covariances")
        mean = x.mean(axis=0)
        lda = _lda(x - mean, speakers, lda_dim)
        projected = _length_normalise((x - mean) @ lda.T)
        plda_mean, within, between = _two_covariance_em(projected, speakers, em_iters)
        psi, vectors = eigh(between, within)  # vectors.T @ within @ vectors = I, vectors.T @ between @ vectors = psi
        order = np.argsort(psi)[::-1]
        return cls(mean, lda, plda_mean, vectors[:, order].T, np.maximum(psi[order], 0.0))

    def project(self, embeddings: ArrayLike) -> np.ndarray:
        """Steps 1-3: mean removed, LDA, length normalised to sqrt(d); (M, D) -> (M, d)."""
        x = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
        return _length_normalise((x - self.mean) @ self.lda.T)

    def to_plda_space(self, projected: ArrayLike, num_examples: ArrayLike = 1) -> np.ndarray:
        """Kaldi's TransformIvector: u = A (x - mu), scaled so that u^T (psi + 1/n)^-1 u = d, for vectors that are
        the mean of `num_examples` embeddings (a scalar or one count per row)."""
        u = (np.atleast_2d(np.asarray(projected, dtype=np.float64)) - self.plda_mean) @ self.plda_transform.T
        n = _counts(num_examples, u.shape[0])
        squared_norm = np.sum(u ** 2 / (self.psi + 1.0 / n[:, None]), axis=1)
        return u * np.sqrt(u.shape[1] / squared_norm)[:, None]

    def llr(self, enroll: ArrayLike, test: ArrayLike, num_enroll: ArrayLike = 1) -> np.ndarray:
        """Kaldi's LogLikelihoodRatio of rows of `enroll` against the same rows of `test`, both in the PLDA space
        (`to_plda_space`); each enrolment row is the mean of `num_enroll` embeddings."""
        u_e, u_t = np.atleast_2d(enroll), np.atleast_2d(test)
        n = _counts(num_enroll, u_e.shape[0])[:, None]
        shrink = n * self.psi / (n * self.psi + 1.0)
        same_var = 1.0 + self.psi / (n * self.psi + 1.0)
        other_var = 1.0 + self.psi
        same = np.sum(np.log(same_var) + (u_t - shrink * u_e) ** 2 / same_var, axis=1)
        other = np.sum(np.log(other_var) + u_t ** 2 / other_var, axis=1)
        return -0.5 * (same - other)

    def score(self, enroll: ArrayLike, test: ArrayLike, num_enroll: ArrayLike = 1) -> np.ndarray:
        """LLRs of trials: row i of `enroll` (M, D) against row i of `test` (M, D), raw embeddings; an enrolment row
        that averages n embeddings says so in `num_enroll` (a scalar or (M,) counts)."""
        enroll, test = np.atleast_2d(enroll), np.atleast_2d(test)
        if enroll.shape != test.shape:
            raise ValueError(f"enrolment rows {enroll.shape} and test rows {test.shape} must pair up one to one")
        u_e = self.to_plda_space(self.project(enroll), num_enroll)
        u_t = self.to_plda_space(self.project(test))
        return self.llr(u_e, u_t, num_enroll)

    def save_npz(self, path: str | os.PathLike) -> None:
        """Write the arrays to an `.npz` (no pickle), atomically, with its content hash beside it."""
        checksum_path(path).unlink(missing_ok=True)
        with atomic_file(path, "wb") as handle:
            np.savez(handle, **{name: getattr(self, name) for name in ARRAYS})
        write_checksum(path)

    @classmethod
    def load_npz(cls, path: str | os.PathLike) -> "PLDA":
        """Read a PLDA written by `save_npz`; IntegrityError when its bytes changed since."""
        verify_checksum(path)
        with np.load(path, allow_pickle=False) as data:
            missing = [name for name in ARRAYS if name not in data.files]
            if missing:
                raise ValueError(f"{path}: no {missing[0]!r} array: not a PLDA written by PLDA.save_npz")
            return cls(**{name: data[name] for name in ARRAYS})


def _length_normalise(x: np.ndarray) -> np.ndarray:
    """Each row scaled to norm sqrt(dim), as Kaldi's ivector-normalize-length."""
    return x * (np.sqrt(x.shape[1]) / np.linalg.norm(x, axis=1))[:, None]


def _counts(num_examples: ArrayLike, rows: int) -> np.ndarray:
    n = np.broadcast_to(np.asarray(num_examples, dtype=np.float64), (rows,))
    if np.any(n < 1):
        raise ValueError(f"a vector averages at least one embedding; got counts down to {n.min()}")
    return n


def _class_means(x: np.ndarray, speakers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(means (S, d), counts (S,)) of each speaker's rows."""
    counts = np.bincount(speakers)
    sums = np.zeros((counts.size, x.shape[1]))
    np.add.at(sums, speakers, x)
    return sums / counts[:, None], counts


def _lda(x: np.ndarray, speakers: np.ndarray, lda_dim: int) -> np.ndarray:
    """Kaldi's ivector-compute-lda on centred `x`: (lda_dim, D), making the within-speaker covariance unit."""
    means, counts = _class_means(x, speakers)
    total = x.T @ x / x.shape[0]
    between = (means * counts[:, None]).T @ means / x.shape[0]
    within = total - between
    values, vectors = np.linalg.eigh(within)
    values = np.maximum(values, 1e-6 * values.max())
    whiten = vectors.T / np.sqrt(values)[:, None]  # whiten @ within @ whiten.T = I
    projected_values, rotation = np.linalg.eigh(whiten @ between @ whiten.T)
    keep = np.argsort(projected_values)[::-1][:lda_dim]
    return rotation[:, keep].T @ whiten


def _two_covariance_em(x: np.ndarray, speakers: np.ndarray, iterations: int) -> tuple[np.ndarray, np.ndarray,
                                                                                     np.ndarray]:
    """Kaldi's PldaEstimator: (mu, W, B) of the two-covariance model by EM from W = B = I. Each speaker's mean m
    (centred) of n vectors is split into x ~ N(0, B) and y ~ N(0, W/n); the scatter about the speaker means
    (sum of n - 1 degrees of freedom) adds to W's statistics as it is."""
    means, counts = _class_means(x, speakers)
    mu = means.mean(axis=0)  # each speaker weighs 1, as in Kaldi
    centred_means = means - mu
    offsets = x - means[speakers]
    scatter = offsets.T @ offsets
    dim = x.shape[1]
    within, between = np.eye(dim), np.eye(dim)
    for _ in range(iterations):
        within_inv, between_inv = np.linalg.inv(within), np.linalg.inv(between)
        within_stats, between_stats = scatter.copy(), np.zeros((dim, dim))
        for n in np.unique(counts):  # one inversion per distinct count, as Kaldi
            m = centred_means[counts == n]
            mixed = np.linalg.inv(between_inv + n * within_inv)  # posterior covariance of x
            w = m @ (n * within_inv) @ mixed  # posterior means of x, one row per speaker
            between_stats += len(m) * mixed + w.T @ w
            within_stats += n * (len(m) * mixed + (m - w).T @ (m - w))
        within = within_stats / x.shape[0]  # sum of n - 1 per speaker from the scatter, 1 from its mean
        between = between_stats / len(counts)
    return mu, within, between
