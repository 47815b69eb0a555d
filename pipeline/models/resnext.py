"""GMM-ResNext (Yan et al. 2024): a 1-D ResNeXt over time whose input channels are the N Gaussian components of a
GMM's normalised log Gaussian probability (LGP) map."""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn

from pipeline.models.gmm_layer import TrainableGMMLayer
from pipeline.models.pooling import AttentiveStatsPooling


class SqueezeExcitation1d(nn.Module):
    """Rescale channels by a gate computed from their time average (Hu et al. 2018)."""

    def __init__(self, channels: int, bottleneck: int):
        super().__init__()
        self.reduce = nn.Conv1d(channels, bottleneck, kernel_size=1)
        self.expand = nn.Conv1d(bottleneck, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.expand(torch.relu(self.reduce(x.mean(dim=-1, keepdim=True))))
        return x * torch.sigmoid(gate)


class ResNextBlock1d(nn.Module):
    """1x1 conv -> BN -> ReLU -> depthwise k=3 conv -> BN -> ReLU -> 1x1 conv -> BN -> SE, + identity, ReLU.

    Width and length are preserved (no striding), so the identity shortcut needs no projection.
    """

    def __init__(self, channels: int, se_ratio: int = 4):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(channels, channels, kernel_size=1, bias=False),
            nn.BatchNorm1d(channels),
            nn.ReLU(inplace=True),
            nn.Conv1d(channels, channels, kernel_size=3, padding=1, groups=channels, bias=False),
            nn.BatchNorm1d(channels),
            nn.ReLU(inplace=True),
            nn.Conv1d(channels, channels, kernel_size=1, bias=False),
            nn.BatchNorm1d(channels),
            SqueezeExcitation1d(channels, channels // se_ratio),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + x)


class GMMResNext(nn.Module):
    """Speaker embedding network on LGP maps: (B, N, T) -> (B, emb_dim), any T >= 1.

    Constructor kwargs (the YAML `model:` section, besides `arch: gmm_resnext`):
      in_channels     N, input channels: GMM components (512 in the paper) or MFCC dims for the plain-MFCC
                      ablation. Taken from the GMM layer when `gmm_layer` is given. Default 512.
      channels        C, width of every stage (512).
      depths          blocks per stage ([3, 3, 9, 3]).
      se_ratio        squeeze-excitation reduction, C -> C/se_ratio -> C (4).
      emb_dim         embedding size (256).
      mfa             true: pool the concatenation of all stage outputs (4C x T); false: the last stage only.
      pool_bottleneck attention bottleneck of the pooling (128).
      pool_bn         BatchNorm on the pooled statistics before the embedding layer, as ECAPA-TDNN has; the
                      authors' GMM-ResNext has none (false).
      gmm_layer       optional {"num_components": N, "feat_dim": D, "trainable": bool}: a TrainableGMMLayer in
                      front of the stem; the input is then MFCC (B, D, T). Whoever builds the model fills the
                      layer with a fitted GMM (`model.gmm_layer.set_gmm`) or a checkpoint.
    `input_dim` tells which feature size the model reads (N, or D with a GMM layer).
    """

    def __init__(self, in_channels: int | None = None, channels: int = 512, depths: Sequence[int] = (3, 3, 9, 3),
                 se_ratio: int = 4, emb_dim: int = 256, mfa: bool = True, pool_bottleneck: int = 128,
                 pool_bn: bool = False, gmm_layer: dict[str, Any] | None = None):
        super().__init__()
        self.gmm_layer = self._make_gmm_layer(gmm_layer)
        if self.gmm_layer is not None:
            if in_channels is not None and in_channels != self.gmm_layer.num_components:
                raise ValueError(f"in_channels={in_channels} but the GMM layer has "
                                 f"{self.gmm_layer.num_components} components")
            in_channels = self.gmm_layer.num_components
            self.input_dim = self.gmm_layer.feat_dim
        else:
            in_channels = 512 if in_channels is None else in_channels
            self.input_dim = in_channels
        self.emb_dim = emb_dim
        self.mfa = mfa

        # The authors' stem order is conv -> ReLU -> BN.
        self.stem = nn.Sequential(nn.Conv1d(in_channels, channels, kernel_size=3, padding=1),
                                  nn.ReLU(inplace=True), nn.BatchNorm1d(channels))
        self.stages = nn.ModuleList(
            nn.Sequential(*(ResNextBlock1d(channels, se_ratio) for _ in range(depth))) for depth in depths)
        pooled_channels = channels * len(depths) if mfa else channels
        self.frame_norm = nn.BatchNorm1d(pooled_channels)
        self.pooling = AttentiveStatsPooling(pooled_channels, bottleneck=pool_bottleneck, global_context=True)
        self.pooled_norm = nn.BatchNorm1d(self.pooling.out_dim) if pool_bn else nn.Identity()
        self.embedding = nn.Linear(self.pooling.out_dim, emb_dim)

    @staticmethod
    def _make_gmm_layer(spec: dict[str, Any] | None) -> TrainableGMMLayer | None:
        if spec is None:
            return None
        if not isinstance(spec, dict) or {"num_components", "feat_dim"} - set(spec) or \
                set(spec) - {"num_components", "feat_dim", "trainable"}:
            raise ValueError(f"gmm_layer must be {{'num_components': N, 'feat_dim': D, 'trainable': bool}}, "
                             f"got {spec}")
        return TrainableGMMLayer(int(spec["num_components"]), int(spec["feat_dim"]),
                                 trainable=bool(spec.get("trainable", True)))

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """Frame-level features fed to the pooling: (B, 4C, T) with MFA, (B, C, T) without."""
        if self.gmm_layer is not None:
            x = self.gmm_layer(x)
        x = self.stem(x)
        stage_outputs = []
        for stage in self.stages:
            x = stage(x)
            stage_outputs.append(x)
        frames = torch.cat(stage_outputs, dim=1) if self.mfa else stage_outputs[-1]
        return self.frame_norm(frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pooled_norm(self.pooling(self.frame_features(x)))
        return self.embedding(pooled)
