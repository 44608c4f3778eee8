"""Reading the ledger: a record's history, a trace tree, and chain verification."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.models import Decision, DecisionRef
from ledger.record import GENESIS, payload_hash, row_hash


def decisions_for(
    session: Session,
    *,
    record: str | None = None,
    actor: str | None = None,
    thread_id: str | None = None,
    model_id: str | None = None,
    rule_id: str | None = None,
    kind: str | None = None,
    limit: int = 100,
) -> list[Decision]:
    """Decisions matching every given filter, newest first."""
    stmt = select(Decision)
    if record is not None:
        stmt = stmt.where(Decision.seq.in_(select(DecisionRef.decision_seq).where(DecisionRef.ref == record)))
    for col, value in ((Decision.actor, actor), (Decision.thread_id, thread_id),
                       (Decision.model_id, model_id), (Decision.rule_id, rule_id), (Decision.kind, kind)):
        if value is not None:
            stmt = stmt.where(col == value)
    return list(session.scalars(stmt.order_by(Decision.seq.desc()).limit(limit)))


def trace(session: Session, decision_id: str) -> list[Decision]:
    """The decision, its ancestors up to the root, and every descendant, in chain order."""
    rows: dict[str, Decision] = {}
    current = session.scalar(select(Decision).where(Decision.id == decision_id))
    while current is not None and current.id not in rows:
        rows[current.id] = current
        current = (session.scalar(select(Decision).where(Decision.id == current.parent_id))
                   if current.parent_id else None)
    frontier = [decision_id]
    while frontier:
        children = list(session.scalars(select(Decision).where(Decision.parent_id.in_(frontier))))
        frontier = [c.id for c in children if c.id not in rows]
        rows.update({c.id: c for c in children})
    return sorted(rows.values(), key=lambda r: r.seq)


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of walking the hash chain."""

    rows: int
    ok: bool
    first_bad_seq: int | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return {"rows": self.rows, "ok": self.ok, "first_bad_seq": self.first_bad_seq, "reason": self.reason}


def verify(session: Session, batch: int = 5000) -> VerifyResult:
    """Recompute every hash and link; report the first row that was changed, removed or reordered."""
    prev = GENESIS
    count = 0
    last_seq = 0
    while True:
        chunk = list(session.scalars(
            select(Decision).where(Decision.seq > last_seq).order_by(Decision.seq).limit(batch)))
        if not chunk:
            return VerifyResult(rows=count, ok=True)
        for row in chunk:
            count += 1
            if row.prev_hash != prev:
                return VerifyResult(count, False, row.seq, "link to previous row broken (row removed or reordered)")
            if row_hash(row) != row.hash:
                return VerifyResult(count, False, row.seq, "content does not match its hash (row edited)")
            if row.payload_salt is not None and row.payload_hash != payload_hash(
                    row.payload_salt, row.input_summary, row.output):
                return VerifyResult(count, False, row.seq, "payload does not match its hash (row edited)")
            if row.payload_hash is not None and row.payload_salt is None and row.erased_at is None:
                return VerifyResult(count, False, row.seq, "payload salt removed without an erase")
            prev = row.hash
            last_seq = row.seq
