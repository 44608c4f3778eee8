"""Data-subject requests: export (JSON) and erase for a contact."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel

from agents.privacy import erase_contact
from crm.privacy import export_contact
from finetune.erase import erase_scrubber
from serving.api.deps import CurrentPrincipal, SessionDep
from serving.api.errors import COMMON_RESPONSES, ErrorBody
from serving.api.routing import StrictQueryRoute

router = APIRouter(route_class=StrictQueryRoute, prefix="/v1/contacts", tags=["privacy"], responses=COMMON_RESPONSES)
ContactId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class ContactExport(BaseModel):
    """Everything held about one contact."""

    contact: dict[str, Any]
    activities: list[dict[str, Any]]
    cases: list[dict[str, Any]]
    events: list[dict[str, Any]]
    proposals: list[dict[str, Any]]
    linked: list[dict[str, Any]] = []


class EraseResult(BaseModel):
    """What the erase touched."""

    contact_id: int
    activities_scrubbed: int
    cases_scrubbed: int
    conversations_scrubbed: int = 0
    training_examples_removed: int = 0
    linked_erased: list[str] = []
    linked_not_readable: list[str] = []


@router.get("/{contact_id}/export", response_model=ContactExport, summary="Data-subject export")
def export(contact_id: ContactId, principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """Managers and admins only; the export itself is recorded in the ledger."""
    data = export_contact(session, principal, contact_id)
    session.commit()
    return data


@router.post("/{contact_id}/erase", response_model=EraseResult, summary="Data-subject erase",
             responses={409: {"model": ErrorBody, "description": "Already erased"}})
def erase(contact_id: ContactId, principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """Remove personal data from the CRM, its text, conversations and training sets; queue removal from the index."""
    result = erase_contact(session, principal, contact_id,
                           also={"training_examples_removed": erase_scrubber(session)})
    session.commit()
    return result
