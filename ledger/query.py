"""Reading the ledger: a record's history, a trace tree, and chain verification."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ledger.anchor import AnchorError, anchor_path, read_anchor
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
    """Outcome of walking the hash chain and checking its anchored head."""

    rows: int
    ok: bool
    first_bad_seq: int | None = None
    reason: str = ""
    anchored_seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return {"rows": self.rows, "ok": self.ok, "first_bad_seq": self.first_bad_seq, "reason": self.reason,
                "anchored_seq": self.anchored_seq}


def verify(session: Session, batch: int = 5000, *, check_anchor: bool = True) -> VerifyResult:
    """Recompute every hash and link, then check the head anchored outside the database.

    Reports the first row that was changed, removed or reordered; then a removed tail, a database restored
    from an older copy or a replaced chain (the anchored row is missing or has another hash), or a missing
    or altered anchor. See README, "What ledger verify guarantees".
    """
    prev = GENESIS
    count = 0
    last_seq = 0
    while True:
        chunk = list(session.scalars(
            select(Decision).where(Decision.seq > last_seq).order_by(Decision.seq).limit(batch)))
        if not chunk:
            break
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
    if not check_anchor:
        return VerifyResult(count, True)
    return _check_anchor(session, count, last_seq)


def _check_anchor(session: Session, count: int, last_seq: int) -> VerifyResult:
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    try:
        anchor = read_anchor(engine)
    except AnchorError as exc:
        return VerifyResult(count, False, None, str(exc))
    if anchor is None:
        if count == 0:
            return VerifyResult(count, True)
        return VerifyResult(count, False, None, f"no anchor for this ledger in {anchor_path(engine).parent} (removed, "
                            "or the ledger predates anchoring): a removed tail could not be detected; check the "
                            "chain and run `crmind ledger anchor`")
    if anchor.seq > last_seq:
        return VerifyResult(count, False, anchor.seq, f"rows removed from the end: the anchor names row seq "
                            f"{anchor.seq}, the ledger ends at seq {last_seq or 'nothing'} (tail deleted, or the "
                            "database restored from an older copy)", anchor.seq)
    held = session.scalar(select(Decision.hash).where(Decision.seq == anchor.seq))
    if held != anchor.hash:
        what = "is missing" if held is None else "has another hash"
        return VerifyResult(count, False, anchor.seq, f"the anchored row seq {anchor.seq} {what}: the chain was "
                            "replaced or the database restored from an older copy and written to since", anchor.seq)
    return VerifyResult(count, True, anchored_seq=anchor.seq)
