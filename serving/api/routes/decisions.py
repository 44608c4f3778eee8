"""The decision record over HTTP: what happened to a record, and why."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from config.objects import REF_PATTERN
from crm.decision_access import decision_view, decisions_about, trace_for
from serving.api.deps import CurrentPrincipal, SessionDep
from serving.api.errors import COMMON_RESPONSES
from serving.api.routing import StrictQueryRoute

router = APIRouter(route_class=StrictQueryRoute, prefix="/v1/decisions", tags=["decisions"], responses=COMMON_RESPONSES)


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


@router.get("", response_model=list[DecisionPublic], summary="Decisions about a record, a thread or an actor")
def list_decisions(
    principal: CurrentPrincipal,
    session: SessionDep,
    record: Annotated[str | None, Query(pattern=REF_PATTERN, description="e.g. contact:42")] = None,
    thread_id: Annotated[str | None, Query(max_length=80)] = None,
    actor: Annotated[str | None, Query(max_length=80)] = None,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DecisionPublic]:
    """Answers "what happened to this record, and why".

    Non-admins must name a record they can read, or ask about their own actions.
    """
    rows = decisions_about(session, principal, record=record, thread_id=thread_id, actor=actor, kind=kind,
                           limit=limit)
    return [DecisionPublic(**decision_view(principal, r)) for r in rows]


@router.get("/{decision_id}/trace", response_model=list[DecisionPublic], summary="A decision's trace tree")
def trace(decision_id: Annotated[str, Path(pattern=r"^[0-9a-f\-]{36}$")], principal: CurrentPrincipal,
          session: SessionDep) -> list[DecisionPublic]:
    """The decision with its ancestors and descendants."""
    return [DecisionPublic(**decision_view(principal, r)) for r in trace_for(session, principal, decision_id)]
