"""``GET /v1/search`` and the background index build's status."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from config.objects import INDEXED
from config.settings import get_settings
from retrieval.follower import IndexStatus
from retrieval.search import search_as
from retrieval.service import owner_status
from serving.api.deps import CurrentPrincipal, SessionDep
from serving.api.errors import COMMON_RESPONSES, ErrorBody
from serving.api.routing import StrictQueryRoute

router = APIRouter(prefix="/v1", tags=["search"], route_class=StrictQueryRoute, responses={
    **COMMON_RESPONSES, 503: {"model": ErrorBody, "description": "The index is busy or not built yet"}})

IndexedType = StrEnum("IndexedType", {t: t for t in sorted(INDEXED)})  # type: ignore[misc]


class SearchMode(StrEnum):
    """Which legs of the hybrid query run."""

    hybrid = "hybrid"
    dense = "dense"
    sparse = "sparse"


class SearchHit(BaseModel):
    """One chunk the caller may read, text masked for their role."""

    chunk_id: str
    record: str
    object_type: str
    record_id: int
    account_id: int | None
    score: float
    text: str
    title: str
    timestamp: str | None
    link: str


class SearchResponse(BaseModel):
    """Ranked hits and the ledger row that recorded the search."""

    hits: list[SearchHit]
    decision_id: str


class IndexStatusPublic(BaseModel):
    """Where the background index build stands, per leg: BM25 first (minutes), then the dense vectors."""

    state: str  # idle | building (sparse pass) | filling (dense; search covers all) | following | failed | stopped
    records_done: int
    records_total: int
    sparse_complete: bool = False
    dense_complete: bool = False
    dense_done: int = 0


@router.get("/search", response_model=SearchResponse, summary="Hybrid search over CRM text you may read")
def search_endpoint(
    session: SessionDep,
    principal: CurrentPrincipal,
    q: Annotated[str, Query(min_length=1, max_length=500, description="Query, Chinese or English")],
    account_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    object_type: IndexedType | None = None,  # type: ignore[valid-type]
    date_from: date | None = None,
    date_to: date | None = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    mode: SearchMode = SearchMode.hybrid,
) -> SearchResponse:
    """Dense + sparse search fused by RRF, permission filter inside the engine query, text masked.

    While the first background build runs, hits come from the part of the CRM indexed so far
    (``GET /v1/search/status`` tells how far it is).
    """
    hits, decision_id = search_as(
        session, principal, q, account_id=account_id, object_types=[object_type.value] if object_type else None,
        date_from=date_from, date_to=date_to, limit=limit, mode=mode.value)
    session.commit()
    return SearchResponse(hits=[SearchHit(**h.as_dict(), link=h.link) for h in hits], decision_id=decision_id)


@router.get("/search/status", response_model=IndexStatusPublic, summary="Search index build progress")
def search_status(request: Request, principal: CurrentPrincipal) -> IndexStatusPublic:
    """Whether the index is being built, and how far.

    This server's follower, or the index owner's when another process owns the index (``CRMIND_INDEX_URL``);
    idle when neither runs.
    """
    status: IndexStatus | None = getattr(request.app.state, "index_status", None)
    if status is None and get_settings().index_url:
        return IndexStatusPublic(**owner_status() or IndexStatus().as_dict())
    return IndexStatusPublic(**(status or IndexStatus()).as_dict())
