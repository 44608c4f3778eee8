"""Amounts as people write them ("50k", "$1.2M", "5万", "¥300,000") parsed in code, with their currency."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from agents.errors import ToolInputError

_SYMBOLS = {"$": "USD", "us$": "USD", "usd": "USD", "¥": "CNY", "￥": "CNY", "rmb": "CNY", "cny": "CNY", "元": "CNY",
            "人民币": "CNY", "€": "EUR", "eur": "EUR", "£": "GBP", "gbp": "GBP", "美元": "USD", "欧元": "EUR",
            "hk$": "HKD", "hkd": "HKD", "jpy": "JPY", "日元": "JPY"}
_SCALES = {"k": 10**3, "thousand": 10**3, "千": 10**3, "m": 10**6, "mm": 10**6, "million": 10**6, "万": 10**4,
           "w": 10**4, "b": 10**9, "bn": 10**9, "billion": 10**9, "亿": 10**8, "百万": 10**6}
_AMOUNT = re.compile(
    r"^(?P<pre>us\$|hk\$|[$¥￥€£]|usd|cny|rmb|eur|gbp|hkd|jpy)?\s*(?P<num>\d[\d,]*(?:\.\d+)?)\s*"
    r"(?P<scale>thousand|million|billion|bn|mm|百万|[kmbw千万亿])?\s*(?P<post>usd|cny|rmb|eur|gbp|hkd|jpy|元|人民币|美元"
    r"|欧元|日元)?$")


def parse_amount(value: float | int | str) -> tuple[Decimal, str | None]:
    """``"1.2M"`` -> ``(Decimal("1200000"), None)``, ``"¥5万"`` -> ``(Decimal("50000"), "CNY")``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value)), None
    text = str(value).strip().lower().replace(" ", "")
    m = _AMOUNT.match(text)
    if not m:
        raise ToolInputError(f"can't read the amount '{value}'; write e.g. 50000, 50k, 1.2M, $250,000 or 5万")
    try:
        number = Decimal(m.group("num").replace(",", ""))
    except InvalidOperation:
        raise ToolInputError(f"can't read the amount '{value}'") from None
    if m.group("scale"):
        number *= _SCALES[m.group("scale")]
    symbol = m.group("pre") or m.group("post")
    return number, (_SYMBOLS[symbol] if symbol else None)


def format_money(amount: Decimal | float, currency: str) -> str:
    """``USD 250,000.00`` (ISO code first: unambiguous in both languages)."""
    return f"{currency} {Decimal(str(amount)):,.2f}"
