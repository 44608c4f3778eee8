"""Customer 360 over HTTP: the customer view, the duplicate queue, merge through proposals, unmerge."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from config.db import session_factory
from crm.customer_models import CustomerScore, IdentityLink
from crm.models import Activity, Contact, Event
from serving.api.app import create_app
from tests.world import World

pytestmark = pytest.mark.integration


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c


def h(world: World, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[who]}"}


def _linked_duplicate(world: World, team: str = "a") -> tuple[int, int]:
    """Team ``team``'s buyer plus a duplicate record, a web visitor and a lead score, all linked as one customer."""
    with session_factory(world.engine)() as s, s.begin():
        orig = s.get(Contact, world.records[team]["contact"])
        dup = Contact(account_id=orig.account_id, name=f"buyer {team}", title="", phone=None,
                      email=f"buyer{team}@gmail.com", owner_id=orig.owner_id, team_id=orig.team_id, custom={},
                      updated_at=datetime(2025, 1, 1))
        s.add(dup)
        s.flush()
        s.add(Activity(kind="note", subject="Met at expo", occurred_at=datetime(2026, 9, 1), contact_id=dup.id,
                       owner_id=orig.owner_id, team_id=orig.team_id))
        s.add(Event(visitor_id=f"anon-{team}", team_id=orig.team_id, type="form_submit", page="/contact",
                    occurred_at=datetime(2026, 9, 2)))
        cust = f"contact:{orig.id}"
        for obj, key, strength, reasons in (
                ("contact", str(orig.id), "anchor", []),
                ("contact", str(dup.id), "strong", ["name agrees (normalised)", "company agrees"]),
                ("lead", str(world.records[team]["lead"]), "strong", ["email agrees (normalised)"]),
                ("visitor", f"anon-{team}", "strong", ["form submit email agrees"])):
            s.add(IdentityLink(customer_id=cust, object_type=obj, record_key=key, match_probability=0.96,
                               reasons=reasons, strength=strength, run_id="t"))
        s.add(CustomerScore(object_type="lead", record_id=world.records[team]["lead"], kind="lead", value=82.0,
                            label="hot", model_version="lead-score@test", features={"pricing_views": 3},
                            reasons=[{"feature": "pricing_views", "value": 3, "contribution": 0.8,
                                      "en": "viewed pricing 3 times", "zh": "查看定价页3次"}]))
        return orig.id, dup.id


def test_customer_view_links_identities_with_reasons_timeline_and_scores(client: TestClient, world: World) -> None:
    orig, dup = _linked_duplicate(world)
    for ref in (f"contact:{orig}", f"contact:{dup}", f"lead:{world.records['a']['lead']}"):
        body = client.get(f"/v1/customers/{ref}", headers=h(world, "a:rep")).json()
        assert body["customer_id"] == f"contact:{orig}"
    refs = {i["ref"]: i for i in body["identities"]}
    assert set(refs) == {f"contact:{orig}", f"contact:{dup}", f"lead:{world.records['a']['lead']}", "visitor:anon-a"}
    assert refs[f"contact:{dup}"]["reasons"] == ["name agrees (normalised)", "company agrees"]
    kinds = {t["type"] for t in body["timeline"]}
    assert {"activity", "event", "opportunity", "case"} <= kinds
    lead_score = next(s for s in body["scores"] if s["kind"] == "lead")
    assert lead_score["label"] == "hot" and lead_score["reasons"][0]["zh"] == "查看定价页3次"


def test_customer_view_respects_permissions_and_masking(client: TestClient, world: World) -> None:
    orig, _ = _linked_duplicate(world)
    assert client.get(f"/v1/customers/contact:{orig}", headers=h(world, "b:rep")).status_code == 404
    assert client.get("/v1/customers/contact:999999", headers=h(world, "a:rep")).status_code == 404
    support = client.get(f"/v1/customers/contact:{orig}", headers=h(world, "a:support"))
    assert support.status_code == 200
    assert world.phones["a"] not in support.text and world.emails["a"] not in support.text
    assert client.get("/v1/customers/case:1", headers=h(world, "a:rep")).status_code == 422
    assert client.get("/v1/customers/contact:abc", headers=h(world, "a:rep")).status_code == 422


def test_duplicate_queue_merge_and_unmerge_over_http(client: TestClient, world: World) -> None:
    orig, dup = _linked_duplicate(world)
    queue = client.get("/v1/customers/duplicates", headers=h(world, "a:rep")).json()
    entry = next(q for q in queue if q["customer_id"] == f"contact:{orig}")
    assert entry["survivor_id"] == orig and entry["duplicate_ids"] == [dup]
    assert client.get("/v1/customers/duplicates", headers=h(world, "b:rep")).json() == [] or all(
        q["customer_id"] != f"contact:{orig}" for q in client.get("/v1/customers/duplicates",
                                                                  headers=h(world, "b:rep")).json())
    made = client.post("/v1/customers/duplicates/merge", headers=h(world, "a:rep"),
                       json={"object_type": "contact", "survivor_id": orig, "duplicate_ids": [dup],
                             "reason": "same buyer"})
    assert made.status_code == 201, made.text
    proposal = made.json()
    assert proposal["action"] == "merge" and proposal["merge"]["duplicates"] == [dup]
    assert client.get("/v1/customers/duplicates", headers=h(world, "a:rep")).json()[0]["pending_proposal"] == \
        proposal["id"]
    approved = client.post(f"/v1/proposals/{proposal['id']}/approve", headers=h(world, "a:rep"))
    assert approved.json()["status"] == "applied"
    assert client.get(f"/v1/contacts/{dup}", headers=h(world, "a:rep")).json()["merged_into_id"] == orig
    listed = client.get("/v1/contacts", params={"limit": 200}, headers=h(world, "a:rep")).json()["items"]
    assert dup not in [c["id"] for c in listed]
    assert all(q["customer_id"] != f"contact:{orig}"
               for q in client.get("/v1/customers/duplicates", headers=h(world, "a:rep")).json())
    undone = client.post(f"/v1/proposals/{proposal['id']}/undo", headers=h(world, "a:rep"))
    assert undone.json()["status"] == "undone"
    assert client.get(f"/v1/contacts/{dup}", headers=h(world, "a:rep")).json()["merged_into_id"] is None


