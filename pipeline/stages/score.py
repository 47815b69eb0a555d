"""Stage 6: score every trials list of every test set with every model; metrics, plots, results table.

For model M, set S and trials list T (a file `data/S/trials*`):
  exp/M/scores/S_T.score         Kaldi-style `enroll test score` (cosine, training mean removed, full+crops; the
                                 GMM-UBM's linear-scoring LLR)
  exp/M/scores/S_T.asnorm.score  the same after AS-Norm (cohort: training-speaker mean embeddings)
  exp/M/scores/S_T.json          the metrics row of the results table, and the keys of the embeddings it came from
  exp/M/scores/S_T.hist.png      target / non-target score histogram
  exp/det_S_T.png                DET curves of all models
  exp/results.md                 the results table of every current row under exp/*/scores/

Trials naming an utterance that stage 1 found unusable are left out and counted (in the log and in the table's
`trials scored` column); a trial naming an utterance the set does not have, or whose label disagrees with the
set's utt2spk (edited after the trials were made), is an error naming the file and line.
A row whose embeddings changed after it was scored is stale and stays out of the table.
"""
from __future__ import annotations

import json
import logging
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.embedding_files import load_mean_embedding, load_recordings
from pipeline.experiment import check_made_with, model_checksum
from pipeline.recipe_layout import CALIBRATION_FILE, IDENTIFICATION_CALIBRATION_FILE, embeddings_dir, score_row
from pipeline.scoring import (metric_columns, plot_det, plot_score_histogram, read_scores, results_table,
                              gather_rows, raw_and_normalised, scorer_for, speaker_rows, with_as_norm,
                              write_scores)
from pipeline.scoring.bootstrap import speaker_bootstrap
from pipeline.scoring.metrics import compute_eer
from pipeline.systems import system_of
from pipeline.utils.atomic import write_text_atomic
from pipeline.utils.datadir import DataDir
from pipeline.utils.config import fingerprint, load_config
from pipeline.utils.stage import StageError, clear_done, file_digest, is_done, mark_done, output_key
from pipeline.utils.trials import Trials, read_trials, trials_files
from pipeline.stages.backend import (CALIBRATION_VERSION, BackendSettings, backend_rows, save_deployed_calibration,
                                     save_identification_calibration, train_plda)

DONE_NAME = "score"   # one marker per trials list: `exp/<model>/scores/.done.score.<set>_<trials>`
SCORE_VERSION = 2      # bumped when stage 6 computes or writes a list's scores or row differently
# Row fields that are not columns of the results table.
PRIVATE_FIELDS = ("EER threshold", "embeddings", "model checksum")


def usable_trials(trials: Trials, data: DataDir, log: logging.Logger) -> Trials:
    """The trials whose two utterances are usable; trials naming an unusable one are counted in the log. A trial
    naming an utterance the data dir does not have is a TrialsError naming the file and line."""
    trials.check_known(data.utt2spk, "an utterance of the set (utt2spk)")
    left_out = trials.naming_any_of(data.unusable)
    if left_out.any():
        log.warning("%s: %d of %d trials name utterances that stage 1 found unusable (%s): left out",
                    trials.path, int(left_out.sum()), len(trials), ", ".join(sorted(data.unusable)[:5]))
    return trials.where(~left_out)


def interval_columns(scores: np.ndarray, trials: Trials, utt2spk: dict[str, str], replicates: int, *,
                     suffix: str = "", llr_prior: float | None = None) -> dict[str, str]:
    """The 95% intervals of a row's columns from one bootstrap over the test speakers (`speaker_bootstrap`: every
    column from the same resamplings), as `[low, high]`, keyed `EER 95% CI` (in percent), `minDCF0.01 95% CI`,
    `minDCF0.001 95% CI`, and for LLRs (`llr_prior`) `Cllr`, `minCllr` and `actDCF<prior>`, each + `suffix`."""
    intervals = speaker_bootstrap(scores, trials.labels, [utt2spk[u] for u in trials.enroll.tolist()],
                                  [utt2spk[u] for u in trials.test.tolist()], llr_prior=llr_prior,
                                  replicates=replicates)
    return {f"{name} 95% CI{suffix}": (f"[{100 * low:.2f}, {100 * high:.2f}]" if name == "EER" else
                                       f"[{low:.4f}, {high:.4f}]")
            for name, (low, high) in intervals.items()}


