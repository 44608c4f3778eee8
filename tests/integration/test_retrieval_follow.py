"""The outbox follower: changes, deletes, erasure, crash and replay on a real embedded index."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from config.db import make_engine, session_factory, transaction
from crm import outbox
from crm.access import Principal
from crm.models import Activity, OutboxCursor
from crm.schema import migrate
from retrieval.indexer import CONSUMER, build, sync
from retrieval.search import search
from retrieval.store import EdgeStore
from tests.fixtures.retrieval_sample import build_sample

pytestmark = pytest.mark.integration
ADMIN = Principal(user_id=5, role="admin")


@pytest.fixture(scope="module")
def embedder() -> Any:
    from retrieval.embeddings import make_embedder
    return make_embedder("minilm", cache=False)


@pytest.fixture
def env(tmp_path: Any, embedder: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    from config.settings import get_settings

    monkeypatch.setenv("CRMIND_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CRMIND_DATABASE_URL", f"sqlite:///{tmp_path}/crm.db")
    get_settings.cache_clear()
    engine = make_engine(f"sqlite:///{tmp_path}/crm.db")
    migrate(engine)
    build_sample(engine)
    store = EdgeStore(tmp_path / "shard", embedder.dim)
    build(engine, store, embedder, progress=False)
    yield {"engine": engine, "store": store, "embedder": embedder, "tmp": tmp_path}
    store.close()
    get_settings.cache_clear()


def _records(env: dict[str, Any], q: str) -> list[str]:
    return [h.record for h in search(ADMIN, q, store=env["store"], embedder=env["embedder"], limit=50)]


def _texts(env: dict[str, Any], q: str) -> str:
    return "\n".join(h.text for h in search(ADMIN, q, store=env["store"], embedder=env["embedder"], limit=50))


def test_follow_picks_up_new_changed_and_deleted_records(env: dict[str, Any]) -> None:
    engine: Engine = env["engine"]
    with transaction(engine) as s:
        s.add(Activity(id=100, kind="note", subject="Heat pump", body="Wants a quote for HP-900 heat pumps.",
                       occurred_at=datetime(2026, 4, 1), account_id=1, owner_id=1, team_id=1))
        s.flush()
        outbox.emit(s, "activity", 100)
    assert sync(engine, env["store"], env["embedder"]).entries == 1
    assert "activity:100" in _records(env, "HP-900")
    with transaction(engine) as s:
        act = s.get(Activity, 100)
        act.body = "Cancelled the HP-900 quote; they chose geothermal drilling instead."
        outbox.emit(s, "activity", 100)
    sync(engine, env["store"], env["embedder"])
    assert "geothermal" in _texts(env, "geothermal drilling")
    assert "Wants a quote" not in _texts(env, "HP-900 heat pumps quote")
    with transaction(engine) as s:
        s.delete(s.get(Activity, 100))
        outbox.emit(s, "activity", 100, "delete")
    sync(engine, env["store"], env["embedder"])
    assert "activity:100" not in _records(env, "HP-900 geothermal")


def test_erasing_a_contact_removes_their_text_from_the_index(env: dict[str, Any]) -> None:
    from crm.privacy import erase_contact

    assert "13812345678" in _texts(env, "Li Wei 13812345678 dock")
    with transaction(env["engine"]) as s:
        erase_contact(s, ADMIN, 1)
    sync(env["engine"], env["store"], env["embedder"])
    everything = _texts(env, "Li Wei 13812345678 li.wei@acme.example dock battery ESS-200-7731 inverter")
    assert "13812345678" not in everything and "li.wei@acme.example" not in everything
    assert "Li Wei" not in everything
    assert "contact:1" not in _records(env, "Li Wei CTO")


def test_a_crash_before_the_cursor_moves_is_replayed_without_duplicates(env: dict[str, Any],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    engine, store = env["engine"], env["store"]
    with transaction(engine) as s:
        for i in range(101, 106):
            s.add(Activity(id=i, kind="note", subject=f"Visit {i}", body=f"Site visit number {i} at the plant.",
                           occurred_at=datetime(2026, 4, 2), account_id=1, owner_id=1, team_id=1))
            s.flush()
            outbox.emit(s, "activity", i)
    before = store.count()

    def crash(*_: Any, **__: Any) -> None:
        raise RuntimeError("killed mid-batch")

    monkeypatch.setattr(store, "flush", crash)
    with pytest.raises(RuntimeError):
        sync(engine, store, env["embedder"])
    monkeypatch.undo()
    with session_factory(engine)() as s:
        assert outbox.lag(s, CONSUMER) == 5  # the cursor did not move
    assert sync(engine, store, env["embedder"]).entries == 5
    assert store.count() == before + 5
    with transaction(engine) as s:  # replay everything from the start: nothing changes
        s.get(OutboxCursor, CONSUMER).last_id = 0
    sync(engine, store, env["embedder"])
    assert store.count() == before + 5


def test_rebuild_starts_from_an_empty_index(env: dict[str, Any]) -> None:
    store = env["store"]
    n = store.count()
    summary = build(env["engine"], store, env["embedder"], rebuild=True, progress=False)
    assert store.count() == n == summary.total_chunks


def test_reopening_after_close_keeps_the_data(env: dict[str, Any]) -> None:
    n = env["store"].count()
    env["store"].close()
    env["store"] = EdgeStore(env["tmp"] / "shard", env["embedder"].dim)
    assert env["store"].count() == n


def test_sparse_first_then_dense_fill_with_changes_in_between(tmp_path: Any, embedder: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The BM25 leg covers every record first; dense vectors follow, and a change made mid-fill keeps both."""
    from config.settings import get_settings
    from retrieval.documents import Loader
    from retrieval.indexer import DenseFill, is_built, is_dense_complete

    monkeypatch.setenv("CRMIND_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    engine = make_engine(f"sqlite:///{tmp_path}/crm.db")
    migrate(engine)
    build_sample(engine)
    store = EdgeStore(tmp_path / "shard", embedder.dim)
    try:
        build(engine, store, embedder, progress=False, sparse_only=True)
        assert is_built(engine) and not is_dense_complete(engine)
        env = {"store": store, "embedder": embedder}

        def dense_hits(q: str) -> list[str]:
            return [h.record for h in search(ADMIN, q, store=store, embedder=embedder, limit=50, mode="dense")]

        assert "activity:2" in _records(env, "renewal price discount")  # hybrid answers from the sparse leg
        assert dense_hits("renewal price discount") == []  # no dense vectors yet
        with session_factory(engine)() as s:
            fill = DenseFill(Loader(s).count())
            fill.step(s, store, embedder, chunks=4)
            s.commit()
        assert 0 < fill.done < fill.total and not fill.finished
        with transaction(engine) as s:  # a change lands while the fill is under way
            s.add(Activity(id=300, kind="note", subject="Wind", body="Asked about WT-12 wind turbines for the depot.",
                           occurred_at=datetime(2026, 6, 1), account_id=1, owner_id=1, team_id=1))
            s.flush()
            outbox.emit(s, "activity", 300)
        sync(engine, store, embedder)
        assert "activity:300" in dense_hits("WT-12 wind turbines")  # changes carry both legs at once
        with session_factory(engine)() as s:
            while not fill.finished:
                fill.step(s, store, embedder)
            s.commit()
        assert is_dense_complete(engine) and fill.done == fill.total + 1  # the new activity was read by the fill too
        assert "activity:2" in dense_hits("renewal price discount")
    finally:
        store.close()
        get_settings.cache_clear()
