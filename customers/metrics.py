"""Probability metrics for scores: AUC, Brier score, top-decile lift, a calibration table, and Platt scaling.

Written on numpy alone so ``customers`` needs no scikit-learn; each one is a few lines of the textbook formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.stats import rankdata


def auc(y: Any, p: Any) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); NaN with one class only."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    pos = int(y.sum())
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def brier(y: Any, p: Any) -> float:
    """Mean squared error of probabilities against 0/1 outcomes."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    return float(np.mean((p - y) ** 2))


def top_decile_lift(y: Any, p: Any) -> float:
    """Positive rate among the top 10% by score divided by the overall positive rate."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if y.mean() == 0:
        return float("nan")
    k = max(1, int(np.ceil(len(y) / 10)))
    top = np.argsort(-p, kind="stable")[:k]
    return float(y[top].mean() / y.mean())


def calibration_table(y: Any, p: Any, bins: int = 10) -> list[dict[str, float]]:
    """Equal-width probability bins: count, mean predicted and observed positive rate (empty bins left out)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        mask = idx == b
        if mask.any():
            out.append({"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "n": int(mask.sum()),
                        "predicted": round(float(p[mask].mean()), 4), "observed": round(float(y[mask].mean()), 4)})
    return out


@dataclass(frozen=True)
class Platt:
    """p = sigmoid(a * logit(raw) + b): a two-parameter map that keeps the ranking and fixes the scale."""

    a: float = 1.0
    b: float = 0.0

    @classmethod
    def fit(cls, y: Any, raw: Any) -> Platt:
        """Maximum likelihood on a held-out slice, with Platt's smoothed targets against over-confidence."""
        y, x = np.asarray(y, dtype=float), _logit(np.asarray(raw, dtype=float))
        pos, neg = y.sum(), len(y) - y.sum()
        target = np.where(y == 1, (pos + 1) / (pos + 2), 1 / (neg + 2))

        def loss(ab: np.ndarray) -> float:
            z = ab[0] * x + ab[1]
            # log(1 + e^z) - t*z, written stably
            return float(np.sum(np.logaddexp(0, z) - target * z))

        res = minimize(loss, np.array([1.0, 0.0]), method="L-BFGS-B")
        return cls(float(res.x[0]), float(res.x[1]))

    def __call__(self, raw: Any) -> np.ndarray:
        """Calibrated probabilities for raw model probabilities."""
        z = self.a * _logit(np.asarray(raw, dtype=float)) + self.b
        return np.asarray(1 / (1 + np.exp(-z)))


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(q / (1 - q)))
