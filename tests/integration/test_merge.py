"""Merges are proposals a person approves; unmerge restores every record and identity link exactly."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from config.db import session_factory
from crm import proposals as ops
from crm.access import readable
from crm.customer_models import IdentityLink
from crm.errors import ApprovalRefused, InvalidInput, NeedsHuman, StaleRecord
from crm.merge import propose_merge, survivor_values
from crm.models import Account, Activity, Case, Contact, Event, Lead
from tests.world import World

pytestmark = pytest.mark.integration


def _run(world: World, fn: Any) -> Any:
    with session_factory(world.engine)() as s, s.begin():
        return fn(s)


def _snapshot(world: World) -> dict[str, Any]:
    """Every column of every contact, account, child record and identity link: what unmerge must restore."""
    with session_factory(world.engine)() as s:
        out: dict[str, Any] = {}
        for model in (Contact, Account, Lead, Activity, Case, Event, IdentityLink):
            cols = [c.name for c in model.__table__.columns if c.name not in ("version", "updated_at")]
            out[model.__tablename__] = sorted(
                tuple(str(getattr(r, c)) for c in cols) for r in s.scalars(select(model)))
        return out


def _duplicate(world: World, team: str = "a", **overrides: Any) -> int:
    """A second record of team ``team``'s buyer: another spelling, a personal mailbox, its own activity and case."""
    rep = world.p(team, "rep")

    def make(s: Any) -> int:
        orig = s.get(Contact, world.records[team]["contact"])
        fields = {"account_id": orig.account_id, "name": "Buyer  " + team.upper(), "title": "",
                  "phone": None, "email": f"buyer{team}77@gmail.com", "owner_id": rep.user_id,
                  "team_id": orig.team_id, "custom": {"wechat_id": "wxid_dup"},
                  "updated_at": datetime(2025, 1, 1), **overrides}
        dup = Contact(**fields)
        s.add(dup)
        s.flush()
        s.add(Activity(kind="email", subject="Re: pricing", occurred_at=datetime(2026, 11, 2), contact_id=dup.id,
                       account_id=orig.account_id, owner_id=rep.user_id, team_id=orig.team_id))
        s.add(Case(subject="Billing question", contact_id=dup.id, account_id=orig.account_id,
                   owner_id=rep.user_id, team_id=orig.team_id))
        s.add(Event(visitor_id="v-dup", contact_id=dup.id, team_id=orig.team_id, type="page_view",
                    page="/pricing", occurred_at=datetime(2026, 11, 1)))
        for key, cust, strength in ((orig.id, f"contact:{orig.id}", "anchor"), (dup.id, f"contact:{orig.id}",
                                                                                   "strong")):
            s.add(IdentityLink(customer_id=cust, object_type="contact", record_key=str(key), match_probability=0.97,
                               reasons=["name agrees (normalised)"], strength=strength, run_id="r1"))
        return int(dup.id)

    return int(_run(world, make))


def test_merge_applies_relinks_children_keeps_a_tombstone_and_unmerge_restores_everything(world: World) -> None:
    rep, orig = world.p("a", "rep"), world.records["a"]["contact"]
    dup = _duplicate(world)
    before = _snapshot(world)
    p = _run(world, lambda s: propose_merge(s, rep, object_type="contact", survivor_id=orig, duplicate_ids=[dup],
                                            reason="same person, personal mailbox"))
    assert p.action == "merge" and p.status == "pending" and p.requires_human
    assert p.payload["duplicates"] == [dup]
    # The survivor is the more recent record: its fields stay; the duplicate only adds what it lacks.
    assert set(p.changes) == {"custom"} and p.changes["custom"]["after"]["wechat_id"] == "wxid_dup"
    applied = _run(world, lambda s: ops.approve(s, rep, p.id))
    assert applied.status == "applied"
    with session_factory(world.engine)() as s:
        tomb = s.get(Contact, dup)
        assert tomb is not None and tomb.merged_into_id == orig  # kept, not deleted
        assert s.scalars(select(Activity).where(Activity.contact_id == dup)).first() is None
        assert s.scalars(select(Case).where(Case.contact_id == orig)).all()
        assert {e.contact_id for e in s.scalars(select(Event).where(Event.visitor_id == "v-dup"))} == {orig}
        listed = {c.id for c in s.scalars(readable(rep, "contact"))}
        assert orig in listed and dup not in listed
        link = s.scalar(select(IdentityLink).where(IdentityLink.record_key == str(dup)))
        assert link.strength == "merged"
    assert _snapshot(world) != before
    undone = _run(world, lambda s: ops.undo(s, rep, p.id))
    assert undone.status == "undone"
    assert _snapshot(world) == before


