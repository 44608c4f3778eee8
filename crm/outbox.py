"""The outbox: every CRM change queues an index update in the same transaction."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import ledger
from config.objects import INDEXED
from crm.models import OutboxCursor, OutboxEntry


def emit(session: Session, obj: str, record_id: int, op: str = "upsert", proposal_id: int | None = None) -> None:
    """Queue ``op`` (upsert | delete | erase) for a record; a no-op for objects that are not indexed.

    ``proposal_id`` names the applied proposal behind the change (what record rules trigger on).
    """
    if obj in INDEXED:
        # Draw the id under the write lock, so entries commit in id order and no consumer skips one
        # (found by the crash test on PostgreSQL: an erase's entry committed below the cursor).
        ledger.hold_write_lock(session)
        session.add(OutboxEntry(object_type=obj, record_id=record_id, op=op, proposal_id=proposal_id))
        session.flush()


def pending(session: Session, consumer: str, limit: int = 500) -> list[OutboxEntry]:
    """Entries after ``consumer``'s cursor, oldest first."""
    last = session.scalar(select(OutboxCursor.last_id).where(OutboxCursor.consumer == consumer)) or 0
    return list(session.scalars(
        select(OutboxEntry).where(OutboxEntry.id > last).order_by(OutboxEntry.id).limit(limit)))


def advance(session: Session, consumer: str, last_id: int) -> None:
    """Move ``consumer``'s cursor, after its work for every entry up to ``last_id`` is durable."""
    cursor = session.get(OutboxCursor, consumer)
    if cursor is None:
        session.add(OutboxCursor(consumer=consumer, last_id=last_id))
    elif last_id > cursor.last_id:
        cursor.last_id = last_id


def lag(session: Session, consumer: str) -> int:
    """How many entries ``consumer`` has not processed yet."""
    last = session.scalar(select(OutboxCursor.last_id).where(OutboxCursor.consumer == consumer)) or 0
    return session.scalar(select(func.count()).select_from(OutboxEntry).where(OutboxEntry.id > last)) or 0
