"""dGMM-ResNext: two GMM-ResNext paths, on the male GMM's and the female GMM's LGP maps, fused into one embedding.

Training has two steps, as in the paper: step 1 trains each path with its own classification head; step 2
freezes the paths and trains only the fusion layer (with a new head) on their concatenated embeddings.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn

from pipeline.models.resnext import GMMResNext


class DGMMResNext(nn.Module):
    """(x_male, x_female), each (B, N, T) -> fused (B, emb_dim).

    Constructor kwargs (YAML, besides `arch: dgmm_resnext`): every GMMResNext kwarg except `gmm_layer` (shared by
    both paths: in_channels, channels, depths, se_ratio, emb_dim, mfa, pool_bottleneck, pool_bn), plus
    `male_gmm_layer` and `female_gmm_layer` ({"num_components": N, "feat_dim": D, "trainable": bool} or None), the
    GMM layer of each path.
    The fusion is Linear(2 * emb_dim -> emb_dim) with no normalisation, as in the authors' code.

    `paths["male"]`, `paths["female"]` are ordinary GMMResNext modules. When both have GMM layers, forward
    also accepts one MFCC tensor (B, D, T), which each path turns into its own LGP map.
    """

    def __init__(self, male_gmm_layer: dict[str, Any] | None = None, female_gmm_layer: dict[str, Any] | None = None,
                 **path_kwargs: Any):
        super().__init__()
        if "gmm_layer" in path_kwargs:
            raise ValueError("dgmm_resnext takes male_gmm_layer and female_gmm_layer, not gmm_layer")
        self.paths = nn.ModuleDict({
            "male": GMMResNext(gmm_layer=male_gmm_layer, **path_kwargs),
            "female": GMMResNext(gmm_layer=female_gmm_layer, **path_kwargs),
        })
        self.emb_dim = self.paths["male"].emb_dim
        self.input_dim = self.paths["male"].input_dim
        self.fusion = nn.Linear(2 * self.emb_dim, self.emb_dim)
        self.paths_frozen = False

    def path_embeddings(self, x_pair: Sequence[torch.Tensor] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings (B, emb_dim) of the male and the female path."""
        if isinstance(x_pair, torch.Tensor):
            x_pair = (x_pair, x_pair)
        if len(x_pair) != 2:
            raise ValueError(f"dgmm_resnext expects (x_male, x_female), got {len(x_pair)} inputs")
        x_male, x_female = x_pair
        return self.paths["male"](x_male), self.paths["female"](x_female)

    def fuse(self, e_male: torch.Tensor, e_female: torch.Tensor) -> torch.Tensor:
        """The fused embedding from the two path embeddings (cached ones in training step 2)."""
        return self.fusion(torch.cat((e_male, e_female), dim=1))

    def forward(self, x_pair: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        return self.fuse(*self.path_embeddings(x_pair))

    def freeze_paths(self) -> None:
        """Step 2: stop training both paths, and keep their BatchNorm statistics fixed even under .train()."""
        for parameter in self.paths.parameters():
            parameter.requires_grad_(False)
        self.paths_frozen = True
        self.paths.eval()

    def train(self, mode: bool = True) -> "DGMMResNext":
        super().train(mode)
        if self.paths_frozen:
            self.paths.eval()
        return self
