"""The FastAPI application: CRM records, proposals, privacy, import, decisions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse

from serving import api_search, errors
from serving.api import decisions, imports, meta, privacy, proposals, records

WEB = Path(__file__).resolve().parent / "web"


@asynccontextmanager
async def _follow_index(_: FastAPI) -> AsyncIterator[None]:
    """Keep the search index in step with the outbox while the server runs (one index owner)."""
    api_search.start_index_follower()
    try:
        yield
    finally:
        api_search.stop_index_follower()


def create_app(*, follow_index: bool = False) -> FastAPI:
    """Build the app; routers are thin, the CRM layer does the work.

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

    @app.get("/", include_in_schema=False)
    def console() -> FileResponse:
        """The web console: records, search, proposals to approve, and the decision record."""
        return FileResponse(WEB / "index.html", media_type="text/html")

    for module in (meta, records, proposals, privacy, imports, decisions, api_search):
        app.include_router(module.router)
    return app
