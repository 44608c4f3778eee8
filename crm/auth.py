"""Bearer tokens: only their SHA-256 is stored; a token resolves to a ``Principal``."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.access import Principal
from crm.errors import NotFound
from crm.models import User


def hash_token(token: str) -> str:
    """Stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(role: str) -> str:
    """A fresh random token; the role prefix only helps people tell tokens apart."""
    return f"crm_{role}_{secrets.token_urlsafe(24)}"


def principal_for(user: User) -> Principal:
    """The principal of a user: one team today; the set allows more later."""
    teams = frozenset({user.team_id}) if user.team_id is not None else frozenset()
    return Principal(user_id=user.id, role=user.role, team_ids=teams, name=user.name)  # type: ignore[arg-type]


def principal_from_token(session: Session, token: str) -> Principal:
    """Resolve a bearer token or raise ``NotFound``."""
    user = session.scalar(select(User).where(User.token_hash == hash_token(token), User.active.is_(True)))
    if user is None:
        raise NotFound("unknown or revoked token")
    return principal_for(user)


def principal_for_user(session: Session, user_ref: str) -> Principal:
    """Resolve ``--as`` in the CLI: a user id or email."""
    stmt = select(User).where(User.id == int(user_ref)) if user_ref.isdigit() else \
        select(User).where(User.email == user_ref)
    user = session.scalar(stmt)
    if user is None:
        raise NotFound(f"no user '{user_ref}'")
    return principal_for(user)
