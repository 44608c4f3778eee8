"""PostgreSQL's connection pool: a connection dropped while idle is replaced; a busy one is not pinged."""

from __future__ import annotations

from unittest.mock import patch

import pytest
from sqlalchemy import Engine, create_engine, text

import config.db
from tests.conftest import PG_ADMIN_URL

pytestmark = pytest.mark.integration


def _pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_the_server_dropped_while_idle_is_replaced(engine: Engine,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to drop a connection")
    monkeypatch.setattr(config.db, "PING_AFTER_IDLE_S", 0.0)  # every pooled connection counts as idle
    before = _pid(engine)
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # what a server restart or an idle timeout does to the pooled connection
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": before}).scalar_one()
    admin.dispose()
    with engine.connect() as conn:  # no error reaches the caller: the ping failed, the pool reconnected
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
    assert _pid(engine) != before


def test_a_connection_in_use_is_not_pinged_before_each_transaction(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite connections are not pinged")
    _pid(engine)
    with patch.object(engine.dialect, "do_ping", wraps=engine.dialect.do_ping) as ping:
        pids = {_pid(engine) for _ in range(5)}
    assert ping.call_count == 0 and len(pids) == 1  # LIFO: the same warm connection every time
