"""Rule tables: rules and their versions, ingested event keys (idempotent ingest), firings (exactly once)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from config.db import Base
from crm.models import utcnow


class RuleRecord(Base):
    """A rule: its lifecycle status, latest version and the version that runs (if any)."""

    __tablename__ = "rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)  # draft|approved|active|paused|retired
    version: Mapped[int] = mapped_column(Integer, default=1)
    active_version: Mapped[int | None] = mapped_column(Integer)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class RuleVersion(Base):
    """One version of a rule: the text, the compiled definition, its explanation and compliance findings."""

    __tablename__ = "rule_versions"
    __table_args__ = (UniqueConstraint("rule_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("rules.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="draft")  # draft|approved|active|superseded|retired
    text: Mapped[str] = mapped_column(Text, default="")
    definition: Mapped[dict[str, Any]]
    explanation: Mapped[str] = mapped_column(Text, default="")
    findings: Mapped[list[Any]] = mapped_column(default=list)
    compiled_by: Mapped[str] = mapped_column(String(20), default="grammar")  # grammar | model | manual
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime)


class IngestedEvent(Base):
    """An event key already accepted: the same key posted again is not stored or processed twice."""

    __tablename__ = "rule_ingested_events"
    event_key: Mapped[str] = mapped_column(String(120), primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class RuleFiring(Base):
    """A rule version fired for one triggering event key; unique, so its actions are proposed exactly once."""

    __tablename__ = "rule_firings"
    __table_args__ = (UniqueConstraint("rule_id", "rule_version", "event_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("rules.id", ondelete="CASCADE"), index=True)
    rule_version: Mapped[int] = mapped_column(Integer)
    event_key: Mapped[str] = mapped_column(String(120))
    customer_key: Mapped[str] = mapped_column(String(120), index=True)
    depth: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="applied")  # applied | pending | failed
    evidence: Mapped[list[Any]] = mapped_column(default=list)
    proposal_ids: Mapped[list[Any]] = mapped_column(default=list)
    detail: Mapped[str] = mapped_column(Text, default="")
    decision_id: Mapped[str | None] = mapped_column(String(36))
    fired_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
