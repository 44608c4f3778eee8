"""The tools eval: its held-out request set, its argument matching, and its grading of right and wrong models."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from agents.assistant.dates import resolve_date, resolve_range
from agents.assistant.graph import SYSTEM_MESSAGE, opening_messages
from agents.assistant.intent import TOOL_INTENT, allowed_tools
from agents.assistant.tools import TOOL_SCHEMAS, TOOLS_BY_NAME
from config.overlap import shared, shingle_set
from eval.tool_args import DATE_ARGS, MARKERS, PERIOD_ARGS, call_mismatch, concrete
from eval.tools import evaluate, load_requests, run, select
from tests.fixtures.fake_chat import FakeChatModel, block_real_models, call, say

ROOT = Path(__file__).resolve().parents[2]
REQUESTS, SETTING = load_requests()
BY_ID = {r.id: r for r in REQUESTS}


@pytest.fixture(autouse=True)
def _no_real_model(monkeypatch: pytest.MonkeyPatch) -> None:
    block_real_models(monkeypatch)


def test_the_set_covers_every_tool_in_both_languages_with_no_tool_requests() -> None:
    assert len(BY_ID) == len(REQUESTS)  # ids are unique
    for lang in ("en", "zh"):
        mine = [r for r in REQUESTS if r.lang == lang]
        assert sum(r.expected is not None for r in mine) >= 40
        assert sum(r.expected is None for r in mine) >= 8
        assert {r.category for r in mine} == set(TOOLS_BY_NAME) | {"no_tool"}
        assert all(r.id.startswith(f"{lang}.{r.category}.") for r in mine)
    assert all(re.search(r"[\u4e00-\u9fff]", r.text) for r in REQUESTS if r.lang == "zh")


def test_expected_arguments_are_real_and_their_right_call_validates() -> None:
    today = SETTING.now.date()
    for request in REQUESTS:
        for expected in request.right_calls:
            fields = TOOLS_BY_NAME[expected.tool].args.model_fields
            for key, spec in expected.args.items():
                assert all(name in fields for name in key.split("|")), (request.id, key)
                if isinstance(spec, dict):
                    assert len(spec) == 1 and next(iter(spec)) in MARKERS, (request.id, key)
                if key in DATE_ARGS:
                    resolve_date(spec, today)  # raises on a date the tool could not read either
                if key in PERIOD_ARGS and expected.tool != "update_record":
                    resolve_range(spec, today)
            # the call made of the specs is valid for the tool and graded right
            assert call_mismatch(expected, expected.tool, concrete(expected, request.text), SETTING) is None, request.id


def test_write_requests_ask_for_the_change_so_the_graph_would_allow_it() -> None:
    for request in REQUESTS:
        if request.expected and request.expected.tool in TOOL_INTENT:
            assert request.expected.tool in allowed_tools(request.text), request.id
        if request.expected is None:
            assert not allowed_tools(request.text), request.id


def test_requests_are_held_out_from_prompts_agent_tasks_and_benchmarks() -> None:
    sources = [*sorted((ROOT / "prompts").glob("*.yaml")), ROOT / "eval/agent/tasks.yaml",
               ROOT / "benchmarks/crm_tool_cases.py"]
    grams = shingle_set([p.read_text(encoding="utf-8") for p in sources], words=6, chars=10)
    assert sum(" " in g for g in grams) > 1000 and sum(" " not in g for g in grams) > 500  # the sources were read
    for request in REQUESTS:
        copied = shared(request.text, grams, words=6, chars=10)
        assert not copied, (request.id, copied)


def _rep_text(messages: list[BaseMessage]) -> str:
    return next(str(m.content) for m in messages if isinstance(m, HumanMessage))


def test_the_model_gets_the_assistants_first_call_and_a_perfect_model_scores_one() -> None:
    result = run("fake", progress=False)
    assert result.suite == "tools" and len(result.items) == len(REQUESTS)
    assert set(result.metrics.values()) == {1.0}
    assert {i.category for i in result.items} == set(TOOLS_BY_NAME) | {"no_tool"}
    assert all(i.latency_s is not None and not i.detail for i in result.items)

    fake = FakeChatModel(script=[say("Hello!")])
    request = BY_ID["zh.no_tool.2"]
    evaluate([request], fake, setting=SETTING, model="fake", progress=False)
    sent = fake.requests[0]
    assert sent[0] is SYSTEM_MESSAGE and [type(m) for m in sent] == [SystemMessage, SystemMessage, HumanMessage]
    assert [m.content for m in sent] == [m.content for m in opening_messages(request.text, rep=SETTING.rep,
                                                                            now=SETTING.now)]
    assert "2026-10-14 (Wednesday)" in str(sent[1].content) and "Chinese" in str(sent[1].content)
    assert [t["function"]["name"] for t in fake.bound_tools[0]] == [t.name for t in TOOL_SCHEMAS]
    assert fake.tool_choices == ["auto"]


def test_quick_and_limit_take_stratified_slices() -> None:
    quick = select(REQUESTS, quick=True)
    assert select(REQUESTS, quick=True) == quick  # seeded: the same slice every run
    for lang in ("en", "zh"):
        mine = [r for r in quick if r.lang == lang]
        tools = [r.category for r in mine if r.expected is not None]
        assert len(mine) == 6 and len(tools) == len(set(tools)) == 4
    ten = select(REQUESTS, limit=10)
    assert Counter(r.lang for r in ten) == {"en": 10, "zh": 10}
    assert all(1 <= sum(r.lang == lang and r.expected is None for r in ten) <= 2 for lang in ("en", "zh"))
    assert run("fake", quick=True, progress=False).metrics["score"] == 1.0


# A deliberately wrong model: each reply below is wrong in one known way, or right in a form the matching must
# accept (a Chinese amount, a period or date in other words, the rep's own name, an equally right other tool).
WRONG: dict[str, tuple[AIMessage, str | None]] = {
    "en.list_opportunities.1": (call("list_leads", owner="me"), "called list_leads, expected list_opportunities"),
    "en.update_stage.1": (call("update_stage", opportunity="Lakeshore Clinic expansion", stage="proposal"),
                          "stage: got 'proposal', expected 'negotiation'"),
    "zh.no_tool.1": (call("find_records", query="辛苦"), "called a tool where none fits"),
    "en.schedule_follow_up.1": (call("schedule_follow_up", subject="Chase quote", due="next Wednesday",
                                     account="Osprey Freight"), "due: got 'next Wednesday', expected 'next Tuesday'"),
    "en.create_lead.2": (call("create_lead", name="Ines Duarte", company="Lusofarma", phone="555-0142", country="PT"),
                         "invalid arguments: country: Extra inputs are not permitted"),
    "en.list_cases.1": (say("You have no urgent cases."), "no tool call"),
    "en.list_opportunities.3": (call("list_opportunities", no_activity_days=3),
                                "no_activity_days: got 3, expected 21"),
    "en.log_activity.2": (call("log_activity", kind="meeting", subject="Pilot", contact="Pinecrest Hotels"),
                          "account: got None, expected 'Pinecrest'"),
    "zh.list_opportunities.2": (call("list_opportunities", amount_min="50万", close_date="next month"), None),
    "en.update_stage.2": (call("update_record", object_type="opportunity", record="Ferncastle renewal",
                               field="stage", value="closed_lost"), None),
    "en.no_tool.3": (say("Canberra."), None),
    "zh.list_leads.2": (call("list_leads", owner="Chen Jie", status="working"), None),
    "zh.schedule_follow_up.2": (call("schedule_follow_up", subject="确认样品", due="2026-10-19", contact="陈静"), None),
    "zh.segment_members.1": (call("segment_members", health="At risk", owner="我"), None),
}


def test_a_wrong_model_gets_exactly_the_scores_and_reasons_it_earns() -> None:
    chosen = [BY_ID[i] for i in WRONG]
    by_text = {BY_ID[i].text: reply for i, (reply, _) in WRONG.items()}
    fake = FakeChatModel(script=[lambda messages: by_text[_rep_text(messages)]] * len(chosen))
    result = evaluate(chosen, fake, setting=SETTING, model="wrong-fake", progress=False)
    graded = {i.id: i for i in result.items}
    for item_id, (_, reason) in WRONG.items():
        item = graded[item_id]
        assert item.score == (0.0 if reason else 1.0), item_id
        assert item.detail.get("reason") == reason, item_id
        assert item.category == BY_ID[item_id].category
    assert graded["en.update_stage.1"].detail["called"] == [
        {"name": "update_stage", "args": {"opportunity": "Lakeshore Clinic expansion", "stage": "proposal"}}]
    assert graded["en.update_stage.1"].detail["expected"][0] == {
        "tool": "update_stage", "args": {"opportunity": "Lakeshore", "stage": "negotiation"}}
    # en: 2 of 9 right; zh: 4 of 5. Right tool: 6 of 8 en tool requests, 4 of 4 zh. Right arguments given the
    # right tool: 5 of 10 (wrong stage, wrong date, extra argument, wrong number and a missing link fail).
    assert result.metrics == {
        "score": round(6 / 14, 4), "tool_accuracy": round(10 / 12, 4), "no_tool_accuracy": 0.5,
        "score_en": round(2 / 9, 4), "tool_accuracy_en": round(6 / 8, 4), "no_tool_accuracy_en": 1.0,
        "score_zh": 0.8, "tool_accuracy_zh": 1.0, "no_tool_accuracy_zh": 0.0,
        "args_accuracy": round(5 / 10, 4)}
