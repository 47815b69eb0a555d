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
milder overlap that two to K + 1 parameters can hardly exploit. Whether a model's raw, AS-Norm or (with a PLDA)
PLDA scores are calibrated (or fused) is chosen on the training half too, by their calibrated Cllr there.

Calibrations and the fusion are trained at `scoring.p_target`, the prior at which actDCF is measured and `verify`
decides (BOSARIS's advice: train at the application's prior); the source is chosen by calibrated Cllr, the summary
over all priors. On the demo's lists this took every calibrated row's actDCF0.01 within 7% of its minDCF, against
up to 18% trained at 0.5 (the GMM-UBM on trials_real: 1.04 against 1.15, minDCF 0.98), and moved Cllr by less than
0.006.

For `verify` and `SpeakerModel`, which score without AS-Norm, `exp/<model>/calibration.json` is one calibration of
the raw scores on the whole `data.threshold_trials` list, with the model checksum it belongs to. For `identify`,
`exp/<model>/identification_calibration.json` calibrates the enrolment condition (a speaker table's rows, each the
mean of several recordings, against one recording) on the first half of that list's set's people
(`scoring.identification`).

Every row carries 95% intervals of its columns from one bootstrap over the test speakers (`stages.score`'s
`interval_columns`). A back-end row this run does not write (PLDA turned off, fusion of fewer than two models, halves
without both kinds of trial) is removed, so that the results table never shows one made under another config.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pipeline.embedding_files import load_embeddings
from pipeline.experiment import model_checksum
from pipeline.recipe_layout import (CALIBRATION_FILE, IDENTIFICATION_CALIBRATION_FILE, PLDA_FILE, embeddings_dir,
                                    score_row)
from pipeline.scoring import (PLDA, Calibration, Fusion, PLDAScorer, Scorer, cllr, compute_act_dcf, metric_columns,
                              min_cllr, score_trials_with)
from pipeline.scoring.identification import IdentificationCalibration
from pipeline.utils.atomic import write_text_atomic
from pipeline.utils.config import fingerprint
from pipeline.utils.datadir import DataDir
from pipeline.utils.stage import clear_done, file_digest, is_done, mark_done, output_key
from pipeline.utils.trials import Trials

BACKEND_VERSION = 4     # bumped when the back-end rows are computed or written differently
PLDA_VERSION = 1        # bumped when the PLDA is trained differently
CALIBRATION_VERSION = 2  # bumped when exp/<model>/calibration.json is trained differently (2: at p_target)
FUSION_DIR = "fusion"    # exp/fusion/scores/<set>_<trials>.json: the fusion's rows


