"""What training optimises: a network part (`embedder`, the part kept after training) and its classification heads,
as modules whose forward gives the loss and the correct count of a batch."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset


def head_loss(head: nn.Module, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of the margin logits, and the correct top-1 count of the margin-free logits (what the
    embedding alone separates). In float32 even under mixed precision: cos(theta + m) at scale 30 needs it."""
    with torch.autocast(embeddings.device.type, enabled=False):
        embeddings = embeddings.float()
        loss = F.cross_entropy(head(embeddings, labels), labels)
        with torch.no_grad():
            correct = (head(embeddings).argmax(dim=1) == labels).sum()
    return loss, correct


class EmbeddingClassifier(nn.Module):
    """One network, one AAM head: loss and correct count of a batch. Also dGMM step 2, where the network is the
    fusion layer and its single input the cached (male, female) path embeddings."""

    def __init__(self, model: nn.Module, head: nn.Module):
        super().__init__()
        self.embedder = model
        self.heads = nn.ModuleDict({"main": head})

    def forward(self, inputs: list[torch.Tensor], labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return head_loss(self.heads["main"], self.embedder(inputs[0] if len(inputs) == 1 else inputs), labels)


class TwoPathClassifier(nn.Module):
    """dGMM step 1: the male and the female path, each with its own head; the loss is their sum and the
    accuracy their mean."""

    def __init__(self, paths: nn.ModuleDict, heads: nn.ModuleDict):
        super().__init__()
        self.embedder = paths
        self.heads = heads

    def forward(self, inputs: list[torch.Tensor], labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_male, x_female = inputs if len(inputs) == 2 else (inputs[0], inputs[0])
        loss, correct = torch.zeros((), device=labels.device), torch.zeros((), device=labels.device)
        for name, x in (("male", x_male), ("female", x_female)):
            path_loss, path_correct = head_loss(self.heads[name], self.embedder[name](x), labels)
            loss, correct = loss + path_loss, correct + path_correct
        return loss, correct / 2


class CachedEmbeddingDataset(Dataset):
    """Sample keys (epoch, position, index) -> ([embedding], label), from tensors in memory."""

    def __init__(self, embeddings: torch.Tensor, labels: torch.Tensor):
        self.embeddings = embeddings
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: tuple[int, int, int]) -> tuple[list[torch.Tensor], int]:
        index = key[2]
        return [self.embeddings[index]], int(self.labels[index])

