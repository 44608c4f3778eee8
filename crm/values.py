"""The one JSON form of a column value, used by every reader and writer of CRM values."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any


def jsonable(value: Any) -> Any:
    """A column value in its one JSON form: amounts as numbers, dates and times as ISO 8601 text.

    Every reader uses it: record views, proposal diffs and before-images, cursors and the ledger.
    """
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
