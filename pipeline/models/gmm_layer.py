"""The GMM as the first, optionally trainable, layer of the network: MFCC (B, D, T) -> normalised LGP map (B, N, T).

Computing the log Gaussian probabilities inside the model lets training read 80-float MFCC frames instead of
N-float LGP archives, and lets the GMM be fine-tuned with the network (as the paper's authors do).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn


class TrainableGMMLayer(nn.Module):
    """Per-frame, per-component weighted log-likelihood under a diagonal GMM, normalised per component.

    For frame x_t (D,) and component i:
        y_i(t) = log w_i - 0.5 * (D log 2pi + sum_d log var_id + sum_d mu_id^2 / var_id)
                 + x_t . (mu_i / var_i) - 0.5 * (x_t * x_t) . (1 / var_i)
        out_i(t) = (y_i(t) - lgp_mean_i) / lgp_std_i
    which is sklearn's `GaussianMixture._estimate_weighted_log_prob`, computed as two matmuls.

    Parameters (trained when `trainable`): `log_inv_var` (N, D) (log keeps 1/var positive), `mean_inv_var` (N, D)
    (mu/var), `log_weights` (N,). The normalisation `lgp_mean`, `lgp_std` (N,) are fixed buffers. The constant
    term is recomputed from the parameters, so the layer stays a proper Gaussian mixture while it trains.
    """

    def __init__(self, num_components: int, feat_dim: int, trainable: bool = True):
        super().__init__()
        self.num_components = num_components
        self.feat_dim = feat_dim
        self.trainable = trainable
        # Standard-normal components with equal weights until `set_gmm` or a checkpoint fills them in.
        self.log_inv_var = nn.Parameter(torch.zeros(num_components, feat_dim), requires_grad=trainable)
        self.mean_inv_var = nn.Parameter(torch.zeros(num_components, feat_dim), requires_grad=trainable)
        self.log_weights = nn.Parameter(torch.full((num_components,), -math.log(num_components)),
                                        requires_grad=trainable)
        self.register_buffer("lgp_mean", torch.zeros(num_components))
        self.register_buffer("lgp_std", torch.ones(num_components))

    @classmethod
    def from_params(cls, weights: np.ndarray, means: np.ndarray, variances: np.ndarray, lgp_mean: np.ndarray,
                    lgp_std: np.ndarray, trainable: bool = True) -> "TrainableGMMLayer":
        """A layer of the GMM's size holding its parameters (see `set_gmm`)."""
        layer = cls(*np.shape(means), trainable=trainable)
        layer.set_gmm(weights, means, variances, lgp_mean, lgp_std)
        return layer

    def set_gmm(self, weights: np.ndarray, means: np.ndarray, variances: np.ndarray, lgp_mean: np.ndarray,
                lgp_std: np.ndarray) -> None:
        """Load a fitted diagonal GMM of this layer's size: weights (N,), means and variances (N, D), and the
        per-component mean and std (N,) of its LGPs over the training frames."""
        weights, means, variances, lgp_mean, lgp_std = (
            np.asarray(a, dtype=np.float64) for a in (weights, means, variances, lgp_mean, lgp_std))
        if means.ndim != 2 or variances.shape != means.shape:
            raise ValueError(f"GMM means {means.shape} and variances {variances.shape} must both be (N, D)")
        num_components, feat_dim = means.shape
        if (num_components, feat_dim) != (self.num_components, self.feat_dim):
            raise ValueError(f"a GMM of {num_components} components x {feat_dim} dims does not fit a layer of "
                             f"{self.num_components} x {self.feat_dim}")
        for name, vector in (("weights", weights), ("lgp_mean", lgp_mean), ("lgp_std", lgp_std)):
            if vector.shape != (num_components,):
                raise ValueError(f"GMM {name} has shape {vector.shape}, expected ({num_components},)")
        for name, array in (("weights", weights), ("variances", variances), ("lgp_std", lgp_std)):
            if not np.all(array > 0):
                raise ValueError(f"GMM {name} must be strictly positive (is the variance floor set?)")

        inv_var = 1.0 / variances
        with torch.no_grad():
            self.log_inv_var.copy_(torch.from_numpy(np.log(inv_var)))
            self.mean_inv_var.copy_(torch.from_numpy(means * inv_var))
            self.log_weights.copy_(torch.from_numpy(np.log(weights)))
            self.lgp_mean.copy_(torch.from_numpy(lgp_mean))
            self.lgp_std.copy_(torch.from_numpy(lgp_std))

    def log_constant(self) -> torch.Tensor:
        """log w_i - 0.5 (D log 2pi + sum_d log var_id + sum_d mu_id^2 / var_id), shape (N,)."""
        inv_var = self.log_inv_var.exp()
        mahalanobis_of_zero = (self.mean_inv_var.pow(2) / inv_var).sum(dim=1)  # sum_d mu^2 / var
        log_det = -self.log_inv_var.sum(dim=1)  # sum_d log var
        return self.log_weights - 0.5 * (self.feat_dim * math.log(2 * math.pi) + log_det + mahalanobis_of_zero)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, D, T) MFCC -> (B, N, T) normalised LGP."""
        if x.shape[-2] != self.feat_dim:
            raise ValueError(f"GMM layer expects {self.feat_dim}-dim features on axis -2, got shape {tuple(x.shape)}")
        inv_var = self.log_inv_var.exp()
        lgp = (torch.matmul(self.mean_inv_var, x) - 0.5 * torch.matmul(inv_var, x * x)
               + self.log_constant().unsqueeze(-1))
        return (lgp - self.lgp_mean.unsqueeze(-1)) / self.lgp_std.unsqueeze(-1)

    def extra_repr(self) -> str:
        return f"components={self.num_components}, feat_dim={self.feat_dim}, trainable={self.trainable}"
