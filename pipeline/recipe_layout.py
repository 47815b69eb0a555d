"""The recipe's paths and names, in one place: the sets stage 0 makes, the data dirs and GMMs each stage reads, where
a model's files go. run.sh reads the same facts through `python -m pipeline recipe-vars` (one call), so the shell and
Python never keep two copies of a name.
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from pipeline.dataset.features import input_names
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


def cohort_set(cfg: dict[str, Any]) -> str:
    """The clean training set whose embeddings give the training mean and the AS-Norm cohort (`data.cohort`)."""
    return str(cfg["data"].get("cohort", cfg["data"]["train"]))


def gmm_set(cfg: dict[str, Any]) -> str:
    """The set stage 2 fits the GMMs on (`gmm.data`, default `data.train`)."""
    return str((cfg.get("gmm") or {}).get("data", cfg["data"]["train"]))


def augmentation_source(cfg: dict[str, Any]) -> str:
    """The set stage 0 augments: the corpus's training set, or its speed-perturbed copy."""
    return SPEED_PERTURBED if cfg.get("speed_perturb") else CORPUS_TRAIN


def recipe_sets(cfg: dict[str, Any]) -> set[str]:
    """Every set the recipe itself makes or reads: a user's evaluation set may take none of these names."""
    return {cfg["data"]["train"], cohort_set(cfg), gmm_set(cfg), *cfg["data"]["test"], CORPUS_TRAIN, SPEED_PERTURBED,
            CORPUS_TRAIN + AUGMENTED_SUFFIX, SPEED_PERTURBED + AUGMENTED_SUFFIX}


def lgp_gmms(cfg: dict[str, Any]) -> list[str]:
    """The stage-2 GMMs whose LGP maps some model of the config reads (the ones stage 3 dumps), in `gmm.models`
    order."""
    read = {gmm for entry in (cfg.get("models") or {}).values() for gmm in lgp_gmm_names(input_names(entry)).values()}
    return [g for g in (cfg.get("gmm") or {}).get("models", []) if g in read]


def embeddings_dir(exp_dir: str | os.PathLike, set_name: str) -> Path:
    """Where stage 5 writes a model's embeddings of a set."""
    return Path(exp_dir) / "embeddings" / set_name


def score_row(exp_dir: str | os.PathLike, set_name: str, trials_name: str) -> Path:
    """Stage 6's metrics row of one trials list (`exp/<model>/scores/<set>_<trials>.json`); its `.score`,
    `.asnorm.score` and `.hist.png` share the stem."""
    return Path(exp_dir) / "scores" / f"{set_name}_{trials_name}.json"


def recipe_vars(cfg: dict[str, Any]) -> dict[str, str]:
    """The names run.sh works with, as shell variables (lists space-separated)."""
    data, gmm = cfg["data"], cfg.get("gmm") or {}
    source = augmentation_source(cfg)
    return {
        "corpus": str(cfg["corpus"]), "data": str(data["root"]), "train_set": str(data["train"]),
        "cohort_set": cohort_set(cfg), "gmm_set": gmm_set(cfg), "test_sets": " ".join(data["test"]),
        "gmms": " ".join(gmm.get("models", [])), "lgp_gmms": " ".join(lgp_gmms(cfg)),
        "gmm_root": str(gmm.get("root", DEFAULT_GMM_ROOT)), "models": " ".join(cfg.get("models") or {}),
        "speed_perturb": "true" if cfg.get("speed_perturb") else "", "augment": str(bool(
            (cfg.get("augment") or {}).get("enabled", False))).lower(),
        "augment_source": source, "augment_set": source + AUGMENTED_SUFFIX,
        "verify_inputs": str(bool((cfg.get("checks") or {}).get("verify_inputs", False))).lower(),
    }


def shell_assignments(variables: dict[str, str]) -> str:
    """`name=value` lines, quoted for `eval` in bash."""
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in variables.items())
