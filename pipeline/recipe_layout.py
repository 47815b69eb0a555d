"""The recipe's paths and names, in one place: the sets stage 0 makes, the data dirs and GMMs each stage reads, where
a model's files go. run.sh reads the same facts through `python -m pipeline recipe-vars` (one call), so the shell and
Python never keep two copies of a name.
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from pipeline.augment.augmenter import AugmentOptions
from pipeline.dataset.features import input_names
from pipeline.systems import system_of
from pipeline.utils.config import ConfigError
from pipeline.utils.set_names import lgp_gmm_names

DEFAULT_GMM_ROOT = "exp/gmm"
FINAL_MODEL = Path("models") / "final.pt"   # of exp/<model>
MODEL_CHECKSUM_FILE = "model.sha256"         # beside embeddings: the final.pt they were extracted with
MEAN_EMBEDDING_FILE = "mean.vec"             # beside embeddings: their mean (Kaldi's ivector-mean), the cohort's centres
CALIBRATION_FILE = "calibration.json"        # of exp/<model>: stage 6's map of its raw scores to LLRs (verify)
IDENTIFICATION_CALIBRATION_FILE = "identification_calibration.json"   # of exp/<model>: identify's LLRs
PLDA_FILE = "plda.npz"                       # of exp/<model>: stage 6's PLDA on the cohort set's embeddings
# What stage 0 makes of a corpus's training set: its speed-perturbed copy (speakers sp0.9-, sp1.1-) and augmented
# copies; `data.train` is the union of the last two.
CORPUS_TRAIN = "train"
SPEED_PERTURBED = "train_sp"
AUGMENTED_SUFFIX = "_aug"
# The experiment of a model's large-margin phase (`train.large_margin`), trained from the model's final.pt.
LARGE_MARGIN_SUFFIX = "_lm"


def cohort_set(cfg: dict[str, Any]) -> str:
    """The set whose embeddings give the training mean and the AS-Norm cohort: `data.cohort` (both configs name the
    clean `train`), else the training set."""
    return str(cfg["data"].get("cohort", training_set(cfg)))


def gmm_set(cfg: dict[str, Any]) -> str:
    """The set stage 2 fits the GMMs on (`gmm.data`, default the training set)."""
    return str((cfg.get("gmm") or {}).get("data", training_set(cfg)))


def augmentation_source(cfg: dict[str, Any]) -> str:
    """The set stage 0 augments: the corpus's training set, or its speed-perturbed copy."""
    return SPEED_PERTURBED if cfg.get("speed_perturb") else CORPUS_TRAIN


def augment_options(cfg: dict[str, Any]) -> AugmentOptions:
    """The config's `augment:` section, checked (its seed defaults to the config's)."""
    return AugmentOptions.from_config(cfg.get("augment"), default_seed=int(cfg.get("seed", 0)))


def training_set(cfg: dict[str, Any]) -> str:
    """The set stage 4 trains on: `data.train` (with offline augmentation the clean + augmented union), or, with
    `augment.mode: online`, the clean set stage 0 would have augmented, whose crops the loader augments."""
    return augmentation_source(cfg) if augment_options(cfg).online else str(cfg["data"]["train"])


def training_dir(cfg: dict[str, Any]) -> Path:
    """The data dir of `training_set`."""
    return Path(cfg["data"]["root"]) / training_set(cfg)


def recipe_sets(cfg: dict[str, Any]) -> set[str]:
    """Every set the recipe itself makes or reads: a user's evaluation set may take none of these names."""
    return {cfg["data"]["train"], cohort_set(cfg), gmm_set(cfg), *cfg["data"]["test"], CORPUS_TRAIN, SPEED_PERTURBED,
            CORPUS_TRAIN + AUGMENTED_SUFFIX, SPEED_PERTURBED + AUGMENTED_SUFFIX}


