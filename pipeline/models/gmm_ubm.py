"""The classical GMM-UBM system on stage 2's GMM: Baum-Welch statistics, MAP-adapted means, linear scoring.

Everything here is numpy; the UBM's frame posteriors come from the same float32 GEMM as the LGP features
(`LGPExtractor(gmm, normalize=False)`), so the classical system and the networks see the same GMM.

Features. The frames are `normalize_frames` output (voiced frames, CMN) of all `D` MFCC (80), what the archives
hold; the classical setting models the first `k` of them (20). Stage 2 fits the UBM on those `k` columns
(`gmm.ubm.num_ceps`), and `GMMUBM(ubm, input_dim=D)` takes frames of the full width and cuts them: callers always
pass all `D` columns, and a frame matrix of any other width is an error, never silently cut. The marginal of a
diagonal GMM over its first `k` dimensions is exactly the diagonal GMM with the first `k` columns of its means and
variances, so `GMMUBM(gmm, num_ceps=k)` does the same from a GMM of all `D` dimensions.

Formulas, for a UBM with weights w_c, means m_c, diagonal covariances Sigma_c (c = 1..C, dimension d):

  statistics   gamma_c(t) = softmax_c( log w_c + log N(x_t; m_c, Sigma_c) )   (posterior of component c at frame t)
               N_c = sum_t gamma_c(t),   F_c = sum_t gamma_c(t) x_t,   T = number of frames
  MAP (means only, Reynolds, Quatieri and Dunn 2000), relevance factor r > 0:
               alpha_c = N_c / (N_c + r),   m_s,c = alpha_c F_c / N_c + (1 - alpha_c) m_c
                       = m_c + (F_c - N_c m_c) / (N_c + r)       (the form used: no division by N_c, so N_c = 0
                                                                   gives m_s,c = m_c with no special case)
  exact score  LLR(X | s) = (1/T) sum_t [ log sum_c w_c N(x_t; m_s,c, Sigma_c) - log sum_c w_c N(x_t; m_c, Sigma_c) ]
  linear score (Glembek, Burget, Dehak, Brummer and Kenny, ICASSP 2009, "linear scoring"): with the UBM's
               posteriors held fixed, the log-likelihood ratio is a quadratic in the mean offset M_c = m_s,c - m_c,
                 sum_c M_c' Sigma_c^-1 (F_c - N_c m_c)  -  1/2 sum_c N_c M_c' Sigma_c^-1 M_c,
               and linear scoring keeps the first-order term only. Divided by the test's T, as the exact score is:
                 LLR(X | s) ~ sum_c (m_s,c - m_c)' Sigma_c^-1 (F_c - N_c m_c) / T   = e . t   with
                 e = stack_c Sigma_c^-1/2 (m_s,c - m_c)          (enrolment vector, from the enrolment stats)
                 t = stack_c Sigma_c^-1/2 (F_c - N_c m_c) / T    (test vector, from the test stats)
               stacked component-major: element c*d + j is component c, dimension j; both float32 of length C*d.
               Where this differs from Glembek et al.: there is no channel compensation (their F - N m - N U x
               becomes F - N m: no eigenchannel matrix U, no channel factors x), the speaker offset is the
               relevance-MAP one above (no speaker factors y, no V or D matrices), and the score is divided by the
               test's frame count so that it estimates the frame-averaged LLR. The dropped quadratic term is
               nearly a constant per enrolment model (N_c / T ~ w_c), so it shifts a model's scores as a whole:
               enrolment-side score normalisation (AS-Norm) largely absorbs it.
  fixed-alignment score (`quadratic=True`, what the recipe scores with): the same expansion with its quadratic term
               kept, which is the exact LLR when the frames' alignment to the components is the UBM's:
                 LLR(X | s) ~ e . t - 1/2 sum_c (N_c / T) ||Sigma_c^-1/2 (m_s,c - m_c)||^2
               still one dot product, of vectors extended by C elements each:
                 e+ = [e, q],  q_c = ||Sigma_c^-1/2 (m_s,c - m_c)||^2      t+ = [t, -1/2 N_c / T]
               Measured on the demo's test trials (3,000, half targets): Spearman correlation with the exact LLR
               0.951 for linear scoring and 0.966 with the quadratic term; EER 20.9% (linear), 17.9% (quadratic),
               17.5% (exact): the dropped term, which grows with the enrolment's frames, costs linear scoring 3 points
               there (bench/bench_gmm_ubm.py).

A score is a dot product, so stage 5 can store `e` and `t` per utterance like any embedding and stage 6 can
score trials with `linear_scores`. Cohort models for AS-Norm are MAP-adapted from the pooled statistics of
all of a speaker's utterances (`pool_stats`); cohort scores are dot products with those vectors. Note that
AS-Norm for linear scoring is asymmetric: the enrolment side meets cohort *test* vectors, the test side cohort
*enrolment* vectors, and the scores are raw dot products (not cosines).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from pipeline.errors import PipelineError
from pipeline.features.gmm import DiagGMM
from pipeline.features.lgp import LGPExtractor

__all__ = ["ExactScorer", "GMMUBM", "GMMUBMError", "UBMStats", "linear_scores", "pool_stats"]

DEFAULT_RELEVANCE = 16.0
# Frames per GEMM: the (chunk x C) posterior matrix stays at ~8 MB for C = 512, whatever the utterance length.
DEFAULT_CHUNK_FRAMES = 4096
# Vector elements gathered per block in `linear_scores` (two float64 blocks of 16 MB each).
_SCORE_BLOCK_ELEMENTS = 1 << 21


class GMMUBMError(PipelineError, ValueError):
    """Input the GMM-UBM system cannot use (no frames, wrong feature dimension, bad settings); the message
    says which."""


@dataclass(frozen=True)
class UBMStats:
    """Zeroth- and first-order Baum-Welch statistics of one utterance (or a pool of them) under the UBM.

    `zeroth` (C,) float64 is N_c, `first` (C, d) float64 is F_c (uncentred), `num_frames` is T.
    """

    zeroth: np.ndarray
    first: np.ndarray
    num_frames: int


def pool_stats(stats: Iterable[UBMStats]) -> UBMStats:
    """Statistics of several utterances as if they were one: N, F and T summed (a cohort or multi-session
    speaker model is MAP-adapted from these)."""
    stats = list(stats)
    if not stats:
        raise GMMUBMError("no statistics to pool: a speaker model needs at least one utterance")
    shapes = {s.first.shape for s in stats}
    if len(shapes) != 1:
        raise GMMUBMError(f"cannot pool statistics of different UBMs (first-order shapes {sorted(shapes)})")
    return UBMStats(zeroth=np.sum([s.zeroth for s in stats], axis=0), first=np.sum([s.first for s in stats], axis=0),
                    num_frames=int(sum(s.num_frames for s in stats)))


class GMMUBM:
    """A UBM (stage 2's DiagGMM, optionally restricted to its first `num_ceps` dimensions) with MAP adaptation
    of the means (relevance factor `relevance`) and the enrolment/test vectors of linear scoring.

    `input_dim` is the width every frame matrix must have: the features' dimension (stage 1's 80 MFCC, of which a
    20-dim UBM models the first 20), by default the GMM's; this class is the one place frames are cut to the
    `num_ceps` the UBM models. `ubm` is the model actually used (the marginal over the first `num_ceps` dimensions,
    or the GMM itself).
    """

    def __init__(self, gmm: DiagGMM, *, num_ceps: int | None = None, input_dim: int | None = None,
                 relevance: float = DEFAULT_RELEVANCE, chunk_frames: int = DEFAULT_CHUNK_FRAMES,
                 quadratic: bool = False):
        num_ceps = gmm.dim if num_ceps is None else int(num_ceps)
        if not 1 <= num_ceps <= gmm.dim:
            raise GMMUBMError(f"num_ceps={num_ceps} is outside 1..{gmm.dim}, the GMM's feature dimension")
        input_dim = gmm.dim if input_dim is None else int(input_dim)
        if input_dim < gmm.dim:
            raise GMMUBMError(f"frames of {input_dim} dims cannot feed a GMM of {gmm.dim}")
        if not relevance > 0:
            raise GMMUBMError(f"relevance factor must be > 0 (got {relevance}); 16 is the classical value")
        if chunk_frames < 1:
            raise GMMUBMError(f"chunk_frames must be >= 1 (got {chunk_frames})")
        self.input_dim = input_dim
        self.num_ceps = num_ceps
        self.relevance = float(relevance)
        self.chunk_frames = int(chunk_frames)
        self.quadratic = bool(quadratic)
        self.ubm = DiagGMM(weights=np.asarray(gmm.weights, dtype=np.float64),
                           means=np.asarray(gmm.means[:, :num_ceps], dtype=np.float64),
                           variances=np.asarray(gmm.variances[:, :num_ceps], dtype=np.float64))
        self._lgp = LGPExtractor(self.ubm, normalize=False)
        self._inv_std = 1.0 / np.sqrt(self.ubm.variances)

    @property
    def vector_dim(self) -> int:
        """Length of the enrolment and test vectors: C * num_ceps, and C more with the quadratic term."""
        return self.ubm.num_components * (self.num_ceps + self.quadratic)

    def _frames(self, frames: ArrayLike) -> np.ndarray:
        """The frames this UBM models (first `num_ceps` columns, float32), or GMMUBMError saying what is wrong."""
        frames = np.asarray(frames)
        if frames.ndim != 2 or frames.shape[1] != self.input_dim:
            raise GMMUBMError(f"expected a frames x {self.input_dim} matrix (the features' dimension), "
                              f"got shape {frames.shape}")
        if frames.shape[0] == 0:
            raise GMMUBMError(f"utterance has no frames (0 x {self.input_dim}); statistics, MAP and scores need "
                              "at least one (check the VAD and min_voiced_frames)")
        frames = np.ascontiguousarray(frames[:, :self.num_ceps], dtype=np.float32)
        if not np.isfinite(frames).all():
            raise GMMUBMError("frames contain NaN or infinite values")
        return frames

    def stats(self, frames: ArrayLike) -> UBMStats:
        """N_c and F_c of one utterance's frames (T x input_dim, already through `normalize_frames`)."""
        frames = self._frames(frames)
        zeroth = np.zeros(self.ubm.num_components)
        first = np.zeros((self.ubm.num_components, self.num_ceps))
        for start in range(0, frames.shape[0], self.chunk_frames):
            chunk = frames[start:start + self.chunk_frames]
            loglike = self._lgp(chunk)  # (frames, C) float32: log w_c + log N(x_t; m_c, Sigma_c)
            # Softmax over components; the max shift keeps exp() in range, float32 is exact enough for posteriors.
            loglike -= loglike.max(axis=1, keepdims=True)
            post = np.exp(loglike, out=loglike)
            post /= post.sum(axis=1, keepdims=True)
            # Per-chunk sums in float32 (one GEMM), accumulated across chunks in float64 so that long
            # utterances and pooled speakers do not lose precision.
            zeroth += post.sum(axis=0, dtype=np.float64)
            first += (post.T @ chunk).astype(np.float64)
        return UBMStats(zeroth=zeroth, first=first, num_frames=int(frames.shape[0]))

    def _check_stats(self, stats: UBMStats) -> None:
        if stats.first.shape != self.ubm.means.shape or stats.zeroth.shape != self.ubm.weights.shape:
            raise GMMUBMError(f"statistics of shape N {stats.zeroth.shape}, F {stats.first.shape} do not belong to "
                              f"this UBM (C={self.ubm.num_components}, d={self.num_ceps})")
        if stats.num_frames < 1:
            raise GMMUBMError("statistics of zero frames: nothing to adapt or score")

    def _centred_first(self, stats: UBMStats) -> np.ndarray:
        """F_c - N_c m_c, float64 (C, d)."""
        self._check_stats(stats)
        return stats.first - stats.zeroth[:, None] * self.ubm.means

    def adapt_means(self, stats: UBMStats) -> np.ndarray:
        """MAP-adapted means m_s (C, d) float64: m_c + (F_c - N_c m_c) / (N_c + r); m_c where N_c = 0."""
        return self.ubm.means + self._centred_first(stats) / (stats.zeroth[:, None] + self.relevance)

    def enrollment_vector(self, stats: UBMStats) -> np.ndarray:
        """e = stack_c Sigma_c^-1/2 (m_s,c - m_c), float32 (C * d,), followed with `quadratic` by q_c = ||e_c||^2
        (C,); `stats` may be pooled (`pool_stats`)."""
        offset = self._centred_first(stats) / (stats.zeroth[:, None] + self.relevance) * self._inv_std
        if self.quadratic:
            return np.concatenate([offset.ravel(), (offset ** 2).sum(axis=1)]).astype(np.float32)
        return offset.astype(np.float32).ravel()

    def test_vector(self, stats: UBMStats) -> np.ndarray:
        """t = stack_c Sigma_c^-1/2 (F_c - N_c m_c) / T, float32 (C * d,), followed with `quadratic` by
        -1/2 N_c / T (C,); e . t is the linear (or fixed-alignment) score."""
        centred = self._centred_first(stats) * self._inv_std / stats.num_frames
        if self.quadratic:
            return np.concatenate([centred.ravel(), -0.5 * stats.zeroth / stats.num_frames]).astype(np.float32)
        return centred.astype(np.float32).ravel()

    def exact_llr(self, adapted_means: ArrayLike, frames: ArrayLike) -> float:
        """Frame-averaged log-likelihood ratio of `frames` (T x input_dim) between the GMM with `adapted_means`
        (C, d) and the UBM, each with the full log-sum-exp over components (the reference for `linear_scores`)."""
        return float(ExactScorer(self, [frames]).scores(adapted_means)[0][0])


