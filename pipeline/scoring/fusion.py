"""Fusion: one LLR from the scores of several systems, llr = sum_k weight_k * score_k + offset.

The weights and offset are trained together by prior-weighted linear logistic regression (logistic_regression.py;
FoCal / BOSARIS `train_linear_fuser.m`; Brümmer et al. 2007, the STBU fusion for NIST SRE 2006), so the fused score
is calibrated too, and a system that adds nothing gets a weight near 0. Systems are named, and a fusion is applied to
a mapping of the same names to score arrays, one score per trial, in the same trial order for every system.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .logistic_regression import fit_logistic_regression, record_from_json, record_to_json
from .metrics import _checked

__all__ = ["Fusion"]


@dataclass(frozen=True)
class Fusion:
    """llr = sum of weights[name] * scores[name] + offset, trained at prior `p_target` on `n_target` and
    `n_nontarget` trials."""
    weights: dict[str, float]
    offset: float
    p_target: float
    n_target: int
    n_nontarget: int

    @classmethod
    def fit(cls, scores: Mapping[str, ArrayLike], labels: ArrayLike, p_target: float = 0.5) -> "Fusion":
        """Train on `scores`, system name -> (N,) scores of the same N trials, with labels 1 target / 0 non-target."""
        if not scores:
            raise ValueError("fusion needs the scores of at least one system")
        names = list(scores)
        columns = [_checked(scores[name], labels)[0] for name in names]
        labels = _checked(columns[0], labels)[1]
        weights, offset = fit_logistic_regression(np.column_stack(columns), labels, p_target)
        return cls(dict(zip(names, map(float, weights))), offset, float(p_target), int(labels.sum()),
                   int((~labels).sum()))

    def apply(self, scores: Mapping[str, ArrayLike]) -> np.ndarray:
        """The fused LLRs of `scores`, system name -> arrays of one shape; systems not in `weights` are ignored."""
        missing = [name for name in self.weights if name not in scores]
        if missing:
            raise KeyError(f"no scores for system(s) {missing}: this fusion was trained on {list(self.weights)}")
        return sum(w * np.asarray(scores[name], dtype=np.float64) for name, w in self.weights.items()) + self.offset

    def to_json(self) -> str:
        return record_to_json(self, "fusion")

    @classmethod
    def from_json(cls, text: str) -> "Fusion":
        return record_from_json(cls, text, "fusion")
