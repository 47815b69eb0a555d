"""A trained model as an embedding extractor: what stage 5 and `verify` share (what stage 5 writes is read back by
`pipeline.embedding_files`, without torch).

`load_embedder(exp_dir)` rebuilds the network from `models/final.pt` alone (its frozen config and weights, hash
checked), so neither stage-2 GMM files nor `config.yaml` are needed to extract.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from pipeline.dataset.crops import evenly_spaced_crops
from pipeline.utils.set_names import lgp_gmm_names
from pipeline.experiment import build_network, voiced_only
from pipeline.features.gmm import DiagGMM
from pipeline.features.mfcc import MfccOptions
from pipeline.models.gmm_ubm import GMMUBM
from pipeline.recipe_layout import FINAL_MODEL
from pipeline.systems import system_of
from pipeline.utils.checkpoint import load_checkpoint
from pipeline.utils.config import ConfigError
from pipeline.utils.stage import StageError



class Embedder:
    """A trained model in evaluation mode: one utterance's inputs -> (full-utterance vector, crop matrix).

    Inputs are what `FeatureSource.read` (or `inputs_from_mfcc`) returns: one frames x dim array per input name
    (`input_names`). Vectors are float32, `emb_dim` long; the crop matrix is num_crops x emb_dim.
    """

    def __init__(self, model: nn.Module, input_names: list[str], *, crop_frames: int, num_crops: int,
                 batch_size: int = 32, device: torch.device | str = "cpu", voiced_only: bool = True):
        if crop_frames < 1 or num_crops < 1:
            raise ConfigError(f"extract.crop_frames ({crop_frames}) and extract.num_crops ({num_crops}) must be >= 1")
        self.model = model.to(device).eval()
        self.input_names = list(input_names)
        self.crop_frames = crop_frames
        self.num_crops = num_crops
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.voiced_only = voiced_only
        self.emb_dim = int(model.emb_dim)

    def _forward(self, inputs: list[np.ndarray]) -> np.ndarray:
        """Embeddings of a batch: each input is (B, frames, dim), all with the same frames."""
        tensors = [torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1))).to(self.device) for x in inputs]
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            out = self.model(tensors[0] if len(tensors) == 1 else tensors)
        return out.float().cpu().numpy()

    def embed_full(self, inputs: list[np.ndarray]) -> np.ndarray:
        """The embedding of the whole utterance (one forward: pooling needs no padding mask then)."""
        return self._forward([x[None] for x in inputs])[0]

    def embed_crops(self, utterances: list[list[np.ndarray]]) -> list[np.ndarray]:
        """Crop matrices of several utterances; all crops have one length, so they are batched across them."""
        crops = [[evenly_spaced_crops(x, self.crop_frames, self.num_crops) for x in inputs] for inputs in utterances]
        stacked = [np.concatenate([c[j] for c in crops]) for j in range(len(self.input_names))]
        rows = np.concatenate([self._forward([x[i:i + self.batch_size] for x in stacked])
                               for i in range(0, len(stacked[0]), self.batch_size)])
        return list(rows.reshape(len(utterances), self.num_crops, self.emb_dim))

    def __call__(self, inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        if len(inputs) != len(self.input_names):
            raise ValueError(f"model reads {self.input_names}, got {len(inputs)} input arrays")
        return self.embed_full(inputs), self.embed_crops([inputs])[0]

    @property
    def group(self) -> int:
        """Utterances embedded together: enough for their crops to fill a batch."""
        return max(1, self.batch_size // self.num_crops)

    def embed_all(self, utterances: list[list[np.ndarray]], count: int) -> list[tuple[np.ndarray, ...]]:
        """Per utterance the full-utterance vector, and with `count` 2 the crop matrix too (stage 5's archives)."""
        full = [self.embed_full(inputs) for inputs in utterances]
        if count == 1:
            return [(f,) for f in full]
        return list(zip(full, self.embed_crops(utterances)))


class GMMUBMEmbedder:
    """The classical system as stage 5 sees it: one utterance's MFCC frames -> (enrolment vector, test vector),
    whose dot product across two utterances is the linear-scoring LLR (`pipeline/models/gmm_ubm.py`)."""

    input_names = ["mfcc"]
    group = 16

    def __init__(self, ubm: GMMUBM, voiced_only: bool = True):
        self.ubm = ubm
        self.voiced_only = voiced_only

    def __call__(self, inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        stats = self.ubm.stats(inputs[0])   # all the MFCC: the UBM cuts them to the cepstra it models
        return self.ubm.enrollment_vector(stats), self.ubm.test_vector(stats)

    def embed_all(self, utterances: list[list[np.ndarray]], count: int) -> list[tuple[np.ndarray, ...]]:
        return [self(inputs) for inputs in utterances]


def load_final_model(exp_dir: str | os.PathLike) -> dict[str, Any]:
    """The final checkpoint of a trained experiment (hash checked): weights, frozen config and model facts."""
    return load_checkpoint(Path(exp_dir) / FINAL_MODEL)


def model_gmms(checkpoint: dict[str, Any], exp_dir: str | os.PathLike) -> dict[str, DiagGMM]:
    """GMM name -> the GMM whose LGP maps the model of `checkpoint` (`exp_dir`'s final.pt) was trained on, as the
    checkpoint carries it: a model directory is scored under its own GMMs whatever stage 2 has refitted since."""
    stored = checkpoint.get("gmms") or {}
    gmms = {}
    for gmm in lgp_gmm_names(checkpoint["config"]["model"]["inputs"]).values():
        if gmm not in stored:
            raise StageError(f"{Path(exp_dir) / FINAL_MODEL} does not carry its GMM {gmm!r} (it was published by an "
                             f"older version): rerun stage 4 (training) for it")
        gmms[gmm] = DiagGMM.from_arrays({k: v.numpy() for k, v in stored[gmm].items()})
    return gmms


def load_embedder(exp_dir: str | os.PathLike, device: torch.device | str | None = None,
                  threads: int | None = None) -> Embedder | GMMUBMEmbedder:
    """The final model of a trained experiment, ready to embed utterances (what stage 5 uses)."""
    return embedder_of(load_final_model(exp_dir), device, threads)


def embedder_of(checkpoint: dict[str, Any], device: torch.device | str | None = None,
                threads: int | None = None) -> Embedder | GMMUBMEmbedder:
    """The model of a final checkpoint, ready to embed utterances; the classical system's statistics extractor for a
    GMM-UBM. `threads` caps torch's CPU threads."""
    if threads is not None:
        torch.set_num_threads(threads)
    frozen = checkpoint["config"]
    if system_of(frozen["model"]).adapts_gmm:
        gmm = DiagGMM(**{name: checkpoint["model"][name].numpy() for name in ("weights", "means", "variances")})
        ubm = GMMUBM(gmm, input_dim=MfccOptions.from_config(frozen.get("features") or {}).numcep,
                     relevance=float(frozen["model"]["relevance"]), quadratic=frozen["model"]["quadratic"])
        return GMMUBMEmbedder(ubm, voiced_only(frozen))
    network = build_network(frozen["model"])
    network.load_state_dict(checkpoint["model"])
    extract_cfg = frozen["extract"]
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return Embedder(network, frozen["model"]["inputs"], crop_frames=int(extract_cfg["crop_frames"]),
                    num_crops=int(extract_cfg["num_crops"]), batch_size=int(extract_cfg["batch_size"]),
                    device=device, voiced_only=voiced_only(frozen))
