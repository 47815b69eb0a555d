"""Calibration: an affine map from one system's scores to natural-log likelihood ratios.

llr = scale * score + offset, with (scale, offset) trained by prior-weighted linear logistic regression on a list of
trials with known labels (logistic_regression.py; the FoCal / BOSARIS recipe, Brümmer & du Preez 2006). The map is
monotone, so EER and minDCF do not move; what changes is that the scores become LLRs, so that a threshold can be
set by Bayes decision at any prior (`metrics.bayes_threshold`) and actDCF and Cllr come near minDCF and minCllr.
Train it on trials of the kind it will be applied to, never on the trials it is evaluated on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from pipeline.errors import PipelineError

from .metrics import _checked
from .logistic_regression import fit_logistic_regression, record_from_json, record_to_json

__all__ = ["Calibration", "CalibrationError"]


class CalibrationError(PipelineError):
    """A calibration that cannot serve: one that does not rank higher scores as more likely the same speaker."""


@dataclass(frozen=True)
class Calibration:
    """llr = scale * score + offset, trained at prior `p_target` on `n_target` and `n_nontarget` trials."""
    scale: float
    offset: float
    p_target: float
    n_target: int
    n_nontarget: int

    @classmethod
    def fit(cls, scores: ArrayLike, labels: ArrayLike, p_target: float = 0.5) -> "Calibration":
        """Train on `scores` (N,) with labels 1 target / 0 non-target, weighting the two classes p_target and
        1 - p_target (0.5: the Cllr objective; an application's prior to favour its operating point)."""
        scores, labels = _checked(scores, labels)
        weights, offset = fit_logistic_regression(scores, labels, p_target)
        return cls(float(weights[0]), offset, float(p_target), int(labels.sum()), int((~labels).sum()))

    def apply(self, scores: ArrayLike) -> np.ndarray:
        """The LLRs of `scores`, an array of any shape."""
        return self.scale * np.asarray(scores, dtype=np.float64) + self.offset

    def score_at(self, llr: float) -> float:
        """The score whose LLR is `llr`: the score threshold of a decision at that LLR. CalibrationError when the
        map does not increase (trained on scores that rank non-targets above targets): no score threshold exists."""
        if not self.scale > 0:
            raise CalibrationError(f"calibration llr = {self.scale:g} * score {self.offset:+g} does not increase with "
                                   f"the score (trained on {self.n_target} target and {self.n_nontarget} non-target "
                                   f"trials): no score threshold; give a threshold, or calibrate on another list")
        return (float(llr) - self.offset) / self.scale

    def to_json(self) -> str:
        return record_to_json(self, "calibration")

    @classmethod
    def from_json(cls, text: str) -> "Calibration":
        return record_from_json(cls, text, "calibration")
