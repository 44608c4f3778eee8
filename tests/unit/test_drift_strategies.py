"""Daily conversion read from real ledger rows: the assistant's proposals decided through crm.proposals."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from sqlalchemy.orm import Session

import ledger
from config.db import session_factory
from crm import proposals
from crm.models import Lead
from inference.ledger_callback import LedgerCallback
from modelops.strategies import LIVE, SIMULATION, STRATEGIES, daily, sync_lead_conversions
from tests.world import World

DAY1, DAY2 = date(2026, 4, 1), date(2026, 4, 2)


def conversation(session: Session, world: World, *, variant: str, decisions: list[tuple[str, str]]) -> str:
    """A rep's turn, the routed model call (the real ledger callback) and proposals decided as given."""
    rep = world.p("a", "rep")
    thread = f"t-{uuid.uuid4().hex[:8]}"
    turn = ledger.append(session, kind="agent_turn", actor=rep.actor, thread_id=thread,
                         input_summary="plan my week with Acme")
    callback = LedgerCallback(model="smollm2", actor="assistant", thread_id=thread, variant=variant,
                              append=lambda **kw: ledger.append(session, **kw))
    callback.on_llm_end(LLMResult(generations=[[ChatGeneration(message=AIMessage("ok"))]]), run_id=uuid.uuid4())
    for n, (what, verdict) in enumerate(decisions):
        if what == "follow_up":
            p = proposals.propose(session, rep, object_type="activity", action="create", source="agent",
                                  changes={"kind": "task", "subject": f"call back {thread} {n}", "occurred_at":
                                           "2026-04-10T09:00:00", "account_id": world.records["a"]["account"]},
                                  parent_decision=turn.id)
        else:
            p = proposals.propose(session, rep, object_type="opportunity", action="update", source="agent",
                                  record_id=world.records["a"]["opportunity"],
                                  changes={"competitor": f"rival {thread}"}, parent_decision=turn.id)
        if verdict == "approve":
            proposals.approve(session, rep, p.id)
        elif verdict == "edit":
            proposals.approve(session, rep, p.id, edits={"subject": "call back tomorrow"})
        else:
            proposals.reject(session, rep, p.id, reason="not now")
    return thread


def test_daily_conversion_of_assistant_strategies_from_ledger_rows(sqlite_world: World) -> None:
    engine = sqlite_world.engine
    with session_factory(engine)() as session, session.begin():
        with ledger.replay_at(session, datetime.combine(DAY1, time(10))):
            conversation(session, sqlite_world, variant="champion", decisions=[("follow_up", "approve")])
            conversation(session, sqlite_world, variant="champion", decisions=[("follow_up", "reject")])
            conversation(session, sqlite_world, variant="challenger",
                         decisions=[("follow_up", "reject"), ("follow_up", "edit")])
        with ledger.replay_at(session, datetime.combine(DAY2, time(10))):
            conversation(session, sqlite_world, variant="champion", decisions=[("stage", "approve")])
            conversation(session, sqlite_world, variant="champion", decisions=[("follow_up", "reject")])
    with session_factory(engine)() as session:
        next_step = STRATEGIES["next_step"].read(session, LIVE, DAY1, DAY2)
        everything = STRATEGIES["proposals"].read(session, LIVE, DAY1, DAY2)
        assert STRATEGIES["next_step"].read(session, SIMULATION, DAY1, DAY2) == []  # live rows are not a replay's
    assert [(d.day, d.n, d.k) for d in daily(next_step, DAY1, DAY2)] == [(DAY1, 3, 2), (DAY2, 1, 0)]
    assert [(d.n, d.k) for d in daily(everything, DAY1, DAY2)] == [(3, 2), (2, 1)]
    arms = sorted((u.variant, u.converted) for u in next_step if u.day == DAY1)
    assert arms == [("challenger", True), ("champion", False), ("champion", True)]  # an edit counts as approved
    assert {u.model for u in next_step} == {"smollm2"}


def test_rule_created_leads_convert_once_the_crm_says_so(sqlite_world: World) -> None:
    engine = sqlite_world.engine
    manager = sqlite_world.p("a", "manager")
    with session_factory(engine)() as session, session.begin(), ledger.replay_at(
            session, datetime.combine(DAY1, time(8))):
        created = []
        for n in range(3):
            p = proposals.propose(session, manager, object_type="lead", action="create", changes={"name": f"L{n}"},
                                  source="rule:1", reason="rule 1 v1: web sign-up")
            proposals.approve(session, manager, p.id, by_policy="rule:1@v1")
            created.append(p.record_id)
        session.get(Lead, created[0]).status = "converted"  # type: ignore[union-attr]
    with session_factory(engine)() as session, session.begin(), ledger.replay_at(
            session, datetime.combine(DAY2, time(8))):
        assert sync_lead_conversions(session, actor="drift-monitor") == 1
        assert sync_lead_conversions(session, actor="drift-monitor") == 0  # once per lead
    with session_factory(engine)() as session:
        units = STRATEGIES["rule_leads"].read(session, LIVE, DAY1, DAY2)
    assert [(d.day, d.n, d.k) for d in daily(units, DAY1, DAY1)] == [(DAY1, 3, 1)]
