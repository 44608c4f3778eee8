"""Public shapes of CRM records, derived from the tables so the OpenAPI document matches the data."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, create_model
from sqlalchemy import Boolean, Date, DateTime, Integer, Numeric

from config.objects import PLURALS
from crm.access import model_for
from crm.models import OBJECT_MODELS

__all__ = ["PLURALS", "PUBLIC", "page_model"]


def _py_type(column: Any) -> Any:
    kind = column.type
    if isinstance(kind, Boolean):
        return bool
    if isinstance(kind, Integer):
        return int
    if isinstance(kind, Numeric):
        return float
    if isinstance(kind, DateTime | Date):
        return str  # ISO 8601
    if column.name in ("custom", "properties"):
        return dict[str, Any]
    return str


def _public_model(obj: str) -> type[BaseModel]:
    # Every field is optional: a field hidden from the reader's role is left out entirely.
    fields: dict[str, Any] = {
        c.name: (_py_type(c) | None, None) for c in model_for(obj).__table__.columns if c.name != "token_hash"
    }
    name = "".join(p.capitalize() for p in obj.split("_")) + "Public"
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


PUBLIC: dict[str, type[BaseModel]] = {obj: _public_model(obj) for obj in OBJECT_MODELS}


def page_model(obj: str) -> type[BaseModel]:
    """``{items: [...], next_cursor}`` for one object type."""
    item = PUBLIC[obj]
    name = item.__name__.removesuffix("Public") + "Page"
    return create_model(name, items=(list[item], ...), next_cursor=(str | None, None))  # type: ignore[valid-type]
