"""Identity resolution on a small demo CRM (SQLite and PostgreSQL): planted duplicates link, hard negatives
(namesakes, families sharing a phone or a mailbox) stay apart, links carry reasons without values, new records
find their duplicates, the CSV command round-trips, and the eval harness scores a slice."""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from config.db import session_factory, transaction
from crm.customer_models import IdentityKey, IdentityLink
from crm.demo import build_demo
from crm.models import Account, Contact, Event, Lead
from customers.identity import likely_duplicates, model_path, resolve_store, write_keys
from customers.person_spec import PERSON_SPEC
from customers.visitors import phone_hash
from ledger.models import Decision

pytestmark = pytest.mark.integration
LABELS = {lvl.label for c in PERSON_SPEC.comparisons for lvl in c.levels} | {
    "visitor signed in as the contact", "form email agrees (normalised)", "shares a device id", "phone hash agrees",
    "visitor id recorded on the record",
    "company agrees (normalised)", "city agrees", "website domain agrees"}


def _add(session: Any, obj: Any) -> int:
    session.add(obj)
    session.flush()
    return int(obj.id)


def _plant_hard_cases(engine: Engine) -> dict[str, Any]:
    """Namesakes, families sharing a phone or mailbox, a pinyin duplicate, and visitors with weak signals."""
    t0 = datetime(2025, 1, 1)
    with transaction(engine) as s:
        acct_a = _add(s, Account(name="青岛海信测试有限公司", city="青岛", country="China", language="zh",
                                 website="https://www.hx-test.cn", created_at=t0))
        acct_b = _add(s, Account(name="Testwell Robotics GmbH", city="Munich", country="Germany",
                                 website="https://testwell.de", created_at=t0))
        ids = {
            # the same common name at two companies: namesakes, not one person
            "namesake_1": _add(s, Contact(account_id=acct_a, name="赵敏", email="zhaomin@hx-test.cn",
                                          phone="13900001111", language="zh", created_at=t0)),
            "namesake_2": _add(s, Contact(account_id=acct_b, name="Zhao Min", email="min.zhao@testwell.de",
                                          phone="+49 89 555 0101", created_at=t0)),
            # a couple on one home phone, and a family on one private mailbox
            "phone_1": _add(s, Contact(account_id=acct_b, name="Hans Becker", email="hans@testwell.de",
                                       phone="+49 89 555 0199", created_at=t0)),
            "phone_2": _add(s, Contact(account_id=acct_b, name="Greta Becker", email="greta@testwell.de",
                                       phone="+49 (0)89 555 0199", created_at=t0)),
            "mail_1": _add(s, Contact(account_id=acct_a, name="孙丽", email="sunfamily@163.com",
                                      phone="13900002222", language="zh", created_at=t0)),
            "mail_2": _add(s, Lead(name="孙强", company="青岛海信测试", email="SunFamily@163.com", language="zh",
                                   created_at=t0)),
            # one person: a contact in hanzi, later a lead in pinyin with the same mailbox
            "pinyin_contact": _add(s, Contact(account_id=acct_a, name="钱志强", email="zhiqiang.qian@hx-test.cn",
                                              phone="13900003333", language="zh", created_at=t0)),
            "pinyin_lead": _add(s, Lead(name="Qian Zhiqiang", company="青岛海信测试有限公司",
                                        email="Zhiqiang.Qian@hx-test.cn", created_at=datetime(2025, 6, 1))),
        }
        known = s.scalar(select(Contact.id).order_by(Contact.id).limit(1))
        s.add_all([
            Event(visitor_id="v-known", contact_id=known, type="page_view", occurred_at=t0,
                  properties={"device_id": "dev-42"}),
            Event(visitor_id="v-same-device", type="page_view", occurred_at=t0, properties={"device_id": "dev-42"}),
            Event(visitor_id="v-phone-hash", type="page_view", occurred_at=t0,
                  properties={"phone_hash": phone_hash("+8613900003333")}),
        ])
        ids["known_contact"], ids["acct_b"] = known, acct_b
    return ids


def _links(engine: Engine) -> dict[str, IdentityLink]:
    with session_factory(engine)() as s:
        return {f"{x.object_type}:{x.record_key}": x for x in s.scalars(select(IdentityLink))}


