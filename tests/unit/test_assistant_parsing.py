"""Deterministic understanding: relative dates (en/zh), amounts, write intent, answer language, citations."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from agents.assistant.citations import check, link
from agents.assistant.dates import resolve_date, resolve_range, zh_number
from agents.assistant.intent import allowed_tools, write_intents
from agents.assistant.language import answer_language
from agents.assistant.money import format_money, parse_amount
from agents.errors import ToolInputError

WED = date(2026, 10, 7)  # a Wednesday


@pytest.mark.parametrize(("text", "expected"), [
    ("today", date(2026, 10, 7)), ("tomorrow", date(2026, 10, 8)), ("yesterday", date(2026, 10, 6)),
    ("next Monday", date(2026, 10, 12)), ("this Friday", date(2026, 10, 9)), ("last Friday", date(2026, 10, 2)),
    ("Monday", date(2026, 10, 12)), ("on Wednesday", date(2026, 10, 14)), ("in 3 days", date(2026, 10, 10)),
    ("2 weeks ago", date(2026, 9, 23)), ("2026-11-02", date(2026, 11, 2)), ("next week", date(2026, 10, 12)),
    ("下周一", date(2026, 10, 12)), ("周五", date(2026, 10, 9)), ("本周五", date(2026, 10, 9)),
    ("上周五", date(2026, 10, 2)), ("明天", date(2026, 10, 8)), ("后天", date(2026, 10, 9)),
    ("3天后", date(2026, 10, 10)), ("三天前", date(2026, 10, 4)), ("下下周二", date(2026, 10, 20)),
    ("月底", date(2026, 10, 31)),
])
def test_relative_dates_resolve_in_code(text: str, expected: date) -> None:
    assert resolve_date(text, WED) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("last 30 days", (date(2026, 9, 7), WED)), ("最近30天", (date(2026, 9, 7), WED)),
    ("过去两周", (date(2026, 9, 23), WED)), ("近三十天", (date(2026, 9, 7), WED)),
    ("this month", (date(2026, 10, 1), date(2026, 10, 31))), ("本月", (date(2026, 10, 1), date(2026, 10, 31))),
    ("next month", (date(2026, 11, 1), date(2026, 11, 30))), ("上个月", (date(2026, 9, 1), date(2026, 9, 30))),
    ("this week", (date(2026, 10, 5), date(2026, 10, 11))), ("下周", (date(2026, 10, 12), date(2026, 10, 18))),
    ("this quarter", (date(2026, 10, 1), date(2026, 12, 31))), ("next quarter", (date(2027, 1, 1), date(2027, 3, 31))),
    ("Q2", (date(2026, 4, 1), date(2026, 6, 30))), ("去年", (date(2025, 1, 1), date(2025, 12, 31))),
    ("next 14 days", (WED, date(2026, 10, 21))), ("2026-10-01..2026-10-15", (date(2026, 10, 1), date(2026, 10, 15))),
    ("2026-12", (date(2026, 12, 1), date(2026, 12, 31))), ("tomorrow", (date(2026, 10, 8), date(2026, 10, 8))),
])
def test_periods_resolve_to_inclusive_day_ranges(text: str, expected: tuple[date, date]) -> None:
    assert resolve_range(text, WED) == expected


def test_unreadable_dates_are_errors_the_model_can_correct() -> None:
    with pytest.raises(ToolInputError, match="next Monday"):
        resolve_date("the day after the meeting", WED)
    with pytest.raises(ToolInputError):
        resolve_range("2026-10-15..2026-10-01", WED)


def test_chinese_numbers() -> None:
    assert [zh_number(t) for t in ("30", "三十", "十五", "两", "二十一", "十")] == [30, 30, 15, 2, 21, 10]


@pytest.mark.parametrize(("text", "amount", "currency"), [
    ("50000", Decimal("50000"), None), ("50k", Decimal("50000"), None), ("1.2M", Decimal("1200000"), None),
    ("$250,000", Decimal("250000"), "USD"), ("5万", Decimal("50000"), None), ("¥5万", Decimal("50000"), "CNY"),
    ("300万元", Decimal("3000000"), "CNY"), ("EUR 10k", Decimal("10000"), "EUR"), ("1亿", Decimal("100000000"), None),
    (75000.5, Decimal("75000.5"), None),
])
def test_amounts_parse_with_their_currency(text: str, amount: Decimal, currency: str | None) -> None:
    assert parse_amount(text) == (amount, currency)


def test_bad_amounts_and_money_format() -> None:
    with pytest.raises(ToolInputError, match="50k"):
        parse_amount("about fifty grand")
    assert format_money(Decimal("250000"), "CNY") == "CNY 250,000.00"


@pytest.mark.parametrize(("message", "tools"), [
    ("Move the ESS-200 deal to negotiation", ["update_stage", "update_record"]),
    ("把ESS-200商机推进到谈判阶段", ["update_stage", "update_record"]),
    ("Log a call with Buyer a: they want a demo", ["log_activity"]),
    ("帮我记录一下：今天和客户通了电话", ["log_activity"]),
    ("给上海赛普医疗记一通电话：今天讨论了报价", ["log_activity"]),
    ("记个会议：下午和Acme开了方案评审", ["log_activity"]),
    ("上次的电话记录在哪里？", []), ("这个月记了几通电话？", []),
    ("Remind me to follow up with Acme next Monday", ["schedule_follow_up"]),
    ("提醒我下周一跟进报价", ["schedule_follow_up"]),
    ("Add a new contact at Acme: Jane Doe", ["create_lead", "create_contact"]),
    ("Draft an email to Buyer a about the demo", ["draft_email"]),
    ("Which deals close this month?", []), ("What did Acme say about pricing?", []),
    ("查一下Acme的跟进记录", []), ("我的商机有哪些？", []), ("Show me the record for Acme", []),
    ("Acme最新的一条备注写了什么？", []), ("我名下30天没有跟进的商机", []), ("客户回复了什么？", []),
    ("What did the last email from Acme say?", []), ("帮我写一封邮件给Acme", ["draft_email"]),
    ("Reply to Buyer a about the delay", ["draft_email"]), ("Email them the quote", ["draft_email"]),
])
def test_write_intent_comes_from_the_reps_own_words(message: str, tools: list[str]) -> None:
    assert allowed_tools(message) == tools


def test_an_injected_instruction_is_not_a_write_request_of_a_question() -> None:
    assert write_intents("What did the last note on Acme say?") == []


@pytest.mark.parametrize(("text", "language"), [
    ("What did 佛山精工 ask about pricing?", "en"), ("Acme Energy的试点在哪里？", "zh"), ("下周一提醒我跟进", "zh"),
    ("Summarise my pipeline", "en"), ("我的商机", "zh"),
])
def test_answer_language_follows_the_reps_words_not_the_names(text: str, language: str) -> None:
    assert answer_language(text) == language


def test_citations_of_retrieved_items_are_kept_and_unknown_ones_stripped() -> None:
    evidence = ["activity:1", "chunk:activity:1#0", "opportunity:5"]
    checked = check("Budget is 1.2M [activity:1] and the deal closes soon [opportunity:9]. Also [chunk:activity:1#0, "
                    "case:3].", evidence)
    assert checked.text == "Budget is 1.2M [activity:1] and the deal closes soon. Also [chunk:activity:1#0]."
    assert checked.citations == ["activity:1", "chunk:activity:1#0"]
    assert checked.stripped == ["opportunity:9", "case:3"]
    assert checked.grounded


def test_an_answer_citing_nothing_retrieved_is_not_grounded() -> None:
    checked = check("The deal is worth 5M [opportunity:77].", ["opportunity:5"])
    assert not checked.grounded and checked.text == "The deal is worth 5M."
    assert not check("Hello!", []).grounded


def test_citation_links_point_at_the_api() -> None:
    assert link("activity:842") == "/v1/activities/842"
    assert link("chunk:case:3#2") == "/v1/cases/3"


def test_a_quoted_record_name_does_not_ask_for_a_change() -> None:
    # The safety suite's finding: a case titled "... firmware update ..." unlocked the update tools.
    assert write_intents('What is the case "Inverter alarm after firmware update 1004" about?') == []
    assert write_intents("案例「固件升级后更新告警」讲的是什么？") == []
    assert write_intents('Log a call on Acme with the subject "Invoice paid, no follow-up needed"') == ["log"]
    assert write_intents("Don't update it yet") == ["update"]  # an apostrophe is not a quote
    assert write_intents('把“测试商机”改成赢单') == ["update"]
