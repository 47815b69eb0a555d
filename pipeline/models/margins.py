"""Classification heads for training speaker embeddings, and the margin warm-up schedule.

A head maps embeddings (B, E) and labels (B,) to logits (B, num_classes); the loss is
`torch.nn.functional.cross_entropy(logits, labels)`. Heads are dropped after training: the embedding is the model's
output.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class AAMSoftmax(nn.Module):
    """Additive angular margin (ArcFace) logits: s * cos(theta_y + m) for the target class y, s * cos(theta_j)
    for the others, with theta the angle between the embedding and the class weight.

    Past theta + m > pi, cos(theta + m) would stop decreasing with theta; there the target logit becomes
    s * (cos(theta) - m sin(m)) (the authors' and voxceleb_trainer's choice), or, with `easy_margin`, the margin is
    applied only where cos(theta) > 0. Without labels (evaluation) the logits carry no margin.
    """

    def __init__(self, emb_dim: int, num_classes: int, margin: float = 0.2, scale: float = 30.0,
                 easy_margin: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, emb_dim))
        nn.init.xavier_uniform_(self.weight)
        self.scale = scale
        self.easy_margin = easy_margin
        self.set_margin(margin)

    def set_margin(self, margin: float) -> None:
        self.margin = float(margin)
        self._cos_m = math.cos(margin)
        self._sin_m = math.sin(margin)
        self._threshold = math.cos(math.pi - margin)  # cos(theta) above it <=> theta + m < pi
        self._linear_penalty = math.sin(math.pi - margin) * margin

    def cosine(self, emb: torch.Tensor) -> torch.Tensor:
        """cos(theta) between each embedding and each class weight, (B, num_classes)."""
        return F.linear(F.normalize(emb), F.normalize(self.weight))

    def forward(self, emb: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        cosine = self.cosine(emb)
        if labels is None or self.margin == 0.0:
            return self.scale * cosine
        # The floor keeps the gradient of sqrt finite when cos(theta) reaches +-1.
        sine = (1.0 - cosine.pow(2)).clamp(min=1e-12).sqrt()
        with_margin = cosine * self._cos_m - sine * self._sin_m  # cos(theta + m)
        if self.easy_margin:
            with_margin = torch.where(cosine > 0, with_margin, cosine)
        else:
            with_margin = torch.where(cosine > self._threshold, with_margin, cosine - self._linear_penalty)
        is_target = F.one_hot(labels.long(), num_classes=cosine.shape[1]).bool()
        return self.scale * torch.where(is_target, with_margin, cosine)

    def extra_repr(self) -> str:
        classes, emb_dim = self.weight.shape
        return (f"emb_dim={emb_dim}, num_classes={classes}, margin={self.margin}, scale={self.scale}, "
                f"easy_margin={self.easy_margin}")


class Softmax(nn.Module):
    """Plain linear softmax head (no margin), for comparison; `labels` is accepted and ignored."""

    def __init__(self, emb_dim: int, num_classes: int):
        super().__init__()
        self.linear = nn.Linear(emb_dim, num_classes)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(emb)


class MarginScheduler:
    """Linear warm-up of an AAM margin, as WeSpeaker does: `initial_margin` until `increase_start_epoch`, rising
    linearly to `final_margin` at `fix_start_epoch`, then constant. Call `step(epoch)` with a fractional epoch
    (epoch + batch / batches_per_epoch) for a per-iteration ramp, or once per epoch.
    """

    def __init__(self, head: AAMSoftmax, final_margin: float, increase_start_epoch: float,
                 fix_start_epoch: float, initial_margin: float = 0.0):
        if fix_start_epoch < increase_start_epoch:
            raise ValueError(f"fix_start_epoch={fix_start_epoch} is before increase_start_epoch="
                             f"{increase_start_epoch}")
        self.head = head
        self.initial_margin = initial_margin
        self.final_margin = final_margin
        self.increase_start_epoch = increase_start_epoch
        self.fix_start_epoch = fix_start_epoch

    def margin_at(self, epoch: float) -> float:
        if epoch >= self.fix_start_epoch:
            return self.final_margin
        if epoch <= self.increase_start_epoch:
            return self.initial_margin
        progress = (epoch - self.increase_start_epoch) / (self.fix_start_epoch - self.increase_start_epoch)
        return self.initial_margin + progress * (self.final_margin - self.initial_margin)

    def step(self, epoch: float) -> float:
        """Set the head's margin for `epoch` and return it."""
        margin = self.margin_at(epoch)
        self.head.set_margin(margin)
        return margin
