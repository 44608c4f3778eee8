"""Permission-filtered listing, keyset pagination and text search over every CRM object."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from config.settings import get_settings
from crm.access import Principal, field_names, model_for, readable, view
from crm.errors import InvalidInput
from crm.fields import coerce
from crm.values import jsonable

# Columns a list may be ordered by: NOT NULL ones only, so keyset pagination is exact.
SORTABLE: dict[str, tuple[str, ...]] = {
    "account": ("id", "name", "created_at", "updated_at"),
    "contact": ("id", "name", "created_at", "updated_at"),
    "lead": ("id", "name", "score", "created_at", "updated_at"),
    "opportunity": ("id", "name", "close_date", "amount", "probability", "created_at", "updated_at"),
    "activity": ("id", "occurred_at", "created_at"),
    "case": ("id", "created_at", "updated_at"),
    "article": ("id", "title", "created_at", "updated_at"),
    "event": ("id", "occurred_at"),
}
# Equality filters per object.
FILTERABLE: dict[str, tuple[str, ...]] = {
    "account": ("owner_id", "team_id", "industry", "country", "tier", "language"),
    "contact": ("owner_id", "team_id", "account_id", "language", "email", "phone"),
    "lead": ("owner_id", "team_id", "status", "source", "pool", "language"),
    "opportunity": ("owner_id", "team_id", "account_id", "stage", "currency", "competitor", "product"),
    "activity": ("owner_id", "team_id", "account_id", "contact_id", "opportunity_id", "case_id", "lead_id",
                 "kind", "language"),
    "case": ("owner_id", "team_id", "account_id", "contact_id", "status", "priority", "product"),
    "article": ("product", "language"),
    "event": ("visitor_id", "contact_id", "account_id", "type", "team_id"),
}
# Columns the ``q`` text search looks in.
SEARCHABLE: dict[str, tuple[str, ...]] = {
    "account": ("name", "industry", "city", "country", "description"),
    "contact": ("name", "title", "email", "phone"),
    "lead": ("name", "company", "email", "phone"),
    "opportunity": ("name", "competitor", "product"),
    "activity": ("subject", "body"),
    "case": ("subject", "description", "resolution"),
    "article": ("title", "body"),
    "event": ("page", "type"),
}
MAX_LIMIT = 200


@dataclass
class Page:
    """One page of records as the reader may see them, and the cursor of the next page."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def _encode_cursor(values: list[Any]) -> str:
    raw = json.dumps([jsonable(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor is not valid; use the next_cursor value of the previous page") from None
    if not isinstance(values, list) or len(values) != 2:
        raise InvalidInput("cursor is not valid; use the next_cursor value of the previous page")
    return values


def _visible(principal: Principal, obj: str, field: str) -> bool:
    return get_settings().visibility(obj, field, principal.role) == "visible"


def escape_like(term: str) -> str:
    """Escape LIKE wildcards so user text matches literally."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_records(
    session: Session,
    principal: Principal,
    obj: str,
    *,
    filters: dict[str, Any] | None = None,
    q: str | None = None,
    sort: str = "id",
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A page of ``obj`` rows the principal may read, filtered, text-searched and keyset-paginated.

    Filters, search and sort only use fields the reader sees unmasked, so they can't be used as an
    oracle to guess a masked phone number or a hidden amount.
    """
    model: Any = model_for(obj)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
    descending = sort.startswith("-")
    sort_field = sort.removeprefix("-")
    if sort_field not in SORTABLE[obj] or not _visible(principal, obj, sort_field):
        raise InvalidInput(f"{obj} can be sorted by {', '.join(SORTABLE[obj])} (prefix '-' for descending)")
    stmt = readable(principal, obj)
    for field, value in (filters or {}).items():
        if value is None:
            continue
        if field not in FILTERABLE[obj] or not _visible(principal, obj, field):
            raise InvalidInput(f"{obj} cannot be filtered by '{field}'")
        stmt = stmt.where(getattr(model, field) == coerce(obj, field, value))
    if q:
        terms = [t for t in q.replace("\x00", "").split() if t][:8]
        columns = [getattr(model, c) for c in SEARCHABLE[obj] if _visible(principal, obj, c)]
        for term in terms:
            pattern = f"%{escape_like(term)}%"
            stmt = stmt.where(or_(*(c.ilike(pattern, escape="\\") for c in columns)))
    col, id_col = getattr(model, sort_field), model.id
    if cursor:
        last_value, last_id = _decode_cursor(cursor)
        try:
            last_value = coerce(obj, sort_field, last_value)
            last_id = int(last_id)
        except (InvalidInput, TypeError, ValueError):
            raise InvalidInput("cursor is not valid; use the next_cursor value of the previous page") from None
        if descending:
            stmt = stmt.where(or_(col < last_value, and_(col == last_value, id_col < last_id)))
        else:
            stmt = stmt.where(or_(col > last_value, and_(col == last_value, id_col > last_id)))
    order = (col.desc(), id_col.desc()) if descending else (col.asc(), id_col.asc())
    rows = list(session.scalars(stmt.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _encode_cursor([getattr(rows[-1], sort_field), rows[-1].id]) if more and rows else None
    return Page(items=[view(principal, obj, r) for r in rows], next_cursor=next_cursor)


def count_records(session: Session, principal: Principal, obj: str) -> int:
    """How many ``obj`` rows the principal may read."""
    sub = readable(principal, obj).subquery()
    return session.scalar(select(func.count()).select_from(sub)) or 0


__all__ = ["Page", "list_records", "count_records", "field_names", "escape_like"]
