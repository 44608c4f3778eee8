"""The rule-compilation eval set and its scoring (grammar path: no model needed)."""

from __future__ import annotations

from eval.rules import load_items, run, score
from rules.parser import parse


def test_the_set_is_large_half_chinese_and_has_questions_and_blocked_rules() -> None:
    items = load_items()
    assert len(items) >= 150
    assert abs(sum(i.lang == "zh" for i in items) - len(items) / 2) <= 5
    assert any(i.question == "rephrase" for i in items) and any(i.blocked for i in items)


def test_scoring_is_semantic_not_textual() -> None:
    item = next(i for i in load_items() if i.shape == "schedule_inactivity" and i.lang == "zh")
    english = parse("If an opportunity over ¥500,000 has had no activity for 14 days, create a follow-up task for "
                    "its owner").rule
    assert score(item, english, [])


def test_grammar_path_scores_on_a_slice() -> None:
    result = run(["grammar"], limit=30, progress=False)[0]
    assert result.n == 30 and result.ok >= 24
