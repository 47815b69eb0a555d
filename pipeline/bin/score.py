"""Stage 6: score every trials list of every test set with every model; metrics, plots, results table.

For model M, set S and trials list T (a file `data/S/trials*`):
  exp/M/scores/S_T.score         Kaldi-style `enroll test score` (cosine, training mean removed, full+crops)
  exp/M/scores/S_T.asnorm.score  the same after AS-Norm (cohort: training-speaker mean embeddings)
  exp/M/scores/S_T.json          the metrics row of the results table
  exp/M/scores/S_T.hist.png      target / non-target score histogram
  exp/det_S_T.png                DET curves of all models
  exp/results.md                 the results table of every row found under exp/*/scores/
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
import numpy as np

from pipeline.scoring import (as_norm_trials, check_trials_keys, mean_embedding, metric_columns, plot_det,
                              plot_score_histogram, read_trials, results_table, score_trials, speaker_means,
                              write_scores)
from pipeline.scoring.metrics import compute_eer
from pipeline.utils.archive import iterate_scp
from pipeline.utils.config import load_config
from pipeline.utils.datadir import DataDir
from pipeline.utils.logging import get_logger


def load_embeddings(emb_dir: Path) -> dict[str, np.ndarray]:
    """utt -> (1 + k, dim): row 0 the full-utterance embedding, then its crop embeddings (if extracted)."""
    full_scp = emb_dir / "xvector.scp"
    if not full_scp.is_file():
        raise FileNotFoundError(f"{full_scp} not found: run stage 5 (embeddings) first")
    embeddings = {utt: vec[None, :] for utt, vec in iterate_scp(full_scp)}
    crops_scp = emb_dir / "xvector_crops.scp"
    if crops_scp.is_file():
        for utt, crops in iterate_scp(crops_scp):
            embeddings[utt] = np.concatenate([embeddings[utt], np.atleast_2d(crops)], axis=0)
    return embeddings


def model_facts(exp_dir: Path) -> dict[str, Any]:
    """Parameter count (without the training heads) and front end of a trained model, from what stage 4 froze."""
    from pipeline.bin.extract import load_embedder
    from pipeline.models import count_parameters

    cfg = load_config(exp_dir / "config.yaml")
    model_cfg = cfg["model"]
    components = (cfg.get("gmm") or {}).get("num_components", "?")
    numcep = (cfg.get("features") or {}).get("numcep", 80)
    front = []
    for name in model_cfg["inputs"]:
        if name.startswith("lgp_"):
            front.append(f"LGP {name[4:]} ({components} Gaussians)")
        elif any(model_cfg.get(k) for k in ("gmm_layer", "male_gmm_layer", "female_gmm_layer")):
            front.append(f"MFCC {numcep} + trainable GMM layer")
        else:
            front.append(f"MFCC {numcep}")
    params = count_parameters(load_embedder(exp_dir, device="cpu").model)
    return {"params": f"{params / 1e6:.2f} M", "front_end": " + ".join(front)}


def score_model_set(exp_dir: Path, data_root: Path, test_set: str, cohort_set: str, top_n: int,
                    log) -> list[tuple[str, dict[str, Any], np.ndarray, np.ndarray]]:
    """Score every trials list of one test set with one model; return (trials name, row, scores, labels)."""
    embeddings = load_embeddings(exp_dir / "embeddings" / test_set)
    cohort_embeddings = load_embeddings(exp_dir / "embeddings" / cohort_set)
    train_mean = mean_embedding(cohort_embeddings)
    utt2spk = DataDir.load(data_root / cohort_set).utt2spk
    # Raw speaker means: as_norm_trials removes the training mean from cohort and trials alike.
    _, cohort = speaker_means({u: e[0] for u, e in cohort_embeddings.items()}, utt2spk)
    out_dir = exp_dir / "scores"
    out_dir.mkdir(parents=True, exist_ok=True)
    facts = model_facts(exp_dir)
    results = []
    trials_paths = sorted(p for p in (data_root / test_set).glob("trials*") if p.is_file())
    if not trials_paths:
        raise FileNotFoundError(f"{data_root / test_set}: no trials* file to score")
    for trials_path in trials_paths:
        check_trials_keys(trials_path, embeddings.keys())
        trials = read_trials(trials_path)
        scores = score_trials(embeddings, trials, mean=train_mean)
        normed = as_norm_trials(scores, embeddings, trials, cohort, top_n, mean=train_mean)
        stem = f"{test_set}_{trials_path.name}"
        write_scores(out_dir / f"{stem}.score", trials, scores)
        write_scores(out_dir / f"{stem}.asnorm.score", trials, normed)
        row: dict[str, Any] = {"model": exp_dir.name, "params": facts.get("params"),
                               "front end": facts.get("front_end"), "trials": f"{test_set}/{trials_path.name}"}
        row.update(metric_columns(scores, trials.labels))
        row.update(metric_columns(normed, trials.labels, suffix=" AS-Norm"))
        row["EER threshold"] = float(compute_eer(scores, trials.labels)[1])
        tmp = out_dir / f"{stem}.json.tmp"
        tmp.write_text(json.dumps(row, indent=1))
        os.replace(tmp, out_dir / f"{stem}.json")
        plot_score_histogram(scores, trials.labels, out_dir / f"{stem}.hist.png", f"{exp_dir.name}: {stem}")
        log.info("%s %s: EER %.2f%% (AS-Norm %.2f%%), %d trials", exp_dir.name, stem, row["EER %"],
                 row["EER % AS-Norm"], len(scores))
        results.append((trials_path.name, row, scores, trials.labels))
    return results


def collect_results(exp_root: Path) -> list[dict[str, Any]]:
    """Every metrics row written so far (all models, all sets, including evaluated user corpora)."""
    rows = [json.loads(p.read_text()) for p in sorted(exp_root.glob("*/scores/*.json"))]
    return sorted(rows, key=lambda r: (r["trials"], r["model"]))


def write_results(exp_root: Path) -> str:
    rows = [{k: v for k, v in r.items() if k != "EER threshold"} for r in collect_results(exp_root)]
    table = results_table(rows)
    tmp = exp_root / "results.md.tmp"
    tmp.write_text(table + "\n")
    os.replace(tmp, exp_root / "results.md")
    return table


@click.command("score")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--override", "-o", multiple=True)
@click.option("--exp-root", default="exp", show_default=True, type=click.Path(file_okay=False))
@click.option("--models", required=True, help="space-separated model names (exp/<name>/)")
@click.option("--sets", required=True, help="space-separated test sets (data/<set>/trials*)")
@click.option("--cohort-set", required=True, help="training set: embedding mean and AS-Norm cohort")
def main(config_path: str, override: tuple[str, ...], exp_root: str, models: str, sets: str, cohort_set: str) -> None:
    """Score trials, compute EER / minDCF, draw DET curves and print the results table."""
    cfg = load_config(config_path, override)
    data_root = Path(cfg["data"]["root"])
    top_n = int(cfg.get("scoring", {}).get("asnorm_top_n", 300))
    root = Path(exp_root)
    log = get_logger("score", root / "log" / "score.log")
    for test_set in sets.split():
        curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        for model in models.split():
            for trials_name, _, scores, labels in score_model_set(root / model, data_root, test_set, cohort_set,
                                                                  top_n, log):
                curves.setdefault(trials_name, {})[model] = (scores, labels)
        for trials_name, by_model in curves.items():
            plot_det(by_model, root / f"det_{test_set}_{trials_name}.png", f"DET: {test_set} {trials_name}")
    click.echo(write_results(root))
