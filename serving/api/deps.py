"""FastAPI dependencies: a DB session per request and the caller's principal from the bearer token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from config.db import session_factory
from crm.access import Principal
from crm.auth import principal_from_token
from crm.errors import NotFound

_bearer = HTTPBearer(auto_error=False, description="A user's API token (the demo prints one per role).")


def get_session() -> Iterator[Session]:
    """One session per request; write routes commit explicitly, anything else is rolled back."""
    with session_factory()() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


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
