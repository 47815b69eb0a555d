"""Stage 6: cosine scoring (full utterance + crops), AS-Norm, EER / minDCF, DET plots, results table."""

from .bootstrap import EERInterval, speaker_bootstrap_eer
from .cosine import as_norm, as_norm_trials, cosine_scores, mean_embedding, score_trials, speaker_means
from .metrics import compute_eer, compute_min_dcf, det_curve
from .report import (RESULT_COLUMNS, metric_columns, plot_det, plot_score_histogram, read_scores, results_table,
                     write_scores)

__all__ = [
    "EERInterval", "RESULT_COLUMNS", "as_norm", "as_norm_trials", "compute_eer", "compute_min_dcf", "cosine_scores", "det_curve",
    "mean_embedding", "metric_columns", "plot_det", "plot_score_histogram", "results_table", "score_trials",
    "speaker_bootstrap_eer", "speaker_means", "write_scores", "read_scores",
]
