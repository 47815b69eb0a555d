"""The systems the recipe trains, each described once: what it is built from, how stage 4 trains it, what stage 5
writes for an utterance and how stage 6 scores that. Every stage asks this registry, never an arch name, so adding a
model is its own module plus one line here.

Deliberately free of torch and numpy: stages that only decide whether they have work to do read it too.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.utils.config import ConfigError

Training = Literal["classifier", "two_step", "none"]
Scoring = Literal["cosine", "linear"]
# Stage 5's archives: an embedding system's full-utterance vectors and crop matrices; a linear-scored system's
# enrolment and test vectors (MAP offsets and centred statistics, whose dot product is the LLR).
EMBEDDING_ARCHIVE, CROP_ARCHIVE = "xvector", "xvector_crops"
LINEAR_ARCHIVES = ("ubm_enroll", "ubm_test")


@dataclass(frozen=True)
class System:
    """One `arch:` of a config's `models:` entries.

    network: "module:Class" of the torch network; None for a system without one (the GMM-UBM: stage 4 publishes
        the stage-2 GMM its `gmm:` names, and stage 5 computes MAP statistics under it).
    input_size_key: the constructor argument set from the input's dimension when the config leaves it out.
    gmm_layers: config key -> submodule of the network that holds the GMM layer it names (`gmm_layer: {gmm: gi}`).
    training: "classifier" (one network, one classification head), "two_step" (dGMM: each path with its own head,
        then the fusion layer on the frozen paths' cached embeddings), "none".
    archives: what stage 5 writes per utterance, one archive each; `crop_archive` the optional crop embeddings.
    scoring: the scorer that scores it (`pipeline.scoring.scorer_for` builds it by this name): "cosine"
        (embeddings, centred by the cohort mean, with AS-Norm) or "linear" (the dot product of the enrolment and
        test vectors is the LLR).
    """
    arch: str
    network: str | None
    input_size_key: str | None = None
    gmm_layers: tuple[tuple[str, str], ...] = ()
    training: Training = "classifier"
    archives: tuple[str, ...] = (EMBEDDING_ARCHIVE,)
    crop_archive: str | None = CROP_ARCHIVE
    scoring: Scoring = "cosine"

    @property
    def speaker_embedding(self) -> bool:
        """Whether a recording becomes one speaker embedding (centred by the cohort set's mean): what PLDA models
        and a speaker table enrols; the GMM-UBM's pair of statistics vectors is none."""
        return self.scoring == "cosine"

    @property
    def adapts_gmm(self) -> bool:
        """Whether the system is the statistics of a stage-2 GMM named by the entry's `gmm:` (no network)."""
        return self.network is None

    def network_class(self) -> type:
        if self.network is None:
            raise ValueError(f"{self.arch!r} has no network")
        module, name = self.network.split(":")
        return getattr(importlib.import_module(module), name)

    def archive_names(self, with_crops: bool) -> tuple[str, ...]:
        return self.archives + ((self.crop_archive,) if with_crops and self.crop_archive else ())


SYSTEMS: dict[str, System] = {system.arch: system for system in (
    System("gmm_resnext", "pipeline.models.resnext:GMMResNext", "in_channels", (("gmm_layer", "gmm_layer"),)),
    System("dgmm_resnext", "pipeline.models.dgmm:DGMMResNext", "in_channels",
           (("male_gmm_layer", "paths.male.gmm_layer"), ("female_gmm_layer", "paths.female.gmm_layer")),
           training="two_step"),
    System("resnet34", "pipeline.models.resnet:ResNet34", "feat_dim"),
    System("ecapa_tdnn", "pipeline.models.ecapa_tdnn:ECAPATDNN", "feat_dim"),
    System("gmm_ubm", None, training="none", archives=LINEAR_ARCHIVES, crop_archive=None, scoring="linear"),
)}
# Every config key that names a GMM layer, and every archive stage 5 writes, whichever system has it.
GMM_LAYER_KEYS = tuple(dict.fromkeys(key for system in SYSTEMS.values() for key, _ in system.gmm_layers))
ALL_ARCHIVES = frozenset(name for system in SYSTEMS.values() for name in system.archive_names(with_crops=True))


def system_of(model_cfg: dict[str, Any]) -> System:
    """The system of a `models:` entry or a frozen `model:` section (its `arch`)."""
    arch = model_cfg.get("arch")
    if arch not in SYSTEMS:
        raise ConfigError(f"unknown arch {arch!r}; choose one of {sorted(SYSTEMS)}" if arch is not None
                          else f"model config has no 'arch' key; choose one of {sorted(SYSTEMS)}")
    return SYSTEMS[arch]
