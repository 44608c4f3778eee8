"""Backtest in DuckDB agrees with the engine, and reports per day, samples (masked), overlaps and impact."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from config.db import session_factory
from crm.models import Event
from rules.backtest import EventMirror, backtest
from rules.engine import Engine, compile_rule
from rules.parser import parse
from rules.runner import ev_from_row
from tests.world import World

ZH = "当客户在官网停留超3分钟且访问价格页≥2次时,自动创建高意向线索并分配至VIP销售池"
SEQ = "当客户先访问价格页然后在1天内提交表单时,创建线索并分配至企业销售池"


def _seed(world: World, n: int = 3000) -> list[Event]:
    rng = random.Random(5)
    t = datetime(2026, 6, 1)
    rows = []
    contact = world.records["a"]["contact"]
    for _ in range(n):
        t += timedelta(seconds=rng.randrange(30, 900))
        visitor = f"v{rng.randrange(60)}"
        rows.append(Event(visitor_id=visitor, type=rng.choice(["page_view", "pricing_view", "form_submit"]),
                          page="/pricing", duration_s=rng.randrange(5, 120), occurred_at=t,
                          contact_id=contact if visitor == "v1" else None, properties={}))
    with session_factory(world.engine)() as s, s.begin():
        s.add_all(rows)
    return rows


def _engine_fires(rule, rows) -> set[int]:  # noqa: ANN001
    engine = Engine([compile_rule(1, 1, rule)])
    with session_factory()() as s:
        events = sorted(s.query(Event).all(), key=lambda e: (e.occurred_at, e.id))
    return {f.event.event_id for e in events for f in engine.process(ev_from_row(e))}


def test_backtest_matches_the_engine_and_reports_everything(sqlite_world: World, tmp_path) -> None:  # noqa: ANN001
    world = sqlite_world
    _seed(world)
    total = parse(ZH, clarifications={"duration_scope": "total"}).rule
    per_visit = parse(ZH, clarifications={"duration_scope": "per_visit"}).rule
    seq = parse(SEQ).rule
    assert total and per_visit and seq
    mirror = EventMirror(tmp_path / "m.duckdb")
    with session_factory(world.engine)() as s:
        result = backtest(s, world.p("a", "support"), total, previous=per_visit, others=[(9, "seq", seq)],
                          mirror=mirror)
    assert result.synced == result.events_scanned == 3002  # the world's two events too
    assert result.fires > 0 and sum(n for _, n in result.per_day) == result.fires
    assert result.actions[0]["type"] == "create_lead"
    assert result.impact is not None and result.impact["new_fires"] == result.fires
    assert result.overlaps and result.overlaps[0].conflict and "lead.create" in result.overlaps[0].fields
    masked = [x["contact"] for x in result.sample if "contact" in x]
    assert all("****" in (c.get("phone") or "****") for c in masked)  # support sees phones masked
    with session_factory(world.engine)() as s:
        fired = {f["event_id"] for f in backtest(s, world.p("a", "admin"), total, mirror=mirror,
                                                   sample_size=10_000).sample}
        assert fired == _engine_fires(total, None)
        seq_fired = {f["event_id"] for f in backtest(s, world.p("a", "admin"), seq, mirror=mirror,
                                                       sample_size=10_000).sample}
        assert seq_fired == _engine_fires(seq, None)
