"""Deletes answer 409 naming the records that still link to them; the second-person approval policy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from config.db import session_factory
from crm import proposals as ops
from crm.errors import ApprovalRefused, NeedsHuman, NotFound
from crm.models import Activity, KnowledgeArticle, OutboxEntry, Proposal
from ledger.models import Decision
from serving.api.app import create_app
from tests.world import World

pytestmark = pytest.mark.integration

# What links to each object type in the test world (after ``_link_everything``).
LINKED = {"account": {"contact", "opportunity", "case", "activity", "event"},
          "contact": {"case", "activity", "event"}, "opportunity": {"activity"}, "case": {"activity"},
          "lead": {"activity"}}
UNLINKED = ("activity", "article")


def _run(world: World, fn: Any) -> Any:
    with session_factory(world.engine)() as s, s.begin():
        return fn(s)


def _counts(world: World) -> tuple[int, int]:
    with session_factory(world.engine)() as s:
        return (s.scalar(select(func.count()).select_from(Decision)) or 0,
                s.scalar(select(func.count()).select_from(OutboxEntry)) or 0)


def _link_everything(world: World) -> None:
    """One more activity, about the lead and the case too, so every linkable type has a link."""
    rec = world.records["a"]
    with session_factory(world.engine)() as s, s.begin():
        s.add(Activity(kind="note", subject="Follow-up", body="Lead converted; case discussed.",
                       occurred_at=datetime(2026, 10, 4), lead_id=rec["lead"], case_id=rec["case"],
                       account_id=rec["account"], owner_id=world.p("a", "rep").user_id,
                       team_id=next(iter(world.p("a", "rep").team_ids))))


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c


def h(world: World, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[who]}"}


@pytest.mark.parametrize("obj", sorted(LINKED))
def test_deleting_a_linked_record_answers_409_naming_the_links_and_writes_nothing(
        client: TestClient, world: World, obj: str) -> None:
    _link_everything(world)
    record_id = world.records["a"][obj]
    proposer = "a:manager" if obj == "case" else "a:rep"
    created = client.post("/v1/proposals", headers=h(world, proposer),
                          json={"object_type": obj, "action": "delete", "record_id": record_id})
    assert created.status_code == 201, created.text
    before = _counts(world)
    approver = "admin" if proposer == "a:manager" else "a:manager"
    refused = client.post(f"/v1/proposals/{created.json()['id']}/approve", headers=h(world, approver))
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert f"{obj} {record_id} still has linked records" in detail
    for kind in LINKED[obj]:
        assert f"{kind}:" in detail, (kind, detail)
    assert _counts(world) == before  # no approval, apply, outbox or outcome row survived
    with session_factory(world.engine)() as s:
        assert s.get(Proposal, created.json()["id"]).status == "pending"
    again = client.get(f"/v1/{ {'opportunity': 'opportunities'}.get(obj, obj + 's') }/{record_id}",
                       headers=h(world, approver))
    assert again.status_code == 200  # the record is still there and the session was not left failed


@pytest.mark.parametrize("obj", UNLINKED)
def test_a_record_nothing_links_to_is_deleted_by_the_second_person_and_undo_restores_it(
        world: World, obj: str) -> None:
    if obj == "article":
        with session_factory(world.engine)() as s:
            record_id = s.scalar(select(KnowledgeArticle.id))
        proposer, approver = world.p("a", "manager"), world.p("a", "admin")
    else:
        record_id, proposer, approver = world.records["a"][obj], world.p("a", "rep"), world.p("a", "manager")
    p = _run(world, lambda s: ops.propose(s, proposer, object_type=obj, action="delete", record_id=record_id,
                                          changes={}))
    done = _run(world, lambda s: ops.approve(s, approver, p.id))
    assert done.status == "applied"
    _run(world, lambda s: ops.undo(s, approver, p.id))
    with session_factory(world.engine)() as s:
        assert s.get(ops.model_for(obj), record_id) is not None


def _propose_delete(world: World) -> int:
    rep = world.p("a", "rep")
    return _run(world, lambda s: ops.propose(s, rep, object_type="activity", action="delete", changes={},
                                             record_id=world.records["a"]["activity"])).id


def test_the_proposer_and_a_peer_cannot_approve_a_delete_alone(world: World) -> None:
    pid = _propose_delete(world)
    with pytest.raises(ApprovalRefused, match=r"not its proposer \[approval rule: approval_policy.delete=team_manager"):
        _run(world, lambda s: ops.approve(s, world.p("a", "rep"), pid))
    with pytest.raises(ApprovalRefused, match=r"user:\d+ is a rep \[approval rule: approval_policy.delete="):
        _run(world, lambda s: ops.approve(s, world.other_rep["a"], pid))
    with pytest.raises(NotFound):  # another team's manager cannot even see it
        _run(world, lambda s: ops.approve(s, world.p("b", "manager"), pid))
    with pytest.raises(NeedsHuman, match="human_only_actions"):
        _run(world, lambda s: ops.approve(s, world.p("a", "manager"), pid, by_policy="rule:3"))
    assert _run(world, lambda s: ops.approve(s, world.p("a", "manager"), pid)).status == "applied"


def test_the_policy_is_configurable_and_refusals_name_the_configured_rule(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from config.settings import get_settings

    monkeypatch.setenv("CRMIND_APPROVAL_POLICY", json.dumps({"delete": "second_person", "owner_change": "admin"}))
    get_settings.cache_clear()
    try:
        pid = _propose_delete(world)
        assert _run(world, lambda s: ops.approve(s, world.other_rep["a"], pid)).status == "applied"
        rep = world.p("a", "rep")
        owner = _run(world, lambda s: ops.propose(s, rep, object_type="lead", action="owner_change",
                                                  record_id=world.records["a"]["lead"],
                                                  changes={"owner_id": world.other_rep["a"].user_id})).id
        with pytest.raises(ApprovalRefused, match=r"needs an admin.*approval_policy.owner_change=admin"):
            _run(world, lambda s: ops.approve(s, world.p("a", "manager"), owner))
        assert _run(world, lambda s: ops.approve(s, world.p("a", "admin"), owner)).status == "applied"
        bulk = _run(world, lambda s: ops.propose(s, rep, object_type="lead", action="update", bulk=True,
                                                 record_id=world.records["a"]["lead"], changes={"pool": "vip"})).id
        with pytest.raises(ApprovalRefused, match="approval_policy.bulk=team_manager"):  # left out: the default
            _run(world, lambda s: ops.approve(s, world.other_rep["a"], bulk))
    finally:
        get_settings.cache_clear()


def test_the_api_answers_403_naming_the_rule(client: TestClient, world: World) -> None:
    pid = _propose_delete(world)
    refused = client.post(f"/v1/proposals/{pid}/approve", headers=h(world, "a:rep"))
    assert refused.status_code == 403 and "approval_policy.delete=team_manager" in refused.json()["detail"]
    assert client.post(f"/v1/proposals/{pid}/approve", headers=h(world, "a:manager")).status_code == 200
