"""FastAPI dependencies: a DB session per request and the caller's principal from the bearer token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from config.db import API_SESSIONS, session_factory
from crm.access import Principal
from crm.auth import principal_from_token
from crm.errors import NotFound

_bearer = HTTPBearer(auto_error=False, description="A user's API token (the demo prints one per role).")


async def get_session() -> AsyncIterator[Session]:
    """One session per request; write routes commit explicitly, anything else is rolled back.

    Its connection goes back to the pool as soon as the route's function returns (``scope="function"``), not
    after the response is sent: response validation of a sync route waits for a slot in the 40-thread pool,
    and under load every slot held a route waiting for a connection that only such a finished request would
    give back, so the server stopped for the pool's 30 s timeout (200 users, SQLite and PostgreSQL). Routes
    return plain data (``crm.access.view``), never ORM objects, so nothing reads the session afterwards.
    ``max_concurrency`` keeps requests that would wait for a connection off the thread pool altogether.
    Async, so the teardown runs on the event loop (closing is a rollback) and never needs a thread slot.
    """
    session = session_factory()()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function", max_concurrency=API_SESSIONS)]


def current_principal(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The signed-in user, or 401."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    try:
        principal = principal_from_token(session, credentials.credentials)
    except NotFound:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or revoked token",
                            headers={"WWW-Authenticate": "Bearer"}) from None
    session.rollback()  # end the auth read so the route starts a clean transaction
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