class ModelScoring:
    """One model's scorers (`scoring.scorer_for`: raw, and with AS-Norm against the cohort speakers) and what stage 5
    wrote for one test set, each read once and only when something needs it (a list to score, a PLDA row)."""

    def __init__(self, exp_dir: Path, data_root: Path, test_set: str, cohort_set: str, top_n: int):
        self.exp_dir, self.data_root, self.test_set, self.cohort_set = exp_dir, data_root, test_set, cohort_set
        self.top_n = top_n
        self.emb_dirs = {name: embeddings_dir(exp_dir, name) for name in (test_set, cohort_set)}

    @cached_property
    def model_config(self) -> dict[str, Any]:
        return load_config(self.exp_dir / "config.yaml")["model"]

    @cached_property
    def checkpoint(self) -> dict[str, Any]:
        from pipeline.embed import load_final_model   # torch: only when a list is scored
        return load_final_model(self.exp_dir)

    @cached_property
    def recordings(self) -> dict[str, np.ndarray]:
        return load_recordings(self.emb_dirs[self.test_set], system_of(self.model_config))

    @cached_property
    def scorers(self) -> tuple[Any, Any]:
        """(scorer, scorer with AS-Norm); the cohort's rows are its speakers' mean full-utterance vectors."""
        model_cfg = self.checkpoint["config"]["model"]
        system = system_of(model_cfg)
        cohort_dir = self.emb_dirs[self.cohort_set]
        scorer = scorer_for(model_cfg, load_mean_embedding(cohort_dir) if system.speaker_embedding else None)
        cohort_utt2spk = DataDir.load(self.data_root / self.cohort_set).utt2spk
        _, cohort = speaker_rows(scorer, load_recordings(cohort_dir, system, with_crops=False), cohort_utt2spk)
        return scorer, with_as_norm(scorer, cohort, self.top_n)

    def score(self, trials: Trials) -> tuple[np.ndarray, np.ndarray]:
        """(scores, AS-Norm scores) of the trials, each recording prepared once."""
        scorer, normed = self.scorers
        _, rows, ie, it = gather_rows(scorer, self.recordings, trials)
        return raw_and_normalised(normed, rows, rows, ie, it)


Sources = dict[str, np.ndarray]   # a list's scores by source: "raw" and "AS-Norm"


