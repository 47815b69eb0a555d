"""Speaker embedding networks, built from their config by name, and their training heads.

    model = build_model({"arch": "gmm_resnext", "in_channels": 512, "channels": 512})
    head = build_head({"type": "aam_softmax", "margin": 0.2, "scale": 30}, model.emb_dim, num_speakers)

Every model maps features (B, input_dim, T) to embeddings (B, emb_dim) and exposes `input_dim` and `emb_dim`;
the keys each arch accepts are listed in its class docstring.
"""
from __future__ import annotations

import inspect
from typing import Any

import torch.nn as nn

from pipeline.models.dgmm import DGMMResNext
from pipeline.models.ecapa_tdnn import ECAPATDNN
from pipeline.models.gmm_layer import TrainableGMMLayer
from pipeline.models.margins import AAMSoftmax, MarginScheduler, Softmax
from pipeline.models.resnet import ResNet34
from pipeline.models.resnext import GMMResNext

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "gmm_resnext": GMMResNext,
    "dgmm_resnext": DGMMResNext,
    "resnet34": ResNet34,
    "ecapa_tdnn": ECAPATDNN,
}

HEADS: dict[str, type[nn.Module]] = {
    "aam_softmax": AAMSoftmax,
    "softmax": Softmax,
}


def _construct(kind: str, registry: dict[str, type[nn.Module]], name: Any, kwargs: dict[str, Any],
               *args: Any) -> nn.Module:
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; choose one of {sorted(registry)}")
    cls = registry[name]
    try:  # check the keys against the signature so that a typo in the YAML is named, not a deep TypeError
        inspect.signature(cls).bind(*args, **kwargs)
    except TypeError as err:
        raise ValueError(f"{kind} {name!r}: bad config keys {sorted(kwargs)}: {err}") from err
    return cls(*args, **kwargs)


def build_model(cfg: dict[str, Any]) -> nn.Module:
    """The model named by `cfg["arch"]`, built with the other keys of `cfg` as constructor kwargs."""
    kwargs = dict(cfg)
    if "arch" not in kwargs:
        raise ValueError(f"model config has no 'arch' key; choose one of {sorted(ARCHITECTURES)}")
    return _construct("arch", ARCHITECTURES, kwargs.pop("arch"), kwargs)


def build_head(cfg: dict[str, Any], emb_dim: int, num_classes: int) -> nn.Module:
    """The head named by `cfg["type"]` ("aam_softmax" by default, or "softmax"); other keys are its kwargs
    (margin, scale, easy_margin for AAM)."""
    kwargs = dict(cfg)
    return _construct("head", HEADS, kwargs.pop("type", "aam_softmax"), kwargs, emb_dim, num_classes)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter values (buffers excluded), optionally only those that require gradients."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


__all__ = ["AAMSoftmax", "ARCHITECTURES", "DGMMResNext", "ECAPATDNN", "GMMResNext", "HEADS", "MarginScheduler",
           "ResNet34", "Softmax", "TrainableGMMLayer", "build_head", "build_model", "count_parameters"]
