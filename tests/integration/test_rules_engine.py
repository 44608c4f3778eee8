"""The engine end to end: lifecycle, idempotent ingest, exactly-once actions, ledger "why", restart recovery."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from config.db import session_factory
from crm.models import Lead, Proposal
from ledger.models import Decision
from rules import lifecycle
from rules.errors import RuleBlocked, RuleForbidden, RuleStateError
from rules.models import RuleFiring
from rules.parser import parse
from rules.runner import EventIn, Runner, ingest
from tests.world import World

ZH = "当客户在官网停留超3分钟且访问价格页≥2次时,自动创建高意向线索并分配至VIP销售池"
T0 = datetime(2026, 11, 20, 9, 0)


def _events(visitor: str, prefix: str) -> list[EventIn]:
    steps = [("page_view", "/products/ess-200", 70), ("pricing_view", "/zh/pricing", 60),
             ("page_view", "/docs", 40), ("pricing_view", "/zh/pricing", 50)]
    return [EventIn(event_id=f"{prefix}-{i}", visitor_id=visitor, type=t, page=p, duration_s=d,
                    occurred_at=T0 + timedelta(minutes=3 * i)) for i, (t, p, d) in enumerate(steps)]


def _active_rule(world: World, text: str = ZH, clarifications: dict[str, str] | None = None) -> int:
    rule = parse(text, clarifications=clarifications or {"duration_scope": "total"}).rule
    assert rule is not None
    with session_factory(world.engine)() as s, s.begin():
        rec = lifecycle.create(s, world.p("a", "manager"), text=text, rule=rule)
        rule_id = rec.id
    with session_factory(world.engine)() as s, s.begin():
        lifecycle.approve(s, world.p("a", "admin"), rule_id)
        lifecycle.activate(s, world.p("a", "admin"), rule_id)
    return rule_id


def test_lifecycle_needs_a_second_manager_and_logs_every_step(world: World) -> None:
    rule = parse(ZH, clarifications={"duration_scope": "total"}).rule
    assert rule is not None
    author = world.p("a", "manager")
    with session_factory(world.engine)() as s, s.begin():
        rec = lifecycle.create(s, author, text=ZH, rule=rule)
        with pytest.raises(RuleStateError):
            lifecycle.activate(s, author, rec.id)
        with pytest.raises(RuleForbidden):
            lifecycle.approve(s, author, rec.id)
        lifecycle.approve(s, world.p("a", "admin"), rec.id)
        lifecycle.activate(s, world.p("a", "admin"), rec.id)
        lifecycle.revise(s, author, rec.id, text=ZH, rule=rule.model_copy(update={"name": "v2"}))
        assert (rec.status, rec.version, rec.active_version) == ("active", 2, 1)  # v1 keeps running
        lifecycle.pause(s, author, rec.id)
        kinds = list(s.scalars(select(Decision.kind).where(Decision.rule_id.like(f"rule:{rec.id}@%"))
                               .order_by(Decision.seq)))
        assert kinds == ["rule_draft", "rule_approve", "rule_activate", "rule_revise", "rule_pause"]


def test_compliance_blocks_approval(world: World) -> None:
    rule = parse("每当有新联系人创建时,将其邮箱导出到 https://data.example.com/in").rule
    assert rule is not None
    with session_factory(world.engine)() as s, s.begin():
        rec = lifecycle.create(s, world.p("a", "manager"), text="x", rule=rule)
        with pytest.raises(RuleBlocked, match="EXT-1"):
            lifecycle.approve(s, world.p("a", "admin"), rec.id)


def test_matching_events_create_the_vip_lead_once_with_a_ledger_why(world: World) -> None:
    rule_id = _active_rule(world)
    runner = Runner()
    with session_factory(world.engine)() as s, s.begin():
        result = ingest(s, _events("anon-1", "e"), runner)
    assert result.accepted == 4 and len(result.firings) == 1
    firing = result.firings[0]
    assert firing.event_key == "e-3" and firing.status == "applied"
    with session_factory(world.engine)() as s, s.begin():  # the same events again: nothing new
        again = ingest(s, _events("anon-1", "e"), runner)
    assert again.duplicates == 4 and again.firings == []
    with session_factory(world.engine)() as s:
        leads = list(s.scalars(select(Lead).where(Lead.pool == "vip")))
        assert len(leads) == 1 and leads[0].score == 80
        proposal = s.scalar(select(Proposal).where(Proposal.record_id == leads[0].id, Proposal.object_type == "lead"))
        assert proposal is not None and proposal.status == "applied" and proposal.source == f"rule:{rule_id}"
        why = s.scalar(select(Decision).where(Decision.id == firing.decision_id))
        assert why is not None and why.rule_id == f"rule:{rule_id}@v1"
        assert why.output["events"] == ["e-3", "e-0", "e-1", "e-2"] or set(why.output["events"]) == {
            "e-0", "e-1", "e-2", "e-3"}
        approval = s.scalar(select(Decision).where(Decision.kind == "approval", Decision.actor == f"rule:{rule_id}@v1"))
        assert approval is not None


def test_a_restarted_runner_rebuilds_windows_from_stored_events_and_never_fires_twice(world: World) -> None:
    _active_rule(world)
    events = _events("anon-2", "r")
    with session_factory(world.engine)() as s, s.begin():
        assert ingest(s, events[:2], Runner()).firings == []
    with session_factory(world.engine)() as s, s.begin():  # a new process: empty memory
        fired = ingest(s, events[2:], Runner()).firings
    assert len(fired) == 1
    with session_factory(world.engine)() as s, s.begin():
        assert ingest(s, [events[3].model_copy(update={"event_id": "r-3b"})], Runner()).firings == []  # 1 per day
        assert s.scalar(select(func.count(RuleFiring.id))) == 1
