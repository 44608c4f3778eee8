"""Appending to the ledger inside the caller's transaction, so a decision and its effect commit together."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from config.db import transaction
from ledger.models import Decision, DecisionRef

GENESIS = "0" * 64
_LOCK_KEY = 0x6C6564676572  # "ledger": serialises appends on PostgreSQL


def row_hash(row: Decision) -> str:
    """Hash of a row's content and its predecessor's hash (the tamper-evident chain)."""
    body = {
        "id": row.id,
        "parent_id": row.parent_id,
        "ts": row.ts.isoformat(),
        "actor": row.actor,
        "kind": row.kind,
        "thread_id": row.thread_id,
        "input_summary": row.input_summary,
        "output": row.output,
        "evidence": row.evidence,
        "model_id": row.model_id,
        "prompt": row.prompt,
        "rule_id": row.rule_id,
        "latency_ms": None if row.latency_ms is None else round(row.latency_ms, 3),
        "tokens_in": row.tokens_in,
        "tokens_out": row.tokens_out,
        "prev_hash": row.prev_hash,
    }
    canon = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canon.encode()).hexdigest()


def append(
    session: Session,
    *,
    kind: str,
    actor: str,
    input_summary: str = "",
    output: dict[str, Any] | None = None,
    evidence: Iterable[str] = (),
    refs: Iterable[str] = (),
    parent_id: str | None = None,
    thread_id: str | None = None,
    model_id: str | None = None,
    prompt: str | None = None,
    rule_id: str | None = None,
    latency_ms: float | None = None,
    tokens_in: int | None = None,
    tokens_out: int | None = None,
) -> Decision:
    """Add one decision row in ``session``'s transaction; the caller commits.

    ``evidence`` holds record and chunk ids the decision used; ``refs`` the records it concerns
    (evidence record ids are indexed too, so a record's history includes answers that cited it).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    evidence = list(evidence)
    row = Decision(
        id=str(uuid.uuid4()),
        parent_id=parent_id,
        ts=datetime.now(UTC).replace(tzinfo=None),
        actor=actor,
        kind=kind,
        thread_id=thread_id,
        input_summary=input_summary[:4000],
        output=output or {},
        evidence=evidence,
        model_id=model_id,
        prompt=prompt,
        rule_id=rule_id,
        latency_ms=None if latency_ms is None else round(latency_ms, 3),
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        prev_hash=GENESIS,
        hash="",
    )
    session.add(row)
    # Insert first: on SQLite the insert takes the write lock, so every row with a lower seq is
    # committed and the predecessor read below cannot change under us (PostgreSQL: advisory lock).
    session.flush()
    prev = session.scalar(
        select(Decision.hash).where(Decision.seq < row.seq).order_by(Decision.seq.desc()).limit(1)
    )
    row.prev_hash = prev or GENESIS
    row.hash = row_hash(row)
    all_refs = {r for r in refs} | {e for e in evidence if _is_record_ref(e)}
    session.add_all(DecisionRef(decision_seq=row.seq, ref=r) for r in sorted(all_refs))
    session.flush()
    return row


def _is_record_ref(value: str) -> bool:
    kind, _, ident = value.partition(":")
    return bool(ident) and kind in {"account", "contact", "lead", "opportunity", "activity", "case",
                                    "article", "event", "proposal", "rule", "model"}


def append_now(**kwargs: Any) -> Decision:
    """Append in a transaction of its own (for callers that have no session, e.g. the LLM gateway)."""
    with transaction() as session:
        return append(session, **kwargs)


def set_outcome(session: Session, decision_id: str, outcome: str, actor: str) -> Decision:
    """Record what became of a decision: sets the column and appends a hashed 'outcome' row."""
    row = session.scalar(select(Decision).where(Decision.id == decision_id))
    if row is None:
        raise KeyError(decision_id)
    row.outcome = outcome
    return append(session, kind="outcome", actor=actor, parent_id=decision_id,
                  input_summary=f"outcome of {decision_id}", output={"outcome": outcome})
