"""The FastAPI application: CRM records, proposals, privacy, import, decisions, search."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from serving.api import errors
from serving.api.routes import decisions, imports, meta, pages, privacy, proposals, records, rules, search

WEB = Path(__file__).resolve().parent / "web"


@asynccontextmanager
async def _follow_index(app: FastAPI) -> AsyncIterator[None]:
    """Keep the search index in step with the outbox while the server runs (one index owner per process)."""
    from retrieval.follower import IndexFollower

    follower = IndexFollower()
    app.state.index_status = follower.status
    follower.start()
    try:
        yield
    finally:
        follower.stop()


def create_app(*, follow_index: bool = False) -> FastAPI:
    """Build the app; routers are thin, the domain layers do the work.

    ``follow_index`` runs the outbox follower in the server process (``crmind serve`` turns it on).
    """
    app = FastAPI(
        lifespan=_follow_index if follow_index else None,
        title="crmind",
        version="0.1.0",
        description="AI agent platform over your CRM. Every read is permission-filtered; every write is a "
        "proposal that a person approves; every decision is in the ledger.",
    )
    errors.install(app)

    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")
    for module in (meta, records, proposals, privacy, imports, decisions, search, rules, pages):
        app.include_router(module.router)
    return app
