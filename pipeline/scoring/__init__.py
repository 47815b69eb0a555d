"""Stage 6: cosine scoring (full utterance + crops), AS-Norm, EER / minDCF, DET plots, results table; and the back end
that makes scores LLRs: Cllr / minCllr / actDCF, calibration, fusion, PLDA."""

from .bootstrap import EERInterval, speaker_bootstrap_eer
from .calibration import Calibration
from .cllr import cllr, min_cllr, pav_llrs
from .cosine import mean_embedding, speaker_means
from .fusion import Fusion
from .logistic_regression import fit_logistic_regression
from .metrics import bayes_threshold, compute_act_dcf, compute_eer, compute_min_dcf, det_curve
from .plda import PLDA
from .scorer import (ASNorm, Calibrated, CosineScorer, LinearScorer, PLDAScorer, Scorer, ScoreTransform, Symmetric,
                     as_norm, as_norm_trials, cosine_scores, gather_rows, raw_and_normalised, score_trials, score_trials_with,
                     scorer_for, speaker_rows, with_as_norm)
from .report import (RESULT_COLUMNS, metric_columns, plot_det, plot_score_histogram, read_scores, results_table,
                     write_scores)

__all__ = [
    "ASNorm", "Calibrated", "CosineScorer", "LinearScorer", "PLDAScorer", "ScoreTransform", "Scorer", "Symmetric",
    "gather_rows", "raw_and_normalised", "score_trials_with", "scorer_for", "speaker_rows", "with_as_norm",
    "Calibration", "EERInterval", "Fusion", "PLDA", "RESULT_COLUMNS", "as_norm", "as_norm_trials", "bayes_threshold",
    "cllr", "compute_act_dcf", "compute_eer", "compute_min_dcf", "cosine_scores", "det_curve",
    "fit_logistic_regression", "mean_embedding", "metric_columns", "min_cllr", "pav_llrs", "plot_det",
    "plot_score_histogram", "read_scores", "results_table", "score_trials", "speaker_bootstrap_eer", "speaker_means",
    "write_scores",
]
