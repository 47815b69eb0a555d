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
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pipeline.embed import load_embeddings, load_final_model, load_mean_embedding
from pipeline.experiment import check_made_with, model_checksum
from pipeline.scoring import (as_norm_trials, metric_columns, plot_det, plot_score_histogram,
                              read_scores, results_table, score_trials, speaker_bootstrap_eer, speaker_means,
                              write_scores)
from pipeline.models.gmm_ubm import linear_scores
from pipeline.recipe_layout import CALIBRATION_FILE, embeddings_dir, score_row
from pipeline.scoring.linear import as_norm_linear, cohort_vectors, swapped, trial_vectors
from pipeline.scoring.metrics import compute_eer
from pipeline.systems import LINEAR_ARCHIVES, system_of
from pipeline.utils.archive import iterate_scp
from pipeline.utils.atomic import write_text_atomic
from pipeline.utils.datadir import DataDir
from pipeline.utils.config import fingerprint, load_config
from pipeline.utils.stage import StageError, clear_done, file_digest, is_done, mark_done, output_key
from pipeline.utils.trials import Trials, read_trials, trials_files
from pipeline.stages.backend import BackendSettings, backend_rows, save_deployed_calibration, train_plda

DONE_NAME = "score"   # one marker per trials list: `exp/<model>/scores/.done.score.<set>_<trials>`
SCORE_VERSION = 1      # bumped when stage 6 computes or writes a list's scores or row differently
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


def confidence_interval(scores: np.ndarray, trials: Trials, utt2spk: dict[str, str], replicates: int) -> str:
    """The 95% interval of the EER from a bootstrap over the test speakers, as `[low, high]` in percent."""
    interval = speaker_bootstrap_eer(scores, trials.labels, [utt2spk[u] for u in trials.enroll.tolist()],
                                     [utt2spk[u] for u in trials.test.tolist()], replicates=replicates)
    return f"[{100 * interval.low:.2f}, {100 * interval.high:.2f}]"


Scorer = Callable[[Trials], tuple[np.ndarray, np.ndarray]]  # trials -> (scores, AS-Norm scores)


def cosine_scorer(test_dir: Path, cohort_dir: Path, cohort_utt2spk: dict[str, str], top_n: int
                  ) -> tuple[set[str], Scorer]:
    """A network's scores: cosine of full utterance + crops with the training mean removed, and AS-Norm against
    the cohort speakers' mean embeddings; with the utterances it can score."""
    embeddings = load_embeddings(test_dir)
    cohort_embeddings = load_embeddings(cohort_dir)
    train_mean = load_mean_embedding(cohort_dir)
    # Raw speaker means: as_norm_trials removes the training mean from cohort and trials alike.
    _, cohort = speaker_means({u: e[0] for u, e in cohort_embeddings.items()}, cohort_utt2spk)

    def score(trials: Trials) -> tuple[np.ndarray, np.ndarray]:
        scores = score_trials(embeddings, trials, mean=train_mean)
        return scores, as_norm_trials(scores, embeddings, trials, cohort, top_n, mean=train_mean)
    return set(embeddings), score


def linear_scorer(test_dir: Path, cohort_dir: Path, cohort_utt2spk: dict[str, str], top_n: int,
                  symmetric: bool = False) -> tuple[set[str], Scorer]:
    """The GMM-UBM's scores: linear-scoring LLRs, and their AS-Norm against the cohort speakers; `symmetric`: each
    the mean of the trial's two directions (`scoring.linear.swapped`)."""
    enroll, test = (dict(iterate_scp(test_dir / f"{name}.scp")) for name in LINEAR_ARCHIVES)
    cohort_enroll, cohort_test = cohort_vectors(
        *(dict(iterate_scp(cohort_dir / f"{name}.scp")) for name in LINEAR_ARCHIVES), cohort_utt2spk)

    def one_way(vectors: tuple) -> tuple[np.ndarray, np.ndarray]:
        scores = linear_scores(*vectors)
        return scores, as_norm_linear(scores, vectors, cohort_enroll, cohort_test, top_n)

    def score(trials: Trials) -> tuple[np.ndarray, np.ndarray]:
        vectors = trial_vectors(enroll, test, trials)
        forward = one_way(vectors)
        if not symmetric:
            return forward
        backward = one_way(swapped(vectors))
        return 0.5 * (forward[0] + backward[0]), 0.5 * (forward[1] + backward[1])
    return set(enroll), score


SCORERS = {"cosine": cosine_scorer, "linear": linear_scorer}   # by the system's `scoring`


