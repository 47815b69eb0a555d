"""Stage 2: fit the gender-independent, male and female diagonal GMMs on voiced, mean-normalised MFCC.

Each GMM goes to `<gmm-root>/<name>/` as `gmm.npz` (weights, means, variances, LGP mean/std; no pickle),
`final.dubm.txt` (Kaldi text DiagGMM, for `gmm-global-copy`) and `fit.log`. Frames are subsampled to a
budget, as Kaldi's UBM training does, first by utterance then by frame, so the archives are read once.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import numpy as np
from tqdm import tqdm

from pipeline.features.gmm import DiagGMM, fit_gmm
from pipeline.features.lgp import lgp_statistics
from pipeline.features.mfcc import normalize_frames
from pipeline.utils.archive import load
from pipeline.utils.config import load_config, save_config
from pipeline.utils.datadir import DataDir, DataDirError
from pipeline.utils.logging import get_logger
from pipeline.utils.stage import inputs_fingerprint, is_done, mark_done

# Which training speakers each GMM is fitted on.
GENDER_OF = {"gi": None, "male": "m", "female": "f"}


def sample_frames(data: DataDir, utts: list[str], budget: int, rng: np.random.Generator,
                  voiced_only: bool = True) -> np.ndarray:
    """About `budget` voiced, mean-normalised frames drawn evenly from `utts` (all frames if fewer)."""
    frames_per_utt = {u: int(data.utt_tables["utt2num_frames"][u]) for u in utts}
    total = sum(frames_per_utt.values())
    keep = min(1.0, budget / max(total, 1))
    # Read at most ~2x the needed frames' worth of utterances, then thin frames to the budget.
    utt_fraction = min(1.0, 2 * keep)
    chosen = [u for u in utts if rng.random() < utt_fraction] or list(utts)
    frame_fraction = min(1.0, keep / utt_fraction)
    feats_scp, vad_scp = data.table("feats.scp"), data.table("vad.scp")
    pieces = []
    for utt in tqdm(chosen, desc="reading frames", unit="utt", leave=False, mininterval=2):
        frames = normalize_frames(load(feats_scp[utt]), load(vad_scp[utt]), voiced_only=voiced_only)
        if frame_fraction < 1.0:
            frames = frames[rng.random(len(frames)) < frame_fraction]
        pieces.append(frames)
    return np.concatenate(pieces, axis=0)


def fit_gmms(data_dir: Path, gmm_root: Path, cfg: dict[str, Any]) -> None:
    """Fit every GMM named in `cfg['models']` (subset of gi, male, female); skip those already current."""
    log = get_logger("fit_gmm", gmm_root / "log" / "fit_gmm.log")
    data = DataDir.load(data_dir)
    for table in ("feats.scp", "vad.scp", "utt2num_frames"):
        if table not in data.utt_tables:
            raise DataDirError(f"{data_dir}/{table} missing: run stage 1 (MFCC) first")
    inputs = [data_dir / "feats.scp", data_dir / "spk2gender"] if (data_dir / "spk2gender").exists() \
        else [data_dir / "feats.scp"]
    rng_seed = int(cfg.get("seed", 0))
    budget = int(cfg.get("max_frames", 500_000))
    voiced_only = bool(cfg.get("voiced_only", True))
    stats_frames = None
    for name in cfg.get("models", ["gi", "male", "female"]):
        if name not in GENDER_OF:
            raise ValueError(f"unknown GMM {name!r}; expected one of {sorted(GENDER_OF)}")
        out = gmm_root / name
        key = inputs_fingerprint(cfg, inputs)
        if is_done(out, "gmm", key, [out / "gmm.npz", out / "final.dubm.txt"]):
            log.info("%s: GMM is complete and current, nothing to do", out)
            continue
        gender = GENDER_OF[name]
        if gender is None:
            utts = data.utts
        else:
            if "spk2gender" not in data.spk_tables:
                raise DataDirError(f"{data_dir}/spk2gender missing: the {name} GMM needs speaker genders")
            genders = data.spk_tables["spk2gender"]
            utts = [u for u in data.utts if genders[data.utt2spk[u]] == gender]
            if not utts:
                raise DataDirError(f"{data_dir}: no training speakers of gender {gender!r} for the {name} GMM")
        rng = np.random.default_rng(rng_seed)
        start = time.time()
        frames = sample_frames(data, utts, budget, rng, voiced_only)
        log.info("%s: %d frames from %d utterances (%s speakers), %d components", name, len(frames), len(utts),
                 gender or "all", cfg["num_components"])
        gmm, info = fit_gmm(frames, int(cfg["num_components"]), max_iter=int(cfg.get("max_iter", 100)),
                            var_floor=float(cfg.get("var_floor", 0.01)), seed=rng_seed)
        # LGP normalisation over frames of all training speakers: every path sees both genders' speech.
        if stats_frames is None:
            stats_frames = frames if gender is None else sample_frames(
                data, data.utts, budget, np.random.default_rng(rng_seed), voiced_only)
        gmm.lgp_mean, gmm.lgp_std = lgp_statistics(gmm, stats_frames)
        out.mkdir(parents=True, exist_ok=True)
        gmm.save_npz(out / "gmm.npz")
        gmm.write_kaldi_text(out / "final.dubm.txt")
        save_config({"gmm": name, "gender": gender or "all", "frames": int(len(frames)), **info,
                     "seconds": round(time.time() - start, 1), "config": cfg}, out / "info.yaml")
        log.info("%s: EM %s after %d iterations, avg log-likelihood %.3f, %d variances floored, %.1f s",
                 name, "converged" if info["converged"] else "did NOT converge", info["iterations"],
                 info["avg_loglike"], info["floored_variances"], time.time() - start)
        mark_done(out, "gmm", key)


@click.command("fit-gmm")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--override", "-o", multiple=True, help="config override, e.g. gmm.num_components=512")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("gmm_root", type=click.Path(file_okay=False))
def main(config_path: str, override: tuple[str, ...], data_dir: str, gmm_root: str) -> None:
    """Fit the GMMs of the config's `gmm:` section on DATA_DIR's features, into GMM_ROOT/<name>/."""
    cfg = load_config(config_path, override)
    fit_gmms(Path(data_dir), Path(gmm_root), cfg["gmm"])
