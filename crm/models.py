"""CRM tables (SQLAlchemy 2). Every owned record carries owner, team and a version for stale checks."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from config.db import Base


def utcnow() -> datetime:
    """Naive UTC now (both engines store naive timestamps)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Team(Base):
    """A sales or support team; row access is granted by team."""

    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    region: Mapped[str] = mapped_column(String(40), default="")


class User(Base):
    """A person who signs in; ``role`` is rep / manager / support / admin."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class OwnedMixin:
    """Owner, team, custom fields, timestamps and a version bumped on every applied change."""

    # A deleted record's id is never handed out again (migration 0005): the ledger names records by id.
    __table_args__: Any = {"sqlite_autoincrement": True}

    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)


class Account(OwnedMixin, Base):
    """A customer company."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    industry: Mapped[str] = mapped_column(String(80), default="")
    country: Mapped[str] = mapped_column(String(60), default="")
    city: Mapped[str] = mapped_column(String(80), default="")
    website: Mapped[str] = mapped_column(String(200), default="")
    employees: Mapped[int | None] = mapped_column(Integer)
    annual_revenue: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    tier: Mapped[str] = mapped_column(String(20), default="standard")
    language: Mapped[str] = mapped_column(String(8), default="en")
    description: Mapped[str] = mapped_column(Text, default="")
    # Set on a record merged into another (customers.merge): a tombstone that unmerge restores.
    merged_into_id: Mapped[int | None] = mapped_column(Integer, index=True)


class Contact(OwnedMixin, Base):
    """A person at an account. ``phone`` and ``email`` are personal data."""

    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(160), index=True)
    title: Mapped[str] = mapped_column(String(120), default="")
    phone: Mapped[str | None] = mapped_column(String(40))
    email: Mapped[str | None] = mapped_column(String(200), index=True)
    language: Mapped[str] = mapped_column(String(8), default="en")
    erased_at: Mapped[datetime | None] = mapped_column(DateTime)
    merged_into_id: Mapped[int | None] = mapped_column(Integer, index=True)


class Lead(OwnedMixin, Base):
    """A prospect not yet qualified into an account and opportunity."""

    __tablename__ = "leads"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(160), index=True)
    company: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str | None] = mapped_column(String(40))
    email: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(40), default="web")
    status: Mapped[str] = mapped_column(String(20), default="new", index=True)
    score: Mapped[int] = mapped_column(Integer, default=0)
    pool: Mapped[str] = mapped_column(String(40), default="general")
    language: Mapped[str] = mapped_column(String(8), default="en")
    merged_into_id: Mapped[int | None] = mapped_column(Integer, index=True)


class Opportunity(OwnedMixin, Base):
    """A deal in the pipeline."""

    __tablename__ = "opportunities"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    stage: Mapped[str] = mapped_column(String(30), default="prospecting", index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(16, 2), default=0)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    close_date: Mapped[date] = mapped_column(Date, index=True)
    probability: Mapped[int] = mapped_column(Integer, default=10)
    competitor: Mapped[str | None] = mapped_column(String(120))
    product: Mapped[str] = mapped_column(String(120), default="")


class Activity(OwnedMixin, Base):
    """A call, email, meeting or note, linked to the records it is about."""

    __tablename__ = "activities"
    __table_args__ = (Index("ix_activities_team_occurred", "team_id", "occurred_at"), {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    occurred_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    language: Mapped[str] = mapped_column(String(8), default="en")
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunities.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"), index=True)


class Case(OwnedMixin, Base):
    """A support case with SLA."""

    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    subject: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    resolution: Mapped[str] = mapped_column(Text, default="")
    internal_notes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="new", index=True)
    priority: Mapped[str] = mapped_column(String(10), default="medium")
    sla_due: Mapped[datetime | None] = mapped_column(DateTime)
    product: Mapped[str] = mapped_column(String(120), default="")
    language: Mapped[str] = mapped_column(String(8), default="en")


class KnowledgeArticle(Base):
    """A help-centre or internal article; readable by every signed-in user."""

    __tablename__ = "knowledge_articles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    product: Mapped[str] = mapped_column(String(120), default="")
    language: Mapped[str] = mapped_column(String(8), default="en")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Event(Base):
    """Web or app behaviour of a visitor (anonymous) or a known contact."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_visitor_time", "visitor_id", "occurred_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visitor_id: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    type: Mapped[str] = mapped_column(String(40), index=True)
    page: Mapped[str] = mapped_column(String(300), default="")
    duration_s: Mapped[int] = mapped_column(Integer, default=0)
    occurred_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)


class CustomFieldDef(Base):
    """A custom field an admin added to an object; values live in that object's ``custom`` JSON."""

    __tablename__ = "custom_field_defs"
    __table_args__ = (UniqueConstraint("object_type", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    object_type: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(60))
    type: Mapped[str] = mapped_column(String(10))  # text | number | bool | date
    label: Mapped[str] = mapped_column(String(120), default="")
    personal: Mapped[bool] = mapped_column(Boolean, default=False)


class Proposal(Base):
    """A write waiting for a person (or a rule's approved policy): field-level before/after values."""

    __tablename__ = "proposals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    object_type: Mapped[str] = mapped_column(String(30))
    record_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))  # create | update | close | delete | owner_change | merge
    changes: Mapped[dict[str, Any]]  # field -> {"before": x, "after": y}
    reason: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    requires_human: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(40), default="user")  # user | agent | rule:<id>
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    base_version: Mapped[int | None] = mapped_column(Integer)
    applied_version: Mapped[int | None] = mapped_column(Integer)
    before_image: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # What an action needs beyond field changes (a merge: the merged-away ids, their versions, the policy).
    payload: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    decision_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)
    applied_at: Mapped[datetime | None] = mapped_column(DateTime)


class OutboxEntry(Base):
    """A change to index, written in the same transaction as the change itself."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    object_type: Mapped[str] = mapped_column(String(30))
    record_id: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(10))  # upsert | delete | erase
    # The applied proposal behind the change (rules trigger on it); empty for undo and erase.
    proposal_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class OutboxCursor(Base):
    """How far a consumer (e.g. the retrieval indexer) has read the outbox; advanced after its work."""

    __tablename__ = "outbox_cursors"
    consumer: Mapped[str] = mapped_column(String(60), primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


OBJECT_MODELS: dict[str, type[Base]] = {
    "account": Account,
    "contact": Contact,
    "lead": Lead,
    "opportunity": Opportunity,
    "activity": Activity,
    "case": Case,
    "article": KnowledgeArticle,
    "event": Event,
}
