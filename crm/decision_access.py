"""Who may read which ledger decisions, as plain domain functions shared by the API, CLI, tools and MCP."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import ledger
from config.objects import parse_ref
from crm import proposals
from crm.access import Principal, get_record, text_for_reader
from crm.errors import Forbidden, NotFound
from ledger.models import Decision, DecisionRef


def check_record(session: Session, principal: Principal, record: str) -> None:
    """Raise ``NotFound`` unless ``principal`` may read the record a ref names (``contact:42``, ``proposal:7``)."""
    try:
        obj, ident = parse_ref(record)
    except ValueError:
        raise NotFound(f"{record} not found") from None
    if obj == "proposal":
        proposals.get_proposal(session, principal, ident)
    elif obj in ("rule", "model"):
        if principal.role not in ("manager", "admin"):
            raise NotFound(f"{record} not found")
    else:
        get_record(session, principal, obj, ident)


def decisions_about(session: Session, principal: Principal, *, record: str | None = None,
                    thread_id: str | None = None, actor: str | None = None, kind: str | None = None,
                    limit: int = 100) -> list[Decision]:
    """Answers "what happened to this record, and why": non-admins name a readable record or their own actor."""
    if record is not None:
        check_record(session, principal, record)
    elif principal.role != "admin" and actor != principal.actor:
        raise Forbidden("name a record (record=contact:42) or your own actor (actor=user:<your id>)")
    return ledger.decisions_for(session, record=record, thread_id=thread_id, actor=actor, kind=kind, limit=limit)


def trace_for(session: Session, principal: Principal, decision_id: str) -> list[Decision]:
    """A decision's trace tree, if ``principal`` made it or may read a record it concerns (else ``NotFound``)."""
    rows = ledger.trace(session, decision_id)
    if not rows:
        raise NotFound(f"decision {decision_id} not found")
    if principal.role == "admin":
        return rows
    root = next(r for r in rows if r.id == decision_id)
    if root.actor == principal.actor:
        return rows
    for record in session.scalars(select(DecisionRef.ref).where(DecisionRef.decision_seq == root.seq)):
        try:
            check_record(session, principal, record)
            return rows
        except (NotFound, Forbidden):
            continue
    raise NotFound(f"decision {decision_id} not found")


def decision_view(principal: Principal, d: Decision) -> dict[str, Any]:
    """One ledger row as ``principal`` may read it (free text masked for roles that see personal data masked)."""
    return {
        "id": d.id, "parent_id": d.parent_id, "ts": d.ts.isoformat(), "actor": d.actor, "kind": d.kind,
        "thread_id": d.thread_id, "input_summary": text_for_reader(principal, d.input_summary),
        "output": _masked(principal, d.output), "evidence": d.evidence, "model_id": d.model_id,
        "prompt": d.prompt, "rule_id": d.rule_id, "latency_ms": d.latency_ms, "tokens_in": d.tokens_in,
        "tokens_out": d.tokens_out, "outcome": d.outcome, "hash": d.hash,
    }


def _masked(principal: Principal, value: Any) -> Any:
    if isinstance(value, str):
        return text_for_reader(principal, value)
    if isinstance(value, dict):
        return {k: _masked(principal, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(principal, v) for v in value]
    return value
