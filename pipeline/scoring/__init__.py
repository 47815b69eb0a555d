"""Stage 6: trials, cosine scoring (full utterance + crops), AS-Norm, EER / minDCF, DET plots, results table."""

from .cosine import as_norm, as_norm_trials, cosine_scores, mean_embedding, score_trials, speaker_means
from .metrics import compute_eer, compute_min_dcf, det_curve
from .report import RESULT_COLUMNS, metric_columns, plot_det, plot_score_histogram, results_table
from .trials import Trials, TrialsError, check_trials_keys, read_trials, write_scores

__all__ = [
    "RESULT_COLUMNS", "Trials", "TrialsError",
    "as_norm", "as_norm_trials", "check_trials_keys", "compute_eer", "compute_min_dcf", "cosine_scores",
    "det_curve", "mean_embedding", "metric_columns", "plot_det", "plot_score_histogram", "read_trials",
    "results_table", "score_trials", "speaker_means", "write_scores",
]
