"""``RemoteStore`` through the index owner's HTTP face answers exactly as the shard does in the owner."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from retrieval.errors import RetrievalError
from retrieval.remote import RemoteStore
from retrieval.search import search
from retrieval.service import get_service
from serving.api.index_owner import owner_app
from tests.world import World

pytestmark = pytest.mark.integration
KEY = "owner-secret"


@pytest.fixture
def owner(sqlite_world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    from config.settings import get_settings

    monkeypatch.setenv("CRMIND_EMBEDDING_MODEL", "minilm")
    get_settings.cache_clear()
    with TestClient(owner_app(KEY), headers={"Authorization": f"Bearer {KEY}"}) as client:
        deadline = time.monotonic() + 300
        while client.get("/v1/index/info").json()["status"]["state"] != "following":
            assert time.monotonic() < deadline, client.get("/v1/index/info").json()
            time.sleep(0.2)
        yield client


def test_remote_queries_match_the_owners_for_every_role(owner: TestClient, sqlite_world: World) -> None:
    service = get_service()
    remote = RemoteStore("http://testserver", client=owner)
    assert remote.count() == service.store.count() > 0
    seen: dict[str, set[str]] = {}
    for who in ("a:rep", "b:rep", "a:manager", "a:support", "admin"):
        principal = sqlite_world.principals[who]
        for q in ("ESS-200 rollout", "Inverter fault E42", "warranty battery degradation", "定价"):
            for mode in ("hybrid", "dense", "sparse"):
                direct = search(principal, q, store=service.store, embedder=service.embedder, mode=mode)
                via = search(principal, q, store=remote, embedder=service.embedder, mode=mode)
                assert [(h.record, h.chunk_id) for h in via] == [(h.record, h.chunk_id) for h in direct]
                assert [h.score for h in via] == pytest.approx([h.score for h in direct])
                seen.setdefault(who, set()).update(h.record for h in via)
    assert seen["a:rep"] and seen["b:rep"] and seen["a:rep"] != seen["b:rep"]  # permissions went along


def test_the_owner_refuses_strangers_and_bad_queries_and_workers_cannot_write(owner: TestClient) -> None:
    bare = TestClient(owner.app)
    assert bare.get("/v1/index/info").status_code == 401
    assert bare.get("/v1/index/info", headers={"Authorization": "Bearer wrong"}).status_code == 401
    dim = get_service().embedder.dim
    base: dict[str, Any] = {"dense": [0.1] * dim, "cond": {"match": "team_id", "values": [1]}, "limit": 5,
                            "candidates": 50, "fusion": {"k": 60, "dense": 1, "sparse": 1, "cross": 0}}
    assert owner.post("/v1/index/query", json=base).status_code == 200
    deep: dict[str, Any] = {"match": "team_id", "values": [1]}
    for _ in range(100):
        deep = {"any": [deep]}
    for bad in ({"cond": deep}, {"cond": {"match": "team_id", "values": [True]}}, {"dense": [0.1] * (dim + 1)},
                {"limit": 0}, {"sparse": {"indices": [1, 2], "values": [0.5]}}, {"mode": "everything"}):
        resp = owner.post("/v1/index/query", json={**base, **bad})
        assert resp.status_code == 422, (bad.keys(), resp.text)
    remote = RemoteStore("http://testserver", client=owner)
    for write in (lambda: remote.upsert([], np.zeros((0, dim), dtype=np.float32), []),
                  lambda: remote.delete_records(["contact:1"]), lambda: remote.delete_where("contact_id", 1),
                  remote.clear):
        with pytest.raises(RetrievalError, match="only the owner"):
            write()


def test_an_owner_that_is_down_is_a_clear_503() -> None:
    from config.errors import CrmindError

    store = RemoteStore("http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(CrmindError, match="does not answer") as err:
        store.info()
    assert err.value.status == 503
