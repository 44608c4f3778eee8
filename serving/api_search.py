"""``GET /v1/search`` and the server's background index follower (sharing the one index owner)."""

from __future__ import annotations

import logging
import threading
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from crm.access import Principal
from retrieval.errors import IndexBusy, RetrievalError
from serving.deps import CurrentPrincipal, SessionDep
from serving.errors import COMMON_RESPONSES, ErrorBody
from serving.routing import StrictQueryRoute

router = APIRouter(prefix="/v1", tags=["search"], route_class=StrictQueryRoute, responses={
    **COMMON_RESPONSES, 503: {"model": ErrorBody, "description": "The index is busy or not built yet"}})
log = logging.getLogger(__name__)


class ObjectType(StrEnum):
    """Object types that are indexed."""

    activity = "activity"
    case = "case"
    article = "article"
    account = "account"
    opportunity = "opportunity"
    contact = "contact"
    lead = "lead"


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


class IndexStatus(BaseModel):
    """Where the background index build stands."""

    state: str = "idle"  # idle | building | following | failed
    records_done: int = 0
    records_total: int = 0


STATUS = IndexStatus()


def run_search(session: Session, principal: Principal, q: str, *, account_id: int | None = None,
               object_type: ObjectType | None = None, date_from: date | None = None, date_to: date | None = None,
               limit: int = 10, mode: SearchMode = SearchMode.hybrid) -> SearchResponse:
    """The route's body, callable without FastAPI: search, write the ledger row, commit."""
    from retrieval.search import search_logged
    from retrieval.service import get_service

    try:
        service = get_service()
    except IndexBusy as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, exc.message) from None
    except RetrievalError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, exc.message) from None
    hits, decision_id = search_logged(
        session, principal, q, store=service.store, embedder=service.embedder, account_id=account_id,
        object_types=[object_type.value] if object_type else None, date_from=date_from, date_to=date_to,
        limit=limit, mode=mode.value)
    session.commit()
    return SearchResponse(hits=[SearchHit(**h.as_dict(), link=h.link) for h in hits], decision_id=decision_id)



@router.get("/search", response_model=SearchResponse, summary="Hybrid search over CRM text you may read")
def search_endpoint(
    session: SessionDep,
    principal: CurrentPrincipal,
    q: Annotated[str, Query(min_length=1, max_length=500, description="Query, Chinese or English")],
    account_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    object_type: ObjectType | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    mode: SearchMode = SearchMode.hybrid,
) -> SearchResponse:
    """Dense + sparse search fused by RRF, permission filter inside the engine query, text masked.

    While the first background build runs, hits come from the part of the CRM indexed so far
    (``GET /v1/search/status`` tells how far it is).
    """
    return run_search(session, principal, q, account_id=account_id, object_type=object_type,
                      date_from=date_from, date_to=date_to, limit=limit, mode=mode)


@router.get("/search/status", response_model=IndexStatus, summary="Search index build progress")
def search_status(principal: CurrentPrincipal) -> IndexStatus:
    """Whether the index is being built, and how far."""
    return STATUS


_stop: threading.Event | None = None
_thread: threading.Thread | None = None




def _build_then_follow(engine: Engine | None, service: Any, interval: float, stop: threading.Event) -> None:
    """First start on a fresh CRM: build the whole index in the background, then follow the outbox.

    The API answers from the first minute; search covers more of the CRM as the build goes on.
    """
    from retrieval.indexer import build, follow, is_built

    def progress(done: int, total: int) -> None:
        STATUS.records_done, STATUS.records_total = done, total

    try:
        if not is_built(engine):
            STATUS.state = "building"
            summary = build(engine, service.store, service.embedder, progress=False, on_progress=progress, stop=stop)
            log.info("index build: %s", summary.line())
        STATUS.state = "following"
        follow(engine, service.store, service.embedder, interval=interval, stop=stop)
    except Exception:
        STATUS.state = "failed"
        log.exception("index follower stopped")


def start_index_follower(engine: Engine | None = None, interval: float = 1.0) -> threading.Thread:
    """Start the outbox follower in a daemon thread that shares the process-wide index owner.

    Call at server startup (FastAPI lifespan); ``stop_index_follower`` at shutdown. Raises ``IndexBusy``
    when another process (e.g. ``crmind index --follow``) owns the index.
    """
    from retrieval.service import get_service

    global _stop, _thread
    if _thread is not None and _thread.is_alive():
        return _thread
    service = get_service()
    _stop = threading.Event()
    _thread = threading.Thread(target=_build_then_follow, name="index-follower", daemon=True,
                               args=(engine, service, interval, _stop))
    _thread.start()
    return _thread


def stop_index_follower(timeout: float = 10.0) -> None:
    """Stop the follower and release the index owner."""
    from retrieval.service import close_service

    global _thread
    if _stop is not None:
        _stop.set()
    if _thread is not None:
        _thread.join(timeout)
        _thread = None
    close_service()
