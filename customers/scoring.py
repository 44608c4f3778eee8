"""Lead score, win probability and account health: compute, store as ``CustomerScore`` rows, record, explain.

Each run replaces the rows of its kind and appends one ledger row (kind ``score``) that holds the model
version, the feature columns and, per record, its value and feature values: enough to trace any stored score
back to the inputs and the model that made it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

import ledger
from crm.customer_models import CustomerScore
from crm.models import utcnow
from customers.errors import ScoringError
from customers.features import FeatureTable, data_clock, lead_features, opportunity_features
from customers.health import HEALTH_VERSION, health_inputs, health_points, health_value
from customers.model import ScoreModel, train
from customers.points import POINTS_VERSION, deal_points, lead_points, total
from customers.reasons import reasons

KINDS = ("lead", "win", "health", "rfm", "ltv")
# Bands per kind: (lower bound of the value, key, English, Chinese), highest first.
BANDS: dict[str, tuple[tuple[float, str, str, str], ...]] = {
    "lead": ((50, "hot", "hot", "热"), (20, "warm", "warm", "温"), (0, "cold", "cold", "冷")),
    "win": ((65, "likely", "likely", "大概率赢单"), (35, "possible", "possible", "有希望"),
            (0, "unlikely", "unlikely", "赢单可能小")),
    "health": ((65, "healthy", "healthy", "健康"), (40, "watch", "watch", "需关注"),
               (0, "at_risk", "at risk", "有流失风险")),
}
KIND_NAMES = {"lead": ("Lead score", "线索评分"), "win": ("Win probability", "赢单概率"),
              "health": ("Account health", "客户健康度"), "rfm": ("RFM segment", "RFM分层"),
              "ltv": ("12-month lifetime value", "12个月客户终身价值")}


@dataclass
class ScoreRow:
    """One record's score before it is stored."""

    record_id: int
    value: float
    label: str
    reasons: list[dict[str, Any]]
    features: dict[str, Any]


@dataclass
class RunResult:
    """What one scoring run did."""

    kind: str
    count: int
    model_version: str
    fallback: bool = False
    model: ScoreModel | None = None
    model_path: Path | None = None
    ledger_id: str = ""
    payload_bytes: int = 0
    seconds: float = 0.0


def band(kind: str, value: float) -> str:
    """The band key of a 0..100 value of ``kind`` (``hot``, ``watch``...)."""
    for low, key, _en, _zh in BANDS[kind]:
        if value >= low:
            return key
    return BANDS[kind][-1][1]


def save_scores(session: Session, *, kind: str, object_type: str, rows: list[ScoreRow], model_version: str,
                columns: tuple[str, ...], actor: str = "system:scores") -> tuple[str, int]:
    """Replace the stored scores of ``kind`` with ``rows`` and append the run's ledger row; (ledger id, bytes)."""
    if kind not in KINDS:
        raise ScoringError(f"unknown score kind {kind!r}; expected one of {', '.join(KINDS)}")
    now = utcnow()
    session.execute(delete(CustomerScore).where(CustomerScore.kind == kind))
    session.add_all([CustomerScore(object_type=object_type, record_id=r.record_id, kind=kind, value=round(r.value, 2),
                                   label=r.label, reasons=r.reasons, features=r.features,
                                   model_version=model_version, computed_at=now) for r in rows])
    # Per record: [id, value, label, feature values in column order]; one row per run keeps the chain short.
    records = [[r.record_id, round(r.value, 2), r.label, [r.features.get(c) for c in columns]] for r in rows]
    output = {"kind": kind, "object_type": object_type, "model_version": model_version, "columns": list(columns),
              "records": records}
    row = ledger.append(session, kind="score", actor=actor, model_id=model_version, output=output,
                        input_summary=f"{kind} scores for {len(rows)} {object_type} records with {model_version}")
    session.flush()
    return row.id, len(json.dumps(output, ensure_ascii=False, default=str))


def _classifier_rows(table: FeatureTable, targets: list[int], model: ScoreModel | None,
                     points_fn: Callable[[dict[str, Any]], dict[str, float]], kind: str) -> list[ScoreRow]:
    if model is None:
        out = []
        for i in targets:
            pts = points_fn(table.rows[i])
            value = total(pts)
            out.append(ScoreRow(table.ids[i], value, band(kind, value), reasons(pts, table.rows[i]), table.rows[i]))
        return out
    probs = model.predict(table, targets)
    contribs = model.contributions(table, targets)
    return [ScoreRow(table.ids[i], 100 * float(p), band(kind, 100 * float(p)), reasons(c, table.rows[i]),
                     table.rows[i]) for i, p, c in zip(targets, probs, contribs, strict=True)]


