"""Prior-weighted linear logistic regression from scores to LLRs: the trainer behind calibration and fusion.

The recipe of FoCal and the BOSARIS toolkit (`train_linear_fuser.m`; Brümmer & du Preez 2006, Brümmer et al.,
"Fusion of heterogeneous speaker recognition systems in the STBU submission for NIST SRE 2006", IEEE TASLP 2007).
For scores x_i (one row of K systems per trial) the LLR is linear, llr_i = w . x_i + b, and (w, b) minimise the
cross-entropy of the posteriors at a chosen prior p (logit(p) = log(p / (1 - p))):

    C(w, b) = p / T * sum_tar log(1 + exp(-(llr + logit p))) + (1 - p) / N * sum_non log(1 + exp(llr + logit p))

Targets and non-targets weigh p and 1 - p in all, however many there are of each (T, N), and the prior logit
is an offset added to the output, so that what is learnt is an LLR, free of the prior of the training list. At
p = 0.5, C / log 2 is Cllr (cllr.py). C is convex, so Newton's method with a backtracking line search finds its
minimum deterministically from w = 0, b = 0. For perfectly separable scores there is none (the slope grows without
bound); the search stops when the objective no longer falls, with a steep but finite map.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit

from .metrics import _check_costs, _checked

__all__ = ["fit_logistic_regression"]


def fit_logistic_regression(features: ArrayLike, labels: ArrayLike, p_target: float = 0.5, *,
                            max_iter: int = 100, tolerance: float = 1e-12) -> tuple[np.ndarray, float]:
    """`(weights (K,), offset)` minimising the prior-weighted cross-entropy above for `features` (N, K) or (N,),
    labels 1 target / 0 non-target. Stops when the Newton decrement falls under `tolerance` (nats)."""
    _check_costs(p_target, 1.0, 1.0)
    x = np.asarray(features, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    labels = _checked(x[:, 0], labels)[1]
    for column in x.T[1:]:  # every system's scores finite, as the first one's
        _checked(column, labels)
    design = np.column_stack([x, np.ones(len(x))])
    weight = np.where(labels, p_target / labels.sum(), (1.0 - p_target) / (~labels).sum())
    sign = np.where(labels, -1.0, 1.0)
    prior_logit = float(np.log(p_target) - np.log1p(-p_target))

    def objective(theta: np.ndarray) -> float:
        return float(weight @ np.logaddexp(0.0, sign * (design @ theta + prior_logit)))

    theta = np.zeros(design.shape[1])
    value = objective(theta)
    for _ in range(max_iter):
        posterior = expit(design @ theta + prior_logit)
        gradient = design.T @ (weight * (posterior - labels))
        hessian = (design * (weight * posterior * (1.0 - posterior))[:, None]).T @ design
        step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]  # lstsq: a constant system makes it singular
        decrement = float(gradient @ step)
        if decrement / 2.0 < tolerance:
            break
        length = 1.0
        while length > 1e-10 and objective(theta - length * step) > value - 0.25 * length * decrement:
            length /= 2.0
        if length <= 1e-10:
            break
        theta = theta - length * step
        value = objective(theta)
    return theta[:-1], float(theta[-1])


def record_from_json(cls: type, text: str, kind: str) -> Any:
    """An instance of the dataclass `cls` from the JSON object `text`, which must say `"kind": kind` and name
    exactly the fields of `cls`; ValueError naming what differs."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.pop("kind", None) != kind:
        raise ValueError(f"not a {kind} record: expected a JSON object with \"kind\": \"{kind}\"")
    fields = {field.name for field in dataclasses.fields(cls)}
    if set(data) != fields:
        raise ValueError(f"{kind} record: fields {sorted(data)} differ from the expected {sorted(fields)}")
    return cls(**data)


def record_to_json(record: Any, kind: str) -> str:
    """The dataclass `record` as one JSON object, with `"kind": kind` first; `record_from_json` reads it back."""
    return json.dumps({"kind": kind, **dataclasses.asdict(record)}, indent=1) + "\n"