class ExactScorer:
    """Exact frame-averaged LLRs of a fixed set of test utterances under any number of enrolment models: the UBM's
    log-likelihoods of the test frames are computed once, each enrolment model's in one pass over all the frames.

    `scores(m_s)` returns, per test utterance, the exact LLR (full log-sum-exp under both models) and the LLR with the
    components aligned by the enrolment model's posteriors gamma^s_c(t):
        (1/T) sum_t sum_c gamma^s_c(t) [log N(x_t; m_s,c, Sigma_c) - log N(x_t; m_c, Sigma_c)].
    By Jensen's inequality this bounds the exact LLR from above, as the fixed-alignment score (the UBM's posteriors,
    `quadratic=True`) bounds it from below.
    """

    def __init__(self, ubm: GMMUBM, test_frames: Iterable[ArrayLike]):
        self.ubm = ubm
        frames = [ubm._frames(f) for f in test_frames]
        if not frames:
            raise GMMUBMError("no test utterances to score")
        self.lengths = np.array([len(f) for f in frames])
        self._starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self._frames = np.concatenate(frames)
        self._ubm_loglike = np.concatenate([ubm._lgp(chunk) for chunk in self._chunks(self._frames)])
        self._ubm_total = np.concatenate([_logsumexp_rows(chunk) for chunk in self._chunks(self._ubm_loglike)])

    def _chunks(self, rows: np.ndarray) -> Iterable[np.ndarray]:
        return (rows[start:start + self.ubm.chunk_frames] for start in range(0, len(rows), self.ubm.chunk_frames))

    def scores(self, adapted_means: ArrayLike, *, aligned: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """(exact LLR, enrolment-aligned LLR or None) of every test utterance, float64 (U,), under the enrolment
        model with `adapted_means` (C, d); the aligned one costs another pass and is computed with `aligned`."""
        adapted_means = np.asarray(adapted_means, dtype=np.float64)
        if adapted_means.shape != self.ubm.ubm.means.shape:
            raise GMMUBMError(f"adapted means of shape {adapted_means.shape}, expected {self.ubm.ubm.means.shape}")
        speaker = LGPExtractor(DiagGMM(weights=self.ubm.ubm.weights, means=adapted_means,
                                       variances=self.ubm.ubm.variances), normalize=False)
        exact = np.empty(len(self._frames))
        own = np.empty(len(self._frames)) if aligned else None
        for start in range(0, len(self._frames), self.ubm.chunk_frames):
            rows = slice(start, start + self.ubm.chunk_frames)
            loglike = speaker(self._frames[rows])
            total = _logsumexp_rows(loglike)
            exact[rows] = total - self._ubm_total[rows]
            if aligned:
                posterior = np.exp(loglike - total[:, None].astype(np.float32))
                own[rows] = np.einsum("tc,tc->t", posterior, loglike - self._ubm_loglike[rows], dtype=np.float64)
        return self._utterance_means(exact), None if own is None else self._utterance_means(own)

    def _utterance_means(self, per_frame: np.ndarray) -> np.ndarray:
        return np.add.reduceat(per_frame, self._starts) / self.lengths


def _logsumexp_rows(loglike: np.ndarray) -> np.ndarray:
    """log sum_c exp(loglike[t, c]) per row, float64 (the difference of two of these is small). The shifted exponents
    lie in [-inf, 0], where float32 is as exact as the float32 log-likelihoods themselves."""
    peak = loglike.max(axis=1, keepdims=True)
    return peak[:, 0].astype(np.float64) + np.log(np.exp(loglike - peak).sum(axis=1, dtype=np.float64))


def linear_scores(enroll_vectors: ArrayLike, test_vectors: ArrayLike, enroll_index: ArrayLike,
                  test_index: ArrayLike) -> np.ndarray:
    """Linear-scoring LLRs of trials: out[n] = enroll_vectors[enroll_index[n]] . test_vectors[test_index[n]].

    `enroll_vectors` (U_e x C*d) and `test_vectors` (U_t x C*d) are rows of `GMMUBM.enrollment_vector` and
    `GMMUBM.test_vector`; the indices are integer arrays of one entry per trial. Returns float64 (n_trials,).
    """
    enroll = np.atleast_2d(np.asarray(enroll_vectors))
    test = np.atleast_2d(np.asarray(test_vectors))
    ie = np.asarray(enroll_index, dtype=np.int64).ravel()
    it = np.asarray(test_index, dtype=np.int64).ravel()
    if enroll.shape[1] != test.shape[1]:
        raise GMMUBMError(f"enrolment vectors have {enroll.shape[1]} elements and test vectors {test.shape[1]}: "
                          "they come from different UBMs or num_ceps")
    if ie.size != it.size:
        raise GMMUBMError(f"{ie.size} enrolment indices but {it.size} test indices: need one of each per trial")
    for name, index, rows in (("enroll", ie, enroll.shape[0]), ("test", it, test.shape[0])):
        if index.size and not (0 <= index.min() and index.max() < rows):
            raise GMMUBMError(f"{name}_index out of range 0..{rows - 1}: [{index.min()}, {index.max()}]")
    out = np.empty(ie.size, dtype=np.float64)
    # Gather a block of trial rows at a time, in float64: C*d is ~10k, so the block bounds memory and the sum
    # of ~10k products keeps full precision.
    block = max(1, _SCORE_BLOCK_ELEMENTS // enroll.shape[1])
    for start in range(0, ie.size, block):
        stop = start + block
        out[start:stop] = np.einsum("ij,ij->i", enroll[ie[start:stop]].astype(np.float64),
                                    test[it[start:stop]].astype(np.float64))
    return out
