"""The FastAPI application: CRM records, proposals, privacy, import, decisions, search, the assistant, MCP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from serving.api import errors
from serving.api.mcp import mcp_app
from serving.api.routes import (
    chat,
    customers,
    decisions,
    drift,
    imports,
    meta,
    pages,
    privacy,
    proposals,
    records,
    rules,
    search,
)

WEB = Path(__file__).resolve().parent / "web"


def create_app(*, follow_index: bool = False, open_assistant: bool | None = None) -> FastAPI:
    """Build the app; routers are thin, the domain layers do the work.

    ``follow_index`` runs the outbox follower in the server process (``crmind serve`` turns it on when this
    process owns the index). ``open_assistant`` (default: same as ``follow_index``) opens the conversation store
    at start-up rather than on the first chat.
    """
    open_assistant = follow_index if open_assistant is None else open_assistant
    mcp, mcp_lifespan = mcp_app()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """The MCP transport's task group, and (in the server) the one index owner of the process."""
        follower = rule_worker = job_worker = drift_daily = None
        if follow_index:
            from retrieval.follower import IndexFollower
            from rules.worker import RuleWorker

            follower = IndexFollower()
            app.state.index_status = follower.status
            follower.start()
            # Record rules (CRM changes, schedules) run beside the index in the process that owns background work.
            rule_worker = RuleWorker()
            app.state.rule_worker = rule_worker.status
            rule_worker.start()
            # Background jobs (drift retraining) run here unless Redis is configured, where `crmind jobs worker`
            # processes take them; a job left running by a previous process is picked up again on start.
            from config.settings import get_settings

            if not get_settings().redis_url:
                from modelops.jobs import JobQueue

                job_worker = JobQueue()
                job_worker.start()
            if get_settings().drift_daily:
                from modelops.daily import DailyDriftCheck
                from retrieval.embeddings import shared_embedder

                drift_daily = DailyDriftCheck(embedder=shared_embedder)
                drift_daily.start()
        if open_assistant:
            # Open the conversation store now, outside any request's transaction (on PostgreSQL its first
            # setup builds indexes CONCURRENTLY, which can't run inside one).
            from agents.assistant.runner import default_assistant

            app.state.assistant = default_assistant()
        try:
            async with mcp_lifespan():
                yield
        finally:
            if drift_daily is not None:
                drift_daily.stop()
            if job_worker is not None:
                job_worker.stop()
            if rule_worker is not None:
                rule_worker.stop()
            if follower is not None:
                follower.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="crmind",
        version="0.1.0",
        description="AI agent platform over your CRM. Every read is permission-filtered; every write is a "
        "proposal that a person approves; every decision is in the ledger.",
    )
    errors.install(app)
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")
    app.mount("/mcp", mcp, name="mcp")
    for module in (meta, records, proposals, customers, privacy, imports, decisions, search, chat, rules, drift, pages):
        app.include_router(module.router)
    return app


def worker_app() -> FastAPI:
    """One of several API worker processes (``crmind serve --workers N``): the index is another process's.

    A worker goes when its supervisor goes, even one killed with SIGKILL: an orphaned worker would keep
    serving on the shared socket after the server was meant to be gone.
    """
    from inference.engine_process import die_with_parent

    die_with_parent()
    return create_app(follow_index=False, open_assistant=True)
