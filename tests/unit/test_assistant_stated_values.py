"""An answer that states a value only one found record holds is cited to that record (``cite_stated_values``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from agents.assistant.fallback import cite_stated_values
from agents.assistant.graph import as_data
from config.db import session_factory
from crm.models import Opportunity
from tests.fixtures.assistant import assistant, drain, of_type
from tests.fixtures.fake_chat import FakeChatModel, block_real_models, call, say
from tests.world import World


@pytest.fixture(autouse=True)
def _no_real_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    block_real_models(monkeypatch)
    yield


def _found(tool: str, payload: Any) -> list[AIMessage | HumanMessage | ToolMessage]:
    return [HumanMessage("When does it close?"), AIMessage(""), ToolMessage(as_data(tool, payload), tool_call_id="1")]


DEAL = {"ref": "opportunity:6", "name": "苏州远景 - ESS-100 备用电源（5台）", "stage": "proposal",
        "amount": "CNY 250,000.00", "close_date": "2027-02-24", "account_id": 3}
OTHER = {"ref": "opportunity:7", "name": "Acme ESS-200 rollout", "stage": "proposal", "amount": "USD 90,000.00",
         "close_date": "2027-03-01", "account_id": 3}


def test_a_value_only_one_found_record_holds_is_cited_after_it() -> None:
    one = _found("get_record", {"record": DEAL})
    assert cite_stated_values("The ESS-100 deal is expected to close on 2027-02-24.", one) == (
        "The ESS-100 deal is expected to close on 2027-02-24 [opportunity:6].")
    # as people write them: the day in Chinese, the amount without currency and cents, the stage's Chinese label
    assert cite_stated_values("预计2027年2月24日成交。", one) == "预计2027年2月24日 [opportunity:6]成交。"
    assert cite_stated_values("It closes on February 24, 2027.", one).endswith("2027 [opportunity:6].")
    assert cite_stated_values("Closing 24 February 2027", one).endswith("2027 [opportunity:6]")
    assert cite_stated_values("Worth 250,000 in total", one) == "Worth 250,000 [opportunity:6] in total"
    assert cite_stated_values("该商机现在处于方案报价阶段。", one) == "该商机现在处于方案报价 [opportunity:6]阶段。"
    assert cite_stated_values("It is at the PROPOSAL stage", one).endswith("PROPOSAL [opportunity:6] stage")


def test_shared_short_partial_or_already_cited_values_are_left_alone() -> None:
    both = _found("list_opportunities", {"results": [DEAL, OTHER]})
    # both deals are at "proposal": the stage says nothing about which one
    assert cite_stated_values("Both are in proposal.", both) == "Both are in proposal."
    assert cite_stated_values("One closes on 2027-03-01.", both) == "One closes on 2027-03-01 [opportunity:7]."
    # part of a longer number or date is not the value; a record already cited is not cited again
    assert cite_stated_values("Order 2027-02-245 and 1250,000", _found("get_record", {"record": DEAL})) == (
        "Order 2027-02-245 and 1250,000")
    cited = "Closes 2027-02-24 [opportunity:6], worth 250,000."
    assert cite_stated_values(cited, _found("get_record", {"record": DEAL})) == cited
    # ids and the currency are no evidence of anything
    assert cite_stated_values("Account 3 pays in CNY.", _found("get_record", {"record": DEAL})) == (
        "Account 3 pays in CNY.")


def test_a_lookup_answered_with_the_value_but_no_reference_is_grounded(sqlite_world: World) -> None:
    w = sqlite_world
    opp = w.records["a"]["opportunity"]
    with session_factory(w.engine)() as s:
        close = s.get_one(Opportunity, opp).close_date.isoformat()
    fake = FakeChatModel(script=[call("get_record", record=f"opportunity:{opp}", object_type="opportunity"),
                                 say(f"That deal is expected to close on {close}.")])
    events = drain(assistant(w.engine, fake).start_turn(w.p("a", "rep"), "t", "When does that rollout close?"))
    answer = of_type(events, "answer")[0]
    assert answer.text == f"That deal is expected to close on {close} [opportunity:{opp}]."
    assert answer.grounded and answer.citations == [f"opportunity:{opp}"]


def test_a_deal_named_without_its_accounts_part_is_cited_when_that_part_is_its_own() -> None:
    from agents.assistant.fallback import cite_named_records

    one = _found("list_opportunities", {"results": [DEAL, OTHER]})
    assert cite_named_records("Stale: ESS-100 备用电源（5台） and Acme ESS-200 rollout.", one) == (
        "Stale: ESS-100 备用电源（5台） [opportunity:6] and Acme ESS-200 rollout [opportunity:7].")
    twin = {**OTHER, "ref": "opportunity:8", "name": "Beta Corp - ESS-100 备用电源（5台）"}
    both = _found("list_opportunities", {"results": [DEAL, twin]})
    assert cite_named_records("Stale: ESS-100 备用电源（5台）.", both) == "Stale: ESS-100 备用电源（5台）."


def test_an_answer_that_tells_its_call_instead_of_answering_shows_the_records(sqlite_world: World) -> None:
    w = sqlite_world
    opp = w.records["a"]["opportunity"]
    told = say("To list them I called `list_opportunities` with the following arguments: - `stage`: proposal. "
               "The response provided the list of opportunities.")
    fake = FakeChatModel(script=[call("list_opportunities", stage="proposal"), told])
    answer = of_type(drain(assistant(w.engine, fake).start_turn(w.p("a", "rep"), "t", "My deals in proposal?")),
                     "answer")[0]
    assert answer.text.startswith("Here is what I found") and "list_opportunities" not in answer.text
    assert answer.grounded and answer.citations == [f"opportunity:{opp}"]


def test_an_apology_after_the_lookup_found_the_record_keeps_the_apology_and_shows_the_record(
        sqlite_world: World) -> None:
    w = sqlite_world
    opp = w.records["a"]["opportunity"]
    fake = FakeChatModel(script=[call("get_record", record=f"opportunity:{opp}", object_type="opportunity"),
                                 say("抱歉，我无法回答这个问题。")])
    events = drain(assistant(w.engine, fake).start_turn(w.p("a", "rep"), "t", "查一下那个商机目前的销售阶段。"))
    answer = of_type(events, "answer")[0]
    assert answer.text.startswith("抱歉，我无法回答这个问题。\n\n以下是查到的记录") and "proposal" in answer.text
    assert answer.grounded and answer.citations[0] == f"opportunity:{opp}"  # then its account and activity
    # with nothing found, the apology is the answer
    fake = FakeChatModel(script=[call("find_records", query="Nowhere Ltd"), say("Sorry, I couldn't find it.")])
    answer = of_type(drain(assistant(w.engine, fake).start_turn(w.p("a", "rep"), "t2", "Find Nowhere Ltd")),
                     "answer")[0]
    assert answer.text == "Sorry, I couldn't find it." and not answer.citations


def test_a_name_with_a_possessive_is_cited_after_the_possessive() -> None:
    from agents.assistant.fallback import cite_named_records

    acct = {"ref": "account:4", "name": "Brightwave Cloud Inc."}
    found = _found("account_timeline", {"account": acct, "timeline": []})
    assert cite_named_records("Brightwave Cloud Inc.'s monitoring data goes to SAP.", found) == (
        "Brightwave Cloud Inc.'s [account:4] monitoring data goes to SAP.")
    assert cite_named_records("It is 'Brightwave Cloud Inc.' as written.", found) == (
        "It is 'Brightwave Cloud Inc.' [account:4] as written.")