def score_model_set(model: ModelScoring, replicates: int, log: logging.Logger
                    ) -> list[tuple[str, dict[str, Any], Sources | None, Trials]]:
    """Score every trials list of one test set with one model; return (trials name, row, scores by source, usable
    trials), the scores None for a list whose scores were complete and current (nothing recomputed)."""
    exp_dir, data_root, test_set, emb_dirs = model.exp_dir, model.data_root, model.test_set, model.emb_dirs
    keys = {name: output_key(path, "extract") for name, path in emb_dirs.items()}
    for path in emb_dirs.values():   # both of the current final.pt, not of one trained before or after
        check_made_with(path, exp_dir)
    data = DataDir.load(data_root / test_set)
    cohort_utt2spk = data_root / model.cohort_set / "utt2spk"
    # What every list's scores and row are computed from besides the list itself.
    checksum = model_checksum(exp_dir)
    inputs_key = fingerprint(SCORE_VERSION, sorted(keys.items()), checksum, model.top_n, replicates,
                             file_digest(data_root / test_set / "utt2spk"), sorted(data.unusable),
                             file_digest(cohort_utt2spk))
    out_dir = exp_dir / "scores"
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    lists = trials_files(data_root / test_set)
    if not lists:
        raise StageError(f"{data_root / test_set}: no trials* file to score")
    for trials_path in lists:
        listed = read_trials(trials_path)
        trials = usable_trials(listed, data, log)
        trials.check_speakers(data.utt2spk, data_root / test_set / "utt2spk")   # else the bootstrap fails
        row_path = score_row(exp_dir, test_set, trials_path.name)
        stem = row_path.stem
        done_name, key = f"{DONE_NAME}.{stem}", fingerprint(inputs_key, file_digest(trials_path))
        if is_done(out_dir, done_name, key):
            log.info("%s %s: scores are complete and current, nothing to do", exp_dir.name, stem)
            results.append((trials_path.name, json.loads(row_path.read_text()), None, trials))
            continue
        clear_done(out_dir, done_name)
        missing = set(trials.enroll.tolist() + trials.test.tolist()) - set(model.recordings)
        if missing:
            raise StageError(f"{emb_dirs[test_set]}: no embedding of {sorted(missing)[0]!r} ({len(missing)} in all), "
                             f"which {trials_path} names: rerun stage 5 (embeddings) for {test_set}")
        scores, normed = model.score(trials)
        write_scores(out_dir / f"{stem}.score", trials, scores)
        write_scores(out_dir / f"{stem}.asnorm.score", trials, normed)
        checkpoint = model.checkpoint
        row: dict[str, Any] = {"model": exp_dir.name, "params": f"{checkpoint['params'] / 1e6:.2f} M",
                               "front end": checkpoint["front_end"], "trials": f"{test_set}/{trials_path.name}",
                               "trials scored": f"{len(trials):,} of {len(listed):,}"}
        eer = compute_eer(scores, trials.labels)   # once: the row, its threshold and the histogram
        row.update(metric_columns(scores, trials.labels, eer=eer[0]))
        row.update(metric_columns(normed, trials.labels, suffix=" AS-Norm"))
        row.update(interval_columns(scores, trials, data.utt2spk, replicates))
        row.update(interval_columns(normed, trials, data.utt2spk, replicates, suffix=" AS-Norm"))
        row["EER threshold"] = float(eer[1])
        row["embeddings"] = {str(emb_dirs[name]): key for name, key in keys.items()}
        row["model checksum"] = checksum
        write_text_atomic(row_path, json.dumps(row, indent=1))
        plot_score_histogram(scores, trials.labels, out_dir / f"{stem}.hist.png", f"{exp_dir.name}: {stem}", eer)
        log.info("%s %s: EER %.2f%% %s (AS-Norm %.2f%% %s), %d of %d trials", exp_dir.name, stem, row["EER %"],
                 row["EER 95% CI"], row["EER % AS-Norm"], row["EER 95% CI AS-Norm"], len(trials), len(listed))
        mark_done(out_dir, done_name, key, [out_dir / f"{stem}.score", out_dir / f"{stem}.asnorm.score", row_path,
                                            out_dir / f"{stem}.hist.png"])
        results.append((trials_path.name, row, {"raw": scores, "AS-Norm": normed}, trials))
    return results


def is_current(row: dict[str, Any]) -> bool:
    """Whether the embeddings a results row was computed from are still the ones on disk."""
    for directory, key in row.get("embeddings", {}).items():
        try:
            if output_key(directory, "extract") != key:
                return False
        except StageError:
            return False
    return "embeddings" in row


def collect_results(exp_root: Path, log: logging.Logger | None = None) -> list[dict[str, Any]]:
    """Every current metrics row (all models, all sets, including evaluated user corpora)."""
    rows = []
    for path in sorted(exp_root.glob("*/scores/*.json")):
        row = json.loads(path.read_text())
        if is_current(row):
            rows.append(row)
        elif log is not None:
            log.warning("%s is stale (its embeddings changed or are gone since it was scored): left out of the "
                        "results table", path)
    return sorted(rows, key=lambda r: (r["trials"], r["model"]))


def write_results(exp_root: Path, log: logging.Logger | None = None) -> str:
    rows = [{k: v for k, v in r.items() if k not in PRIVATE_FIELDS} for r in collect_results(exp_root, log)]
    table = results_table(rows)
    write_text_atomic(exp_root / "results.md", table + "\n")
    return table


