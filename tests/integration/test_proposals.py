"""Writes through proposals: propose, approve / edit / reject, stale detection, idempotency, undo."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from config.db import session_factory
from crm import proposals as ops
from crm.errors import Conflict, Forbidden, InvalidInput, NeedsHuman, NotFound, StaleRecord
from crm.models import Contact, Opportunity, OutboxEntry, Proposal
from ledger.models import Decision
from tests.world import World

pytestmark = pytest.mark.integration


def _run(world: World, fn: Any) -> Any:
    with session_factory(world.engine)() as s, s.begin():
        return fn(s)


def _count(world: World, model: Any) -> int:
    with session_factory(world.engine)() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_update_is_proposed_then_applied_with_before_image_outbox_and_ledger(world: World) -> None:
    rep, opp_id = world.p("a", "rep"), world.records["a"]["opportunity"]
    p = _run(world, lambda s: ops.propose(s, rep, object_type="opportunity", action="update", record_id=opp_id,
                                          changes={"stage": "negotiation", "amount": 300000},
                                          reason="customer accepted the quote", evidence=["activity:1"]))
    assert p.status == "pending"
    assert p.changes["stage"] == {"before": "proposal", "after": "negotiation"}
    with session_factory(world.engine)() as s:
        assert s.get(Opportunity, opp_id).stage == "proposal"  # nothing written yet
    outbox_before, ledger_before = _count(world, OutboxEntry), _count(world, Decision)
    applied = _run(world, lambda s: ops.approve(s, rep, p.id))
    assert applied.status == "applied" and applied.before_image["stage"] == "proposal"
    with session_factory(world.engine)() as s:
        opp = s.get(Opportunity, opp_id)
        assert (opp.stage, float(opp.amount), opp.version) == ("negotiation", 300000.0, 2)
    assert _count(world, OutboxEntry) == outbox_before + 1
    assert _count(world, Decision) >= ledger_before + 2  # approval + apply (+ outcome)


def test_an_approved_proposal_never_applies_twice(world: World) -> None:
    rep = world.p("a", "rep")
    p = _run(world, lambda s: ops.propose(s, rep, object_type="lead", action="update",
                                          record_id=world.records["a"]["lead"], changes={"score": 90}))
    _run(world, lambda s: ops.approve(s, rep, p.id))
    with pytest.raises(Conflict, match="applied"):
        _run(world, lambda s: ops.approve(s, rep, p.id))
    with pytest.raises(InvalidInput, match="nothing to change"):
        _run(world, lambda s: ops.propose(s, rep, object_type="lead", action="update",
                                          record_id=world.records["a"]["lead"], changes={"score": 90}))


def test_the_same_proposal_twice_is_deduplicated_by_idempotency_key(world: World) -> None:
    rep = world.p("a", "rep")
    kwargs = dict(object_type="lead", action="update", record_id=world.records["a"]["lead"], changes={"score": 77})
    first = _run(world, lambda s: ops.propose(s, rep, **kwargs))
    second = _run(world, lambda s: ops.propose(s, rep, **kwargs))
    assert first.id == second.id


def test_stale_record_is_refused(world: World) -> None:
    rep, other = world.p("a", "rep"), world.other_rep["a"]
    opp_id = world.records["a"]["opportunity"]
    p1 = _run(world, lambda s: ops.propose(s, rep, object_type="opportunity", action="update", record_id=opp_id,
                                           changes={"probability": 80}))
    p2 = _run(world, lambda s: ops.propose(s, other, object_type="opportunity", action="update",
                                           record_id=opp_id, changes={"probability": 20}))
    _run(world, lambda s: ops.approve(s, other, p2.id))
    with pytest.raises(StaleRecord, match="changed after the proposal"):
        _run(world, lambda s: ops.approve(s, rep, p1.id))
    with session_factory(world.engine)() as s:
        assert s.get(Opportunity, opp_id).probability == 20
        assert s.get(Proposal, p1.id).status == "pending"


def test_edit_may_only_change_proposed_fields(world: World) -> None:
    rep, opp_id = world.p("a", "rep"), world.records["a"]["opportunity"]
    p = _run(world, lambda s: ops.propose(s, rep, object_type="opportunity", action="update", record_id=opp_id,
                                          changes={"probability": 70}))
    with pytest.raises(InvalidInput, match="only change proposed fields"):
        _run(world, lambda s: ops.approve(s, rep, p.id, edits={"amount": 1}))
    done = _run(world, lambda s: ops.approve(s, rep, p.id, edits={"probability": 75}))
    assert done.changes["probability"]["after"] == 75
    with session_factory(world.engine)() as s:
        assert s.get(Opportunity, opp_id).probability == 75
        outcome = s.scalar(select(Decision.outcome).where(Decision.id == done.decision_id))
    assert outcome == "edited"


def test_reject_writes_nothing(world: World) -> None:
    rep, opp_id = world.p("a", "rep"), world.records["a"]["opportunity"]
    p = _run(world, lambda s: ops.propose(s, rep, object_type="opportunity", action="update", record_id=opp_id,
                                          changes={"stage": "closed_lost"}))
    _run(world, lambda s: ops.reject(s, rep, p.id, "wrong deal"))
    with session_factory(world.engine)() as s:
        assert s.get(Opportunity, opp_id).stage == "proposal"
    with pytest.raises(Conflict):
        _run(world, lambda s: ops.approve(s, rep, p.id))


def test_create_and_close_and_undo(world: World) -> None:
    rep = world.p("a", "rep")
    created = _run(world, lambda s: ops.approve(s, rep, ops.propose(
        s, rep, object_type="opportunity", action="create",
        changes={"account_id": world.records["a"]["account"], "name": "Expansion", "close_date": "2027-01-31",
                 "amount": "50000", "currency": "CNY", "custom.budget_confirmed": True}).id))
    new_id = created.record_id
    with session_factory(world.engine)() as s:
        opp = s.get(Opportunity, new_id)
        assert opp.owner_id == rep.user_id and opp.team_id in rep.team_ids and opp.custom["budget_confirmed"]
    closed = _run(world, lambda s: ops.approve(s, rep, ops.propose(
        s, rep, object_type="opportunity", action="close", record_id=new_id,
        changes={"stage": "closed_won", "probability": 100}).id))
    _run(world, lambda s: ops.undo(s, rep, closed.id))
    with session_factory(world.engine)() as s:
        assert s.get(Opportunity, new_id).stage == "prospecting"
    with pytest.raises(StaleRecord):  # the record changed after it was created
        _run(world, lambda s: ops.undo(s, rep, created.id))
    fresh = _run(world, lambda s: ops.approve(s, rep, ops.propose(
        s, rep, object_type="contact", action="create",
        changes={"account_id": world.records["a"]["account"], "name": "Wang Fang"}).id))
    _run(world, lambda s: ops.undo(s, rep, fresh.id))
    with session_factory(world.engine)() as s:
        assert s.get(Contact, fresh.record_id) is None
    # The newest record's id is not handed out again (SQLite reused it before migration 0005): the ledger
    # and the search index name records by id.
    again = _run(world, lambda s: ops.approve(s, rep, ops.propose(
        s, rep, object_type="contact", action="create",
        changes={"account_id": world.records["a"]["account"], "name": "Li Wei"}).id))
    assert again.record_id > fresh.record_id


def test_undo_refuses_when_the_record_changed_since(world: World) -> None:
    rep, opp_id = world.p("a", "rep"), world.records["a"]["opportunity"]
    first = _run(world, lambda s: ops.approve(s, rep, ops.propose(
        s, rep, object_type="opportunity", action="update", record_id=opp_id, changes={"probability": 65}).id))
    _run(world, lambda s: ops.approve(s, rep, ops.propose(
        s, rep, object_type="opportunity", action="update", record_id=opp_id, changes={"probability": 66}).id))
    with pytest.raises(StaleRecord):
        _run(world, lambda s: ops.undo(s, rep, first.id))


@pytest.mark.parametrize("action", ["delete", "owner_change"])
def test_destructive_and_owner_changes_are_never_auto_approved(world: World, action: str) -> None:
    rep = world.p("a", "rep")
    changes = {"owner_id": world.other_rep["a"].user_id} if action == "owner_change" else {}
    p = _run(world, lambda s: ops.propose(s, rep, object_type="lead", action=action,
                                          record_id=world.records["a"]["lead"], changes=changes))
    assert p.requires_human
    with pytest.raises(NeedsHuman, match="approval rule: human_only_actions"):
        _run(world, lambda s: ops.approve(s, rep, p.id, by_policy="rule:7"))
    done = _run(world, lambda s: ops.approve(s, world.p("a", "manager"), p.id))
    assert done.status == "applied"


def test_bulk_proposals_need_a_person(world: World) -> None:
    rep = world.p("a", "rep")
    p = _run(world, lambda s: ops.propose(s, rep, object_type="lead", action="update", bulk=True,
                                          record_id=world.records["a"]["lead"], changes={"pool": "vip"}))
    with pytest.raises(NeedsHuman):
        _run(world, lambda s: ops.approve(s, rep, p.id, by_policy="rule:1"))


def test_cannot_propose_on_another_teams_record_or_link_to_it(world: World) -> None:
    rep = world.p("a", "rep")
    with pytest.raises(NotFound):
        _run(world, lambda s: ops.propose(s, rep, object_type="opportunity", action="update",
                                          record_id=world.records["b"]["opportunity"], changes={"probability": 1}))
    with pytest.raises(NotFound):
        _run(world, lambda s: ops.propose(s, rep, object_type="contact", action="create",
                                          changes={"name": "X", "account_id": world.records["b"]["account"]}))
    with pytest.raises(Forbidden):
        _run(world, lambda s: ops.propose(s, world.p("a", "support"), object_type="opportunity",
                                          action="create", changes={"name": "x"}))


@pytest.mark.parametrize(("changes", "message"), [
    ({"stage": "won-ish"}, "must be one of"),
    ({"probability": 140}, "between 0 and 100"),
    ({"amount": "lots"}, "amount"),
    ({"close_date": "next tuesday"}, "close_date"),
    ({"currency": "usd"}, "three-letter"),
    ({"nonexistent": 1}, "has no field"),
    ({"version": 9}, "not a field a proposal can change"),
    ({"custom.unknown": 1}, "no custom field"),
    ({"custom.budget_confirmed": "yes"}, "expects a bool"),
])
def test_bad_values_get_a_clear_error(world: World, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        _run(world, lambda s: ops.propose(s, world.p("a", "rep"), object_type="opportunity", action="update",
                                          record_id=world.records["a"]["opportunity"], changes=changes))


def test_a_crash_halfway_through_apply_leaves_nothing_half_written(world: World, monkeypatch: Any) -> None:
    rep, contact_id = world.p("a", "rep"), world.records["a"]["contact"]
    p = _run(world, lambda s: ops.propose(s, rep, object_type="contact", action="update", record_id=contact_id,
                                          changes={"title": "CEO"}))
    counts = (_count(world, OutboxEntry), _count(world, Decision))

    def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr("crm.outbox.emit", boom)
    with pytest.raises(RuntimeError):
        _run(world, lambda s: ops.approve(s, rep, p.id))
    monkeypatch.undo()
    with session_factory(world.engine)() as s:
        assert s.get(Contact, contact_id).title == "CFO"
        assert s.get(Proposal, p.id).status == "pending"
    assert (_count(world, OutboxEntry), _count(world, Decision)) == counts
    assert _run(world, lambda s: ops.approve(s, rep, p.id)).status == "applied"


def test_ledger_never_stores_raw_personal_values(world: World) -> None:
    rep, contact_id = world.p("a", "rep"), world.records["a"]["contact"]
    _run(world, lambda s: ops.approve(s, rep, ops.propose(
        s, rep, object_type="contact", action="update", record_id=contact_id,
        changes={"phone": "13900001111"}).id))
    with session_factory(world.engine)() as s:
        outputs = [str(d.output) for d in s.scalars(select(Decision))]
    assert not any("13900001111" in o or world.phones["a"] in o for o in outputs)
    assert any("139****1111" in o for o in outputs)
