"""Pooling of frame-level features (B, C, T) into one utterance-level vector (B, 2C).

Every segment of a batch has the same length T (random training crops, or one utterance at a time at extraction),
so no padding mask is needed; any T >= 1 works because variances are floored before the square root.
"""
from __future__ import annotations

import torch
import torch.nn as nn

# Floor on variances before sqrt: keeps the std of silent (all-zero after ReLU) channels and of T=1 inputs
# differentiable. Same value as the authors' and ECAPA's reference code.
VARIANCE_FLOOR = 1e-4


def weighted_mean_std(x: torch.Tensor, weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation over the last axis of `x` (B, C, T).

    `weights` (B, C, T) or (B, 1, T) sum to one over T; None means uniform. The variance is taken about the mean
    (not E[x^2] - mean^2) to avoid cancellation in float32.
    """
    if weights is None:
        mean = x.mean(dim=-1)
        var = (x - mean.unsqueeze(-1)).pow(2).mean(dim=-1)
    else:
        mean = (weights * x).sum(dim=-1)
        var = (weights * (x - mean.unsqueeze(-1)).pow(2)).sum(dim=-1)
    return mean, var.clamp(min=VARIANCE_FLOOR).sqrt()


class StatsPooling(nn.Module):
    """Mean and std over time. Accepts (B, C, T) or a 2-D map (B, C, F, T), flattened to (B, C*F, T)."""

    def __init__(self, in_dim: int):
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = 2 * in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(start_dim=1, end_dim=-2)
        mean, std = weighted_mean_std(x)
        return torch.cat((mean, std), dim=1)


class AttentiveStatsPooling(nn.Module):
    """Channel- and context-dependent attentive statistics pooling (ECAPA-TDNN, Desplanques et al. 2020).

    The attention of each channel over frames is computed from [h_t, mean(h), std(h)] when `global_context` is
    true (from h_t alone otherwise), through a `bottleneck`-wide 1x1 conv -> ReLU -> BN -> tanh -> 1x1 conv,
    as in the GMM-ResNext authors' code. Returns the attention-weighted mean and std, (B, 2C).
    """

    def __init__(self, in_dim: int, bottleneck: int = 128, global_context: bool = True):
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = 2 * in_dim
        self.global_context = global_context
        context_dim = 3 * in_dim if global_context else in_dim
        self.attention = nn.Sequential(
            nn.Conv1d(context_dim, bottleneck, kernel_size=1),
            nn.ReLU(),
            nn.BatchNorm1d(bottleneck),
            nn.Tanh(),
            nn.Conv1d(bottleneck, in_dim, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = x
        if self.global_context:
            mean, std = weighted_mean_std(x)
            num_frames = x.shape[-1]
            context = torch.cat((x, mean.unsqueeze(-1).expand(-1, -1, num_frames),
                                 std.unsqueeze(-1).expand(-1, -1, num_frames)), dim=1)
        weights = torch.softmax(self.attention(context), dim=-1)
        mean, std = weighted_mean_std(x, weights)
        return torch.cat((mean, std), dim=1)