def score(exp_root: Path, data_root: Path, models: list[str], sets: list[str], cohort_set: str, top_n: int,
          replicates: int, log: logging.Logger, settings: BackendSettings | None = None,
          threshold_trials: str | None = None) -> str:
    """Stage 6 for every model and test set, then the back end's rows (`backend.py`); returns the results table.
    `threshold_trials` (`<set>/<trials>`): the list whose raw scores calibrate `verify`'s LLRs, and whose set's
    first half of the people calibrates `identify`'s (`backend.save_identification_calibration`)."""
    settings = settings or BackendSettings()
    cohort_utt2spk = DataDir.load(data_root / cohort_set).utt2spk
    pldas = {}
    for model in models:
        embedding = system_of(load_config(exp_root / model / "config.yaml")["model"]).speaker_embedding
        pldas[model] = (train_plda(exp_root / model, cohort_set, cohort_utt2spk, settings.plda_lda_dim, log)
                        if embedding and settings.plda_lda_dim else None)
    for test_set in sets:
        scoring = {model: ModelScoring(exp_root / model, data_root, test_set, cohort_set, top_n) for model in models}
        scored: dict[str, dict[str, tuple[dict[str, Any], Sources | None, Trials]]] = {}
        for model in models:
            for trials_name, row, sources, trials in score_model_set(scoring[model], replicates, log):
                scored.setdefault(trials_name, {})[model] = (row, sources, trials)
        for trials_name, by_model in scored.items():
            trials = next(iter(by_model.values()))[2]
            fresh = any(sources is not None for _, sources, _ in by_model.values())
            loaded: dict[str, Sources] = {}

            def sources_of(model: str) -> Sources:
                """The model's scores of the list: fresh from memory, else read from its score files, once."""
                if model not in loaded:
                    loaded[model] = by_model[model][1] or read_sources(exp_root / model, test_set, trials_name,
                                                                       len(trials))
                return loaded[model]
            plot = exp_root / f"det_{test_set}_{trials_name}.png"
            if not plot.is_file() or fresh:   # else the same curves as when drawn
                plot_det({m: (sources_of(m)["raw"], trials.labels) for m in by_model}, plot,
                         f"DET: {test_set} {trials_name}")
            backend_rows(exp_root, data_root, test_set, list(by_model), trials_name, trials,
                         {m: row for m, (row, _, _) in by_model.items()}, sources_of,
                         {m: pldas[m] for m in by_model}, lambda m: scoring[m].recordings, settings, replicates,
                         interval_columns, log)
            if threshold_trials == f"{test_set}/{trials_name}":
                for model in by_model:
                    fresh_model = by_model[model][1] is not None
                    if fresh_model or not record_matches(exp_root / model / CALIBRATION_FILE,
                                                         {"p_target": settings.p_target, "trials": threshold_trials,
                                                          "version": CALIBRATION_VERSION}):
                        save_deployed_calibration(exp_root / model, sources_of(model)["raw"], trials.labels,
                                                  threshold_trials, settings.p_target)
                    if system_of(scoring[model].model_config).speaker_embedding and (fresh_model or not record_matches(
                            exp_root / model / IDENTIFICATION_CALIBRATION_FILE,
                            {"p_unknown": settings.p_unknown, "test_set": test_set})):
                        save_identification_calibration(exp_root / model, scoring[model].scorers[0],
                                                        scoring[model].recordings, DataDir.load(data_root / test_set),
                                                        test_set, settings.p_unknown, log)
    return write_results(exp_root, log)


def record_matches(path: Path, expected: dict[str, Any]) -> bool:
    """Whether a calibration record stage 6 wrote beside a model exists, belongs to its current final.pt, and was
    made with the `expected` settings (a changed prior or list makes it anew)."""
    if not path.is_file():
        return False
    record = json.loads(path.read_text())
    return record.get("model checksum") == model_checksum(path.parent) and all(
        record.get(key) == value for key, value in expected.items())


def read_sources(exp_dir: Path, test_set: str, trials_name: str, count: int) -> Sources:
    """A list's scores as stage 6 wrote them: raw and AS-Norm."""
    stem = score_row(exp_dir, test_set, trials_name)
    return {"raw": read_scores(stem.with_suffix(".score"), count),
            "AS-Norm": read_scores(stem.with_suffix(".asnorm.score"), count)}
