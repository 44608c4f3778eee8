"""Customer 360 tables: the identity link table, its blocking keys, and scores with their reasons.

They live in the CRM store (a merge re-links records and their identity links in one transaction, and
unmerge restores both); ``customers/`` fills them.

A *customer* is a cluster of source records (contacts, leads, known web visitors) that identity resolution
believes are one person; accounts cluster among themselves. The customer id is the ref of the cluster's
anchor record (``contact:12``), so it survives re-resolution as long as that record does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from config.db import Base
from crm.models import utcnow

# Link strengths that mean "the same person" (a weak link, from a shared device or phone hash, does not), and
# the ones a merge may act on (a merged link already was).
SAME_PERSON = ("anchor", "strong", "merged")
MERGEABLE_LINKS = ("anchor", "strong")


class IdentityLink(Base):
    """One source record's place in a customer: never destructive, rebuilt by each resolve run."""

    __tablename__ = "identity_links"
    __table_args__ = (UniqueConstraint("object_type", "record_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(80), index=True)
    object_type: Mapped[str] = mapped_column(String(20))  # contact | lead | account | visitor
    record_key: Mapped[str] = mapped_column(String(80))  # the record id, or the visitor id
    match_probability: Mapped[float] = mapped_column(Float, default=1.0)
    # Which fields agreed, in words ("email agrees (normalised)"); never the values themselves.
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    strength: Mapped[str] = mapped_column(String(10), default="strong")  # anchor | strong | weak
    run_id: Mapped[str] = mapped_column(String(40), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class IdentityKey(Base):
    """Normalised blocking keys of a source record (email, E.164 phone, name key, WeChat id, company key).

    They let a new contact or lead find its likely duplicates with indexed lookups instead of a full run.
    """

    __tablename__ = "identity_keys"
    __table_args__ = (Index("ix_identity_keys_kind_value", "kind", "value"),
                      Index("ix_identity_keys_record", "object_type", "record_key"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    object_type: Mapped[str] = mapped_column(String(20))
    record_key: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(200))


class CustomerScore(Base):
    """A score on a record (lead, win, health, rfm, ltv) with its reasons and the model that made it."""

    __tablename__ = "customer_scores"
    __table_args__ = (UniqueConstraint("object_type", "record_id", "kind"), Index("ix_customer_scores_kind_value",
                                                                               "kind", "value"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    object_type: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[float] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(60), default="")  # a band or segment name
    # [{"feature", "value", "contribution", "en", "zh"}], strongest first.
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    features: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model_version: Mapped[str] = mapped_column(String(120), default="")
    computed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
