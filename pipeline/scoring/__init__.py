"""Stage 6: cosine scoring (full utterance + crops), AS-Norm, EER / minDCF, DET plots, results table; and the back end
that makes scores LLRs: Cllr / minCllr / actDCF, calibration, fusion, PLDA.

Its names are imported on first use (PEP 562): stage 5 and the API read `mean_embedding` without paying for
scipy.stats and matplotlib.
"""
from __future__ import annotations

import importlib
from typing import Any

_HOME = {
    "ASNorm": "scorer",
    "Calibrated": "scorer",
    "Calibration": "calibration",
    "CalibrationError": "calibration",
    "CosineScorer": "scorer",
    "EERInterval": "bootstrap",
    "Fusion": "fusion",
    "LinearScorer": "scorer",
    "PLDA": "plda",
    "PLDAScorer": "scorer",
    "RESULT_COLUMNS": "report",
    "ScoreTransform": "scorer",
    "Scorer": "scorer",
    "Symmetric": "scorer",
    "as_norm": "scorer",
    "as_norm_trials": "scorer",
    "bayes_threshold": "metrics",
    "cllr": "cllr",
    "compute_act_dcf": "metrics",
    "compute_eer": "metrics",
    "compute_min_dcf": "metrics",
    "cosine_scores": "scorer",
    "det_curve": "metrics",
    "fit_logistic_regression": "logistic_regression",
    "gather_rows": "scorer",
    "mean_embedding": "cosine",
    "metric_columns": "report",
    "min_cllr": "cllr",
    "pav_llrs": "cllr",
    "plot_det": "report",
    "plot_score_histogram": "report",
    "raw_and_normalised": "scorer",
    "read_scores": "report",
    "results_table": "report",
    "score_trials": "scorer",
    "score_trials_with": "scorer",
    "scorer_for": "scorer",
    "speaker_bootstrap_eer": "bootstrap",
    "speaker_means": "cosine",
    "speaker_rows": "scorer",
    "with_as_norm": "scorer",
    "write_scores": "report",
}

__all__ = [
    "ASNorm", "Calibrated", "CosineScorer", "LinearScorer", "PLDAScorer", "ScoreTransform", "Scorer", "Symmetric",
    "gather_rows", "raw_and_normalised", "score_trials_with", "scorer_for", "speaker_rows", "with_as_norm",
    "Calibration", "CalibrationError", "EERInterval", "Fusion", "PLDA", "RESULT_COLUMNS", "as_norm", "as_norm_trials",
    "bayes_threshold", "cllr", "compute_act_dcf", "compute_eer", "compute_min_dcf", "cosine_scores", "det_curve",
    "fit_logistic_regression", "mean_embedding", "metric_columns", "min_cllr", "pav_llrs", "plot_det",
    "plot_score_histogram", "read_scores", "results_table", "score_trials", "speaker_bootstrap_eer", "speaker_means",
    "write_scores",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    globals()[name] = value
    return value
