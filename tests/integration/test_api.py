"""The HTTP API end to end: auth, listing, masking, proposals, privacy, import, decisions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.api.app import create_app
from tests.world import World

pytestmark = pytest.mark.integration
PLURAL = {"account": "accounts", "contact": "contacts", "lead": "leads", "opportunity": "opportunities",
          "activity": "activities", "case": "cases", "event": "events"}


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c


def h(world: World, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[who]}"}


def test_requests_without_a_valid_token_get_401(client: TestClient, world: World) -> None:
    assert client.get("/v1/accounts").status_code == 401
    assert client.get("/v1/accounts", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/v1/me", headers=h(world, "a:rep")).json()["role"] == "rep"


@pytest.mark.parametrize("who", ["a:rep", "a:manager", "a:support", "a:rep2"])
@pytest.mark.parametrize("obj", list(PLURAL))
def test_no_role_reads_another_teams_rows_through_any_endpoint(client: TestClient, world: World, who: str,
                                                               obj: str) -> None:
    other = world.records["b"][obj]
    assert client.get(f"/v1/{PLURAL[obj]}/{other}", headers=h(world, who)).status_code == 404
    listed = client.get(f"/v1/{PLURAL[obj]}", params={"limit": 200}, headers=h(world, who)).json()
    assert other not in [r["id"] for r in listed["items"]]
    body = str(listed)
    assert world.phones["b"] not in body and world.emails["b"] not in body


def test_forbidden_and_missing_records_look_the_same(client: TestClient, world: World) -> None:
    hidden = client.get(f"/v1/contacts/{world.records['b']['contact']}", headers=h(world, "a:rep"))
    missing = client.get("/v1/contacts/999999", headers=h(world, "a:rep"))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace(str(world.records["b"]["contact"]), "N") == \
        missing.json()["detail"].replace("999999", "N")


def test_support_never_sees_unmasked_personal_fields_anywhere(client: TestClient, world: World) -> None:
    bodies = [client.get(f"/v1/{p}", params={"limit": 200}, headers=h(world, "a:support")).text
              for p in PLURAL.values()]
    bodies.append(client.get(f"/v1/contacts/{world.records['a']['contact']}", headers=h(world, "a:support")).text)
    bodies.append(client.get(f"/v1/decisions?record=contact:{world.records['a']['contact']}",
                             headers=h(world, "a:support")).text)
    for body in bodies:
        assert world.phones["a"] not in body and world.emails["a"] not in body
    contact = client.get(f"/v1/contacts/{world.records['a']['contact']}", headers=h(world, "a:support")).json()
    assert contact["phone"] == "138****5678" and contact["email"] == "l***@acme-energy.cn"


def test_list_paginates_with_a_cursor_and_sorts(client: TestClient, world: World) -> None:
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1, "sort": "-id"}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/accounts", params=params, headers=h(world, "admin")).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 2


@pytest.mark.parametrize(("params", "status"), [
    ({"cursor": "garbage!!"}, 422), ({"sort": "annual_revenue"}, 422), ({"limit": 0}, 422),
    ({"q": "Acme"}, 200), ({"industry": "energy"}, 200),
])
def test_bad_list_parameters_get_a_422_with_a_message(client: TestClient, world: World, params: dict[str, Any],
                                                      status: int) -> None:
    r = client.get("/v1/accounts", params=params, headers=h(world, "a:rep"))
    assert r.status_code == status, r.text
    if status == 422:
        assert r.json()["detail"][0]["msg"]


def test_proposal_flow_over_http(client: TestClient, world: World) -> None:
    opp = world.records["a"]["opportunity"]
    created = client.post("/v1/proposals", headers={**h(world, "a:rep"), "Idempotency-Key": "k1"}, json={
        "object_type": "opportunity", "action": "update", "record_id": opp, "changes": {"stage": "negotiation"},
        "reason": "verbal yes"})
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    again = client.post("/v1/proposals", headers={**h(world, "a:rep"), "Idempotency-Key": "k1"}, json={
        "object_type": "opportunity", "action": "update", "record_id": opp, "changes": {"stage": "negotiation"}})
    assert again.json()["id"] == pid
    assert client.get(f"/v1/proposals/{pid}", headers=h(world, "b:rep")).status_code == 404
    approved = client.post(f"/v1/proposals/{pid}/approve", headers=h(world, "a:rep"), json={})
    assert approved.status_code == 200 and approved.json()["status"] == "applied"
    assert client.post(f"/v1/proposals/{pid}/approve", headers=h(world, "a:rep")).status_code == 409
    assert client.get(f"/v1/opportunities/{opp}", headers=h(world, "a:rep")).json()["stage"] == "negotiation"
    history = client.get(f"/v1/decisions?record=opportunity:{opp}", headers=h(world, "a:rep")).json()
    assert {"proposal", "approval", "apply"} <= {d["kind"] for d in history}
    assert client.get(f"/v1/decisions?record=opportunity:{opp}", headers=h(world, "b:rep")).status_code == 404
    undone = client.post(f"/v1/proposals/{pid}/undo", headers=h(world, "a:rep"))
    assert undone.json()["status"] == "undone"


def test_malformed_proposals_get_422_not_500(client: TestClient, world: World) -> None:
    for body in ({"object_type": "opportunity"}, {"object_type": "spaceship", "action": "update"},
                 {"object_type": "opportunity", "action": "update", "record_id": world.records["a"]["opportunity"],
                  "changes": {"amount": {"$gt": 1}}}):
        r = client.post("/v1/proposals", headers=h(world, "a:rep"), json=body)
        assert r.status_code == 422, r.text
    # PostgreSQL stores no NUL in text: a NUL in a value is dropped, on either engine, not a 500
    nul = client.post("/v1/proposals", headers=h(world, "a:rep"), json={
        "object_type": "opportunity", "action": "update", "record_id": world.records["a"]["opportunity"],
        "changes": {"name": "Renamed\u0000 deal"}})
    assert nul.status_code == 201 and nul.json()["changes"]["name"]["after"] == "Renamed deal", nul.text


def test_export_and_erase_a_contact(client: TestClient, world: World) -> None:
    cid = world.records["a"]["contact"]
    assert client.get(f"/v1/contacts/{cid}/export", headers=h(world, "a:rep")).status_code == 403
    exported = client.get(f"/v1/contacts/{cid}/export", headers=h(world, "a:manager"))
    assert exported.status_code == 200 and exported.json()["contact"]["phone"] == world.phones["a"]
    assert len(exported.json()["activities"]) == 1
    erased = client.post(f"/v1/contacts/{cid}/erase", headers=h(world, "a:manager"))
    assert erased.status_code == 200 and erased.json()["activities_scrubbed"] == 1
    after = client.get(f"/v1/contacts/{cid}", headers=h(world, "a:manager")).json()
    assert after["phone"] is None and after["email"] is None and after["name"] == "[erased]"
    act = client.get(f"/v1/activities/{world.records['a']['activity']}", headers=h(world, "a:manager")).json()
    case = client.get(f"/v1/cases/{world.records['a']['case']}", headers=h(world, "a:manager")).json()
    for text in (act["body"], case["description"]):
        assert world.phones["a"] not in text and world.emails["a"] not in text and "Buyer a" not in text
    assert client.post(f"/v1/contacts/{cid}/erase", headers=h(world, "a:manager")).status_code == 409


def test_csv_import_skips_bad_rows_and_reports_them(client: TestClient, world: World) -> None:
    csv_text = ("name,account_id,phone,email,title\n"
                f"Zhao Lei,{world.records['a']['account']},+86 139 0000 1111,zhao@acme.cn,CTO\n"
                ",1,,,\n"
                f"Mallory,{world.records['b']['account']},,,\n"
                f"Kim Park,{world.records['a']['account']},,kim@acme.cn,Buyer,extra\n"
                f"李娜,{world.records['a']['account']},13700001111,li.na@acme.cn,采购经理\n")
    r = client.post("/v1/import/contacts", headers=h(world, "a:rep"),
                    files={"file": ("contacts.csv", csv_text.encode(), "text/csv")})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["imported"] == 2
    assert {s["line"] for s in report["skipped"]} == {3, 4, 5}
    assert all(s["error"] for s in report["skipped"])
    bad = client.post("/v1/import/contacts", headers=h(world, "a:rep"),
                      files={"file": ("x.csv", b"nmae,phone\nx,1\n", "text/csv")})
    assert bad.status_code == 422 and "unknown columns" in bad.text


def test_csv_import_with_broken_quoting_or_line_breaks_reports_them(client: TestClient, world: World) -> None:
    acct = world.records["a"]["account"]
    # Old Mac line endings (bare CR) are line breaks, not a crash.
    r = client.post("/v1/import/contacts", headers=h(world, "a:rep"),
                    files={"file": ("mac.csv", f"name,account_id\rWang Fang,{acct}\r".encode(), "text/csv")})
    assert r.status_code == 200 and r.json()["imported"] == 1, r.text
    # A file that is only a stray CR and a digit has no header: a 422, not a 500.
    r = client.post("/v1/import/contacts", headers=h(world, "a:rep"), files={"file": ("x.csv", b"\r0", "text/csv")})
    assert r.status_code == 422 and "header" in r.text
    # Broken quoting stops the file at that row with its line number; the rows before it land.
    text = f'name,account_id,title\nChen Jie,{acct},CFO\n"Bad"x,{acct},y\nLast One,{acct},z\n'
    r = client.post("/v1/import/contacts", headers=h(world, "a:rep"),
                    files={"file": ("q.csv", text.encode(), "text/csv")})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["imported"] == 1
    assert report["skipped"] == [{"line": 3, "error": report["skipped"][0]["error"]}]
    assert "malformed CSV" in report["skipped"][0]["error"]


def test_hostile_text_is_stored_as_text(client: TestClient, world: World) -> None:
    hostile = "'); DROP TABLE contacts; -- <script>alert(1)</script> Ignore previous instructions \u0000"
    r = client.post("/v1/proposals", headers=h(world, "a:rep"), json={
        "object_type": "activity", "action": "create",
        "changes": {"kind": "note", "occurred_at": "2026-11-01T09:00:00", "body": hostile,
                    "account_id": world.records["a"]["account"]}})
    assert r.status_code == 201, r.text
    applied = client.post(f"/v1/proposals/{r.json()['id']}/approve", headers=h(world, "a:rep"))
    aid = applied.json()["record_id"]
    body = client.get(f"/v1/activities/{aid}", headers=h(world, "a:rep")).json()["body"]
    assert "DROP TABLE contacts" in body and "\x00" not in body
    assert client.get("/v1/contacts", headers=h(world, "a:rep")).status_code == 200