def fit_or_fallback(name: str, table: FeatureTable, train_idx: list[int], min_conversions: int) -> ScoreModel | None:
    """A trained model, or ``None`` (use the points score) below ``min_conversions`` positive outcomes."""
    positives = sum(table.labels[i] or 0 for i in train_idx)
    if positives < min_conversions:
        return None
    try:
        return train(name, table, train_idx)
    except ScoringError:
        return None  # e.g. one outcome only in the calibration slice: the points score is the honest answer


def _run_classifier(session: Session, *, kind: str, name: str, table: FeatureTable, targets: list[int],
                    points_fn: Callable[[dict[str, Any]], dict[str, float]], min_conversions: int,
                    model_dir: Path | None) -> RunResult:
    started = time.perf_counter()
    labelled = [i for i, y in enumerate(table.labels) if y is not None]
    model = fit_or_fallback(name, table, labelled, min_conversions)
    path = model.save(model_dir) if model is not None and model_dir is not None else None
    version = model.version if model is not None else f"{name}@{POINTS_VERSION}"
    rows = _classifier_rows(table, targets, model, points_fn, kind)
    ledger_id, size = save_scores(session, kind=kind, object_type=table.object_type, rows=rows,
                                  model_version=version, columns=table.columns)
    return RunResult(kind, len(rows), version, model is None, model, path, ledger_id, size,
                     time.perf_counter() - started)


def score_leads(session: Session, *, min_conversions: int = 30, model_dir: Path | None = None,
                now: datetime | None = None) -> RunResult:
    """Train (or fall back to points) on leads with a known outcome, then score every lead."""
    table = lead_features(session, now=now)
    return _run_classifier(session, kind="lead", name="lead-score", table=table, targets=list(range(len(table.ids))),
                           points_fn=lead_points, min_conversions=min_conversions, model_dir=model_dir)


def score_deals(session: Session, *, min_conversions: int = 30, model_dir: Path | None = None,
                now: datetime | None = None) -> RunResult:
    """Train (or fall back to points) on closed deals, then score the open ones."""
    table = opportunity_features(session, now=now)
    open_deals = [i for i, y in enumerate(table.labels) if y is None]
    return _run_classifier(session, kind="win", name="win-score", table=table, targets=open_deals,
                           points_fn=deal_points, min_conversions=min_conversions, model_dir=model_dir)


def score_health(session: Session, *, now: datetime | None = None) -> RunResult:
    """Health of every account from its recent touchpoints, cases, tone and product usage."""
    started = time.perf_counter()
    inputs = health_inputs(session, now or data_clock(session))
    rows = []
    for acct_id, values in inputs.items():
        pts = health_points(values)
        value = health_value(pts)
        rows.append(ScoreRow(acct_id, value, band("health", value), reasons(pts, values), values))
    columns = tuple(next(iter(inputs.values())).keys()) if inputs else ()
    ledger_id, size = save_scores(session, kind="health", object_type="account", rows=rows,
                                  model_version=HEALTH_VERSION, columns=columns)
    return RunResult("health", len(rows), HEALTH_VERSION, False, None, None, ledger_id, size,
                     time.perf_counter() - started)


def scores_for(session: Session, object_type: str, record_id: int) -> list[CustomerScore]:
    """The stored scores of one record, in ``KINDS`` order (empty when none was computed)."""
    rows = session.scalars(select(CustomerScore).where(CustomerScore.object_type == object_type,
                                                       CustomerScore.record_id == record_id))
    return sorted(rows, key=lambda s: KINDS.index(s.kind) if s.kind in KINDS else len(KINDS))


def _label_text(kind: str, label: str, language: str) -> str:
    for _low, key, en, zh in BANDS.get(kind, ()):
        if key == label:
            return zh if language == "zh" else en
    if kind == "rfm":
        from customers.rfm import SEGMENTS

        seg = SEGMENTS.get(label)
        if seg:
            return seg[1] if language == "zh" else seg[0]
    return label


def explain(score: CustomerScore, language: str = "en") -> str:
    """One line a person can read: the score, its band, and its reasons in ``language`` ('en' or 'zh')."""
    if language not in ("en", "zh"):
        raise ScoringError(f"explanations are in 'en' or 'zh', not {language!r}")
    name = KIND_NAMES.get(score.kind, (score.kind, score.kind))[language == "zh"]
    value = f"{score.value:,.0f}" if score.kind == "ltv" else f"{score.value:.0f}/100"
    if score.kind == "rfm":
        value = ""
    label = _label_text(score.kind, score.label, language)
    why = [f"{r[language]} ({r['contribution']:+.2f})" if score.kind in ("lead", "win") else r[language]
           for r in score.reasons]
    if language == "zh":
        head = f"{name}{'：' + value if value else '：'}{'（' + label + '）' if value else label}"
        return f"{head}。原因：{'；'.join(why)}。模型：{score.model_version}"
    head = f"{name}{' ' + value if value else ':'} ({label})" if value else f"{name}: {label}"
    return f"{head}. Because: {'; '.join(why)}. Model: {score.model_version}"