def test_resolve_links_planted_duplicates_keeps_hard_negatives_apart_and_matches_new_records(
        engine: Engine, tmp_path: Path) -> None:
    build_demo(engine, scale=0.25, out_dir=tmp_path, progress=False)
    ids = _plant_hard_cases(engine)
    with transaction(engine) as s:
        summary = resolve_store(s)
    links = _links(engine)
    truth = [json.loads(line) for line in (tmp_path / "identity_truth.jsonl").read_text().splitlines()]
    dups = [t for t in truth if t["record"].startswith("contact:")]
    assert len(dups) == 25 and summary.duplicate_clusters >= 25
    for t in truth:  # every planted duplicate and every form-filling visitor joins its person
        assert links[t["record"]].customer_id == links[t["same_as"]].customer_id, t
        if t["record"].startswith("contact:"):
            assert links[t["record"]].customer_id == t["same_as"]  # the older contact anchors the customer
    c = {k: f"{'lead' if k in ('mail_2', 'pinyin_lead') else 'contact'}:{v}" for k, v in ids.items()}
    for a, b in (("namesake_1", "namesake_2"), ("phone_1", "phone_2"), ("mail_1", "mail_2")):
        assert links[c[a]].customer_id != links[c[b]].customer_id, (a, b)
    lead = links[c["pinyin_lead"]]
    assert lead.customer_id == c["pinyin_contact"] and lead.strength == "strong"
    assert "name agrees (pinyin)" in lead.reasons and "email agrees (normalised)" in lead.reasons
    assert links[c["pinyin_contact"]].strength == "anchor"
    # progressive links: a shared device or a phone hash alone is weak, and points at the right customer
    assert links["visitor:v-known"].strength == "strong"
    weak = links["visitor:v-same-device"]
    assert (weak.strength, weak.customer_id, weak.reasons) == ("weak", links["visitor:v-known"].customer_id,
                                                               ["shares a device id"])
    with session_factory(engine)() as s:
        lead_id, lead_custom = s.execute(select(Lead.id, Lead.custom).order_by(Lead.id).limit(1)).one()
    recorded = links[f"visitor:{lead_custom['visitor_id']}"]  # the demo gives each lead its web visitor
    assert (recorded.customer_id, recorded.strength) == (links[f"lead:{lead_id}"].customer_id, "strong")
    assert links["visitor:v-phone-hash"].customer_id == c["pinyin_contact"]
    assert links["visitor:v-phone-hash"].strength == "weak"
    # reasons are words from the model's levels, never a value
    for link in links.values():
        assert set(link.reasons) <= LABELS
        assert not any(re.search(r"@|\d{4}", r) for r in link.reasons)
    assert all(x.run_id == summary.run_id for x in links.values())
    with session_factory(engine)() as s:
        assert s.scalar(select(IdentityKey.value).where(IdentityKey.object_type == "lead", IdentityKey.record_key
                                                        == str(ids["pinyin_lead"]), IdentityKey.kind == "name")) \
            == "qian zhiqiang"
        row = s.scalars(select(Decision).where(Decision.kind == "identity_resolve")).one()
        assert row.output["model_hash"] == summary.model_hash and row.output["records"] == summary.records
    assert model_path().exists()

    # on create: the same person in another spelling finds the contact; a family member on its phone does not
    with session_factory(engine)() as s:
        found = likely_duplicates(s, "lead", {"name": "Zhiqiang Qian", "phone": "139 0000 3333",
                                              "company": "青岛海信测试", "language": "zh"})
        assert found and (found[0].object_type, found[0].record_id) == ("contact", ids["pinyin_contact"])
        assert found[0].customer_id == c["pinyin_contact"] and found[0].probability > 0.9
        assert "phone agrees" in found[0].reasons and "name agrees (pinyin)" in found[0].reasons
        family = likely_duplicates(s, "contact", {"name": "Lena Becker", "phone": "+49 89 555 0199",
                                                  "account_id": ids["acct_b"]})
        assert all(x.record_id not in (ids["phone_1"], ids["phone_2"]) for x in family)
    # keys follow a new record at once, before the next resolve
    with transaction(engine) as s:
        new_id = _add(s, Contact(name="Olga Nowak", email="olga.nowak@example.pl", phone="+48 22 555 0100"))
        assert ("email", "olga.nowak@example.pl") in write_keys(s, "contact", new_id)
    with session_factory(engine)() as s:
        found = likely_duplicates(s, "lead", {"name": "Nowak, Olga", "email": "Olga.Nowak@example.pl"})
        assert [(x.object_type, x.record_id, x.customer_id) for x in found] == [("contact", new_id,
                                                                                 f"contact:{new_id}")]


