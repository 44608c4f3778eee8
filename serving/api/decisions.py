"""The decision record over HTTP: what happened to a record, and why."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

import ledger
from crm import proposals
from crm.access import Principal, get_record, text_for_reader
from crm.errors import Forbidden, NotFound
from ledger.models import Decision, DecisionRef
from serving.deps import CurrentPrincipal, SessionDep
from serving.errors import COMMON_RESPONSES
from serving.routing import StrictQueryRoute

router = APIRouter(route_class=StrictQueryRoute, prefix="/v1/decisions", tags=["decisions"], responses=COMMON_RESPONSES)
RECORD_PATTERN = r"^(account|contact|lead|opportunity|activity|case|article|event|proposal):[1-9][0-9]{0,9}$"


class DecisionPublic(BaseModel):
    """One ledger row."""

    id: str
    parent_id: str | None
    ts: str
    actor: str
    kind: str
    thread_id: str | None
    input_summary: str
    output: dict[str, Any]
    evidence: list[Any]
    model_id: str | None
    prompt: str | None
    rule_id: str | None
    latency_ms: float | None
    tokens_in: int | None
    tokens_out: int | None
    outcome: str | None
    hash: str


def public(principal: Principal, d: Decision) -> DecisionPublic:
    """Serialize; free text is masked for roles that see personal data masked."""
    return DecisionPublic(
        id=d.id, parent_id=d.parent_id, ts=d.ts.isoformat(), actor=d.actor, kind=d.kind, thread_id=d.thread_id,
        input_summary=text_for_reader(principal, d.input_summary), output=d.output, evidence=d.evidence,
        model_id=d.model_id, prompt=d.prompt, rule_id=d.rule_id, latency_ms=d.latency_ms, tokens_in=d.tokens_in,
        tokens_out=d.tokens_out, outcome=d.outcome, hash=d.hash)


def _check_record(session: Session, principal: Principal, record: str) -> None:
    obj, _, ident = record.partition(":")
    if obj == "proposal":
        proposals.get_proposal(session, principal, int(ident))
    else:
        get_record(session, principal, obj, int(ident))


@router.get("", response_model=list[DecisionPublic], summary="Decisions about a record, a thread or an actor")
def list_decisions(
    principal: CurrentPrincipal,
    session: SessionDep,
    record: Annotated[str | None, Query(pattern=RECORD_PATTERN, description="e.g. contact:42")] = None,
    thread_id: Annotated[str | None, Query(max_length=80)] = None,
    actor: Annotated[str | None, Query(max_length=80)] = None,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DecisionPublic]:
    """Answers "what happened to this record, and why".

    Non-admins must name a record they can read, or ask about their own actions.
    """
    if record is not None:
        _check_record(session, principal, record)
    elif principal.role != "admin" and actor != principal.actor:
        raise Forbidden("name a record (record=contact:42) or your own actor (actor=user:<your id>)")
    rows = ledger.decisions_for(session, record=record, thread_id=thread_id, actor=actor, kind=kind, limit=limit)
    return [public(principal, r) for r in rows]


@router.get("/{decision_id}/trace", response_model=list[DecisionPublic], summary="A decision's trace tree")
def trace(decision_id: Annotated[str, Path(pattern=r"^[0-9a-f\-]{36}$")], principal: CurrentPrincipal,
          session: SessionDep) -> list[DecisionPublic]:
    """The decision with its ancestors and descendants."""
    rows = ledger.trace(session, decision_id)
    if not rows:
        raise NotFound(f"decision {decision_id} not found")
    if principal.role != "admin":
        root = next(r for r in rows if r.id == decision_id)
        refs = list(session.scalars(select(DecisionRef.ref).where(DecisionRef.decision_seq == root.seq)))
        allowed = root.actor == principal.actor
        for ref in refs:
            if allowed:
                break
            try:
                _check_record(session, principal, ref)
                allowed = True
            except (NotFound, Forbidden, ValueError):
                continue
        if not allowed:
            raise NotFound(f"decision {decision_id} not found")
    return [public(principal, r) for r in rows]
