"""``crmind eval scores``: lead score and win probability on a time split, beside the points score; CDNOW check.

Records with a known outcome are ordered by time; the oldest 70% train (the newest fifth of those calibrates),
the newest 30% test. The points score is mapped to a probability by Platt scaling on the same training records,
so its Brier score is comparable; AUC and lift depend on its ranking only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from customers import metrics as m
from customers.features import FeatureTable, lead_features, opportunity_features
from customers.model import train
from customers.points import deal_points, lead_points, total

TEST_SHARE = 0.3


def time_split(table: FeatureTable) -> tuple[list[int], list[int]]:
    """(train, test) positions of labelled records: older ones train, the newest ``TEST_SHARE`` test."""
    labelled = sorted((i for i, y in enumerate(table.labels) if y is not None),
                      key=lambda i: (table.times[i], table.ids[i]))
    cut = int(len(labelled) * (1 - TEST_SHARE))
    return labelled[:cut], labelled[cut:]


def _report(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    return {"auc": round(m.auc(y, p), 4), "brier": round(m.brier(y, p), 4), "lift_top_decile":
            round(m.top_decile_lift(y, p), 3), "calibration": m.calibration_table(y, p)}


def evaluate(name: str, table: FeatureTable, points_fn: Any) -> dict[str, Any]:
    """Model and points-score metrics of one classifier on the time split."""
    train_idx, test_idx = time_split(table)
    y = np.array([table.labels[i] for i in test_idx], dtype=float)
    model = train(name, table, train_idx)
    y_train = np.array([table.labels[i] for i in train_idx], dtype=float)
    pts_train = np.array([total(points_fn(table.rows[i])) / 100 for i in train_idx])
    platt = m.Platt.fit(y_train, pts_train)
    pts_test = platt(np.array([total(points_fn(table.rows[i])) / 100 for i in test_idx]))
    return {"train": len(train_idx), "test": len(test_idx), "test_positives": int(y.sum()),
            "train_until": str(table.times[train_idx[-1]]), "model_version": model.version,
            "model": _report(y, model.predict(table, test_idx)), "points": _report(y, pts_test)}


def run(session: Session, *, cdnow: bool = True) -> dict[str, Any]:
    """Every score check; CDNOW (pymc-marketing fits, tens of seconds) unless ``cdnow`` is False."""
    out: dict[str, Any] = {"lead": evaluate("lead-score", lead_features(session), lead_points),
                           "win": evaluate("win-score", opportunity_features(session), deal_points)}
    if cdnow:
        from customers.ltv import validate_cdnow

        out["cdnow"] = validate_cdnow()
    return out


def table(result: dict[str, Any]) -> str:
    """The report as plain-text tables."""
    lines = [f"{'score':<6} {'scorer':<7} {'AUC':>6} {'Brier':>7} {'lift@10%':>9}   train/test (positives)"]
    for kind in ("lead", "win"):
        r = result[kind]
        for who in ("model", "points"):
            x = r[who]
            lines.append(f"{kind:<6} {who:<7} {x['auc']:>6.3f} {x['brier']:>7.4f} {x['lift_top_decile']:>9.2f}   "
                         f"{r['train']}/{r['test']} ({r['test_positives']})")
    for kind in ("lead", "win"):
        lines.append(f"\ncalibration, {kind} model (bin: n, predicted -> observed)")
        lines += [f"  {c['bin']}: {c['n']:>4}  {c['predicted']:.3f} -> {c['observed']:.3f}"
                  for c in result[kind]["model"]["calibration"]]
    if "cdnow" in result:
        c = result["cdnow"]
        lines.append(f"\nCDNOW ({c['customers']} customers, MAP in {c['fit_seconds']} s): parameter fitted / published")
        lines += [f"  {k:<6} {v:>8.3f} / {c['published'][k]}" for k, v in c["params"].items()]
        lines.append(f"  holdout ({c['holdout_weeks']} weeks) repeat purchases: predicted {c['holdout_predicted']}, "
                     f"actual {c['holdout_actual']}")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> Path | None:
    """Reliability diagram of both models and points scores (PNG), or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, kind in zip(axes, ("lead", "win"), strict=True):
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
        for who in ("model", "points"):
            cal = result[kind][who]["calibration"]
            ax.plot([c["predicted"] for c in cal], [c["observed"] for c in cal], marker="o",
                    label=f"{who} (AUC {result[kind][who]['auc']:.3f})")
        ax.set(title=f"{kind} score", xlabel="predicted", ylabel="observed", xlim=(0, 1), ylim=(0, 1))
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write(result: dict[str, Any], out: Path) -> Path:
    """Write the JSON report."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    return out
