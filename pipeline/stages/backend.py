"""Stage 6's back end: scores that are log-likelihood ratios. For every trials list of a test set, beside each model's
cosine (or GMM-UBM) row:

  <model> calibrated   the model's scores through linear logistic calibration (`scoring.Calibration`)
  <model>/plda         a network's embeddings scored by Kaldi's PLDA (LDA, length norm, two-covariance PLDA),
                       trained on the cohort set's embeddings (`scoring.PLDA`, saved as exp/<model>/plda.npz)
  fusion               a linear logistic fusion of the models' scores (`scoring.Fusion`)

each with EER, minDCF, Cllr, minCllr and actDCF at `scoring.p_target`.

Honest figures need calibration data apart from the trials they are measured on. The test people are split into
two speaker-disjoint halves (genders balanced); each half's calibration (and fusion) is trained on the trials among
the other half's people and applied to the trials whose enrolment speaker is in this half. So no trial is scored by a
map trained on its enrolment speaker; a cross-half non-target shares its test speaker with the training half, a
milder overlap that two to K + 1 parameters can hardly exploit. Whether a model's raw or AS-Norm scores are
calibrated (or fused) is chosen on the training half too, by its calibrated Cllr there.

For `verify` and `SpeakerModel`, which score without AS-Norm, `exp/<model>/calibration.json` is one calibration of
the raw scores on the whole `data.threshold_trials` list, with the model checksum it belongs to.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pipeline.embed import load_embeddings
from pipeline.experiment import model_checksum
from pipeline.recipe_layout import CALIBRATION_FILE, PLDA_FILE, embeddings_dir, score_row
from pipeline.scoring import (PLDA, Calibration, Fusion, cllr, compute_act_dcf, metric_columns,
                              min_cllr, read_scores)
from pipeline.utils.atomic import write_text_atomic
from pipeline.utils.config import fingerprint
from pipeline.utils.datadir import DataDir
from pipeline.utils.stage import clear_done, file_digest, is_done, mark_done, output_key
from pipeline.utils.trials import Trials

BACKEND_VERSION = 1
FUSION_DIR = "fusion"    # exp/fusion/scores/<set>_<trials>.json: the fusion's rows
SOURCES = ("raw", "AS-Norm")


@dataclass(frozen=True)
class BackendSettings:
    """The `scoring:` keys of the back end."""
    p_target: float = 0.01          # actDCF's operating point and verify's decision prior
    fusion: tuple[str, ...] | None = None   # the models fused; None: every model scored
    plda_lda_dim: int | None = 128  # None: no PLDA rows

    @classmethod
    def from_config(cls, scoring: dict[str, Any]) -> "BackendSettings":
        plda = scoring.get("plda", {"lda_dim": 128})
        fusion = scoring.get("fusion")
        return cls(float(scoring.get("p_target", 0.01)), tuple(fusion) if fusion else None,
                   None if plda is None else int(plda.get("lda_dim", 128)))


def speaker_halves(spk2gender: dict[str, str], speakers: set[str]) -> dict[str, int]:
    """Speaker -> 0 or 1: alternate halves in an order fixed by a hash of the name, per gender."""
    order = sorted(speakers, key=lambda s: (spk2gender.get(s, "?"), hashlib.sha1(s.encode()).hexdigest()))
    return {s: k % 2 for k, s in enumerate(order)}


def llr_columns(llrs: np.ndarray, labels: np.ndarray, p_target: float) -> dict[str, float]:
    """Cllr, minCllr and actDCF of LLRs, keyed as the results table shows them."""
    return {"Cllr": cllr(llrs, labels), "minCllr": min_cllr(llrs, labels),
            f"actDCF{p_target:g}": compute_act_dcf(llrs, labels, p_target)}


def cross_fitted(labels: np.ndarray, half_enroll: np.ndarray, half_test: np.ndarray,
                 fit_apply: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, str]]) -> tuple[np.ndarray, list[str]]:
    """LLRs of every trial from maps trained on the other half: `fit_apply(train_mask, apply_mask)` returns the
    LLRs of the `apply_mask` trials and what it chose."""
    llrs = np.empty(labels.size)
    chosen = []
    for half in (0, 1):
        train = (half_enroll == 1 - half) & (half_test == 1 - half)
        apply = half_enroll == half
        llrs[apply], what = fit_apply(train, apply)
        chosen.append(what)
    return llrs, chosen


def has_both_classes(labels: np.ndarray, mask: np.ndarray) -> bool:
    return bool(labels[mask].any() and (~labels[mask].astype(bool)).any())


def best_source(sources: dict[str, np.ndarray], labels: np.ndarray, train: np.ndarray) -> str:
    """The score source whose calibration on the `train` trials reaches the lowest Cllr there."""
    def cost(scores: np.ndarray) -> float:
        return cllr(Calibration.fit(scores[train], labels[train]).apply(scores[train]), labels[train])
    return min(sources, key=lambda name: cost(sources[name]))


class ListBackend:
    """The back-end rows of one trials list, from the models' stage-6 score files."""

    def __init__(self, exp_root: Path, test_set: str, trials_name: str, trials: Trials, data: DataDir,
                 settings: BackendSettings, replicates: int, interval: Callable[..., str]):
        self.exp_root, self.test_set, self.trials_name = exp_root, test_set, trials_name
        self.trials, self.labels, self.settings = trials, trials.labels.astype(np.int8), settings
        self.replicates, self.interval, self.data = replicates, interval, data
        halves = speaker_halves(data.spk_tables.get("spk2gender", {}), set(data.utt2spk.values()))
        self.half_enroll = np.array([halves[data.utt2spk[u]] for u in trials.enroll.tolist()])
        self.half_test = np.array([halves[data.utt2spk[u]] for u in trials.test.tolist()])
        self.usable = all(has_both_classes(self.labels, (self.half_enroll == h) & (self.half_test == h))
                          for h in (0, 1))

    def sources(self, model: str) -> dict[str, np.ndarray]:
        stem = score_row(self.exp_root / model, self.test_set, self.trials_name)
        return {"raw": read_scores(stem.with_suffix(".score"), len(self.trials)),
                "AS-Norm": read_scores(stem.with_suffix(".asnorm.score"), len(self.trials))}

    def row(self, name: str, llrs: np.ndarray, base: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """A results row of LLRs: the base row's identity columns, then the metrics."""
        row = {k: base[k] for k in ("params", "front end", "trials", "trials scored") if k in base}
        row = {"model": name, **row, **extra}
        row.update(metric_columns(llrs, self.labels))
        row["EER 95% CI"] = self.interval(llrs, self.trials, self.data.utt2spk, self.replicates)
        row.update(llr_columns(llrs, self.labels, self.settings.p_target))
        row["embeddings"] = base.get("embeddings", {})
        return row

    def calibrated(self, model: str, base: dict[str, Any]) -> dict[str, Any]:
        sources = self.sources(model)

        def fit_apply(train: np.ndarray, apply: np.ndarray) -> tuple[np.ndarray, str]:
            source = best_source(sources, self.labels, train)
            return Calibration.fit(sources[source][train], self.labels[train]).apply(sources[source][apply]), source
        llrs, chosen = cross_fitted(self.labels, self.half_enroll, self.half_test, fit_apply)
        return self.row(f"{model} calibrated", llrs, base, **{"calibrated from": " / ".join(chosen)})

    def fused(self, models: list[str], bases: dict[str, dict[str, Any]]) -> dict[str, Any]:
        sources = {model: self.sources(model) for model in models}

        def fit_apply(train: np.ndarray, apply: np.ndarray) -> tuple[np.ndarray, str]:
            picked = {m: best_source(s, self.labels, train) for m, s in sources.items()}
            scores = {m: sources[m][picked[m]] for m in models}
            fusion = Fusion.fit({m: s[train] for m, s in scores.items()}, self.labels[train])
            return fusion.apply({m: s[apply] for m, s in scores.items()}), ", ".join(
                f"{m} {picked[m]} {fusion.weights[m]:+.2f}" for m in models)
        llrs, chosen = cross_fitted(self.labels, self.half_enroll, self.half_test, fit_apply)
        embeddings = {k: v for base in bases.values() for k, v in base.get("embeddings", {}).items()}
        base = {"trials": next(iter(bases.values()))["trials"],
                "trials scored": next(iter(bases.values()))["trials scored"], "embeddings": embeddings}
        return self.row(FUSION_DIR, llrs, base, **{"front end": "fusion of " + ", ".join(models),
                                                   "calibrated from": " | ".join(chosen)})

    def plda(self, model: str, plda: PLDA, embeddings: dict[str, np.ndarray], base: dict[str, Any]
             ) -> dict[str, Any]:
        enroll = np.stack([embeddings[u][0] for u in self.trials.enroll.tolist()])
        test = np.stack([embeddings[u][0] for u in self.trials.test.tolist()])
        return self.row(f"{model}/plda", plda.score(enroll, test), base,
                        **{"front end": f"{base['front end']}; PLDA (LDA {plda.lda.shape[0]})"})


def train_plda(exp_dir: Path, cohort_set: str, cohort_utt2spk: dict[str, str], lda_dim: int,
               log: logging.Logger) -> PLDA | None:
    """PLDA on the cohort set's full-utterance embeddings, kept as exp/<model>/plda.npz while they are current; None
    (said in the log) when the set is too small to estimate its covariances."""
    emb_dir = embeddings_dir(exp_dir, cohort_set)
    key = fingerprint(BACKEND_VERSION, output_key(emb_dir, "extract"), lda_dim)
    path = exp_dir / PLDA_FILE
    if is_done(exp_dir, "plda", key):
        return PLDA.load_npz(path)
    clear_done(exp_dir, "plda")
    embeddings = load_embeddings(emb_dir)
    utts = sorted(embeddings, key=str.encode)
    vectors = np.stack([embeddings[u][0] for u in utts])
    dim = min(lda_dim, vectors.shape[1], len(set(cohort_utt2spk[u] for u in utts)) - 1)
    if len(utts) <= vectors.shape[1] or dim < 1:
        log.warning("%s: %d embeddings of dimension %d in %s: too few for PLDA, no PLDA rows", exp_dir.name,
                    len(utts), vectors.shape[1], cohort_set)
        return None
    plda = PLDA.fit(vectors, [cohort_utt2spk[u] for u in utts], dim)
    plda.save_npz(path)
    log.info("%s: PLDA on %d embeddings of %s (LDA %d)", exp_dir.name, len(utts), cohort_set, dim)
    mark_done(exp_dir, "plda", key, [path])
    return plda


def save_deployed_calibration(exp_dir: Path, scores: np.ndarray, labels: np.ndarray, trials_name: str,
                              p_target: float) -> None:
    """exp/<model>/calibration.json: the raw scores of a whole list mapped to LLRs, for verify and SpeakerModel."""
    calibration = Calibration.fit(scores, labels)
    record = {"calibration": json.loads(calibration.to_json()), "trials": trials_name, "p_target": p_target,
              "model checksum": model_checksum(exp_dir)}
    write_text_atomic(exp_dir / CALIBRATION_FILE, json.dumps(record, indent=1) + "\n")


def backend_rows(exp_root: Path, data_root: Path, test_set: str, models: list[str], trials_name: str,
                 trials: Trials, rows: dict[str, dict[str, Any]], pldas: dict[str, PLDA | None],
                 settings: BackendSettings, replicates: int, interval: Callable[..., str],
                 log: logging.Logger) -> None:
    """Write the calibrated, PLDA and fusion rows of one list (nothing is done when they are current). `rows`: each
    model's stage-6 row of the list; `pldas`: each model's PLDA, None for a model scored otherwise."""
    data = DataDir.load(data_root / test_set)
    inputs = {m: file_digest(score_row(exp_root / m, test_set, trials_name).with_suffix(".asnorm.score"))
              for m in models}
    key = fingerprint(BACKEND_VERSION, asdict(settings), replicates, sorted(inputs.items()), sorted(rows),
                      {m: output_key(exp_root / m, "plda") for m, plda in pldas.items() if plda is not None},
                      {m: file_digest(score_row(exp_root / m, test_set, trials_name).with_suffix(".score"))
                       for m in models})
    stem = f"{test_set}_{trials_name}"
    marker_dir = exp_root / FUSION_DIR / "scores"
    marker_dir.mkdir(parents=True, exist_ok=True)
    if is_done(marker_dir, f"backend.{stem}", key):
        return
    clear_done(marker_dir, f"backend.{stem}")
    backend = ListBackend(exp_root, test_set, trials_name, trials, data, settings, replicates, interval)
    if not backend.usable:
        log.warning("%s %s: a half of the test people has no target or no non-target trial among themselves: no "
                    "calibrated or fused rows", test_set, trials_name)
        mark_done(marker_dir, f"backend.{stem}", key, [])
        return
    written = []
    for model in models:
        out = score_row(exp_root / model, test_set, trials_name)
        rows_of = {".calibrated": backend.calibrated(model, rows[model])}
        plda = pldas.get(model)
        if plda is not None:
            embeddings = load_embeddings(embeddings_dir(exp_root / model, test_set))
            rows_of[".plda"] = backend.plda(model, plda, embeddings, rows[model])
        for suffix, row in rows_of.items():
            path = out.with_name(out.stem + suffix + ".json")
            write_text_atomic(path, json.dumps(row, indent=1))
            written.append(path)
    fused = [m for m in (settings.fusion or models) if m in rows]
    if len(fused) >= 2:
        path = marker_dir / f"{stem}.json"
        write_text_atomic(path, json.dumps(backend.fused(fused, {m: rows[m] for m in fused}), indent=1))
        written.append(path)
    mark_done(marker_dir, f"backend.{stem}", key, written)
