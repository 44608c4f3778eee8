"""Relative dates in English and Chinese ("next Monday", "last 30 days", 下周一), resolved in code, not by the model.

Weeks run Monday to Sunday. "next Monday" / 下周一 is the Monday of next week, "this Friday" / 本周五 the Friday of
this week, a bare weekday ("Friday", 周五) the next one after today. Ranges are inclusive ``(first, last)`` days.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

from agents.errors import ToolInputError

Span = tuple[date, date]

_WEEKDAYS_EN = {name: i for i, name in enumerate(
    ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))}
_WEEKDAYS_EN.update({name[:3]: i for name, i in list(_WEEKDAYS_EN.items())})
_WEEKDAYS_ZH = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_ZH_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"day": 1, "days": 1, "天": 1, "日": 1, "week": 7, "weeks": 7, "周": 7, "星期": 7, "个星期": 7, "个礼拜": 7,
          "礼拜": 7, "month": 30, "months": 30, "个月": 30, "月": 30}
_EXAMPLES = ("today, tomorrow, next Monday, this Friday, in 3 days, 2026-10-05, 下周一, 明天, 3天后; ranges: "
             "last 30 days, this month, next week, this quarter, 2026-10-01..2026-10-31, 最近30天, 本月, 下周")

_NUM = r"(\d+|[零一二两三四五六七八九十]+)"
_UNIT_EN = r"(days?|weeks?|months?)"
_UNIT_ZH = r"(天|日|个星期|星期|个礼拜|礼拜|周|个月|月)"


def zh_number(text: str) -> int:
    """``"30"``, ``"三十"``, ``"十五"``, ``"两"`` -> int (0-99)."""
    if text.isdigit():
        return int(text)
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (_ZH_DIGITS[tens] if tens else 1) * 10 + (_ZH_DIGITS[ones] if ones else 0)
    if len(text) == 1 and text in _ZH_DIGITS:
        return _ZH_DIGITS[text]
    raise ValueError(text)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _month_span(year: int, month: int) -> Span:
    while month < 1:
        year, month = year - 1, month + 12
    while month > 12:
        year, month = year + 1, month - 12
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _quarter_span(year: int, quarter: int) -> Span:
    while quarter < 1:
        year, quarter = year - 1, quarter + 4
    while quarter > 4:
        year, quarter = year + 1, quarter - 4
    first = date(year, 3 * quarter - 2, 1)
    return first, _month_span(year, 3 * quarter)[1]


def _amount(num: str, unit: str) -> timedelta:
    n = zh_number(num)
    days = _UNITS[unit]
    return timedelta(days=n * days)


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower().removeprefix("on ").removeprefix("by ")).strip(" .,。")


def resolve_date(text: str, today: date) -> date:
    """One day from an ISO date or a relative phrase; ``ToolInputError`` (with examples) otherwise."""
    t = _clean(text)
    try:
        return date.fromisoformat(t[:10]) if re.fullmatch(r"\d{4}-\d{2}-\d{2}([ t].*)?", t) else _relative_day(t, today)
    except (ValueError, KeyError):
        raise ToolInputError(f"can't read the date '{text}'; use e.g. {_EXAMPLES}") from None


def _relative_day(t: str, today: date) -> date:
    fixed = {"today": 0, "tomorrow": 1, "yesterday": -1, "day after tomorrow": 2, "今天": 0, "今日": 0, "明天": 1,
             "明日": 1, "后天": 2, "昨天": -1, "前天": -2, "大后天": 3}
    if t in fixed:
        return today + timedelta(days=fixed[t])
    m = re.fullmatch(r"(next|this|last|coming)? ?([a-z]+)", t)
    if m and m.group(2) in _WEEKDAYS_EN:
        return _weekday(today, _WEEKDAYS_EN[m.group(2)], m.group(1) or "")
    m = re.fullmatch(r"(下下|下|上|本|这|这个|下个|上个)?(?:周|星期|礼拜)([一二三四五六日天])", t)
    if m:
        which = {"下": "next", "下个": "next", "上": "last", "上个": "last", "本": "this", "这": "this",
                 "这个": "this", "下下": "after next", None: ""}[m.group(1)]
        return _weekday(today, _WEEKDAYS_ZH[m.group(2)], which)
    m = re.fullmatch(rf"in {_NUM} {_UNIT_EN}", t) or re.fullmatch(rf"{_NUM} ?{_UNIT_ZH}(?:后|以后|之后)", t)
    if m:
        return today + _amount(m.group(1), m.group(2))
    m = re.fullmatch(rf"{_NUM} {_UNIT_EN} ago", t) or re.fullmatch(rf"{_NUM} ?{_UNIT_ZH}(?:前|以前|之前)", t)
    if m:
        return today - _amount(m.group(1), m.group(2))
    for phrase, offset in (("next week", 7), ("下周", 7), ("下个星期", 7)):
        if t == phrase:
            return _monday(today) + timedelta(days=offset)
    if t in ("end of month", "月底", "本月底"):
        return _month_span(today.year, today.month)[1]
    raise ValueError(t)


def _weekday(today: date, weekday: int, which: str) -> date:
    monday = _monday(today)
    if which == "next":
        return monday + timedelta(days=7 + weekday)
    if which == "after next":
        return monday + timedelta(days=14 + weekday)
    if which == "last":
        return monday - timedelta(days=7 - weekday)
    if which == "this":
        return monday + timedelta(days=weekday)
    ahead = (weekday - today.weekday()) % 7 or 7  # a bare weekday, or "coming": the next one after today
    return today + timedelta(days=ahead)


def resolve_range(text: str, today: date) -> Span:
    """An inclusive day range from a phrase ("last 30 days", 本月, "2026-10-01..2026-10-31") or a single day."""
    t = _clean(text)
    try:
        return _range(t, today)
    except (ValueError, KeyError):
        raise ToolInputError(f"can't read the period '{text}'; use e.g. {_EXAMPLES}") from None


def _range(t: str, today: date) -> Span:
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}) ?(?:\.\.|to|until|-|~|至|到) ?(\d{4}-\d{2}-\d{2})", t)
    if m:
        first, last = date.fromisoformat(m.group(1)), date.fromisoformat(m.group(2))
        if last < first:
            raise ValueError(t)
        return first, last
    m = re.fullmatch(r"(\d{4})-(\d{2})", t)
    if m:
        return _month_span(int(m.group(1)), int(m.group(2)))
    m = re.fullmatch(rf"(?:the )?(?:last|past|previous) {_NUM} {_UNIT_EN}", t) or re.fullmatch(
        rf"(?:最近|过去|近|前)(?:的)?{_NUM} ?{_UNIT_ZH}(?:内|以来)?", t)
    if m:
        return today - _amount(m.group(1), m.group(2)), today
    m = re.fullmatch(rf"(?:the )?(?:next|coming) {_NUM} {_UNIT_EN}", t) or re.fullmatch(
        rf"(?:未来|接下来|今后)(?:的)?{_NUM} ?{_UNIT_ZH}(?:内)?", t)
    if m:
        return today, today + _amount(m.group(1), m.group(2))
    monday, quarter = _monday(today), (today.month - 1) // 3 + 1
    week = [(monday + timedelta(days=o), monday + timedelta(days=o + 6)) for o in (0, 7, -7)]
    periods: list[tuple[tuple[str, ...], Span]] = [
        (("this week", "本周", "这周", "这个星期", "本星期"), week[0]),
        (("next week", "下周", "下个星期", "下星期"), week[1]),
        (("last week", "上周", "上个星期", "上星期"), week[2]),
        (("this month", "本月", "这个月", "当月"), _month_span(today.year, today.month)),
        (("next month", "下个月", "下月"), _month_span(today.year, today.month + 1)),
        (("last month", "上个月", "上月"), _month_span(today.year, today.month - 1)),
        (("this quarter", "本季度", "这个季度", "本季"), _quarter_span(today.year, quarter)),
        (("next quarter", "下季度", "下个季度"), _quarter_span(today.year, quarter + 1)),
        (("last quarter", "上季度", "上个季度"), _quarter_span(today.year, quarter - 1)),
        (("this year", "今年", "本年"), (date(today.year, 1, 1), date(today.year, 12, 31))),
        (("last year", "去年"), (date(today.year - 1, 1, 1), date(today.year - 1, 12, 31))),
        (("next year", "明年"), (date(today.year + 1, 1, 1), date(today.year + 1, 12, 31))),
    ]
    named = {w: span for words, span in periods for w in words}
    if t in named:
        return named[t]
    m = re.fullmatch(r"q([1-4])(?: (\d{4}))?", t)
    if m:
        return _quarter_span(int(m.group(2) or today.year), int(m.group(1)))
    day = resolve_date(t, today)
    return day, day
