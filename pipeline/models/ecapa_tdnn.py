"""ECAPA-TDNN baseline (Desplanques et al. 2020): SE-Res2Net TDNN blocks, multi-layer aggregation, attentive
statistics pooling with global context."""
from __future__ import annotations

import torch
import torch.nn as nn

from pipeline.models.pooling import AttentiveStatsPooling
from pipeline.models.resnext import SqueezeExcitation1d


class ConvReluBN1d(nn.Sequential):
    """Conv1d -> ReLU -> BN, ECAPA's ordering."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1):
        super().__init__(
            nn.Conv1d(in_channels, out_channels, kernel_size, padding=dilation * (kernel_size // 2),
                      dilation=dilation),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(out_channels),
        )


class Res2Conv1d(nn.Module):
    """Res2Net dilated conv: channels split into `scale` groups; group i (i >= 1) is convolved after adding the
    previous group's output, widening the receptive field inside one layer; the last group passes through."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, scale: int = 8):
        super().__init__()
        if channels % scale:
            raise ValueError(f"channels={channels} must be divisible by the Res2Net scale {scale}")
        self.width = channels // scale
        self.convs = nn.ModuleList(ConvReluBN1d(self.width, self.width, kernel_size, dilation)
                                   for _ in range(scale - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = torch.split(x, self.width, dim=1)
        outputs = []
        carried = None
        for group, conv in zip(groups, self.convs):
            carried = conv(group if carried is None else group + carried)
            outputs.append(carried)
        outputs.append(groups[-1])
        return torch.cat(outputs, dim=1)


class SERes2Block(nn.Module):
    """1x1 ConvReluBN -> dilated Res2 conv -> 1x1 ConvReluBN -> SE (bottleneck 128), + identity."""

    def __init__(self, channels: int, dilation: int, scale: int = 8, se_bottleneck: int = 128):
        super().__init__()
        self.body = nn.Sequential(
            ConvReluBN1d(channels, channels),
            Res2Conv1d(channels, kernel_size=3, dilation=dilation, scale=scale),
            ConvReluBN1d(channels, channels),
            SqueezeExcitation1d(channels, se_bottleneck),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ECAPATDNN(nn.Module):
    """(B, feat_dim, T) features -> (B, emb_dim), any T >= 1.

    Constructor kwargs (YAML, besides `arch: ecapa_tdnn`):
      feat_dim      input feature dimension (80).
      channels      C, width of the TDNN blocks: 512 or 1024 in the ECAPA paper (512).
      emb_dim       embedding size (192 in the ECAPA paper; set 256 to match GMM-ResNext).
      mfa_channels  output of the 1x1 conv over the concatenated block outputs (1536 in the paper for both C).
      pool_bottleneck attention bottleneck of the pooling (128).
    """

    def __init__(self, feat_dim: int = 80, channels: int = 512, emb_dim: int = 192, mfa_channels: int = 1536,
                 pool_bottleneck: int = 128):
        super().__init__()
        self.input_dim = feat_dim
        self.emb_dim = emb_dim
        self.stem = ConvReluBN1d(feat_dim, channels, kernel_size=5)
        self.blocks = nn.ModuleList(SERes2Block(channels, dilation) for dilation in (2, 3, 4))
        self.aggregate = nn.Sequential(nn.Conv1d(3 * channels, mfa_channels, kernel_size=1), nn.ReLU(inplace=True))
        self.pooling = AttentiveStatsPooling(mfa_channels, bottleneck=pool_bottleneck, global_context=True)
        self.pooled_norm = nn.BatchNorm1d(self.pooling.out_dim)
        self.embedding = nn.Linear(self.pooling.out_dim, emb_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        block_outputs = []
        for block in self.blocks:
            x = block(x)
            block_outputs.append(x)
        frames = self.aggregate(torch.cat(block_outputs, dim=1))
        return self.embedding(self.pooled_norm(self.pooling(frames)))
