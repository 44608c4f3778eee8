"""Turning JSON values into column values, with the checks a person would expect."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Boolean, Date, DateTime, Integer, Numeric, String, Text

from crm.access import model_for
from crm.errors import InvalidInput

# The CRM's Chinese names of the opportunity stages (the web pages, the assistant and the eval all use these).
STAGE_LABELS_ZH: dict[str, str] = {"prospecting": "初步接触", "qualification": "资格确认", "needs_analysis": "需求分析",
                                   "proposal": "方案报价", "negotiation": "商务谈判", "closed_won": "赢单",
                                   "closed_lost": "输单"}
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("opportunity", "stage"): ("prospecting", "qualification", "needs_analysis", "proposal",
                               "negotiation", "closed_won", "closed_lost"),
    ("lead", "status"): ("new", "working", "qualified", "converted", "disqualified"),
    ("case", "status"): ("new", "open", "pending", "escalated", "closed"),
    ("case", "priority"): ("low", "medium", "high", "urgent"),
    # A task is a follow-up to do; its occurred_at is when it is due.
    ("activity", "kind"): ("call", "email", "meeting", "note", "task"),
    ("account", "tier"): ("standard", "gold", "strategic"),
}
RANGES: dict[tuple[str, str], tuple[int, int]] = {
    ("opportunity", "probability"): (0, 100),
    ("lead", "score"): (0, 100),
}
REQUIRED_ON_CREATE: dict[str, tuple[str, ...]] = {
    "account": ("name",),
    "contact": ("name",),
    "lead": ("name",),
    "opportunity": ("account_id", "name", "close_date"),
    "activity": ("kind", "occurred_at"),
    "case": ("subject",),
    "article": ("title", "body"),
}


MAX_AMOUNT = Decimal(10) ** 13


def coerce(obj: str, field: str, value: Any) -> Any:
    """Convert a JSON value to the column's Python type, raising ``InvalidInput`` with a clear reason."""
    column = model_for(obj).__table__.columns.get(field)
    if column is None:
        raise InvalidInput(f"{obj} has no field '{field}'")
    if value is None:
        if not column.nullable:
            raise InvalidInput(f"{obj}.{field} cannot be empty")
        return None
    kind = column.type
    try:
        if isinstance(kind, Boolean):
            if not isinstance(value, bool):
                raise ValueError("expected true or false")
            out: Any = value
        elif isinstance(kind, Integer):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError("expected a whole number")
            out = int(value)
        elif isinstance(kind, Numeric):
            out = Decimal(str(value))
            if not out.is_finite():
                raise ValueError("expected a finite number")
            # Below 10^13 an amount with cents has at most 15 significant digits, so it survives the
            # JSON number it is written as (``jsonable``) exactly, in before-images and API bodies alike.
            if abs(out) >= MAX_AMOUNT:
                raise ValueError(f"number too large (the limit is {MAX_AMOUNT:,})")
            out = out.quantize(Decimal("0.01"))
        elif isinstance(kind, DateTime):
            out = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
            out = out.replace(tzinfo=None)
        elif isinstance(kind, Date):
            out = value if isinstance(value, date) else date.fromisoformat(str(value))
        elif isinstance(kind, String | Text):
            if not isinstance(value, str):
                raise ValueError("expected text")
            out = value.replace("\x00", "")
            length = getattr(kind, "length", None)
            if length and len(out) > length:
                raise ValueError(f"at most {length} characters")
        else:
            out = value
    except (ValueError, TypeError, InvalidOperation, OverflowError) as exc:
        raise InvalidInput(f"{obj}.{field}: {exc} (got {value!r:.60})") from None
    choices = CHOICES.get((obj, field))
    if choices and out not in choices:
        raise InvalidInput(f"{obj}.{field} must be one of {', '.join(choices)} (got {out!r:.60})")
    bounds = RANGES.get((obj, field))
    if bounds and not bounds[0] <= out <= bounds[1]:
        raise InvalidInput(f"{obj}.{field} must be between {bounds[0]} and {bounds[1]}")
    if field == "currency" and (len(out) != 3 or not out.isalpha() or not out.isupper()):
        raise InvalidInput("currency must be a three-letter ISO code such as USD or CNY")
    return out
