"""Assistant tools act as the caller: other teams' records do not exist, support sees masked data, writes propose."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import func, select

from agents.assistant import tools as t
from agents.assistant.tools import Refused, ToolEnv
from agents.errors import ToolInputError
from config.db import session_factory
from crm.access import Principal
from crm.errors import NotFound
from crm.models import Account, Proposal
from tests.fixtures.assistant import NOW, no_index, stub_search
from tests.world import World


@contextmanager
def env(world: World, principal: Principal, **extra: Any) -> Iterator[ToolEnv]:
    with session_factory(world.engine)() as s, s.begin():
        yield ToolEnv(session=s, principal=principal, now=NOW, thread_id="user:1/t", turn_id=None,
                      tool_call_id="call_1", **{"message": "test", "search": stub_search, **extra})


def run(world: World, principal: Principal, tool: str, **args: Any) -> t.ToolResult:
    spec = t.TOOLS_BY_NAME[tool]
    with env(world, principal) as e:
        return spec.run(e, spec.args.model_validate(args))


def test_another_teams_record_is_not_found_exactly_like_the_api(sqlite_world: World) -> None:
    w = sqlite_world
    other = w.records["b"]["opportunity"]
    with pytest.raises(NotFound) as exc:
        run(w, w.p("a", "rep"), "get_record", record=f"opportunity:{other}")
    assert str(exc.value) == f"opportunity {other} not found"
    with pytest.raises(NotFound):
        run(w, w.p("a", "rep"), "get_record", record="Acme North America", object_type="account")
    with pytest.raises(NotFound):  # a write tool cannot reach it either
        run(w, w.p("a", "rep"), "update_stage", opportunity=f"opportunity:{other}", stage="negotiation")
    found = run(w, w.p("a", "rep"), "find_records", query="Acme")
    assert [m["ref"] for m in found.data["matches"]] == [f"account:{w.records['a']['account']}"]


def test_names_matching_several_records_give_an_ambiguity_error_to_correct_from(sqlite_world: World) -> None:
    w = sqlite_world
    with pytest.raises(ToolInputError) as exc:
        run(w, w.p("a", "admin"), "get_record", record="Acme", object_type="account")
    message = str(exc.value)
    assert message.startswith("2 accounts match 'Acme': Acme East China [account:")
    assert f"[account:{w.records['b']['account']}]" in message and "Call again with the reference" in message
    near = run(w, w.p("a", "rep"), "find_records", query="Acme Esat China")  # a typo still finds it
    assert near.refs == [f"account:{w.records['a']['account']}"]


def test_support_sees_personal_fields_and_text_masked(sqlite_world: World) -> None:
    w = sqlite_world
    contact = run(w, w.p("a", "support"), "get_record", record=f"contact:{w.records['a']['contact']}")
    assert contact.data["record"]["phone"] == "138****5678"
    assert contact.data["record"]["email"] == "l***@acme-energy.cn"
    bodies = [a["body"] for a in contact.data["related"]["recent_activities"]]
    assert bodies and all("13812345678" not in b and "li.wei@" not in b for b in bodies)
    rep_view = run(w, w.p("a", "rep"), "get_record", record=f"contact:{w.records['a']['contact']}")
    assert rep_view.data["record"]["phone"] == "13812345678"
    # support reads no opportunities at all: an empty list, not an error that reveals anything
    assert run(w, w.p("a", "support"), "list_opportunities").data["count"] == 0


def test_hidden_fields_are_absent_for_the_role(sqlite_world: World) -> None:
    w = sqlite_world
    account = run(w, w.p("a", "support"), "get_record", record=f"account:{w.records['a']['account']}")
    assert "annual_revenue" not in account.data["record"]
    case = run(w, w.p("a", "rep"), "get_record", record=f"case:{w.records['a']['case']}")
    assert "internal_notes" not in case.data["record"]


def test_related_records_are_only_readable_ones(sqlite_world: World) -> None:
    w = sqlite_world
    account = run(w, w.p("a", "rep"), "get_record", record="Acme East China", object_type="account")
    related = account.data["related"]
    assert [c["ref"] for c in related["contacts"]] == [f"contact:{w.records['a']['contact']}"]
    assert [o["ref"] for o in related["opportunities"]] == [f"opportunity:{w.records['a']['opportunity']}"]
    assert set(account.refs) >= {f"account:{w.records['a']['account']}", f"activity:{w.records['a']['activity']}"}


def test_a_list_call_that_drops_my_or_a_stated_amount_gets_them_from_the_reps_words(sqlite_world: World) -> None:
    """A small model dropped filters from three-filter requests and answered as if it had applied them."""
    w = sqlite_world
    rep, mate, opp = w.p("a", "rep"), w.other_rep["a"], f"opportunity:{w.records['a']['opportunity']}"
    spec = t.TOOLS_BY_NAME["list_opportunities"]

    def ask(principal: Principal, message: str, **args: Any) -> t.ToolResult:
        with session_factory(w.engine)() as s, s.begin():
            e = ToolEnv(session=s, principal=principal, now=NOW, thread_id="x", turn_id=None, tool_call_id="c",
                        message=message, search=stub_search)
            return spec.run(e, spec.args.model_validate(args))

    got = ask(rep, "我名下金额50万以上、30天没跟进的商机", no_activity_days=30)
    assert got.data["filters"]["from_request"] == ["amount_min", "owner"]
    assert got.data["filters"]["owner"] == f"user:{rep.user_id} (you)" and got.data["filters"]["amount_min"] == "500000"
    assert got.data["count"] == 0  # the 250k deal is under 50万
    assert ask(rep, "my deals under 300k").refs == [opp]
    assert ask(mate, "my deals under 300k").data["count"] == 0  # "my" is the teammate's own, not the team's
    assert ask(mate, "my team's deals under 300k").refs == [opp]  # the team's: no owner added
    # the rep as the one who has them (the full suite: "我现在一共有多少个未关闭的商机？" counted the team's)
    for mine in ("How many open deals do I have?", "我现在一共有多少个未关闭的商机？",
                 "统计一下我在方案报价阶段的商机数量。", "How many opportunities do I own in total?"):
        assert ask(mate, mine).data["filters"]["owner"] == f"user:{mate.user_id} (you)", mine
    assert ask(mate, "List the deals I own in proposal").data["filters"]["owner"] == f"user:{mate.user_id} (you)"
    for theirs in ("我们团队有多少个商机？", "What deals does our team have?", "我有个问题：全组有多少商机？",
                   "I have a call with Acme: which deals are open there?"):
        assert "owner" not in ask(mate, theirs).data["filters"], theirs
    kept = ask(rep, "deals over 1M", amount_min="100k")  # what the model passed is kept
    assert kept.refs == [opp] and "from_request" not in kept.data["filters"]
    # The request's one bound passed on the wrong side (seen from Qwen2.5-1.5B: "低于20万" as amount_min=200000)
    flipped = ask(rep, "我手上金额低于30万、还没关闭的商机有哪些？", amount_min="300000")
    assert flipped.refs == [opp] and flipped.data["filters"]["from_request"] == ["amount_max", "amount_min", "owner"]
    assert "amount_min" not in flipped.data["filters"] and flipped.data["filters"]["amount_max"] == "300000"
    assert ask(rep, "deals over 100k", amount_max="100k").refs == [opp]  # over, called as a maximum: moved too
    assert ask(rep, "deals under 300k", amount_min="200k").refs == [opp]  # another number: the model's call stands
    assert ask(rep, "deals between 100k and 300k", amount_min="300k").data["count"] == 0  # two bounds: not read


def test_the_one_stage_the_rep_names_wins_over_the_calls(sqlite_world: World) -> None:
    """Seen from Qwen2.5-1.5B: "推进到初步接触阶段" proposed as another stage; a count filtered by the wrong stage."""
    w = sqlite_world
    rep, opp = w.p("a", "rep"), w.records["a"]["opportunity"]

    def run(tool: str, message: str, **args: Any) -> t.ToolResult:
        spec = t.TOOLS_BY_NAME[tool]
        with session_factory(w.engine)() as s, s.begin():
            e = ToolEnv(session=s, principal=rep, now=NOW, thread_id="x", turn_id=None, tool_call_id="c",
                        message=message, search=stub_search)
            return spec.run(e, spec.args.model_validate(args))

    listed = run("list_opportunities", "我有多少个商机处于方案报价阶段？", stage="negotiation")
    assert listed.refs == [f"opportunity:{opp}"] and listed.data["filters"]["stage"] == "proposal"
    assert "stage" in listed.data["filters"]["from_request"]
    assert run("list_opportunities", "deals in proposal or negotiation?", stage="negotiation").refs == []  # two named
    moved = run("update_stage", "把它推进到初步接触阶段", opportunity=f"opportunity:{opp}", stage="qualification")
    with session_factory(w.engine)() as s:
        proposal = s.get_one(Proposal, moved.proposal_id)
        assert proposal.changes["stage"]["after"] == "prospecting" and "as the rep wrote it" in proposal.reason
    kept = run("update_stage", "Move it along", opportunity=f"opportunity:{opp}", stage="negotiation")
    with session_factory(w.engine)() as s:
        assert s.get_one(Proposal, kept.proposal_id).changes["stage"]["after"] == "negotiation"


def test_list_opportunities_filters_resolve_me_amounts_and_periods(sqlite_world: World) -> None:
    w = sqlite_world
    rep, opp = w.p("a", "rep"), f"opportunity:{w.records['a']['opportunity']}"
    mine = run(w, rep, "list_opportunities", owner="me", amount_min="200k", close_date="this quarter")
    assert mine.refs == [opp] and mine.data["opportunities"][0]["amount"] == "CNY 250,000.00"
    assert mine.data["filters"] == {"owner": f"user:{rep.user_id} (you)", "open_only": True,
                                    "amount_min": "200000", "close_date": "2026-10-01..2026-12-31"}
    assert run(w, rep, "list_opportunities", close_date="this month").data["count"] == 0
    assert run(w, rep, "list_opportunities", amount_min="¥300k").data["count"] == 0
    assert run(w, rep, "list_opportunities", amount_max="300k", stage="proposal").refs == [opp]
    assert run(w, w.other_rep["a"], "list_opportunities", owner="me").data["count"] == 0


def test_no_activity_for_n_days_counts_only_readable_activities(sqlite_world: World) -> None:
    w = sqlite_world
    rep = w.p("a", "rep")  # the world's pricing call was on 2026-10-03; "now" is 2026-10-05
    assert run(w, rep, "list_opportunities", no_activity_days=30).data["count"] == 0
    assert run(w, rep, "list_opportunities", no_activity_days=1).data["count"] == 1
    assert run(w, rep, "list_leads", no_activity_days=7).data["count"] == 1


def test_pipeline_summary_sums_per_group_and_currency(sqlite_world: World) -> None:
    w = sqlite_world
    rows = run(w, w.p("a", "rep"), "pipeline_summary", group_by="stage").data["rows"]
    assert rows == [{"stage": "proposal", "currency": "CNY", "count": 1, "total": "CNY 250,000.00",
                     "largest": [f"opportunity:{w.records['a']['opportunity']}"]}]
    admin = run(w, w.p("a", "admin"), "pipeline_summary", group_by="month").data["rows"]
    assert {(r["month"], r["currency"], r["count"]) for r in admin} == {("2026-12", "CNY", 1), ("2026-12", "USD", 1)}
    with pytest.raises(Refused):
        run(w, w.p("a", "support"), "pipeline_summary")


def test_search_notes_returns_chunks_to_cite_and_falls_back_without_an_index(sqlite_world: World) -> None:
    w = sqlite_world
    act = f"activity:{w.records['a']['activity']}"
    found = run(w, w.p("a", "rep"), "search_notes", query="budget demo")
    assert found.refs == [act, f"chunk:{act}#0"] and found.retrieval_decision
    spec = t.TOOLS_BY_NAME["search_notes"]
    with session_factory(w.engine)() as s, s.begin():
        e = ToolEnv(session=s, principal=w.p("a", "rep"), now=NOW, thread_id="x", turn_id=None, tool_call_id="c",
                    message="", search=no_index)
        fallback = spec.run(e, spec.args(query="budget"))
    assert fallback.refs == [act] and "index unavailable" in fallback.data["note"]


def test_a_search_within_one_account_leaves_its_name_out_of_the_query(sqlite_world: World) -> None:
    w = sqlite_world
    acct = w.records["a"]["account"]
    with session_factory(w.engine)() as s:
        name = s.get_one(Account, acct).name
    sent: list[str] = []

    def search(session: Any, principal: Principal, query: str, **kw: Any) -> Any:
        sent.append(query)
        return stub_search(session, principal, query, **kw)

    spec = t.TOOLS_BY_NAME["search_notes"]
    for account, query in ((f"account:{acct}", f"What budget did {name.upper()}'s CFO mention?"),
                           (None, f"What budget did {name} mention?")):
        with env(w, w.p("a", "rep"), search=search) as e:
            found = spec.run(e, spec.args(query=query, account=account))
        assert found.data["count"] >= 1
    # within the account its name is in every passage and says nothing; across accounts it is what is searched
    assert sent == ["What budget did CFO mention", f"What budget did {name} mention?"]


def test_an_activity_call_that_names_no_record_links_the_record_the_reps_message_names(sqlite_world: World) -> None:
    w = sqlite_world
    acct = w.records["a"]["account"]
    with session_factory(w.engine)() as s:
        name = s.get_one(Account, acct).name
    spec = t.TOOLS_BY_NAME["log_activity"]
    args = {"kind": "call", "subject": "Pricing walkthrough; they want a demo"}
    with env(w, w.p("a", "rep"), message=f"Log a call with {name}: we went through the pricing") as e:
        logged = spec.run(e, spec.args.model_validate(args))
    assert logged.data["proposal"]["changes"]["account_id"]["after"] == acct
    # a message that names no record still gets the error the model can correct from
    with env(w, w.p("a", "rep"), message="Log a call: we went through the pricing") as e, \
            pytest.raises(ToolInputError, match="name the account"):
        spec.run(e, spec.args.model_validate(args))
    # nor does another team's record count as named
    with session_factory(w.engine)() as s:
        other = s.get_one(Account, w.records["b"]["account"]).name
    with env(w, w.p("a", "rep"), message=f"Log a call with {other}") as e, \
            pytest.raises(ToolInputError, match="name the account"):
        spec.run(e, spec.args.model_validate(args))


def test_write_tools_propose_and_never_write(sqlite_world: World) -> None:
    w = sqlite_world
    rep, opp = w.p("a", "rep"), w.records["a"]["opportunity"]
    result = run(w, rep, "update_record", object_type="opportunity", record=f"opportunity:{opp}",
                 field="close_date", value="next Friday")
    assert result.data["proposal"]["changes"] == {"close_date": {"before": "2026-12-15", "after": "2026-10-16"}}
    assert result.data["proposal"]["source"] == "agent" and result.proposal_id
    won = run(w, rep, "update_stage", opportunity=f"opportunity:{opp}", stage="closed_won")
    assert won.data["proposal"]["action"] == "close"
    with session_factory(w.engine)() as s:
        assert s.scalar(select(func.count()).select_from(Proposal).where(Proposal.status == "pending")) == 2


def test_unknown_fields_and_owner_changes_are_refused_with_reasons(sqlite_world: World) -> None:
    w = sqlite_world
    rep, opp = w.p("a", "rep"), f"opportunity:{w.records['a']['opportunity']}"
    with pytest.raises(ToolInputError, match="has no field 'colour'"):
        run(w, rep, "update_record", object_type="opportunity", record=opp, field="colour", value="red")
    with pytest.raises(Refused, match="manager"):
        run(w, rep, "update_record", object_type="opportunity", record=opp, field="owner_id", value="5")
    with pytest.raises(ToolInputError, match="contact reference"):
        run(w, rep, "update_stage", opportunity=f"contact:{w.records['a']['contact']}", stage="proposal")


def test_a_rejected_target_is_refused_for_the_rest_of_the_turn(sqlite_world: World) -> None:
    w = sqlite_world
    opp = w.records["a"]["opportunity"]
    spec = t.TOOLS_BY_NAME["update_stage"]
    with env(w, w.p("a", "rep"), rejected=frozenset({f"update_stage:opportunity:{opp}"})) as e, \
            pytest.raises(Refused, match="rejected"):
        spec.run(e, spec.args(opportunity=f"opportunity:{opp}", stage="negotiation"))


def test_draft_email_is_a_draft_only(sqlite_world: World) -> None:
    w = sqlite_world
    draft = run(w, w.p("a", "rep"), "draft_email", to="Buyer a", subject="Demo", body="Shall we meet on Tuesday?")
    assert draft.proposal_id is None and draft.data["draft"]["to"]["ref"] == f"contact:{w.records['a']['contact']}"


def test_tool_schemas_constrain_closed_sets_with_enums() -> None:
    from langchain_core.utils.function_calling import convert_to_openai_tool

    schemas = {s["function"]["name"]: s["function"]["parameters"] for s in map(convert_to_openai_tool, t.TOOL_SCHEMAS)}
    stage = schemas["update_stage"]["properties"]["stage"]
    assert stage["enum"][0] == "prospecting" and "closed_won" in stage["enum"]
    assert schemas["log_activity"]["properties"]["kind"]["enum"] == ["call", "email", "meeting", "note"]
    assert "principal" not in str(schemas) and "user_id" not in str(schemas)  # identity never comes from the model
