"""The index owner's HTTP face (``crmind index --follow --serve``): the one process that opens the shard.

It builds the index, follows the outbox and answers ``RemoteStore`` queries from the API workers
(``retrieval.remote`` explains the layout). Bind it to loopback or a private network; set
``CRMIND_INDEX_API_KEY`` on both sides when it leaves the machine.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

from retrieval.errors import RetrievalError
from retrieval.follower import IndexFollower
from retrieval.remote import condition_from_json
from retrieval.service import get_service
from retrieval.sparse import SparseVec
from retrieval.store import Fusion, Mode


class SparseIn(BaseModel):
    """A sparse query vector."""

    indices: list[int] = Field(max_length=4096)
    values: list[float] = Field(max_length=4096)


class FusionIn(BaseModel):
    """``retrieval.store.Fusion``."""

    k: int = Field(ge=1, le=1000)
    dense: float = Field(ge=0, le=1000)
    sparse: float = Field(ge=0, le=1000)
    cross: float = Field(ge=0, le=1000)


class QueryIn(BaseModel):
    """One ``VectorStore.query`` call."""

    dense: list[float] | None = Field(None, max_length=8192)
    sparse: SparseIn | None = None
    cond: dict[str, Any]
    limit: int = Field(ge=1, le=1000)
    candidates: int = Field(ge=1, le=10_000)
    mode: Mode = "hybrid"
    exact: bool = False
    fusion: FusionIn
    cross_language: dict[str, Any] | None = None


def owner_app(api_key: str | None = None) -> FastAPI:
    """The owner's HTTP face: the follower (build + outbox) in the lifespan, queries and info as routes."""
    def authorized(request: Request) -> None:
        if api_key and not hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {api_key}"):
            raise HTTPException(401, "a bearer token (CRMIND_INDEX_API_KEY) is required")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        follower = IndexFollower()
        app.state.follower = follower
        follower.start()
        try:
            yield
        finally:
            follower.stop()

    app = FastAPI(lifespan=lifespan, title="crmind index owner", dependencies=[Depends(authorized)])

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/index/info")
    def info(request: Request) -> dict[str, Any]:
        service = get_service()
        return {"embedding_model": service.embedder.name, "dim": service.embedder.dim,
                "chunks": service.store.count(), "status": request.app.state.follower.status.as_dict()}

    @app.post("/v1/index/query")
    def query(body: QueryIn) -> dict[str, Any]:
        service = get_service()
        try:
            cond = condition_from_json(body.cond)
            cross = None if body.cross_language is None else condition_from_json(body.cross_language)
        except RetrievalError as exc:
            raise HTTPException(422, exc.message) from exc
        if body.dense is not None and len(body.dense) != service.embedder.dim:
            raise HTTPException(422, f"dense vector has {len(body.dense)} dimensions, the index {service.embedder.dim}")
        if body.sparse is not None and len(body.sparse.indices) != len(body.sparse.values):
            raise HTTPException(422, "sparse indices and values differ in length")
        dense = None if body.dense is None else np.asarray(body.dense, dtype=np.float32)
        sparse = None if body.sparse is None else SparseVec(body.sparse.indices, body.sparse.values)
        hits = service.store.query(dense, sparse, cond, limit=body.limit, candidates=body.candidates,
                                   mode=body.mode, exact=body.exact, fusion=Fusion(**body.fusion.model_dump()),
                                   cross_language=cross)
        return {"hits": [{"point_id": h.point_id, "score": h.score, "payload": h.payload} for h in hits]}

    return app
