"""The one permission enforcement point: who may see which rows and fields, and how they look."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, or_, select, text, true
from sqlalchemy.orm import Session, object_session

from config.db import Base
from config.masking import mask_text, mask_value
from config.objects import OBJECT_TYPES, WRITABLE_TYPES
from config.settings import Role, get_settings
from crm.errors import Forbidden, NotFound
from crm.models import OBJECT_MODELS, CustomFieldDef
from crm.values import jsonable

# Which objects each role may read at all.
READABLE: dict[str, frozenset[str]] = {
    "rep": frozenset(OBJECT_TYPES),
    "manager": frozenset(OBJECT_TYPES),
    "support": frozenset({"account", "contact", "activity", "case", "article"}),
    "admin": frozenset(OBJECT_TYPES),
}
# Which objects each role may propose changes to (always within its readable rows).
WRITABLE: dict[str, frozenset[str]] = {
    "rep": frozenset({"account", "contact", "lead", "opportunity", "activity", "case"}),
    "manager": frozenset(WRITABLE_TYPES),
    "support": frozenset({"contact", "activity", "case"}),
    "admin": frozenset(WRITABLE_TYPES),
}
# Columns no proposal may set directly.
SYSTEM_FIELDS = frozenset({"id", "version", "created_at", "updated_at", "erased_at", "team_id", "custom",
                           "merged_into_id"})


@dataclass(frozen=True)
class Principal:
    """Who is acting: every read and write takes one."""

    user_id: int
    role: Role
    team_ids: frozenset[int] = field(default_factory=frozenset)
    name: str = ""

    @property
    def actor(self) -> str:
        """Ledger actor id."""
        return f"user:{self.user_id}"

    @property
    def masks_personal_data(self) -> bool:
        """True when this role sees at least one personal field masked, so free text is masked too."""
        s = get_settings()
        return any(s.visibility(obj, f, self.role) != "visible"
                   for obj, fields in s.personal_fields.items() for f in fields)


def model_for(obj: str) -> type[Base]:
    """The table class behind an object type name."""
    try:
        return OBJECT_MODELS[obj]
    except KeyError:
        raise NotFound(f"unknown object type '{obj}'") from None


def row_filter(principal: Principal, obj: str) -> ColumnElement[bool]:
    """SQL condition selecting the rows of ``obj`` that ``principal`` may read."""
    model: Any = model_for(obj)
    if obj not in READABLE[principal.role]:
        return false()
    if principal.role == "admin" or obj == "article":
        return true()
    teams = list(principal.team_ids)
    if obj == "event":
        # Anonymous visitors' events (no team yet) are for managers, who route them.
        return model.team_id.in_(teams) if teams else false()
    if principal.role == "rep":
        return or_(model.owner_id == principal.user_id, model.team_id.in_(teams))
    return model.team_id.in_(teams) if teams else false()


def readable(principal: Principal, obj: str) -> Select[Any]:
    """``SELECT`` of the rows ``principal`` may read; callers add their own filters and order.

    Merge tombstones are left out: a merged-away contact, lead or account is reachable by its id (it says
    where it went) but no longer listed, counted or matched.
    """
    model: Any = model_for(obj)
    stmt = select(model).where(row_filter(principal, obj))
    if "merged_into_id" in model.__table__.columns:
        stmt = stmt.where(model.merged_into_id.is_(None))
    return stmt


def get_record(session: Session, principal: Principal, obj: str, record_id: int, *,
               for_update: bool = False) -> Any:
    """Fetch one readable record or raise ``NotFound`` (never revealing that a hidden one exists)."""
    model: Any = model_for(obj)
    stmt = select(model).where(and_(model.id == record_id, row_filter(principal, obj)))
    if for_update:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            stmt = stmt.with_for_update()
        elif dialect == "sqlite":
            # SQLite has no row locks, and pysqlite opens the write transaction only at the first write: a
            # read before it may see a version a concurrent writer has already replaced (two erases of one
            # contact both went through). A no-op write first takes the database's write lock.
            session.execute(text(f"UPDATE {model.__tablename__} SET id = id WHERE id = :id"), {"id": record_id})
        stmt = stmt.execution_options(populate_existing=True)  # never the stale copy in the identity map
    record = session.scalar(stmt)
    if record is None:
        raise NotFound(f"{obj} {record_id} not found")
    return record


def check_writable(principal: Principal, obj: str, record: Any | None) -> None:
    """Raise ``Forbidden`` unless ``principal`` may change ``record`` (or create one, when None)."""
    if obj not in WRITABLE[principal.role]:
        raise Forbidden(f"role '{principal.role}' cannot change {obj} records")
    if record is None or principal.role == "admin" or obj == "article":
        return
    owner, team = getattr(record, "owner_id", None), getattr(record, "team_id", None)
    if principal.role == "rep" and owner != principal.user_id and team not in principal.team_ids:
        raise Forbidden(f"{obj} {record.id} belongs to another team")
    if principal.role in ("manager", "support") and team not in principal.team_ids:
        raise Forbidden(f"{obj} {record.id} belongs to another team")


def field_names(obj: str) -> list[str]:
    """Column names of an object type, in table order."""
    return [c.name for c in model_for(obj).__table__.columns]


def writable_fields(obj: str) -> set[str]:
    """Fields a proposal may change (custom fields are addressed as ``custom.<name>``)."""
    return {f for f in field_names(obj) if f not in SYSTEM_FIELDS}


_PERSONAL_CUSTOM: dict[tuple[str, str], tuple[float, frozenset[str]]] = {}


def personal_custom_fields(session: Session | None, obj: str) -> frozenset[str]:
    """Custom fields an admin marked as personal data (cached for a minute per object type)."""
    if session is None:
        return frozenset()
    now, key = time.monotonic(), (str(session.get_bind().engine.url), obj)
    cached = _PERSONAL_CUSTOM.get(key)
    if cached and now - cached[0] < 60:
        return cached[1]
    names = frozenset(session.scalars(select(CustomFieldDef.name).where(
        CustomFieldDef.object_type == obj, CustomFieldDef.personal.is_(True))))
    _PERSONAL_CUSTOM[key] = (now, names)
    return names


def view(principal: Principal, obj: str, record: Any) -> dict[str, Any]:
    """The record as ``principal`` may see it: hidden fields dropped, masked ones masked, text scrubbed."""
    s = get_settings()
    personal_custom = (personal_custom_fields(object_session(record), obj)
                       if principal.role == "support" else frozenset())
    out: dict[str, Any] = {}
    masks_text = principal.masks_personal_data
    for name in field_names(obj):
        vis = s.visibility(obj, name, principal.role)
        if vis == "hidden":
            continue
        value = jsonable(getattr(record, name))
        if vis == "masked":
            value = mask_value(name, value)
        elif masks_text and isinstance(value, str) and name in TEXT_FIELDS.get(obj, ()):
            value = mask_text(value)
        if name == "custom" and isinstance(value, dict):
            value = {k: (mask_value(k, v) if k in personal_custom and principal.role == "support" else v)
                     for k, v in value.items()
                     if s.visibility(obj, f"custom.{k}", principal.role) != "hidden"}
        out[name] = value
    return out


def text_for_reader(principal: Principal, text: str) -> str:
    """Free text as ``principal`` may read it (phone numbers and emails masked where the role needs)."""
    return mask_text(text) if principal.masks_personal_data else text


# Free-text columns that may contain personal data written by people.
TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "account": ("description",),
    "activity": ("subject", "body"),
    "case": ("subject", "description", "resolution", "internal_notes"),
    "article": ("title", "body"),
    "lead": ("company",),
}
