"""Customer 360: one customer across records, the duplicate review queue, merge proposals, scores."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from crm.merge import MAX_MERGED, propose_merge
from customers.profile import customer_view, duplicate_queue, scores_of
from serving.api.deps import CurrentPrincipal, SessionDep
from serving.api.errors import COMMON_RESPONSES, ErrorBody
from serving.api.routes.proposals import ProposalPublic, public
from serving.api.routing import StrictQueryRoute

router = APIRouter(route_class=StrictQueryRoute, prefix="/v1/customers", tags=["customers"], responses={
    **COMMON_RESPONSES, 409: {"model": ErrorBody, "description": "Stale record"}})
CUSTOMER_REF_PATTERN = r"^(contact|lead|account):[0-9]{1,10}$|^visitor:[\w\-]{1,64}$"
CustomerRef = Annotated[str, Path(pattern=CUSTOMER_REF_PATTERN,
                                  description="Any member record of the customer: contact:12, lead:7, "
                                              "account:3 or visitor:<id>")]

RecordRef = Annotated[str, Path(pattern=r"^(contact|lead|account|opportunity):[0-9]{1,10}$",
                                description="A scored record: lead:7, opportunity:12, account:3 or contact:9")]


class MergeCreate(BaseModel):
    """Fold duplicates into a survivor; a person approves it through /v1/proposals/{id}/approve."""

    model_config = ConfigDict(extra="forbid")
    object_type: Literal["contact", "lead", "account"]
    survivor_id: int = Field(ge=1, le=2**31 - 1)
    duplicate_ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(min_length=1, max_length=MAX_MERGED)
    policy: Literal["most_recent", "most_complete", "source_priority"] | None = Field(
        None, description="Survivorship per field; default CRMIND_MERGE_SURVIVORSHIP")
    reason: str = Field("", max_length=4000)


@router.get("/duplicates", summary="The duplicate review queue")
def duplicates(principal: CurrentPrincipal, session: SessionDep,
               object_type: Literal["contact", "lead", "account"] | None = None,
               limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[dict[str, Any]]:
    """Customers with two or more live records of one type that the caller can read, strongest links only."""
    return duplicate_queue(session, principal, object_type=object_type, limit=limit)


# Under /duplicates, not /merge: a GET of /v1/customers/merge would match /{customer_ref} and answer 422 where a
# client expects 405 (found by the schemathesis run).
@router.post("/duplicates/merge", status_code=201, response_model=ProposalPublic, summary="Propose a merge")
def merge(body: MergeCreate, principal: CurrentPrincipal, session: SessionDep) -> ProposalPublic:
    """Nothing changes until a person approves; unmerge is ``POST /v1/proposals/{id}/undo``."""
    proposal = propose_merge(session, principal, object_type=body.object_type, survivor_id=body.survivor_id,
                             duplicate_ids=body.duplicate_ids, policy=body.policy, reason=body.reason)
    session.commit()
    return public(principal, proposal)


@router.get("/scores/{record_ref}", summary="One record's scores with their reasons")
def record_scores(record_ref: RecordRef, principal: CurrentPrincipal, session: SessionDep) -> list[dict[str, Any]]:
    """Lead score, win probability, health, RFM segment and lifetime value of this record (not of its customer)."""
    return scores_of(session, principal, record_ref)


@router.get("/{customer_ref}", summary="One customer, 360")
def customer(customer_ref: CustomerRef, principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """Linked identities with reasons, a timeline of activities, events, cases and deals, scores with reasons."""
    return customer_view(session, principal, customer_ref)
