"""The money figures an answer states must be ones this turn's tools returned, or the rep wrote.

Seen from Qwen2.5-1.5B on "我手上金额低于20万、还在谈判阶段的商机有哪些？": an English answer to a Chinese question,
with each CNY amount the tool returned written as USD (the currency of the prompt's example answer), under a claim
("close this month") the data did not make. A figure the tools never returned is the model's, not the CRM's; the
rep then gets the records as the tools returned them (``fallback.records_answer``) instead of the model's prose.

The answer's language is not checked the same way: a Chinese question about an English note is rightly answered
with the note's words ("the Port of Antwerp"), and function words can't tell that from an English answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

from langchain_core.messages import AnyMessage, HumanMessage, ToolMessage

from agents.assistant.money import parse_amount
from agents.errors import ToolInputError

_CODES = r"USD|CNY|RMB|EUR|GBP|HKD|JPY|US\$|HK\$|[$¥￥€£]"
_NUMBER = r"\d[\d,]*(?:\.\d+)?"
_SCALE = r"(?:\s?(?:k|m|million|billion|bn)\b|万|亿|百万)?"
# A figure with its currency before it ("CNY 741,000.00", "$1.2M") or after it ("74.1万元", "200k USD").
_MONEY = re.compile(rf"(?:(?<![A-Za-z])(?:{_CODES})\s?{_NUMBER}{_SCALE}|{_NUMBER}{_SCALE}\s?(?:元|人民币|美元|欧元|"
                    rf"(?:USD|CNY|RMB|EUR)\b))", re.IGNORECASE)
_BARE = re.compile(rf"{_NUMBER}{_SCALE}", re.IGNORECASE)  # the rep's "over 500k", "20万": amounts need no currency


def _amounts(pattern: re.Pattern[str], text: str) -> Iterator[tuple[str, Decimal, str | None]]:
    """Each amount ``pattern`` finds that parses: (as written, value, currency)."""
    for m in pattern.finditer(text):
        try:
            value, currency = parse_amount(m.group(0))
        except ToolInputError:
            continue
        yield m.group(0).strip(), value, currency


def money_figures(text: str) -> dict[tuple[str | None, Decimal], str]:
    """The money figures in ``text``: (currency, value) -> as written."""
    found: dict[tuple[str | None, Decimal], str] = {}
    for written, value, currency in _amounts(_MONEY, text):
        found.setdefault((currency, value), written)
    return found


def _turn_texts(messages: list[AnyMessage]) -> tuple[str, str]:
    """The rep's last message, and what this turn's tools returned (errors left out)."""
    start = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
    rep = str(messages[start].content) if start >= 0 else ""
    tools = "\n".join(str(m.content) for m in messages[start + 1:]
                      if isinstance(m, ToolMessage) and m.status != "error")
    return rep, tools


def unsupported_figures(answer: str, messages: list[AnyMessage]) -> list[str]:
    """Figures the answer states that no tool returned in this turn with that currency and value.

    A figure the rep wrote ("over 500k") may be repeated in any currency; a total the model added up itself is
    reported too, since small models' sums are not to be trusted.
    """
    rep, tools = _turn_texts(messages)
    returned = set(money_figures(tools))
    asked = {value for _, value, _ in _amounts(_BARE, rep)}
    return [written for figure, written in money_figures(answer).items()
            if figure[1] not in asked and figure not in returned]


def answer_problem(answer: str, messages: list[AnyMessage]) -> str | None:
    """Why the model's answer can't be shown as it is; None when the check finds nothing."""
    figures = unsupported_figures(answer, messages)
    return f"figures no tool returned: {', '.join(figures[:5])}" if figures else None