def test_a_second_resolve_replaces_the_previous_run(sqlite_engine: Engine, tmp_path: Path) -> None:
    build_demo(sqlite_engine, scale=0.05, out_dir=tmp_path, progress=False)
    with transaction(sqlite_engine) as s:
        first = resolve_store(s)
    with transaction(sqlite_engine) as s:
        second = resolve_store(s)
    links = _links(sqlite_engine)
    assert {x.run_id for x in links.values()} == {second.run_id} != {first.run_id}
    with session_factory(sqlite_engine)() as s:
        counts = s.execute(select(IdentityLink.object_type, IdentityLink.record_key)).all()
    assert len(counts) == len(set(counts)) == len(links)


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_csv_resolve_round_trip_and_clear_errors(tmp_path: Path) -> None:
    from serving.cli import app

    src = _write(tmp_path / "people.csv", ["record_id", "name", "email", "phone", "company", "ignored"], [
        ["a1", "王伟", "wei.wang@acme.cn", "13812345678", "上海恒源有限公司", "x"],
        ["a2", "Wang Wei", "WEI.WANG@acme.cn", "", "恒源", "y"],
        ["a3", "李娜", "wei.wang@acme.cn", "138 1234 5678", "", "family mailbox and phone"],
        ["b1", "Bob Smith", "bob@northwind.com", "", "Northwind Inc.", ""],
        ["b2", "Robert Smith", "bob@northwind.com", "+1 415 555 0134", "Northwind", ""],
        ["c1", "Jane Doe", "", "", "", ""],
    ])
    out = tmp_path / "clusters.csv"
    result = CliRunner().invoke(app, ["identity", "resolve", "--input", str(src), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "6 records -> 4 clusters" in result.output
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["record_id"], r["cluster_id"]) for r in rows] == [
        ("a1", "a1"), ("a2", "a1"), ("a3", "a3"), ("b1", "b1"), ("b2", "b1"), ("c1", "c1")]
    bad = _write(tmp_path / "bad.csv", ["id", "name"], [["1", "x"]])
    result = CliRunner().invoke(app, ["identity", "resolve", "--input", str(bad), "--output", str(out)])
    assert result.exit_code == 1 and "needs a record_id column (found: id, name)" in result.output
    result = CliRunner().invoke(app, ["identity", "resolve", "--input", str(tmp_path / "missing.csv"),
                                      "--output", str(out)])
    assert result.exit_code == 1 and "cannot read" in result.output


def test_eval_command_scores_model_and_baseline_on_a_febrl_slice(tmp_path: Path) -> None:
    from serving.cli import app

    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["eval", "identity", "--datasets", "febrl3", "--febrl-limit", "150",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "baseline: exact soc_sec_id" in result.output
    model, baseline = json.loads(out.read_text())
    assert model["records"] > 150 and model["method"] == "splink model"
    assert model["pairwise"]["f1"] > 0.95 and model["bcubed"]["f1"] > 0.95
    assert baseline["pairwise"]["precision"] == 1.0 and baseline["pairwise"]["recall"] < model["pairwise"]["recall"]
    result = CliRunner().invoke(app, ["eval", "identity", "--datasets", "febrl9"])
    assert result.exit_code == 1 and "unknown dataset(s) febrl9" in result.output


def test_erasing_a_contact_removes_its_identity_keys_and_its_form_email(world: Any) -> None:
    from crm import privacy

    contact_id, email = world.records["b"]["contact"], world.emails["b"]
    with transaction(world.engine) as s:
        assert ("email", email) in write_keys(s, "contact", contact_id)
        s.add(Event(visitor_id="anon-1", type="form_submit", occurred_at=datetime(2026, 10, 2),
                    properties={"email": email.upper(), "page": "/contact"}))
    with transaction(world.engine) as s:
        privacy.erase_contact(s, world.p("b", "manager"), contact_id)
    with session_factory(world.engine)() as s:
        assert s.scalars(select(IdentityKey).where(IdentityKey.record_key == str(contact_id),
                                                   IdentityKey.object_type == "contact")).all() == []
        props = s.scalars(select(Event.properties).where(Event.visitor_id == "anon-1")).one()
    assert props == {"email": "[erased]", "page": "/contact"}


def test_accounts_link_by_company_name_and_a_shared_domain_alone_links_nothing(sqlite_engine: Any) -> None:
    from customers.accounts import link_accounts

    with session_factory(sqlite_engine)() as s, s.begin():
        rows = [Account(name="佛山赛普新能源发电有限公司", city="佛山", website="https://www.saipu-energy.com.cn"),
                Account(name="佛山赛普电力有限公司", city="佛山", website="https://www.saipu-energy.com.cn"),
                Account(name="Northwind Storage Inc.", city="Austin", website="https://northwind.com"),
                Account(name="NORTHWIND STORAGE LLC", city="Austin", website="https://www.northwind.com/")]
        s.add_all(rows)
        s.flush()
        links = {int(r["record_key"]): r for r in link_accounts(s)}
        a, b, c, d = (x.id for x in rows)
        assert links[a]["customer_id"] != links[b]["customer_id"]  # two divisions sharing a site
        assert links[c]["customer_id"] == links[d]["customer_id"] == f"account:{c}"
        assert {"company agrees (normalised)", "website domain agrees"} <= set(links[d]["reasons"])