def score_model_set(exp_dir: Path, data_root: Path, test_set: str, cohort_set: str, top_n: int, replicates: int,
                    log: logging.Logger) -> list[tuple[str, dict[str, Any], np.ndarray | None, Trials]]:
    """Score every trials list of one test set with one model; return (trials name, row, scores, usable trials),
    scores None for a list whose scores were complete and current (nothing recomputed: `read_scores` has them)."""
    emb_dirs = {name: embeddings_dir(exp_dir, name) for name in (test_set, cohort_set)}
    keys = {name: output_key(path, "extract") for name, path in emb_dirs.items()}
    for path in emb_dirs.values():   # both of the current final.pt, not of one trained before or after
        check_made_with(path, exp_dir)
    data = DataDir.load(data_root / test_set)
    cohort_utt2spk = data_root / cohort_set / "utt2spk"
    # What every list's scores and row are computed from besides the list itself.
    checksum = model_checksum(exp_dir)
    inputs_key = fingerprint(SCORE_VERSION, sorted(keys.items()), checksum, top_n, replicates,
                             file_digest(data_root / test_set / "utt2spk"), sorted(data.unusable),
                             file_digest(cohort_utt2spk))
    out_dir = exp_dir / "scores"
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    lists = trials_files(data_root / test_set)
    if not lists:
        raise StageError(f"{data_root / test_set}: no trials* file to score")
    scorer = None
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
        if scorer is None:   # embeddings are read only when some list needs scoring
            checkpoint = load_final_model(exp_dir)
            model_cfg = checkpoint["config"]["model"]
            options = {"symmetric": bool(model_cfg.get("symmetric", False))} if system_of(model_cfg).scoring == \
                "linear" else {}
            scorer = SCORERS[system_of(model_cfg).scoring](emb_dirs[test_set], emb_dirs[cohort_set],
                                                           DataDir.load(data_root / cohort_set).utt2spk, top_n,
                                                           **options)
        known, score = scorer
        missing = set(trials.enroll.tolist() + trials.test.tolist()) - known
        if missing:
            raise StageError(f"{emb_dirs[test_set]}: no embedding of {sorted(missing)[0]!r} ({len(missing)} in all), "
                             f"which {trials_path} names: rerun stage 5 (embeddings) for {test_set}")
        scores, normed = score(trials)
        write_scores(out_dir / f"{stem}.score", trials, scores)
        write_scores(out_dir / f"{stem}.asnorm.score", trials, normed)
        row: dict[str, Any] = {"model": exp_dir.name, "params": f"{checkpoint['params'] / 1e6:.2f} M",
                               "front end": checkpoint["front_end"], "trials": f"{test_set}/{trials_path.name}",
                               "trials scored": f"{len(trials):,} of {len(listed):,}"}
        eer = compute_eer(scores, trials.labels)   # once: the row, its threshold and the histogram
        row.update(metric_columns(scores, trials.labels, eer=eer[0]))
        row.update(metric_columns(normed, trials.labels, suffix=" AS-Norm"))
        row["EER 95% CI"] = confidence_interval(scores, trials, data.utt2spk, replicates)
        row["EER 95% CI AS-Norm"] = confidence_interval(normed, trials, data.utt2spk, replicates)
        row["EER threshold"] = float(eer[1])
        row["embeddings"] = {str(emb_dirs[name]): key for name, key in keys.items()}
        row["model checksum"] = checksum
        write_text_atomic(row_path, json.dumps(row, indent=1))
        plot_score_histogram(scores, trials.labels, out_dir / f"{stem}.hist.png", f"{exp_dir.name}: {stem}", eer)
        log.info("%s %s: EER %.2f%% %s (AS-Norm %.2f%% %s), %d of %d trials", exp_dir.name, stem, row["EER %"],
                 row["EER 95% CI"], row["EER % AS-Norm"], row["EER 95% CI AS-Norm"], len(trials), len(listed))
        mark_done(out_dir, done_name, key, [out_dir / f"{stem}.score", out_dir / f"{stem}.asnorm.score", row_path,
                                            out_dir / f"{stem}.hist.png"])
        results.append((trials_path.name, row, scores, trials))
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
    `threshold_trials` (`<set>/<trials>`): the list whose raw scores calibrate `verify`'s LLRs."""
    settings = settings or BackendSettings()
    cohort_utt2spk = DataDir.load(data_root / cohort_set).utt2spk
    pldas = {}
    for model in models:
        embedding = system_of(load_config(exp_root / model / "config.yaml")["model"]).scoring == "cosine"
        pldas[model] = (train_plda(exp_root / model, cohort_set, cohort_utt2spk, settings.plda_lda_dim, log)
                        if embedding and settings.plda_lda_dim else None)
    for test_set in sets:
        scored: dict[str, dict[str, tuple[dict[str, Any], np.ndarray | None, Trials]]] = {}
        for model in models:
            for trials_name, row, scores, trials in score_model_set(exp_root / model, data_root, test_set,
                                                                    cohort_set, top_n, replicates, log):
                scored.setdefault(trials_name, {})[model] = (row, scores, trials)
        for trials_name, by_model in scored.items():
            curves = {model: (scores if scores is not None else
                              read_scores(score_row(exp_root / model, test_set, trials_name).with_suffix(".score"),
                                          len(trials)), trials.labels)
                      for model, (_, scores, trials) in by_model.items()}
            plot = exp_root / f"det_{test_set}_{trials_name}.png"
            if not plot.is_file() or any(scores is not None for _, scores, _ in by_model.values()):
                plot_det(curves, plot, f"DET: {test_set} {trials_name}")   # else the same curves as when drawn
            trials = next(iter(by_model.values()))[2]
            backend_rows(exp_root, data_root, test_set, list(by_model), trials_name, trials,
                         {m: row for m, (row, _, _) in by_model.items()}, pldas, settings, replicates,
                         confidence_interval, log)
            if threshold_trials == f"{test_set}/{trials_name}":
                for model, (scores, labels) in curves.items():
                    if by_model[model][1] is not None or not (exp_root / model / CALIBRATION_FILE).is_file():
                        save_deployed_calibration(exp_root / model, scores, labels, threshold_trials,
                                                  settings.p_target)
    return write_results(exp_root, log)
