"""Shared fixtures: offline guard, SQLite + PostgreSQL databases, a small two-team CRM world."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
os.environ["CRMIND_ENVIRONMENT"] = "test"

import pytest
from sqlalchemy import Engine, create_engine, text

from tests.world import World, build_world

PG_ADMIN_URL = os.environ.get("CRMIND_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
_LOOPBACK = ("127.", "::1", "localhost", "0.0.0.0")
_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    host = address[0] if isinstance(address, tuple) else str(address)
    if self.family in (socket.AF_INET, socket.AF_INET6) and not str(host).startswith(_LOOPBACK):
        raise RuntimeError(f"tests must not reach the network (tried {host})")
    return _real_connect(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]


def _reset_caches() -> None:
    import sys

    from config.db import get_engine
    from config.settings import get_settings

    get_settings.cache_clear()
    get_engine.cache_clear()
    if "agents.checkpointer" in sys.modules:  # shared checkpointers belong to the previous test's database
        sys.modules["agents.checkpointer"].close_all()


@pytest.fixture(autouse=True, scope="module")
def _close_index_owner() -> Iterator[None]:
    """The process-wide index owner belongs to one module's data dir: never let it leak into the next module.

    (A module that serves ``/v1/search`` opens it under its own temporary folder.)
    """
    yield
    import sys

    if "retrieval.service" in sys.modules:
        sys.modules["retrieval.service"].close_service()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from config.db import make_engine
    from crm.schema import migrate

    path = tmp_path_factory.mktemp("tpl") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _pg_template() -> Iterator[str]:
    from config.db import make_engine
    from crm.schema import migrate

    name = f"crmind_tpl_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _fresh_pg(template: str) -> tuple[str, str]:
    name = f"crmind_t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    return name, PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _drop_pg(name: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A migrated, empty database: SQLite and the real local PostgreSQL, one test each."""
    from config.db import make_engine

    monkeypatch.setenv("CRMIND_DATA_DIR", str(tmp_path / "data"))
    if request.param == "sqlite":
        path = tmp_path / "crm.db"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        url, cleanup = f"sqlite:///{path}", None
    else:
        name, url = _fresh_pg(request.getfixturevalue("_pg_template"))
        cleanup = name
    monkeypatch.setenv("CRMIND_DATABASE_URL", url)
    _reset_caches()
    eng = make_engine(url)
    yield eng
    eng.dispose()
    _reset_caches()
    from config.db import get_engine

    get_engine.cache_clear()
    if cleanup:
        _drop_pg(cleanup)


@pytest.fixture
def sqlite_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _sqlite_template: Path) -> Iterator[Engine]:
    """A migrated SQLite database only (for tests that are not about storage engines)."""
    from config.db import make_engine

    path = tmp_path / "crm.db"
    shutil.copy(_sqlite_template, path)
    monkeypatch.setenv("CRMIND_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CRMIND_DATABASE_URL", f"sqlite:///{path}")
    _reset_caches()
    eng = make_engine(f"sqlite:///{path}")
    yield eng
    eng.dispose()
    _reset_caches()


@pytest.fixture
def world(engine: Engine) -> World:
    """Two teams with one user per role, and records of every kind in each team."""
    return build_world(engine)


@pytest.fixture
def sqlite_world(sqlite_engine: Engine) -> World:
    """The same world on SQLite only."""
    return build_world(sqlite_engine)
