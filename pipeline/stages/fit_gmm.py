"""Stage 2: fit the gender-independent, male and female diagonal GMMs on voiced, mean-normalised MFCC.

Each GMM goes to `<gmm-root>/<name>/` as `gmm.npz` (weights, means, variances, LGP mean/std; no pickle),
`final.dubm.txt` (Kaldi text DiagGMM, for `gmm-global-copy`) and `info.yaml`; the log is `<gmm-root>/log/fit_gmm.log`. Frames are subsampled to a
budget, as Kaldi's UBM training does, first by utterance then by frame, so the archives are read once.

A model fine-tuned from a finished one (`train.init_from`) keeps that model's front end: the GMMs its LGP inputs are
computed under are written from the source's final.pt instead of fitted (`info.yaml` names the source), and a GMM
this stage fitted is never replaced by one of them.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm import tqdm

from pipeline.dataset.features import FeatureSource
from pipeline.experiment import fine_tune_sources, voiced_only
from pipeline.features.gmm import DiagGMM, fit_gmm
from pipeline.features.lgp import lgp_statistics
from pipeline.features.mfcc import features_made_under
from pipeline.utils.atomic import checksum_path
from pipeline.utils.config import ConfigError, fingerprint, save_config
from pipeline.utils.datadir import DataDir, DataDirError
from pipeline.utils.log import get_logger
from pipeline.utils.set_names import MFCC_INPUT, lgp_gmm_names
from pipeline.utils.stage import StageError, clear_done, file_digest, is_done, mark_done, output_key, recorded_key

SOURCE_FIELD = "from_model"   # of info.yaml: the fine-tuning source a GMM was written from
# The training speakers of the gender-dependent GMMs; any other GMM is fitted on all of them.
GENDER_OF = {"gi": None, "male": "m", "female": "f"}
DONE_NAME = "gmm"


def sample_frames(data: DataDir, source: FeatureSource, utts: list[str], budget: int,
                  rng: np.random.Generator) -> np.ndarray:
    """About `budget` frames of `source` (voiced, mean-normalised MFCC) drawn evenly from `utts` (all frames if
    fewer)."""
    frames_per_utt = {u: int(data.utt_tables["utt2num_frames"][u]) for u in utts}
    total = sum(frames_per_utt.values())
    keep = min(1.0, budget / max(total, 1))
    # Read at most ~2x the needed frames' worth of utterances, then thin frames to the budget.
    utt_fraction = min(1.0, 2 * keep)
    chosen = [u for u in utts if rng.random() < utt_fraction] or list(utts)
    frame_fraction = min(1.0, keep / utt_fraction)
    pieces = []
    for utt in tqdm(chosen, desc="reading frames", unit="utt", leave=False, mininterval=2):
        frames = source.read(utt)[0]
        if frame_fraction < 1.0:
            frames = frames[rng.random(len(frames)) < frame_fraction]
        pieces.append(frames)
    return np.concatenate(pieces, axis=0)


def gmm_settings(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    """The settings of GMM `name`: the `gmm:` section's, updated with its own `gmm.<name>:` section if there is one
    (e.g. `gmm.ubm: {num_components: 128, num_ceps: 20}` for the classical system's UBM)."""
    shared = {k: v for k, v in cfg.items() if k not in ("models", "root") and not isinstance(v, dict)}
    return {**shared, **(cfg.get(name) or {})}


def source_gmms(config: dict[str, Any]) -> dict[str, tuple[DiagGMM, str]]:
    """GMM name -> (the GMM, the model directory that carries it) for the GMMs of the LGP inputs of every model a
    `models:` entry is fine-tuned from."""
    sources = fine_tune_sources(config)
    if not sources:
        return {}
    from pipeline.embed import load_final_model   # torch: only for a config that fine-tunes

    found: dict[str, tuple[DiagGMM, str]] = {}
    for model, source in sources.items():
        checkpoint = load_final_model(source)
        for name in lgp_gmm_names(checkpoint["config"]["model"]["inputs"]).values():
            stored = (checkpoint.get("gmms") or {}).get(name)
            if stored is None:
                raise StageError(f"{source}/models/final.pt does not carry its GMM {name!r} (published by an older "
                                 f"version): {model} cannot be fine-tuned from it; retrain the source")
            gmm = DiagGMM.from_arrays({k: v.numpy() for k, v in stored.items()})
            if name in found and found[name][0].fingerprint() != gmm.fingerprint():
                raise ConfigError(f"{found[name][1]} and {source} were trained under different GMMs {name!r}: "
                                  f"fine-tune them with configs of different gmm.root")
            found[name] = (gmm, source)
    for name, (_, source) in found.items():
        if name not in (config.get("gmm") or {}).get("models", []):
            raise ConfigError(f"gmm.models does not list {name!r}, the GMM of {source}'s LGP inputs: add it")
    return found


def write_source_gmm(out: Path, name: str, gmm: DiagGMM, source: str, log: Any) -> None:
    """Put the GMM `name` that the fine-tuning source `source` carries in `out`. Nothing is done when `out` holds it
    already (fitted by this recipe's stage 2 or written before); a different GMM that stage 2 fitted there is
    refused, never replaced: other models' LGP maps are computed under it."""
    key = fingerprint(SOURCE_FIELD, gmm.fingerprint())
    if is_done(out, DONE_NAME, key):
        log.info("%s: the GMM of %s, complete and current, nothing to do", out, source)
        return
    held = recorded_key(out, DONE_NAME)
    if held is not None and (out / "gmm.npz").is_file() and is_done(out, DONE_NAME, held):
        if DiagGMM.load_npz(out / "gmm.npz").fingerprint() == gmm.fingerprint():
            log.info("%s: holds the GMM %s was trained on, nothing to do", out, source)
            return
        info = yaml.safe_load((out / "info.yaml").read_text()) if (out / "info.yaml").is_file() else {}
        if SOURCE_FIELD not in (info or {}):
            raise StageError(f"{out} holds a GMM {name!r} that stage 2 fitted, not the one {source} was trained on; "
                             f"a fine-tuned model keeps its source's GMMs: give gmm.root a directory of its own "
                             f"(e.g. --override gmm.root=exp/gmm_finetune)")
    clear_done(out, DONE_NAME)
    out.mkdir(parents=True, exist_ok=True)
    gmm.save_npz(out / "gmm.npz")
    gmm.write_kaldi_text(out / "final.dubm.txt")
    save_config({"gmm": name, SOURCE_FIELD: str(source), "num_components": gmm.num_components, "dim": gmm.dim},
                out / "info.yaml")
    log.info("%s: the GMM %s of %s (%d components), written from its final.pt", out, name, source,
             gmm.num_components)
    mark_done(out, DONE_NAME, key, [out / "gmm.npz", checksum_path(out / "gmm.npz"), out / "final.dubm.txt"])


def fit_gmms(data_dir: Path, gmm_root: Path, config: dict[str, Any]) -> None:
    """Fit every GMM named in the config's `gmm.models` on the usable utterances of `data_dir`: `gi` on all speakers,
    `male` and `female` on one gender, any other name on all speakers with its own settings (`gmm.<name>:`). A GMM
    with `num_ceps` models the first `num_ceps` cepstra only. Nothing is done for those that are complete and
    current."""
    cfg = config["gmm"]
    log = get_logger("fit_gmm", gmm_root / "log" / "fit_gmm.log")
    data = DataDir.load(data_dir)
    genders = data_dir / "spk2gender"
    # What every GMM is computed from besides its own settings: the features (stage 1's output key), the genders.
    features = output_key(data_dir, "mfcc", features_made_under(config.get("features")))
    inputs_key = fingerprint(features, file_digest(genders) if genders.is_file() else None)
    utts = data.usable_utts
    source = FeatureSource(data_dir, [MFCC_INPUT], voiced_only=voiced_only(config))
    all_frames: dict[tuple[int, int], np.ndarray] = {}  # frames of all speakers per (budget, seed): read once

    def frames_of_everyone(budget: int, seed: int) -> np.ndarray:
        if (budget, seed) not in all_frames:
            all_frames[budget, seed] = sample_frames(data, source, utts, budget, np.random.default_rng(seed))
        return all_frames[budget, seed]

    imported = source_gmms(config)
    for name in cfg.get("models", ["gi", "male", "female"]):
        if name in imported:
            write_source_gmm(gmm_root / name, name, *imported[name], log)
            continue
        settings = gmm_settings(cfg, name)
        out = gmm_root / name
        key = fingerprint(settings, inputs_key, name)
        if is_done(out, DONE_NAME, key):
            log.info("%s: GMM is complete and current, nothing to do", out)
            continue
        clear_done(out, DONE_NAME)
        seed, budget = int(settings.get("seed", 0)), int(settings.get("max_frames", 500_000))
        num_ceps = settings.get("num_ceps")
        gender = GENDER_OF.get(name)
        start = time.time()
        if gender is None:
            frames = frames_of_everyone(budget, seed)
        else:
            if "spk2gender" not in data.spk_tables:
                raise DataDirError(f"{data_dir}/spk2gender missing: the {name} GMM needs speaker genders")
            gender_of = data.spk_tables["spk2gender"]
            chosen = [u for u in utts if gender_of[data.utt2spk[u]] == gender]
            if not chosen:
                raise DataDirError(f"{data_dir}: no training speakers of gender {gender!r} for the {name} GMM")
            frames = sample_frames(data, source, chosen, budget, np.random.default_rng(seed))
        if num_ceps is not None and not 0 < int(num_ceps) <= frames.shape[1]:
            raise ConfigError(f"gmm.{name}.num_ceps is {num_ceps}; the features have {frames.shape[1]} cepstra")
        dims = slice(0, int(num_ceps) if num_ceps else None)
        log.info("%s: %d frames of %d dims (%s speakers), %d components", name, len(frames),
                 frames[:, dims].shape[1], gender or "all", settings["num_components"])
        gmm, info = fit_gmm(frames[:, dims], int(settings["num_components"]),
                            max_iter=int(settings.get("max_iter", 100)),
                            var_floor=float(settings.get("var_floor", 0.01)), seed=seed)
        # LGP normalisation over frames of all training speakers: every path sees both genders' speech.
        gmm.lgp_mean, gmm.lgp_std = lgp_statistics(gmm, frames_of_everyone(budget, seed)[:, dims])
        out.mkdir(parents=True, exist_ok=True)
        gmm.save_npz(out / "gmm.npz")
        gmm.write_kaldi_text(out / "final.dubm.txt")
        save_config({"gmm": name, "gender": gender or "all", "frames": int(len(frames)), **info,
                     "seconds": round(time.time() - start, 1), "config": settings}, out / "info.yaml")
        log.info("%s: EM %s after %d iterations, avg log-likelihood %.3f, %d variances floored, %.1f s",
                 name, "converged" if info["converged"] else "did NOT converge", info["iterations"],
                 info["avg_loglike"], info["floored_variances"], time.time() - start)
        mark_done(out, DONE_NAME, key, [out / "gmm.npz", checksum_path(out / "gmm.npz"), out / "final.dubm.txt"])
