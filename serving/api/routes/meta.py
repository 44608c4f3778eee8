"""Health and identity endpoints."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from serving.api.deps import CurrentPrincipal, SessionDep
from serving.api.errors import COMMON_RESPONSES
from serving.api.routing import StrictQueryRoute

router = APIRouter(route_class=StrictQueryRoute, tags=["meta"])


class Health(BaseModel):
    """Liveness and database reachability."""

    status: str
    database: str


class Me(BaseModel):
    """The signed-in user."""

    user_id: int
    name: str
    role: str
    team_ids: list[int]


@router.get("/healthz", response_model=Health, summary="Health check")
def healthz(session: SessionDep) -> Health:
    """Checks that the database answers."""
    session.execute(text("SELECT 1"))
    return Health(status="ok", database=session.get_bind().dialect.name)


@router.get("/v1/me", response_model=Me, responses={401: COMMON_RESPONSES[401]}, summary="Who am I")
def me(principal: CurrentPrincipal) -> Me:
    """The principal behind the bearer token."""
    return Me(user_id=principal.user_id, name=principal.name, role=principal.role,
              team_ids=sorted(principal.team_ids))
