"""ResNet34 baseline in WeSpeaker's form: a 2-D ResNet over the (feature x time) image, statistics pooling."""
from __future__ import annotations

import torch
import torch.nn as nn

from pipeline.models.pooling import StatsPooling

RESNET34_LAYERS = (3, 4, 6, 3)


class BasicBlock2d(nn.Module):
    """Two 3x3 convs with BN; a strided 1x1 projection on the shortcut when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def _strided_size(size: int, num_halvings: int) -> int:
    """Size after `num_halvings` stride-2, kernel-3, padding-1 convolutions."""
    for _ in range(num_halvings):
        size = (size + 1) // 2
    return size


class ResNet34(nn.Module):
    """(B, feat_dim, T) features (MFCC or fbank) -> (B, emb_dim), any T >= 1.

    Constructor kwargs (YAML, besides `arch: resnet34`):
      feat_dim       input feature dimension (80).
      base_channels  width of the first stage; stages are 1, 2, 4, 8 times it (32, WeSpeaker's ResNet34).
      emb_dim        embedding size (256).
    Stages of [3, 4, 6, 3] BasicBlocks, the last three halving frequency and time; the (channel x frequency) map
    is pooled by mean and std over time and projected by one Linear layer (WeSpeaker, two_emb_layer=False).
    """

    def __init__(self, feat_dim: int = 80, base_channels: int = 32, emb_dim: int = 256):
        super().__init__()
        self.input_dim = feat_dim
        self.emb_dim = emb_dim
        self.stem = nn.Sequential(nn.Conv2d(1, base_channels, kernel_size=3, padding=1, bias=False),
                                  nn.BatchNorm2d(base_channels), nn.ReLU(inplace=True))
        stages = []
        in_channels = base_channels
        for index, depth in enumerate(RESNET34_LAYERS):
            out_channels = base_channels * 2 ** index
            strides = [1 if index == 0 else 2] + [1] * (depth - 1)
            stages.append(nn.Sequential(*(BasicBlock2d(in_channels if i == 0 else out_channels, out_channels, s)
                                          for i, s in enumerate(strides))))
            in_channels = out_channels
        self.stages = nn.Sequential(*stages)
        pooled_freq = _strided_size(feat_dim, len(RESNET34_LAYERS) - 1)
        self.pooling = StatsPooling(in_channels * pooled_freq)
        self.embedding = nn.Linear(self.pooling.out_dim, emb_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = self.stages(self.stem(x.unsqueeze(1)))  # (B, 8*base, F/8, T/8)
        return self.embedding(self.pooling(frames))
