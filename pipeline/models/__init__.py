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
from pipeline.systems import system_of

HEADS: dict[str, type[nn.Module]] = {
    "aam_softmax": AAMSoftmax,
    "softmax": Softmax,
}


def _construct(kind: str, name: Any, cls: type[nn.Module], kwargs: dict[str, Any], *args: Any) -> nn.Module:
    try:  # check the keys against the signature so that a typo in the YAML is named, not a deep TypeError
        inspect.signature(cls).bind(*args, **kwargs)
    except TypeError as err:
        raise ValueError(f"{kind} {name!r}: bad config keys {sorted(kwargs)}: {err}") from err
    return cls(*args, **kwargs)


def build_model(cfg: dict[str, Any]) -> nn.Module:
    """The network of `cfg["arch"]` (`pipeline/systems.py` names its class), built with the other keys of `cfg` as
    constructor kwargs."""
    system = system_of(cfg)
    if system.network is None:
        raise ValueError(f"arch {system.arch!r} has no network to build")
    kwargs = {k: v for k, v in cfg.items() if k != "arch"}
    return _construct("arch", system.arch, system.network_class(), kwargs)


def build_head(cfg: dict[str, Any], emb_dim: int, num_classes: int) -> nn.Module:
    """The head named by `cfg["type"]` ("aam_softmax" by default, or "softmax"); other keys are its kwargs
    (margin, scale, easy_margin for AAM)."""
    kwargs = dict(cfg)
    name = kwargs.pop("type", "aam_softmax")
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; choose one of {sorted(HEADS)}")
    return _construct("head", name, HEADS[name], kwargs, emb_dim, num_classes)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter values (buffers excluded), optionally only those that require gradients."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


__all__ = ["AAMSoftmax", "DGMMResNext", "ECAPATDNN", "GMMResNext", "HEADS", "MarginScheduler",
           "ResNet34", "Softmax", "TrainableGMMLayer", "build_head", "build_model", "count_parameters"]
