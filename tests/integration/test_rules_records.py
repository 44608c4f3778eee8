"""Record rules for real: triggered by CRM changes (the outbox) and by the clock (dates, inactivity).

Each test activates a rule the way a manager does (author, then a second manager approves), makes the change or
moves the clock, and checks what the runner proposed, that it acts once, and what the ledger says about why.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from config.db import session_factory
from crm import proposals
from crm.models import Activity, Case, Lead, Opportunity, Proposal
from ledger.models import Decision, DecisionRef
from rules import lifecycle
from rules.errors import RuleInvalid
from rules.language import (
    Escalate,
    FieldCondition,
    Limits,
    Notify,
    RecordTrigger,
    Rule,
    ScheduleTrigger,
    UpdateField,
)
from rules.models import RuleFiring
from rules.parser import parse
from rules.runner import Runner
from rules.worker import RuleWorker
from tests.world import World

NOW = datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _activate(world: World, rule: Rule, team: str = "a") -> int:
    with session_factory(world.engine)() as s, s.begin():
        rule_id = lifecycle.create(s, world.p(team, "manager"), text=rule.name or "rule", rule=rule).id
    with session_factory(world.engine)() as s, s.begin():
        lifecycle.approve(s, world.p(team, "admin"), rule_id)
        lifecycle.activate(s, world.p(team, "admin"), rule_id)
    return rule_id


def _change(world: World, team: str, obj: str, record_id: int, **changes: object) -> int:
    """A rep proposes and approves a change (a person's change: depth 0)."""
    rep = world.p(team, "rep")
    with session_factory(world.engine)() as s, s.begin():
        p = proposals.propose(s, rep, object_type=obj, action="update", record_id=record_id, changes=changes)
        proposals.approve(s, rep, p.id)
        return p.id


def _tick(world: World, runner: Runner, now: datetime | None = None) -> int:
    with session_factory(world.engine)() as s, s.begin():
        return runner.tick(s, now).firings


def _firings(world: World, rule_id: int) -> list[RuleFiring]:
    with session_factory(world.engine)() as s:
        return list(s.scalars(select(RuleFiring).where(RuleFiring.rule_id == rule_id).order_by(RuleFiring.id)))


STAGE_RULE = Rule(name="negotiation alert", trigger=RecordTrigger(object="opportunity", on="field_changed",
                                                                  field="stage", to_value="negotiation"),
                  conditions=[FieldCondition(field="amount", op="ge", value=100000)],
                  actions=[Notify(recipient="team_manager")])


def test_a_field_change_fires_once_with_the_change_as_evidence(world: World) -> None:
    rule_id = _activate(world, STAGE_RULE)
    runner = Runner()
    opp = world.records["a"]["opportunity"]
    pid = _change(world, "a", "opportunity", opp, stage="negotiation")
    assert _tick(world, runner) == 1
    assert _tick(world, runner) == 0  # the cursor moved; nothing fires twice
    assert _tick(world, Runner()) == 0  # a restarted runner neither
    (firing,) = _firings(world, rule_id)
    assert firing.event_key == f"opportunity:{opp}@v2" and firing.status == "pending"
    with session_factory(world.engine)() as s:
        why = s.scalar(select(Decision).where(Decision.id == firing.decision_id))
        assert why is not None and f"proposal:{pid}" in why.evidence
        refs = set(s.scalars(select(DecisionRef.ref).where(DecisionRef.decision_seq == why.seq)))
        assert f"opportunity:{opp}" in refs and f"rule:{rule_id}" in refs
        assert "opportunity.field_changed" in why.input_summary
        notify = s.get(Proposal, firing.proposal_ids[0])
        assert notify is not None and notify.object_type == "activity" and notify.source == f"rule:{rule_id}"
        assert notify.changes["opportunity_id"]["after"] == opp
    _change(world, "a", "opportunity", opp, stage="closed_won")  # another value: not this rule's change
    assert _tick(world, runner) == 0


def test_conditions_and_the_authors_reach_decide(world: World) -> None:
    rule_id = _activate(world, STAGE_RULE)
    runner = Runner()
    _change(world, "b", "opportunity", world.records["b"]["opportunity"], stage="negotiation")
    assert _tick(world, runner) == 0  # team b's deal: the author (team a's manager) can't read it
    opp = world.records["a"]["opportunity"]
    _change(world, "a", "opportunity", opp, amount="50000")
    _change(world, "a", "opportunity", opp, stage="negotiation")
    assert _tick(world, runner) == 0  # below the amount condition
    assert _firings(world, rule_id) == []


def test_rules_triggering_rules_stop_at_the_depth_cap(world: World) -> None:
    lead = world.records["a"]["lead"]
    cap = Limits(max_depth=1)
    first = _activate(world, Rule(name="score->pool", trigger=RecordTrigger(object="lead", on="field_changed",
                                                                             field="score"),
                                  actions=[UpdateField(field="pool", value="vip")], limits=cap,
                                  approval={"auto_approve": True}))
    second = _activate(world, Rule(name="pool->score", trigger=RecordTrigger(object="lead", on="field_changed",
                                                                              field="pool"),
                                   actions=[UpdateField(field="score", value=95)], limits=cap,
                                   approval={"auto_approve": True}))
    runner = Runner()
    _change(world, "a", "lead", lead, score=70)
    assert _tick(world, runner) == 1  # the person's change fires the first rule
    assert _tick(world, runner) == 0  # the first rule's change (depth 1) triggers nothing at max_depth 1
    with session_factory(world.engine)() as s:
        row = s.get(Lead, lead)
        assert row is not None and (row.pool, row.score) == ("vip", 70)
    assert len(_firings(world, first)) == 1 and _firings(world, second) == []


SLA_EN = ("When a case is still unresolved 4 hours before its SLA, escalate it to the support lead and notify the "
          "account owner")


def test_the_sla_rule_from_plain_english_fires_once_per_deadline(world: World) -> None:
    rule = parse(SLA_EN).rule
    assert rule is not None and isinstance(rule.trigger, ScheduleTrigger)
    rule_id = _activate(world, rule)
    case_id = world.records["a"]["case"]
    with session_factory(world.engine)() as s, s.begin():
        s.get(Case, case_id).sla_due = NOW + timedelta(hours=6)  # type: ignore[union-attr]
    runner = Runner()
    assert _tick(world, runner, NOW) == 0  # 6 hours ahead: not yet
    assert _tick(world, runner, NOW + timedelta(hours=2, minutes=1)) == 1  # 4 hours before
    assert _tick(world, runner, NOW + timedelta(hours=3)) == 0  # the same deadline: once
    (firing,) = _firings(world, rule_id)
    assert firing.event_key.startswith(f"case:{case_id}@sla_due=")
    with session_factory(world.engine)() as s:
        planned = [s.get(Proposal, i) for i in firing.proposal_ids]
        assert {(p.object_type, p.action) for p in planned if p} == {("case", "update"), ("activity", "create")}
        assert all(p is not None and p.status == "pending" for p in planned)  # no auto-approval asked for
    with session_factory(world.engine)() as s, s.begin():  # the deadline moves: a new deadline, warned again
        s.get(Case, case_id).sla_due = NOW + timedelta(hours=20)  # type: ignore[union-attr]
    with session_factory(world.engine)() as s, s.begin():  # ... but one firing per customer a day (the default)
        assert runner.tick(s, NOW + timedelta(hours=16, minutes=30)).skipped_by_limits == 1
    with session_factory(world.engine)() as s, s.begin():
        s.get(Case, case_id).sla_due = NOW + timedelta(hours=40)  # type: ignore[union-attr]
    assert _tick(world, runner, NOW + timedelta(hours=36, minutes=30)) == 1
    with session_factory(world.engine)() as s, s.begin():  # a deadline already passed is not warned about
        s.get(Case, case_id).sla_due = NOW - timedelta(hours=1)  # type: ignore[union-attr]
    assert _tick(world, runner, NOW) == 0


ZH_STALE = "如果商机金额超过50万元且14天没有活动,为负责人创建跟进任务"


def test_the_stale_deal_rule_from_chinese_fires_once_per_quiet_stretch(world: World) -> None:
    rule = parse(ZH_STALE).rule
    assert rule is not None and isinstance(rule.trigger, ScheduleTrigger) and rule.trigger.date_field is None
    rule_id = _activate(world, rule)
    opp = world.records["a"]["opportunity"]
    runner = Runner()
    assert _tick(world, runner, NOW) == 0  # 250,000: under the amount
    with session_factory(world.engine)() as s, s.begin():
        s.get(Opportunity, opp).amount = Decimal("600000")  # type: ignore[union-attr]
    assert _tick(world, runner, NOW) == 1  # last activity in October: quiet for more than 14 days
    assert _tick(world, runner, NOW + timedelta(days=1)) == 0  # still the same quiet stretch
    (firing,) = _firings(world, rule_id)
    assert "@quiet-since=" in firing.event_key
    with session_factory(world.engine)() as s:
        why = s.scalar(select(Decision).where(Decision.id == firing.decision_id))
        assert why is not None and f"activity:{world.records['a']['activity']}" in why.evidence
        task = s.get(Proposal, firing.proposal_ids[0])
        assert task is not None and task.object_type == "activity" and "[Task]" in task.changes["subject"]["after"]
    with session_factory(world.engine)() as s, s.begin():  # someone calls: the deal is no longer quiet
        deal = s.get(Opportunity, opp)
        assert deal is not None
        s.add(Activity(kind="call", subject="Check-in", occurred_at=NOW + timedelta(days=2), account_id=deal.account_id,
                       opportunity_id=opp, owner_id=deal.owner_id, team_id=deal.team_id))
    assert _tick(world, runner, NOW + timedelta(days=3)) == 0
    assert _tick(world, runner, NOW + timedelta(days=17)) == 1  # quiet again for 15 days: a new stretch
    assert len(_firings(world, rule_id)) == 2


def test_a_rule_that_cannot_run_is_refused_at_create(world: World) -> None:
    bad = Rule(trigger=ScheduleTrigger(object="case", date_field="subject", offset_minutes=-60),
               actions=[Escalate(to="support_lead")])
    with session_factory(world.engine)() as s, s.begin(), pytest.raises(RuleInvalid, match="not a date of case"):
        lifecycle.create(s, world.p("a", "manager"), text="x", rule=bad)
    unknown = Rule(trigger=RecordTrigger(object="lead", on="field_changed", field="budget"),
                   actions=[Notify(recipient="owner")])
    with session_factory(world.engine)() as s, s.begin(), pytest.raises(RuleInvalid, match="lead has no field"):
        lifecycle.create(s, world.p("a", "manager"), text="x", rule=unknown)


def test_backtest_of_a_schedule_rule_places_deadlines_on_the_calendar(world: World) -> None:
    from rules.backtest import backtest

    rule = parse(SLA_EN).rule
    assert rule is not None
    with session_factory(world.engine)() as s, s.begin():
        for team in ("a", "b"):
            s.get(Case, world.records[team]["case"]).sla_due = NOW - timedelta(days=2)  # type: ignore[union-attr]
    with session_factory(world.engine)() as s:
        result = backtest(s, world.p("a", "manager"), rule)
    assert result.fires == 1 and result.customers == 1  # team b's case is not the viewer's
    assert result.per_day == [((NOW - timedelta(days=2, hours=4)).strftime("%Y-%m-%d"), 1)]
    assert "conditions tested on the records as they are now" in result.note


def test_the_background_worker_runs_change_rules(world: World) -> None:
    rule_id = _activate(world, STAGE_RULE)
    worker = RuleWorker(world.engine, interval=0.05)
    worker.start()
    try:
        _change(world, "a", "opportunity", world.records["a"]["opportunity"], stage="negotiation")
        deadline = time.monotonic() + 30
        while not _firings(world, rule_id) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert len(_firings(world, rule_id)) == 1 and worker.status.last_error == ""
    with session_factory(world.engine)() as s:
        assert s.scalar(select(func.count(RuleFiring.id))) == 1


def _create_lead(world: World, team: str, **values: object) -> int:
    rep = world.other_rep[team]
    with session_factory(world.engine)() as s, s.begin():
        p = proposals.propose(s, rep, object_type="lead", action="create", changes={"name": "New lead", **values})
        proposals.approve(s, rep, p.id)
        return int(p.record_id or 0)


def test_a_lead_matching_an_existing_customer_goes_to_that_customers_owner(world: World) -> None:
    from crm.customer_models import IdentityLink
    from crm.models import Contact

    rule = parse("When a new lead is created and it matches an existing customer, assign it to the customer's owner")
    assert rule.rule is not None
    rule_id = _activate(world, rule.rule)
    runner = Runner()
    contact = world.records["a"]["contact"]
    plain = _create_lead(world, "a", email="someone@else.com")
    match = _create_lead(world, "a", email=world.emails["a"])
    with session_factory(world.engine)() as s, s.begin():  # what `crmind identity resolve` writes
        for obj, key in (("contact", contact), ("lead", match)):
            s.add(IdentityLink(customer_id=f"contact:{contact}", object_type=obj, record_key=str(key),
                               match_probability=0.98, reasons=["email agrees (normalised)"], strength="strong"))
    assert _tick(world, runner) == 1  # only the matching lead
    (firing,) = _firings(world, rule_id)
    assert firing.event_key.startswith(f"lead:{match}@")
    with session_factory(world.engine)() as s:
        owner_change = s.get(Proposal, firing.proposal_ids[0])
        expected_owner = s.get(Contact, contact).owner_id
        assert owner_change.action == "owner_change" and owner_change.requires_human
        assert owner_change.changes["owner_id"]["after"] == expected_owner
        why = s.scalar(select(Decision).where(Decision.id == firing.decision_id))
        assert f"contact:{contact}" in why.evidence
    assert plain != match


def test_score_and_segment_conditions_read_the_stored_scores(world: World) -> None:
    from crm.customer_models import CustomerScore
    from rules.language import ScoreCondition, SegmentCondition

    bad = Rule(name="x", trigger=RecordTrigger(object="case", on="created"),
               conditions=[ScoreCondition(score="lead", op="gt", value=50)], actions=[Notify(recipient="owner")])
    with pytest.raises(RuleInvalid, match="a case has no lead score"):
        _activate(world, bad)
    rule_id = _activate(world, Rule(
        name="hot lead", trigger=RecordTrigger(object="lead", on="field_changed", field="status"),
        conditions=[ScoreCondition(score="lead", op="ge", value=80)], actions=[Notify(recipient="team_manager")]))
    seg_id = _activate(world, Rule(
        name="at-risk deal", trigger=RecordTrigger(object="opportunity", on="field_changed", field="stage"),
        conditions=[SegmentCondition(of="rfm", label="at_risk")], actions=[Notify(recipient="account_owner")]))
    lead, opp = world.records["a"]["lead"], world.records["a"]["opportunity"]
    with session_factory(world.engine)() as s, s.begin():
        s.add(CustomerScore(object_type="lead", record_id=lead, kind="lead", value=85.0, label="hot"))
        s.add(CustomerScore(object_type="account", record_id=world.records["a"]["account"], kind="rfm", value=211,
                            label="at_risk"))
    runner = Runner()
    _change(world, "a", "lead", lead, status="working")
    _change(world, "a", "opportunity", opp, stage="negotiation")
    assert _tick(world, runner) == 2
    assert len(_firings(world, rule_id)) == 1 and len(_firings(world, seg_id)) == 1
    with session_factory(world.engine)() as s, s.begin():
        s.query(CustomerScore).filter(CustomerScore.kind == "lead").update({"value": 40.0})
    _change(world, "a", "lead", lead, status="qualified")
    assert _tick(world, runner) == 0  # the score fell below 80
