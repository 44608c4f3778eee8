"""The rule language, the grammar path and the deterministic explainer."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from rules.catalog import Catalog, Destination
from rules.explain import explain
from rules.language import (
    AggregateCondition,
    CreateLead,
    EventTrigger,
    Rule,
    ScheduleTrigger,
    needs_person,
    normalised,
    rule_json_schema,
)
from rules.parser import parse, tokenize

ZH_EXAMPLE = "当客户在官网停留超3分钟且访问价格页≥2次时,自动创建高意向线索并分配至VIP销售池"
SLA_EN = ("When a case is still unresolved 4 hours before its SLA, escalate it to the support lead and notify the "
          "account owner")
OPP_EN = "If an opportunity over ¥500,000 has had no activity for 14 days, create a follow-up task for its owner"


def test_schema_is_versioned_and_constrainable() -> None:
    from inference.constrained import inline_refs

    schema = rule_json_schema()
    assert schema["$id"].endswith("/v1.json")
    assert "$ref" not in json.dumps(inline_refs(schema))


def test_rule_refuses_unknown_keys_and_empty_actions() -> None:
    with pytest.raises(ValidationError):
        Rule(trigger=EventTrigger(), actions=[])
    with pytest.raises(ValidationError):
        Rule.model_validate({"trigger": {"kind": "event"}, "actions": [{"type": "create_lead", "colour": "red"}]})


def test_chinese_example_asks_per_visit_or_total_before_compiling() -> None:
    result = parse(ZH_EXAMPLE)
    assert result.rule is None
    assert [q.id for q in result.questions] == ["duration_scope"]
    assert {o.value for o in result.questions[0].options} == {"per_visit", "total"}


def test_chinese_example_compiles_once_answered() -> None:
    rule = parse(ZH_EXAMPLE, clarifications={"duration_scope": "total"}).rule
    assert rule is not None and rule.language == "zh"
    assert isinstance(rule.trigger, EventTrigger)
    total, pricing = rule.conditions
    assert isinstance(total, AggregateCondition) and total.fn == "sum_duration"
    assert (total.op, total.value, total.window_minutes) == ("gt", 180, 1440)
    assert isinstance(pricing, AggregateCondition) and pricing.filter.types == ["pricing_view"]
    assert (pricing.op, pricing.value) == ("ge", 2)
    assert rule.actions == [CreateLead(pool="vip", score=80)]
    assert rule.approval.auto_approve


def test_per_visit_answer_gives_a_per_event_duration_threshold() -> None:
    rule = parse(ZH_EXAMPLE, clarifications={"duration_scope": "per_visit"}).rule
    assert rule is not None
    cond = rule.conditions[0]
    assert isinstance(cond, AggregateCondition) and cond.fn == "count" and cond.filter.min_duration_s == 181


def test_same_rule_in_both_languages_is_semantically_equal() -> None:
    en = parse("When a visitor spends more than 3 minutes on the website in total and views the pricing page at "
               "least twice, automatically create a high-intent lead and assign it to the VIP sales pool").rule
    zh = parse(ZH_EXAMPLE, clarifications={"duration_scope": "total"}).rule
    assert en is not None and zh is not None
    assert normalised(en) == normalised(zh)


def test_unknown_pool_is_a_question_not_a_guess() -> None:
    no_vip = Catalog(pools=(Destination("general", "General pool", ("general",)),))
    result = parse(ZH_EXAMPLE, catalog=no_vip, clarifications={"duration_scope": "total"})
    assert result.rule is None and result.questions[0].id == "pool"
    assert "VIP" in result.questions[0].text or "vip" in result.questions[0].text


def test_sla_and_inactivity_rules_are_schedules() -> None:
    sla = parse(SLA_EN).rule
    assert sla is not None and isinstance(sla.trigger, ScheduleTrigger)
    assert (sla.trigger.object, sla.trigger.date_field, sla.trigger.offset_minutes) == ("case", "sla_due", -240)
    assert [a.type for a in sla.actions] == ["escalate", "notify"]
    opp = parse(OPP_EN).rule
    assert opp is not None and isinstance(opp.trigger, ScheduleTrigger) and opp.trigger.date_field is None
    kinds = {c.kind for c in opp.conditions}
    assert kinds == {"field", "no_activity"}
    zh = parse("如果商机金额超过50万元且14天没有活动,为负责人创建跟进任务").rule
    assert zh is not None and normalised(zh) == normalised(opp)


def test_sequence_rule() -> None:
    rule = parse("当客户先访问价格页然后在1天内提交表单时,创建线索并分配至企业销售池").rule
    assert rule is not None
    seq = rule.conditions[0]
    assert seq.kind == "sequence" and [s.types for s in seq.steps] == [["pricing_view"], ["form_submit"]]
    assert rule.trigger == EventTrigger(filter={"types": ["form_submit"]})


def test_tokenizer_reads_chinese_numbers_and_multipliers() -> None:
    nums = [t.value for t in tokenize("商机金额超过五十万元且十四天没有活动") if t.type == "NUM"]
    assert nums == [500000, 14]
    assert [t.value for t in tokenize("amount over 500k") if t.type == "NUM"] == [500000]


def test_text_outside_the_grammar_is_reported_not_guessed() -> None:
    result = parse("please make everything better")
    assert result.rule is None and not result.questions and result.error


def test_explanation_names_every_part_in_each_language() -> None:
    rule = parse(ZH_EXAMPLE, clarifications={"duration_scope": "total"}).rule
    assert rule is not None
    zh, en = explain(rule, "zh"), explain(rule, "en")
    for part in ("3分钟", "累计", "价格页", "至少2次", "vip", "评分80", "自动批准", "最近1天"):
        assert part in zh
    for part in ("3 minutes", "total", "pricing page", "at least 2", "'vip' pool", "score 80", "approves", "1 day"):
        assert part in en


def test_actions_that_always_need_a_person() -> None:
    rule = parse("每当有新联系人创建时,将其邮箱导出到 https://example.com/x").rule
    assert rule is not None and needs_person(rule.actions[0])
    assert not needs_person(CreateLead(pool="vip"))
