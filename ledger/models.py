"""Ledger tables: one row per decision, plus an index of the records each row touches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from config.db import Base


class Decision(Base):
    """One step that the system or a person took, with its evidence and versions."""

    __tablename__ = "decisions"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    parent_id: Mapped[str | None] = mapped_column(String(36), index=True)
    ts: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(80), index=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    thread_id: Mapped[str | None] = mapped_column(String(80), index=True)
    input_summary: Mapped[str] = mapped_column(Text, default="")
    output: Mapped[dict[str, Any]]
    evidence: Mapped[list[Any]]
    model_id: Mapped[str | None] = mapped_column(String(200), index=True)
    prompt: Mapped[str | None] = mapped_column(String(200))
    rule_id: Mapped[str | None] = mapped_column(String(80), index=True)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    tokens_in: Mapped[int | None]
    tokens_out: Mapped[int | None]
    # Outcome is learned later (accepted / edited / rejected / converted). It is not part of the
    # hash; every change to it is also appended as its own 'outcome' row, which is hashed.
    outcome: Mapped[str | None] = mapped_column(String(20))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # The chain commits to sha256(salt + payload), not to the payload (input_summary, output) itself, so a
    # data-subject erase can scrub the payload without breaking the chain. Erase also drops the salt: with
    # it gone, nobody can confirm a guessed value against the hash. NULL payload_hash: a row written before
    # this scheme, whose payload is inside the chain hash.
    payload_hash: Mapped[str | None] = mapped_column(String(64))
    payload_salt: Mapped[str | None] = mapped_column(String(32))
    erased_at: Mapped[datetime | None]


class DecisionRef(Base):
    """Which records (``"contact:42"``) a decision touched, so "what happened to X" is one index scan."""

    __tablename__ = "decision_refs"
    __table_args__ = (Index("ix_decision_refs_ref_seq", "ref", "decision_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    decision_seq: Mapped[int] = mapped_column(ForeignKey("decisions.seq", ondelete="CASCADE"))
    ref: Mapped[str] = mapped_column(String(80))
