"""The one database engine and session factory (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Engine, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from config.settings import get_settings

# JSON on SQLite, JSONB on PostgreSQL: the same model and migration serve both.
JsonType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Declarative base shared by the CRM tables and the ledger."""

    type_annotation_map = {dict[str, Any]: JsonType, list[Any]: JsonType}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers run while a writer commits; foreign keys are off by default in SQLite.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


# Connections per process. The API holds at most API_SESSIONS at once (serving/api/deps.py); the rest serve
# the index follower, the assistant's graph steps and the rules engine, which open transactions of their own.
SQLITE_POOL, SQLITE_OVERFLOW = 10, 20  # a SQLite connection is a file handle: cheap
PG_POOL, PG_OVERFLOW = 10, 10  # per worker process; PostgreSQL allows 100 connections by default
API_SESSIONS = 12


# A pooled PostgreSQL connection used this recently is taken as alive; one idle for longer is pinged on checkout
# and replaced if the server dropped it (restart, idle timeout). ``pool_pre_ping`` pinged on every checkout: a
# round trip per transaction, ~6% of an assistant turn's engine time. A connection dropped within the window fails
# one statement, after which SQLAlchemy renews the whole pool.
PING_AFTER_IDLE_S = 30.0


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)  # None: a new connection, just opened
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"pooled connection dropped while idle: {exc}") from exc  # the pool retries


def make_engine(url: str, echo: bool = False) -> Engine:
    """Create an engine for ``url``; SQLite gets WAL and foreign keys, its folder is created."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False}, pool_size=SQLITE_POOL,
                               max_overflow=SQLITE_OVERFLOW)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # LIFO keeps the busy connections warm and lets the extra ones idle (and be checked before reuse).
    engine = create_engine(url, echo=echo, pool_size=PG_POOL, max_overflow=PG_OVERFLOW, pool_use_lifo=True)
    _ping_when_idle(engine)
    return engine


@lru_cache(maxsize=4)
def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for the configured database."""
    settings = get_settings()
    return make_engine(url or settings.database_url, echo=settings.database_echo)


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    """Sessions bound to ``engine`` (default: the configured one); objects stay usable after commit."""
    return sessionmaker(bind=engine or get_engine(), expire_on_commit=False)


# session.info key: this transaction's commit need not wait for the disk (read by the ledger's anchor)
RELAXED_COMMIT = "relaxed_commit"


@contextmanager
def transaction(engine: Engine | None = None, *, durable: bool = True) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error.

    ``durable=False`` is for transactions that only record what was read or said (the assistant's turn, read
    tool calls and answer rows in the ledger). On PostgreSQL their commit does not wait for the WAL flush
    (``synchronous_commit = off``; a flush took ~12 ms on one machine's disk, ~0.7 ms on another). A crash of
    the server process loses nothing; a power loss or OS crash loses at most the last ~0.6 s of such rows
    (3 x ``wal_writer_delay``), and never leaves a gap, since WAL is replayed in order and any later durable
    commit flushes them first. That is the guarantee SQLite's default (WAL, ``synchronous=NORMAL``) gives every
    commit. Changes to the CRM, proposals and approvals keep the default, durable commit. The setting rides on
    the ledger's write lock (``ledger.record.hold_write_lock``), a statement such a transaction runs anyway: no
    extra round trip.
    """
    with session_factory(engine)() as session, session.begin():
        if not durable:
            session.info[RELAXED_COMMIT] = True
        yield session