def test_unmerge_refuses_when_a_relinked_record_moved_since(world: World) -> None:
    rep, orig = world.p("a", "rep"), world.records["a"]["contact"]
    dup = _duplicate(world)
    p = _run(world, lambda s: propose_merge(s, rep, object_type="contact", survivor_id=orig, duplicate_ids=[dup]))
    _run(world, lambda s: ops.approve(s, rep, p.id))

    def move(s: Any) -> None:
        case = s.scalars(select(Case).where(Case.subject == "Billing question")).one()
        case.contact_id = None

    _run(world, move)
    with pytest.raises(StaleRecord, match="moved after the merge"):
        _run(world, lambda s: ops.undo(s, rep, p.id))
    with session_factory(world.engine)() as s:
        assert s.get(Contact, dup).merged_into_id == orig  # nothing half-undone


def test_a_merge_across_teams_needs_a_manager_of_each_or_an_admin(world: World) -> None:
    admin = world.p("a", "admin")
    dup = _duplicate(world, "b")
    orig = world.records["a"]["contact"]
    p = _run(world, lambda s: propose_merge(s, admin, object_type="contact", survivor_id=orig, duplicate_ids=[dup]))
    assert p.payload["teams"] == sorted(p.payload["teams"]) and len(p.payload["teams"]) == 2
    with pytest.raises(ApprovalRefused, match="manager of each") as refused:
        _run(world, lambda s: ops.approve(s, world.p("a", "manager"), p.id))
    assert refused.value.rule == "approval_policy.merge=managers_of_each_team"
    with pytest.raises(NeedsHuman):
        _run(world, lambda s: ops.approve(s, admin, p.id, by_policy="rule:7"))
    assert _run(world, lambda s: ops.approve(s, admin, p.id)).status == "applied"


def test_merge_input_is_checked(world: World) -> None:
    rep, orig = world.p("a", "rep"), world.records["a"]["contact"]
    with pytest.raises(InvalidInput, match="at least one duplicate"):
        _run(world, lambda s: propose_merge(s, rep, object_type="contact", survivor_id=orig, duplicate_ids=[]))
    with pytest.raises(InvalidInput, match="cannot also be"):
        _run(world, lambda s: propose_merge(s, rep, object_type="contact", survivor_id=orig, duplicate_ids=[orig]))
    with pytest.raises(InvalidInput, match="only contact, lead, account"):
        _run(world, lambda s: propose_merge(s, rep, object_type="case", survivor_id=1, duplicate_ids=[2]))
    dup = _duplicate(world)
    with pytest.raises(InvalidInput, match="survivorship"):
        _run(world, lambda s: propose_merge(s, rep, object_type="contact", survivor_id=orig, duplicate_ids=[dup],
                                            policy="loudest"))  # type: ignore[arg-type]
    p = _run(world, lambda s: propose_merge(s, rep, object_type="contact", survivor_id=orig, duplicate_ids=[dup]))
    _run(world, lambda s: ops.approve(s, rep, p.id))
    with pytest.raises(InvalidInput, match="already merged"):
        _run(world, lambda s: propose_merge(s, rep, object_type="contact", survivor_id=orig, duplicate_ids=[dup]))


def test_survivorship_policies_pick_fields_as_documented(world: World) -> None:
    with session_factory(world.engine)() as s:
        old = Contact(name="Li Wei", title="CFO", phone=None, email="li@a.cn", updated_at=datetime(2025, 1, 1),
                      custom={}, id=900)
        new = Contact(name="Wei Li", title="", phone="+8613812345678", email="liwei@qq.com",
                      updated_at=datetime(2026, 1, 1), custom={}, id=901)
        recent = survivor_values("contact", old, [new], "most_recent")
        assert recent == {"name": "Wei Li", "phone": "+8613812345678", "email": "liwei@qq.com"}
        assert "title" not in recent  # an empty value never wins
        complete = survivor_values("contact", new, [old], "most_complete")
        assert complete["title"] == "CFO"
        lead_a = Lead(name="A", source="web", email="a@x.com", updated_at=datetime(2026, 1, 1), custom={}, id=1)
        lead_b = Lead(name="B", source="referral", email="b@x.com", updated_at=datetime(2025, 1, 1), custom={}, id=2)
        assert survivor_values("lead", lead_a, [lead_b], "source_priority")["name"] == "B"
        s.rollback()