@dataclass(frozen=True)
class BackendSettings:
    """The `scoring:` keys of the back end."""
    p_target: float = 0.01          # actDCF's operating point and verify's decision prior
    fusion: tuple[str, ...] | None = None   # the models fused; None: every model scored
    plda_lda_dim: int | None = 128  # None: no PLDA rows
    p_unknown: float = 0.5          # identify's prior that a speaker is none of the enrolled people

    @classmethod
    def from_config(cls, scoring: dict[str, Any]) -> "BackendSettings":
        plda = scoring.get("plda", {"lda_dim": 128})
        fusion = scoring.get("fusion")
        return cls(float(scoring.get("p_target", 0.01)), tuple(fusion) if fusion else None,
                   None if plda is None else int(plda.get("lda_dim", 128)),
                   float(scoring.get("identify_p_unknown", 0.5)))


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
    """The back-end rows of one trials list, from the models' stage-6 scores (`sources(model)`: raw, AS-Norm and,
    with a PLDA, PLDA)."""

    def __init__(self, trials: Trials, data: DataDir, sources: Callable[[str], dict[str, np.ndarray]],
                 settings: BackendSettings, replicates: int, intervals: Callable[..., dict[str, str]]):
        self.sources = sources
        self.trials, self.labels, self.settings = trials, trials.labels.astype(np.int8), settings
        self.replicates, self.intervals, self.data = replicates, intervals, data
        halves = speaker_halves(data.spk_tables.get("spk2gender", {}), set(data.utt2spk.values()))
        self.half_enroll = np.array([halves[data.utt2spk[u]] for u in trials.enroll.tolist()])
        self.half_test = np.array([halves[data.utt2spk[u]] for u in trials.test.tolist()])
        self.usable = all(has_both_classes(self.labels, (self.half_enroll == h) & (self.half_test == h))
                          for h in (0, 1))

    def row(self, name: str, llrs: np.ndarray, base: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """A results row of LLRs: the base row's identity columns, then the metrics."""
        row = {k: base[k] for k in ("params", "front end", "trials", "trials scored") if k in base}
        row = {"model": name, **row, **extra}
        row.update(metric_columns(llrs, self.labels))
        row.update(llr_columns(llrs, self.labels, self.settings.p_target))
        row.update(self.intervals(llrs, self.trials, self.data.utt2spk, self.replicates,
                                  llr_prior=self.settings.p_target))
        row["embeddings"] = base.get("embeddings", {})
        return row

    def calibrated(self, model: str, base: dict[str, Any]) -> dict[str, Any]:
        sources = self.sources(model)

        def fit_apply(train: np.ndarray, apply: np.ndarray) -> tuple[np.ndarray, str]:
            source = best_source(sources, self.labels, train)
            calibration = Calibration.fit(sources[source][train], self.labels[train], self.settings.p_target)
            return calibration.apply(sources[source][apply]), source
        llrs, chosen = cross_fitted(self.labels, self.half_enroll, self.half_test, fit_apply)
        return self.row(f"{model} calibrated", llrs, base, **{"calibrated from": " / ".join(chosen)})

    def fused(self, models: list[str], bases: dict[str, dict[str, Any]]) -> dict[str, Any]:
        sources = {model: self.sources(model) for model in models}

        def fit_apply(train: np.ndarray, apply: np.ndarray) -> tuple[np.ndarray, str]:
            picked = {m: best_source(s, self.labels, train) for m, s in sources.items()}
            scores = {m: sources[m][picked[m]] for m in models}
            fusion = Fusion.fit({m: s[train] for m, s in scores.items()}, self.labels[train], self.settings.p_target)
            return fusion.apply({m: s[apply] for m, s in scores.items()}), ", ".join(
                f"{m} {picked[m]} {fusion.weights[m]:+.2f}" for m in models)
        llrs, chosen = cross_fitted(self.labels, self.half_enroll, self.half_test, fit_apply)
        embeddings = {k: v for base in bases.values() for k, v in base.get("embeddings", {}).items()}
        base = {"trials": next(iter(bases.values()))["trials"],
                "trials scored": next(iter(bases.values()))["trials scored"], "embeddings": embeddings}
        return self.row(FUSION_DIR, llrs, base, **{"front end": "fusion of " + ", ".join(models),
                                                   "calibrated from": " | ".join(chosen)})

    def plda(self, model: str, scores: np.ndarray, plda: PLDA, base: dict[str, Any]) -> dict[str, Any]:
        return self.row(f"{model}/plda", scores, base,
                        **{"front end": f"{base['front end']}; PLDA (LDA {plda.lda.shape[0]})"})


def train_plda(exp_dir: Path, cohort_set: str, cohort_utt2spk: dict[str, str], lda_dim: int,
               log: logging.Logger) -> PLDA | None:
    """PLDA on the cohort set's full-utterance embeddings, kept as exp/<model>/plda.npz while they are current; None
    (said in the log) when the set is too small to estimate its covariances."""
    emb_dir = embeddings_dir(exp_dir, cohort_set)
    key = fingerprint(PLDA_VERSION, output_key(emb_dir, "extract"), lda_dim)
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
    """exp/<model>/calibration.json: the raw scores of a whole list mapped to LLRs, for verify and SpeakerModel,
    trained at the prior verify decides at."""
    calibration = Calibration.fit(scores, labels, p_target)
    record = {"version": CALIBRATION_VERSION, "calibration": json.loads(calibration.to_json()), "trials": trials_name,
              "p_target": p_target, "model checksum": model_checksum(exp_dir)}
    write_text_atomic(exp_dir / CALIBRATION_FILE, json.dumps(record, indent=1) + "\n")


def save_identification_calibration(exp_dir: Path, scorer: Scorer, recordings: dict[str, np.ndarray], data: DataDir,
                                    test_set: str, p_unknown: float, log: logging.Logger) -> None:
    """exp/<model>/identification_calibration.json: the enrolment condition calibrated on the first of the set's two
    speaker-disjoint halves (`speaker_halves`), for `identify`; the other half is left to evaluate it on."""
    halves = speaker_halves(data.spk_tables.get("spk2gender", {}), set(data.utt2spk.values()))
    dev = [s for s, half in halves.items() if half == 0]
    try:
        fitted = IdentificationCalibration.fit(scorer, recordings, data.spk2utt, dev, test_set, p_unknown)
    except ValueError as err:
        log.warning("%s: no identification calibration (%s)", exp_dir.name, err)
        (exp_dir / IDENTIFICATION_CALIBRATION_FILE).unlink(missing_ok=True)
        return
    record = {**json.loads(fitted.to_json()), "model checksum": model_checksum(exp_dir)}
    write_text_atomic(exp_dir / IDENTIFICATION_CALIBRATION_FILE, json.dumps(record, indent=1) + "\n")
    log.info("%s: identification calibrated on %d people of %s (%d test recordings): llr = %.3f * score %+.3f",
             exp_dir.name, len(fitted.speakers), test_set, fitted.test_recordings, fitted.calibration.scale,
             fitted.calibration.offset)


def backend_rows(exp_root: Path, data_root: Path, test_set: str, models: list[str], trials_name: str,
                 trials: Trials, rows: dict[str, dict[str, Any]], sources: Callable[[str], dict[str, np.ndarray]],
                 pldas: dict[str, PLDA | None], recordings: Callable[[str], dict[str, np.ndarray]],
                 settings: BackendSettings, replicates: int, intervals: Callable[..., dict[str, str]],
                 log: logging.Logger) -> None:
    """Write the calibrated, PLDA and fusion rows of one list (nothing is done when they are current), and remove
    those this config no longer makes. `rows`: each model's stage-6 row of the list; `sources(model)`: its scores of
    the list (raw and AS-Norm; PLDA scores are added here); `pldas`: each model's PLDA, None for a model scored
    otherwise; `recordings(model)`: what stage 5 wrote for the set, for the PLDA rows."""
    data = DataDir.load(data_root / test_set)
    inputs = {m: file_digest(score_row(exp_root / m, test_set, trials_name).with_suffix(".asnorm.score"))
              for m in models}
    rows_settings = {k: v for k, v in asdict(settings).items() if k != "p_unknown"}   # identify's alone
    key = fingerprint(BACKEND_VERSION, rows_settings, replicates, sorted(inputs.items()), sorted(rows),
                      {m: output_key(exp_root / m, "plda") for m, plda in pldas.items() if plda is not None},
                      {m: file_digest(score_row(exp_root / m, test_set, trials_name).with_suffix(".score"))
                       for m in models})
    stem = f"{test_set}_{trials_name}"
    marker_dir = exp_root / FUSION_DIR / "scores"
    marker_dir.mkdir(parents=True, exist_ok=True)
    if is_done(marker_dir, f"backend.{stem}", key):
        return
    clear_done(marker_dir, f"backend.{stem}")
    made = {m: score_row(exp_root / m, test_set, trials_name) for m in models}
    stale = [path.with_name(path.stem + suffix + ".json") for path in made.values()
             for suffix in (".calibrated", ".plda")] + [marker_dir / f"{stem}.json"]
    # A model's PLDA scores are a third source beside its raw and AS-Norm ones: its calibrated row and the fusion
    # take whichever of them the training half calibrates best (PLDA took ResNet34 from 19.6 to 14.1% on the demo).
    plda_scores = {m: score_trials_with(PLDAScorer(plda), recordings(m), trials)
                   for m, plda in pldas.items() if plda is not None and m in models}

    def sources_with_plda(model: str) -> dict[str, np.ndarray]:
        found = sources(model)
        return {**found, "plda": plda_scores[model]} if model in plda_scores else found
    backend = ListBackend(trials, data, sources_with_plda, settings, replicates, intervals)
    written = []
    if not backend.usable:
        log.warning("%s %s: a half of the test people has no target or no non-target trial among themselves: no "
                    "calibrated or fused rows", test_set, trials_name)
    else:
        for model in models:
            out = made[model]
            rows_of = {".calibrated": backend.calibrated(model, rows[model])}
            if model in plda_scores:
                rows_of[".plda"] = backend.plda(model, plda_scores[model], pldas[model], rows[model])
            for suffix, row in rows_of.items():
                path = out.with_name(out.stem + suffix + ".json")
                write_text_atomic(path, json.dumps(row, indent=1))
                written.append(path)
        fused = [m for m in (settings.fusion or models) if m in rows]
        if len(fused) >= 2:
            path = marker_dir / f"{stem}.json"
            write_text_atomic(path, json.dumps(backend.fused(fused, {m: rows[m] for m in fused}), indent=1))
            written.append(path)
    for path in stale:
        if path not in written and path.is_file():
            path.unlink()
            log.info("%s: removed, this config no longer makes it", path)
    mark_done(marker_dir, f"backend.{stem}", key, written)
