"""Log Gaussian probability (LGP) features: one value per GMM component per frame.

y_i(t) = log w_i + log N(x_t; mu_i, diag(var_i))
       = gconst_i + x_t . (mu_i / var_i) - 0.5 x_t^2 . (1 / var_i)

so the whole map is one matrix product of [x, x^2] (frames x 2D) with a fixed (2D x N) matrix, in float32.
The network's input is y normalised per component with the mean and std of y over training frames.
"""
from __future__ import annotations

import numpy as np

from pipeline.features.gmm import DiagGMM


class LGPExtractor:
    """Precomputed float32 projection of one GMM; `__call__` maps frames (T x D) to normalised LGP (T x N)."""

    def __init__(self, gmm: DiagGMM, *, normalize: bool = True):
        inv_vars = 1.0 / gmm.variances
        # Stacked so that [x, x^2] @ projection gives both linear and quadratic terms in one GEMM.
        self.projection = np.ascontiguousarray(
            np.concatenate([(gmm.means * inv_vars).T, -0.5 * inv_vars.T], axis=0), dtype=np.float32)
        offset = gmm.gconsts()
        scale = np.ones(gmm.num_components)
        if normalize:
            if gmm.lgp_mean is None or gmm.lgp_std is None:
                raise ValueError("this GMM has no LGP normalisation statistics (rerun stage 2)")
            offset = offset - gmm.lgp_mean
            scale = 1.0 / gmm.lgp_std
        # Fold the normalisation into the projection: ((z @ P) + g - m) / s = z @ (P/s) + (g - m)/s.
        self.projection *= scale.astype(np.float32)
        self.offset = (offset * scale).astype(np.float32)
        self.dim = gmm.dim

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim != 2 or frames.shape[1] != self.dim:
            raise ValueError(f"expected frames x {self.dim} features, got shape {frames.shape}")
        stacked = np.concatenate([frames, frames * frames], axis=1)
        out = stacked @ self.projection
        out += self.offset
        return out

    def batch(self, utterances: list[np.ndarray]) -> list[np.ndarray]:
        """LGP of several utterances through one GEMM (better BLAS efficiency than one call each)."""
        if not utterances:
            return []
        lengths = np.cumsum([len(u) for u in utterances])[:-1]
        return np.split(self(np.concatenate(utterances, axis=0)), lengths)


def lgp_statistics(gmm: DiagGMM, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-component mean and std of raw LGP over `frames` (the normalisation stored with the GMM)."""
    raw = LGPExtractor(gmm, normalize=False)
    total = np.zeros(gmm.num_components)
    total_sq = np.zeros(gmm.num_components)
    chunk = 20000
    for start in range(0, len(frames), chunk):  # chunks bound memory: frames x N can be large
        y = raw(frames[start:start + chunk]).astype(np.float64)
        total += y.sum(0)
        total_sq += (y * y).sum(0)
    mean = total / len(frames)
    std = np.sqrt(np.maximum(total_sq / len(frames) - mean ** 2, 1e-10))
    return mean, std
