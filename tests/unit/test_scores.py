"""Customer scores on a small demo (SQLite): learnable lead score, reasons in both languages, fallback, RFM, ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from config.db import make_engine, session_factory, transaction
from crm.customer_models import CustomerScore
from crm.demo import build_demo
from crm.models import Opportunity
from customers import metrics
from customers.features import classify_title, lead_features
from customers.health import tone
from customers.points import deal_points, lead_points
from customers.rfm import SEGMENTS, score_rfm
from customers.scoring import explain, score_deals, score_health, score_leads, scores_for
from eval.scores import evaluate
from ledger.models import Decision

SCALE = 0.5  # 500 leads (about 390 with a known outcome), 750 deals: built in about 3 s


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, Path]:
    path = tmp_path_factory.mktemp("scores")
    engine = make_engine(f"sqlite:///{path}/crm.db")
    build_demo(engine, scale=SCALE, seed=7, out_dir=path, progress=False)
    return engine, path


def test_lead_model_beats_points_score_on_a_time_split(demo: Any) -> None:
    engine, _ = demo
    with session_factory(engine)() as session:
        lead = evaluate("lead-score", lead_features(session), lead_points)
        from customers.features import opportunity_features

        win = evaluate("win-score", opportunity_features(session), deal_points)
    assert lead["model"]["auc"] > lead["points"]["auc"] > 0.6
    assert win["model"]["auc"] > win["points"]["auc"]
    assert sum(c["n"] for c in lead["model"]["calibration"]) == lead["test"]


def test_scores_carry_reasons_in_both_languages_and_a_ledger_row(demo: Any) -> None:
    engine, path = demo
    with transaction(engine) as session:
        run = score_leads(session, min_conversions=30, model_dir=path / "models")
        assert not run.fallback and run.model_path is not None and run.model_path.exists()
        assert run.model_version.startswith("lead-score@lgbm-")
    with session_factory(engine)() as session:
        rows = session.scalars(select(CustomerScore).where(CustomerScore.kind == "lead")).all()
        assert len(rows) == SCALE * 1000 and all(0 <= r.value <= 100 for r in rows)
        assert {r.label for r in rows} <= {"hot", "warm", "cold"}
        for r in rows[:20]:
            assert r.reasons and all(x["en"] and x["zh"] for x in r.reasons)
            strengths = [abs(x["contribution"]) for x in r.reasons]
            assert strengths == sorted(strengths, reverse=True)
        score = scores_for(session, "lead", rows[0].record_id)[0]
        assert score.reasons[0]["en"] in explain(score, "en") and score.reasons[0]["zh"] in explain(score, "zh")
        entry = session.scalar(select(Decision).where(Decision.id == run.ledger_id))
        assert entry is not None and entry.kind == "score" and entry.model_id == run.model_version
        traced = {rec[0]: rec for rec in entry.output["records"]}
        assert traced[score.record_id][1] == round(score.value, 2)
        assert traced[score.record_id][3][entry.output["columns"].index("pricing_views")] == \
            score.features["pricing_views"]


def test_points_score_is_the_fallback_below_the_minimum_conversions(demo: Any) -> None:
    engine, _ = demo
    with transaction(engine) as session:
        run = score_leads(session, min_conversions=10_000)
        assert run.fallback and run.model_version == "lead-score@points-v1"
        score = session.scalars(select(CustomerScore).where(CustomerScore.kind == "lead")).first()
        assert score is not None and score.model_version == "lead-score@points-v1"
        assert sum(r["contribution"] for r in score.reasons) <= score.value + 1e-6


def test_win_scores_cover_open_deals_and_health_covers_accounts(demo: Any) -> None:
    engine, _ = demo
    with transaction(engine) as session:
        win = score_deals(session)
        health = score_health(session)
        open_deals = session.scalars(select(Opportunity.id).where(Opportunity.stage.not_in(
            ("closed_won", "closed_lost")))).all()
        assert win.count == len(open_deals) and health.count == SCALE * 500
        labels = set(session.scalars(select(CustomerScore.label).where(CustomerScore.kind == "health")))
        assert labels <= {"healthy", "watch", "at_risk"} and len(labels) >= 2


def test_rfm_segments_cover_every_account_with_won_deals(demo: Any) -> None:
    engine, _ = demo
    with transaction(engine) as session:
        run = score_rfm(session)
        won = set(session.scalars(select(Opportunity.account_id).where(Opportunity.stage == "closed_won")))
        rows = session.scalars(select(CustomerScore).where(CustomerScore.kind == "rfm")).all()
    assert run.count == len(won) and {r.record_id for r in rows} == won
    assert {r.label for r in rows} <= set(SEGMENTS) and len({r.label for r in rows}) >= 4
    assert all({x["feature"] for x in r.reasons} == {"recency_quintile", "frequency_quintile", "monetary_quintile"}
               for r in rows)


def test_titles_are_classified_in_english_and_chinese() -> None:
    assert classify_title("CFO") == ("c_level", "finance")
    assert classify_title("运营副总裁")[0] == "vp_director"
    assert classify_title("电气工程师") == ("individual", "technical")
    assert classify_title("") == ("unknown", "other")


def test_metrics_and_tone_follow_their_definitions() -> None:
    assert metrics.auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert metrics.auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert metrics.brier([0, 1], [0.0, 1.0]) == 0.0
    assert metrics.top_decile_lift([1] + [0] * 9, [0.9] + [0.1] * 9) == 10.0
    assert tone(["Customer is happy, issue resolved"]) > 0 > tone(["设备故障，客户投诉"])