def lgp_gmms(cfg: dict[str, Any]) -> list[str]:
    """The stage-2 GMMs whose LGP maps some model of the config reads (the ones stage 3 dumps), in `gmm.models`
    order."""
    read = {gmm for entry in (cfg.get("models") or {}).values() for gmm in lgp_gmm_names(input_names(entry)).values()}
    return [g for g in (cfg.get("gmm") or {}).get("models", []) if g in read]


def large_margin_base(cfg: dict[str, Any], name: str) -> str | None:
    """The model whose large-margin phase experiment `name` is (`gmm_resnext_lm` -> `gmm_resnext`), None when `name`
    is a `models:` entry or names no such phase."""
    models = cfg.get("models") or {}
    base = name[:-len(LARGE_MARGIN_SUFFIX)]
    if name in models or not name.endswith(LARGE_MARGIN_SUFFIX) or base not in models:
        return None
    return base if large_margin_settings(cfg, base) is not None else None


def large_margin_settings(cfg: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The `large_margin:` section of model `name` (its entry's `train:` over the config's), None when it has no
    such phase: left out, null, or a model that is not one network with one classification head."""
    entry = (cfg.get("models") or {})[name]
    own = (entry.get("train") or {})
    settings = own["large_margin"] if "large_margin" in own else (cfg.get("train") or {}).get("large_margin")
    if not settings or system_of(entry).training != "classifier":
        return None
    return dict(settings)


def trained_models(cfg: dict[str, Any]) -> list[str]:
    """Every experiment stages 4-6 run, in training order: each `models:` entry, followed by its large-margin
    phase (`<model>_lm`) when it has one. A `models:` entry may not take the name of another's phase."""
    names = []
    for name in cfg.get("models") or {}:
        names.append(name)
        if large_margin_settings(cfg, name) is not None:
            phase = name + LARGE_MARGIN_SUFFIX
            if phase in cfg["models"]:
                raise ConfigError(f"`models:` has an entry {phase!r}, the name of {name}'s large-margin phase "
                                  f"(train.large_margin): rename the entry")
            names.append(phase)
    return names


def embeddings_dir(exp_dir: str | os.PathLike, set_name: str) -> Path:
    """Where stage 5 writes a model's embeddings of a set."""
    return Path(exp_dir) / "embeddings" / set_name


def score_row(exp_dir: str | os.PathLike, set_name: str, trials_name: str) -> Path:
    """Stage 6's metrics row of one trials list (`exp/<model>/scores/<set>_<trials>.json`); its `.score`,
    `.asnorm.score` and `.hist.png` share the stem."""
    return Path(exp_dir) / "scores" / f"{set_name}_{trials_name}.json"


def recipe_vars(cfg: dict[str, Any]) -> dict[str, str]:
    """The names run.sh works with, as shell variables (lists space-separated). `augment` is true when stage 0
    writes the augmented copy (offline mode); online, `train_set` is the clean set and no copy exists."""
    data, gmm = cfg["data"], cfg.get("gmm") or {}
    source = augmentation_source(cfg)
    augment = augment_options(cfg)
    return {
        "corpus": str(cfg["corpus"]), "data": str(data["root"]), "train_set": training_set(cfg),
        "cohort_set": cohort_set(cfg), "gmm_set": gmm_set(cfg), "test_sets": " ".join(data["test"]),
        "gmms": " ".join(gmm.get("models", [])), "lgp_gmms": " ".join(lgp_gmms(cfg)),
        "gmm_root": str(gmm.get("root", DEFAULT_GMM_ROOT)), "models": " ".join(trained_models(cfg)),
        "speed_perturb": "true" if cfg.get("speed_perturb") else "", "augment": str(augment.offline).lower(),
        "augment_mode": augment.mode if augment.enabled else "",
        "augment_source": source, "augment_set": source + AUGMENTED_SUFFIX,
        "verify_inputs": str(bool((cfg.get("checks") or {}).get("verify_inputs", False))).lower(),
    }


def shell_assignments(variables: dict[str, str]) -> str:
    """`name=value` lines, quoted for `eval` in bash."""
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in variables.items())
