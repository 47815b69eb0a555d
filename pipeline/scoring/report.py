"""Human-facing outputs of scoring: DET plot, score histogram, Markdown results table.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot), so no display and no global backend state is
touched, and each PNG is written atomically (temp file, then rename).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from scipy.special import ndtri  # inverse of the standard normal CDF: the probit (normal deviate) scale

from pipeline.utils.atomic import atomic_file, atomic_path
from pipeline.utils.trials import Trials

from .metrics import compute_eer, compute_min_dcf, det_curve

__all__ = ["RESULT_COLUMNS", "metric_columns", "plot_det", "plot_score_histogram", "results_table", "write_scores"]

# Fixed column order of `results_table`; the dict keys of a row are these header texts.
RESULT_COLUMNS: tuple[str, ...] = (
    "model", "params", "front end", "trials", "trials scored",
    "EER %", "EER 95% CI", "minDCF0.01", "minDCF0.01 95% CI", "minDCF0.001", "minDCF0.001 95% CI",
    "Cllr", "Cllr 95% CI", "minCllr", "minCllr 95% CI", "actDCF0.01", "actDCF0.01 95% CI",
    "EER % AS-Norm", "EER 95% CI AS-Norm", "minDCF0.01 AS-Norm", "minDCF0.01 95% CI AS-Norm",
    "minDCF0.001 AS-Norm", "minDCF0.001 95% CI AS-Norm",
)

# NIST-style DET axes: ticks in percent, on the normal-deviate scale
_DET_TICKS = np.array([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4])
_DET_LIMITS = (0.0005, 0.5)
_CLIP = 1e-6  # rates of exactly 0 or 1 map to -inf/+inf; pull them just outside the visible range


def metric_columns(scores: ArrayLike, labels: ArrayLike, suffix: str = "", eer: float | None = None
                   ) -> dict[str, float]:
    """EER (in percent), minDCF at p_target 0.01 and 0.001 (C_miss = C_fa = 1), keyed by `RESULT_COLUMNS` names.

    `suffix=" AS-Norm"` gives the AS-Norm columns; `eer`, when the caller has it already (`compute_eer`).
    """
    if eer is None:
        eer, _ = compute_eer(scores, labels)
    return {
        "EER %" + suffix: 100.0 * eer,
        "minDCF0.01" + suffix: compute_min_dcf(scores, labels, 0.01)[0],
        "minDCF0.001" + suffix: compute_min_dcf(scores, labels, 0.001)[0],
    }


def _probit(p: ArrayLike) -> np.ndarray:
    return ndtri(np.clip(np.asarray(p, dtype=np.float64), _CLIP, 1.0 - _CLIP))


def _save(fig: Figure, path_png: str | os.PathLike) -> None:
    with atomic_path(path_png) as tmp:
        FigureCanvasAgg(fig).print_png(str(tmp))


def plot_det(curves: Mapping[str, tuple[ArrayLike, ArrayLike]], path_png: str | os.PathLike,
             title: str) -> None:
    """Draw the DET curves of several systems on one plot and write it as a PNG.

    `curves` maps a legend name to (scores, labels). Both axes use the normal-deviate scale with percent tick
    labels (0.1% to 40%), as in NIST DET plots. Each curve's EER point is marked, and its value is in the legend.
    """
    if not curves:
        raise ValueError("plot_det needs at least one (scores, labels) curve")
    fig = Figure(figsize=(6.0, 6.0), dpi=100)
    ax = fig.add_subplot()
    for name, (scores, labels) in curves.items():
        p_miss, p_fa, _ = det_curve(scores, labels)
        eer, _ = compute_eer(scores, labels)
        (line,) = ax.plot(_probit(p_fa), _probit(p_miss), linewidth=1.5, label=f"{name} (EER {100 * eer:.2f}%)")
        ax.plot(_probit(eer), _probit(eer), "o", color=line.get_color(), markersize=6)
    ticks = ndtri(_DET_TICKS)
    labels_pct = [f"{100 * t:g}" for t in _DET_TICKS]
    ax.set_xticks(ticks, labels_pct)
    ax.set_yticks(ticks, labels_pct)
    low, high = ndtri(_DET_LIMITS[0]), ndtri(_DET_LIMITS[1])
    ax.plot([low, high], [low, high], color="0.7", linestyle=":", linewidth=1)  # p_miss = p_fa: where EERs lie
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")
    ax.grid(True, color="0.85")
    ax.set_xlabel("False alarm probability (%)")
    ax.set_ylabel("Miss probability (%)")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    _save(fig, path_png)


def plot_score_histogram(scores: ArrayLike, labels: ArrayLike, path_png: str | os.PathLike, title: str,
                         eer: tuple[float, float] | None = None) -> None:
    """Write a PNG of the target and nontarget score densities on shared bins, with the EER threshold marked.
    `eer`: `compute_eer`'s (eer, threshold), when the caller has it already."""
    eer, threshold = eer if eer is not None else compute_eer(scores, labels)  # also validates scores and labels
    scores = np.asarray(scores, dtype=np.float64).ravel()
    target = np.asarray(labels).ravel().astype(bool)
    edges = np.histogram_bin_edges(scores, bins=min(100, max(10, scores.size // 20)))
    fig = Figure(figsize=(7.0, 4.0), dpi=100)
    ax = fig.add_subplot()
    ax.hist(scores[~target], bins=edges, density=True, histtype="stepfilled", alpha=0.5,
            label=f"nontarget ({np.count_nonzero(~target):,})")
    ax.hist(scores[target], bins=edges, density=True, histtype="stepfilled", alpha=0.5,
            label=f"target ({np.count_nonzero(target):,})")
    ax.axvline(threshold, color="k", linestyle="--", linewidth=1,
               label=f"EER threshold {threshold:.3f} (EER {100 * eer:.2f}%)")
    ax.set_xlabel("score")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    _save(fig, path_png)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4f}"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|")  # a bare | would split the cell


def results_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Render results as a Markdown table, one row per dict, in input order.

    Columns are the dict keys. Keys named in `RESULT_COLUMNS` come first, in that order, and only if some row has
    them. Other keys follow in the order they are first seen. A missing key or a None/NaN value shows as "-".
    Floats show 4 decimals, and ints show thousands separators. With no rows, the header lists every
    `RESULT_COLUMNS` entry.
    """
    present = {key for row in rows for key in row}
    columns = [c for c in RESULT_COLUMNS if c in present] or list(RESULT_COLUMNS)
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def read_scores(path: str | os.PathLike, count: int) -> np.ndarray:
    """The score column of a file `write_scores` wrote, in trials order; ValueError unless it holds `count`."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if len(lines) != count:
        raise ValueError(f"{path}: {len(lines)} scores, expected {count}")
    return np.array([float(line.rsplit(" ", 1)[1]) for line in lines])


def write_scores(path: str | os.PathLike, trials: Trials, scores: ArrayLike) -> None:
    """Write a Kaldi score file, `enroll test score` a line in trials order, atomically.

    Three columns as Kaldi's `sid/compute_min_dcf.py` reads them; the labels stay in the trials file.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.size != len(trials):
        raise ValueError(f"{scores.size} scores for {len(trials)} trials in {trials.path}")
    with atomic_file(path) as handle:
        handle.writelines(f"{e} {t} {s:.6f}\n" for e, t, s in zip(trials.enroll, trials.test, scores))
