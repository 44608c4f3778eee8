"""A calibrated gradient-boosted classifier (LightGBM + Platt) whose per-record contributions become reasons.

Training is deterministic (fixed seed, ``deterministic=True``, two threads): the same data gives the same
model file and so the same version string. The newest 20% of the training records (by time) are held out to
fit the calibration, so the calibrated probabilities are measured on records the trees never saw.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from customers.errors import ScoringError
from customers.features import FeatureTable
from customers.metrics import Platt

PARAMS: dict[str, Any] = {
    "objective": "binary", "learning_rate": 0.04, "num_leaves": 7, "max_depth": 3, "min_data_in_leaf": 12,
    "lambda_l2": 2.0, "feature_fraction": 0.9, "cat_smooth": 10, "min_data_per_group": 10, "seed": 7,
    "deterministic": True, "force_row_wise": True, "num_threads": 2, "verbose": -1,
}
ROUNDS = 200
CALIBRATION_SHARE = 0.2


@dataclass
class ScoreModel:
    """A trained booster with its calibration, the columns it reads, and a content-derived version."""

    name: str  # "lead-score" | "win-score"
    booster: Any  # lightgbm.Booster
    platt: Platt
    columns: tuple[str, ...]
    categorical: dict[str, tuple[str, ...]]
    trained_on: int
    positives: int

    @property
    def version(self) -> str:
        """``name@<hash of the model text and calibration>``: changes exactly when the model does."""
        digest = hashlib.sha256(self.booster.model_to_string().encode())
        digest.update(f"{self.platt.a:.8f},{self.platt.b:.8f}".encode())
        return f"{self.name}@lgbm-{digest.hexdigest()[:10]}"

    def predict(self, table: FeatureTable, indexes: list[int] | None = None) -> np.ndarray:
        """Calibrated probabilities for the chosen records."""
        self._check(table)
        raw = self.booster.predict(np.asarray(table.matrix(indexes)), num_threads=2)
        return self.platt(raw)

    def contributions(self, table: FeatureTable, indexes: list[int] | None = None) -> list[dict[str, float]]:
        """Per record, each feature's push on the calibrated log-odds (SHAP values scaled by the Platt slope)."""
        self._check(table)
        contrib = self.booster.predict(np.asarray(table.matrix(indexes)), pred_contrib=True, num_threads=2)
        return [{c: float(self.platt.a * v) for c, v in zip(self.columns, row[:-1], strict=True)} for row in contrib]

    def save(self, folder: Path) -> Path:
        """Write the booster and a JSON sidecar (calibration, columns) under ``folder``; returns the model file."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.version.replace('@', '-')}.txt"
        self.booster.save_model(str(path))
        meta = {"name": self.name, "platt": [self.platt.a, self.platt.b], "columns": list(self.columns),
                "categorical": {k: list(v) for k, v in self.categorical.items()}, "trained_on": self.trained_on,
                "positives": self.positives, "version": self.version}
        path.with_suffix(".json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        return path

    def _check(self, table: FeatureTable) -> None:
        if table.columns != self.columns:
            raise ScoringError(f"the {self.name} model reads {', '.join(self.columns)}, but the features given are "
                               f"{', '.join(table.columns)}; retrain it (`crmind scores compute`).")


def load(path: Path) -> ScoreModel:
    """A model saved by ``ScoreModel.save``."""
    import lightgbm

    if not path.exists():
        raise ScoringError(f"no scoring model at {path}")
    meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    return ScoreModel(meta["name"], lightgbm.Booster(model_file=str(path)), Platt(*meta["platt"]),
                      tuple(meta["columns"]), {k: tuple(v) for k, v in meta["categorical"].items()},
                      meta["trained_on"], meta["positives"])


def train(name: str, table: FeatureTable, indexes: list[int]) -> ScoreModel:
    """Fit on the records at ``indexes`` (labelled); the newest 20% of them only calibrate."""
    import lightgbm

    picked = sorted(indexes, key=lambda i: (table.times[i], table.ids[i]))
    if any(table.labels[i] is None for i in picked):
        raise ScoringError("training records must all have a known outcome")
    cut = int(len(picked) * (1 - CALIBRATION_SHARE))
    fit_idx, cal_idx = picked[:cut], picked[cut:]
    y_fit = np.array([table.labels[i] for i in fit_idx], dtype=float)
    y_cal = np.array([table.labels[i] for i in cal_idx], dtype=float)
    if len(set(y_fit)) < 2 or len(set(y_cal)) < 2:
        raise ScoringError(f"the {name} model needs both outcomes in its training and calibration slices")
    cats = [table.columns.index(c) for c in table.categorical]
    data = lightgbm.Dataset(np.asarray(table.matrix(fit_idx)), label=y_fit, feature_name=list(table.columns),
                            categorical_feature=cats, free_raw_data=False)
    booster = lightgbm.train(PARAMS, data, num_boost_round=ROUNDS)
    platt = Platt.fit(y_cal, booster.predict(np.asarray(table.matrix(cal_idx)), num_threads=2))
    return ScoreModel(name, booster, platt, table.columns, table.categorical, len(picked),
                      int(sum(table.labels[i] or 0 for i in picked)))
