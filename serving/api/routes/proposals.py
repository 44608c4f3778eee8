"""Proposals: the only way anything writes to the CRM. Create, approve (with edits), reject, undo."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from config.objects import WRITABLE_TYPES
from crm import proposals as ops
from crm.access import Principal
from crm.models import Proposal
from serving.api.deps import CurrentPrincipal, SessionDep
from serving.api.errors import COMMON_RESPONSES, ErrorBody
from serving.api.routing import StrictQueryRoute

router = APIRouter(route_class=StrictQueryRoute, prefix="/v1/proposals", tags=["proposals"], responses={
    **COMMON_RESPONSES, 409: {"model": ErrorBody, "description": "Stale record or proposal in the wrong state"}})
ObjectType = Literal[WRITABLE_TYPES]  # type: ignore[valid-type]
ProposalId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class ProposalCreate(BaseModel):
    """A proposed change: field -> new value (custom fields as ``custom.<name>``)."""

    model_config = ConfigDict(extra="forbid")
    object_type: ObjectType
    action: Literal["create", "update", "close", "delete", "owner_change"]
    record_id: int | None = Field(None, ge=1, le=2**31 - 1)
    changes: dict[str, Any] = Field(default_factory=dict, max_length=50)
    reason: str = Field("", max_length=4000)
    evidence: list[Annotated[str, Field(max_length=120)]] = Field(default_factory=list, max_length=100)


class ApproveBody(BaseModel):
    """Optional edits to proposed fields before applying."""

    model_config = ConfigDict(extra="forbid")
    edits: dict[str, Any] | None = Field(None, max_length=50)


class RejectBody(BaseModel):
    """Why the proposal was rejected."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=2000)


class FieldChange(BaseModel):
    """One field's value before and after."""

    before: Any = None
    after: Any = None


class MergeInfo(BaseModel):
    """What a merge proposal folds into its record, and by which survivorship policy."""

    duplicates: list[int]
    policy: str | None = None


class DuplicateCandidate(BaseModel):
    """An existing record the proposed one probably duplicates (identity resolution's match and reasons)."""

    ref: str
    customer_id: str
    probability: float
    reasons: list[str]


class ProposalPublic(BaseModel):
    """A proposal as its reader may see it (personal values masked for roles that see them masked)."""

    id: int
    object_type: str
    record_id: int | None
    action: str
    changes: dict[str, FieldChange]
    reason: str
    evidence: list[str]
    status: str
    requires_human: bool
    source: str
    created_by: int
    decided_by: int | None
    base_version: int | None
    applied_version: int | None
    created_at: str
    decided_at: str | None
    applied_at: str | None
    merge: MergeInfo | None = None
    likely_duplicates: list[DuplicateCandidate] = []


def public(principal: Principal, p: Proposal) -> ProposalPublic:
    """Serialize as the reader may see it."""
    return ProposalPublic(**ops.proposal_view(principal, p))


@router.post("", status_code=201, response_model=ProposalPublic, summary="Propose a change")
def create_proposal(body: ProposalCreate, principal: CurrentPrincipal, session: SessionDep,
                    idempotency_key: Annotated[str | None, Header(max_length=64, pattern=r"^[\w\-]+$")] = None,
                    ) -> ProposalPublic:
    """Nothing in the CRM changes until the proposal is approved."""
    proposal = ops.propose(session, principal, object_type=body.object_type, action=body.action,
                           record_id=body.record_id, changes=body.changes, reason=body.reason,
                           evidence=body.evidence, idempotency_key=idempotency_key)
    session.commit()
    shown = public(principal, proposal)
    if body.action == "create" and body.object_type in ("contact", "lead"):
        shown.likely_duplicates = _likely_duplicates(session, principal, body.object_type, body.changes)
    return shown


def _likely_duplicates(session: Any, principal: Principal, obj: str, values: dict[str, Any]
                       ) -> list[DuplicateCandidate]:
    """Readable existing contacts and leads the new record probably duplicates (none before a resolve run)."""
    from crm.access import get_record
    from crm.errors import NotFound
    from customers.errors import IdentityError
    from customers.identity import likely_duplicates

    try:
        found = likely_duplicates(session, obj, values)
    except IdentityError:  # no identity model yet: `crmind identity resolve` has not run
        return []
    out = []
    for c in found:
        try:
            get_record(session, principal, c.object_type, c.record_id)
        except NotFound:
            continue  # another team's record does not exist for this caller, as anywhere else
        out.append(DuplicateCandidate(ref=f"{c.object_type}:{c.record_id}", customer_id=c.customer_id,
                                      probability=c.probability, reasons=c.reasons))
    return out


@router.get("", response_model=list[ProposalPublic], summary="My proposals, newest first")
def list_proposals(principal: CurrentPrincipal, session: SessionDep,
                   status: Literal["pending", "applied", "rejected", "undone"] | None = None,
                   limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[ProposalPublic]:
    """Proposals the caller made (admins: everyone's)."""
    return [public(principal, p) for p in ops.list_proposals(session, principal, status=status, limit=limit)]


@router.get("/{proposal_id}", response_model=ProposalPublic, summary="Get a proposal")
def get_proposal(proposal_id: ProposalId, principal: CurrentPrincipal, session: SessionDep) -> ProposalPublic:
    """One proposal the caller made or may decide."""
    return public(principal, ops.get_proposal(session, principal, proposal_id))


@router.post("/{proposal_id}/approve", response_model=ProposalPublic, summary="Approve (and apply)")
def approve(proposal_id: ProposalId, principal: CurrentPrincipal, session: SessionDep,
            body: ApproveBody | None = None) -> ProposalPublic:
    """Apply in one transaction; edits may only change proposed fields; a stale record is refused."""
    try:
        proposal = ops.approve(session, principal, proposal_id, edits=body.edits if body else None)
        session.commit()
    except Exception:
        session.rollback()
        raise
    return public(principal, proposal)


@router.post("/{proposal_id}/reject", response_model=ProposalPublic, summary="Reject")
def reject(proposal_id: ProposalId, principal: CurrentPrincipal, session: SessionDep,
           body: RejectBody | None = None) -> ProposalPublic:
    """Nothing is written to the CRM."""
    proposal = ops.reject(session, principal, proposal_id, body.reason if body else "")
    session.commit()
    return public(principal, proposal)


@router.post("/{proposal_id}/undo", response_model=ProposalPublic, summary="Undo an applied proposal")
def undo(proposal_id: ProposalId, principal: CurrentPrincipal, session: SessionDep) -> ProposalPublic:
    """Restore the before-image, if the record has not changed since."""
    proposal = ops.undo(session, principal, proposal_id)
    session.commit()
    return public(principal, proposal)
