"""Compliance: clauses from the policy file block rules with a reason naming the clause and the part."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.compliance import check, ensure_compliant, load_policy
from rules.errors import RuleBlocked
from rules.parser import parse


def _rule(text: str):  # noqa: ANN202
    result = parse(text)
    assert result.rule is not None, (text, result.error, result.questions)
    return result.rule


def test_the_example_rule_is_compliant() -> None:
    rule = parse("当客户在官网停留超3分钟且访问价格页≥2次时,自动创建高意向线索并分配至VIP销售池",
                 clarifications={"duration_scope": "total"}).rule
    assert rule is not None and check(rule) == []


def test_export_to_external_url_without_consent_is_blocked_by_two_clauses() -> None:
    findings = check(_rule("每当有新联系人创建时,将其邮箱导出到 https://data.example.com/in"))
    assert {f.clause for f in findings} == {"PD-1", "EXT-1"}
    assert all(f.part == "actions[0]" and "https://data.example.com/in" in f.part_text for f in findings)


def test_messaging_without_opt_out_condition_is_blocked_and_with_it_passes() -> None:
    assert [f.clause for f in check(_rule("When a customer submits a form, send them an SMS"))] == ["MSG-1"]
    assert check(_rule("When a customer who has not opted out submits a form, send them an SMS")) == []


def test_bulk_that_approves_itself_is_blocked() -> None:
    findings = check(_rule("When a lead is created, automatically delete all leads"))
    assert [f.clause for f in findings] == ["BULK-1"]
    with pytest.raises(RuleBlocked, match="BULK-1"):
        ensure_compliant(_rule("When a lead is created, automatically delete all leads"))


def test_clauses_are_data(tmp_path: Path) -> None:
    policy = load_policy()
    relaxed = policy.model_copy(update={"clauses": [c for c in policy.clauses if c.id != "MSG-1"]})
    assert check(_rule("When a customer submits a form, send them an SMS"), policy=relaxed) == []
    bad = tmp_path / "p.yaml"
    bad.write_text("version: 1\nclauses: []\nsurprise: 1\n")
    with pytest.raises(ValueError):
        load_policy(bad)