def test_bad_merge_requests_get_clear_errors(client: TestClient, world: World) -> None:
    orig, dup = _linked_duplicate(world)
    bad = [{"object_type": "contact", "survivor_id": orig, "duplicate_ids": []},
           {"object_type": "case", "survivor_id": 1, "duplicate_ids": [2]},
           {"object_type": "contact", "survivor_id": orig, "duplicate_ids": [dup], "policy": "loudest"}]
    for body in bad:
        assert client.post("/v1/customers/duplicates/merge", headers=h(world, "a:rep"), json=body).status_code == 422
    other = world.records["b"]["contact"]
    hidden = client.post("/v1/customers/duplicates/merge", headers=h(world, "a:rep"),
                         json={"object_type": "contact", "survivor_id": orig, "duplicate_ids": [other]})
    assert hidden.status_code == 404


def test_erase_covers_every_linked_identity_and_the_link_table_and_export_lists_them(client: TestClient,
                                                                                     world: World) -> None:
    orig, dup = _linked_duplicate(world)
    exported = client.get(f"/v1/contacts/{orig}/export", headers=h(world, "a:manager")).json()
    assert {x["ref"] for x in exported["linked"]} == {f"contact:{dup}", f"lead:{world.records['a']['lead']}",
                                                      "visitor:anon-a"}
    erased = client.post(f"/v1/contacts/{orig}/erase", headers=h(world, "a:manager"))
    assert erased.status_code == 200, erased.text
    assert set(erased.json()["linked_erased"]) >= {f"contact:{dup}", f"lead:{world.records['a']['lead']}"}
    with session_factory(world.engine)() as s:
        assert s.get(Contact, dup).erased_at is not None
        from crm.models import Lead

        lead = s.get(Lead, world.records["a"]["lead"])
        assert lead.email is None and lead.phone is None and lead.name == "[erased]"
        from sqlalchemy import func, select

        assert s.scalar(select(func.count()).select_from(IdentityLink).where(
            IdentityLink.customer_id == f"contact:{orig}")) == 0


def test_a_records_scores_with_reasons_are_served_as_its_reader_may_see_them(client: TestClient,
                                                                             world: World) -> None:
    _linked_duplicate(world)
    lead = world.records["a"]["lead"]
    scores = client.get(f"/v1/customers/scores/lead:{lead}", headers=h(world, "a:rep")).json()
    assert [(s["kind"], s["label"]) for s in scores] == [("lead", "hot")]
    assert scores[0]["reasons"][0]["en"] == "viewed pricing 3 times"
    assert client.get(f"/v1/customers/scores/lead:{lead}", headers=h(world, "b:rep")).status_code == 404
    assert client.get("/v1/customers/scores/case:1", headers=h(world, "a:rep")).status_code == 422


def test_a_new_contact_comes_back_with_its_likely_duplicates_readable_ones_only(client: TestClient,
                                                                                world: World) -> None:
    from customers.identity import resolve_store
    from customers.keys_follower import follow

    with session_factory(world.engine)() as s, s.begin():
        resolve_store(s)
    account = world.records["a"]["account"]
    body = {"object_type": "contact", "action": "create",
            "changes": {"name": "BUYER A", "email": world.emails["a"].upper(), "account_id": account}}
    made = client.post("/v1/proposals", headers=h(world, "a:rep"), json=body).json()
    refs = [c["ref"] for c in made["likely_duplicates"]]
    assert f"contact:{world.records['a']['contact']}" in refs
    assert all(c["reasons"] and world.emails["a"] not in str(c["reasons"]) for c in made["likely_duplicates"])
    # team b's rep proposing the same person at their own account sees none of team a's records
    other = client.post("/v1/proposals", headers=h(world, "b:rep"), json={
        "object_type": "lead", "action": "create",
        "changes": {"name": "Buyer a", "email": world.emails["a"], "phone": world.phones["a"]}}).json()
    assert f"contact:{world.records['a']['contact']}" not in [c["ref"] for c in other["likely_duplicates"]]
    # once approved, the new contact's keys follow the outbox, and the next look-alike finds it too
    created = client.post(f"/v1/proposals/{made['id']}/approve", headers=h(world, "a:rep")).json()["record_id"]
    with session_factory(world.engine)() as s, s.begin():
        assert follow(s) >= 1
    again = client.post("/v1/proposals", headers=h(world, "a:rep"), json={
        "object_type": "contact", "action": "create",
        "changes": {"name": "Buyer A.", "email": world.emails["a"], "account_id": account}}).json()
    assert f"contact:{created}" in [c["ref"] for c in again["likely_duplicates"]]
