"""The assistant's customer 360 tools act as the caller: linked records with reasons, scores explained in the rep's
language, duplicates, merge proposals (never direct writes), segment members by lifetime value."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from agents.assistant import tools as t
from agents.assistant.intent import allowed_tools
from agents.errors import ToolInputError
from config.db import session_factory
from crm.access import Principal
from crm.customer_models import CustomerScore, IdentityLink
from crm.errors import NotFound
from crm.models import Contact, Proposal
from tests.fixtures.assistant import NOW, stub_search
from tests.world import World


def run(world: World, principal: Principal, tool: str, message: str = "test", **args: Any) -> t.ToolResult:
    spec = t.TOOLS_BY_NAME[tool]
    with session_factory(world.engine)() as s, s.begin():
        env = t.ToolEnv(session=s, principal=principal, now=NOW, thread_id="user:1/t", turn_id=None,
                        tool_call_id="call_1", message=message, search=stub_search)
        return spec.run(env, spec.args.model_validate(args))


def _seed(w: World) -> int:
    with session_factory(w.engine)() as s, s.begin():
        orig = s.get(Contact, w.records["a"]["contact"])
        dup = Contact(account_id=orig.account_id, name="buyer a", email="buyera@gmail.com", owner_id=orig.owner_id,
                      team_id=orig.team_id, custom={}, updated_at=datetime(2025, 1, 1))
        s.add(dup)
        s.flush()
        for key, strength in ((orig.id, "anchor"), (dup.id, "strong")):
            s.add(IdentityLink(customer_id=f"contact:{orig.id}", object_type="contact", record_key=str(key),
                               match_probability=0.93, reasons=["name agrees (normalised)", "company agrees"],
                               strength=strength, run_id="t"))
        lead_reasons = [{"feature": "pricing_views", "value": 3, "contribution": 0.9, "en": "viewed pricing 3 times",
                         "zh": "查看定价页3次"},
                        {"feature": "title", "value": "intern", "contribution": -0.4, "en": "junior title",
                         "zh": "职位较低"}]
        s.add(CustomerScore(object_type="lead", record_id=w.records["a"]["lead"], kind="lead", value=81.0,
                            label="hot", reasons=lead_reasons, model_version="lead-score@1"))
        for team, label, value in (("a", "at_risk", 5000.0), ("b", "at_risk", 9000.0)):
            acct = w.records[team]["account"]
            s.add(CustomerScore(object_type="account", record_id=acct, kind="rfm", value=111, label=label))
            s.add(CustomerScore(object_type="account", record_id=acct, kind="ltv", value=value, label=""))
        return int(dup.id)


def test_customer_360_lists_linked_records_with_reasons_and_scores(sqlite_world: World) -> None:
    w = sqlite_world
    dup = _seed(w)
    out = run(w, w.p("a", "rep"), "customer_360", record=f"contact:{dup}")
    assert out.data["customer"] == f"contact:{w.records['a']['contact']}"
    assert {i["ref"] for i in out.data["identities"]} == {f"contact:{w.records['a']['contact']}", f"contact:{dup}"}
    assert out.data["identities"][1]["why"] == ["name agrees (normalised)", "company agrees"]
    assert f"contact:{dup}" in out.refs
    with pytest.raises(NotFound):
        run(w, w.p("b", "rep"), "customer_360", record=f"contact:{dup}")


def test_explain_score_answers_in_the_reps_language(sqlite_world: World) -> None:
    w = sqlite_world
    _seed(w)
    lead = w.records["a"]["lead"]
    zh = run(w, w.p("a", "rep"), "explain_score", message="为什么这个线索是高意向？", record=f"lead:{lead}")
    assert zh.data["scores"][0]["reasons"] == ["+ 查看定价页3次", "− 职位较低"]
    en = run(w, w.p("a", "rep"), "explain_score", message="why is this lead hot?", record=f"lead:{lead}")
    assert en.data["scores"][0]["label"] == "hot" and en.data["scores"][0]["reasons"][0] == "+ viewed pricing 3 times"
    with pytest.raises(ToolInputError, match="has no win score"):
        run(w, w.p("a", "rep"), "explain_score", record=f"opportunity:{w.records['a']['opportunity']}")


def test_find_duplicates_and_propose_merge_make_a_proposal_only(sqlite_world: World) -> None:
    w = sqlite_world
    dup = _seed(w)
    found = run(w, w.p("a", "rep"), "find_duplicates", record=f"contact:{dup}")
    assert found.data["count"] == 1 and f"contact:{dup}" in found.data["duplicates"][0]["records"]
    assert run(w, w.p("b", "rep"), "find_duplicates").data["count"] == 0
    assert "propose_merge" in allowed_tools("merge these two contacts")
    assert "propose_merge" in allowed_tools("合并这两个联系人")
    assert "propose_merge" not in allowed_tools("who are my duplicates?")
    made = run(w, w.p("a", "rep"), "propose_merge", keep=f"contact:{w.records['a']['contact']}",
               duplicates=[f"contact:{dup}"])
    assert made.proposal_id and made.data["proposal"]["action"] == "merge"
    with session_factory(w.engine)() as s:
        assert s.get(Contact, dup).merged_into_id is None  # nothing written until approved
        assert s.scalar(select(Proposal).where(Proposal.id == made.proposal_id)).status == "pending"


def test_segment_members_are_readable_accounts_by_lifetime_value(sqlite_world: World) -> None:
    w = sqlite_world
    _seed(w)
    out = run(w, w.p("a", "rep"), "segment_members", segment="at risk")
    assert [a["ref"] for a in out.data["accounts"]] == [f"account:{w.records['a']['account']}"]  # not team b's
    assert out.data["accounts"][0]["ltv"] == 5000.0
    admin = run(w, w.p("a", "admin"), "segment_members", segment="at_risk")
    assert [a["ltv"] for a in admin.data["accounts"]] == [9000.0, 5000.0]
    with pytest.raises(ToolInputError, match="known: at_risk"):
        run(w, w.p("a", "rep"), "segment_members", segment="galactic")


def test_a_name_is_looked_up_across_contacts_leads_and_accounts(sqlite_world: World) -> None:
    w = sqlite_world
    _seed(w)
    out = run(w, w.p("a", "rep"), "customer_360", record="Lead a")  # the lead's name, no type given
    assert f"lead:{w.records['a']['lead']}" in [i["ref"] for i in out.data["identities"]]
    with pytest.raises(ToolInputError, match="several records"):
        run(w, w.p("a", "rep"), "find_duplicates", record="buyer a")  # a contact and its duplicate
