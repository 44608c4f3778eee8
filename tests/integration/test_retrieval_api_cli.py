"""``GET /v1/search``, the index follower hook, and the ``crmind index`` / ``crmind search`` commands."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from config.db import make_engine, transaction
from crm import outbox
from crm.access import Principal
from crm.models import Activity
from crm.schema import migrate
from tests.fixtures.retrieval_sample import build_sample

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from config.db import get_engine
    from config.settings import get_settings

    tmp = tmp_path_factory.mktemp("api")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRMIND_DATA_DIR", str(tmp))
        mp.setenv("CRMIND_DATABASE_URL", f"sqlite:///{tmp}/crm.db")
        mp.setenv("CRMIND_EMBEDDING_MODEL", "minilm")
        get_settings.cache_clear()
        get_engine.cache_clear()
        engine = make_engine(f"sqlite:///{tmp}/crm.db")
        migrate(engine)
        build_sample(engine)
        yield tmp
    get_settings.cache_clear()
    get_engine.cache_clear()


def test_cli_index_then_search_as_a_rep(crm: Path) -> None:
    from serving.cli import app  # the root group: domain errors become clean exits

    runner = CliRunner()
    result = runner.invoke(app, ["index"])
    assert result.exit_code == 0, result.output
    assert "indexed 14 records" in result.output
    result = runner.invoke(app, ["search", "renewal price discount", "--as", "rep1@x", "--limit", "3"])
    assert result.exit_code == 0, result.output
    assert "/v1/activities/2" in result.output and "/v1/activities/5" not in result.output
    result = runner.invoke(app, ["search", "x", "--as", "nobody@x"])
    assert result.exit_code == 1 and "no user" in result.output


def test_api_search_and_background_follower(crm: Path) -> None:
    from retrieval.follower import IndexFollower
    from serving.api.deps import current_principal
    from serving.api.routes import search

    app = FastAPI()
    app.include_router(search.router)
    support = Principal(user_id=4, role="support", team_ids=frozenset({1}))
    app.dependency_overrides[current_principal] = lambda: support
    follower = IndexFollower(interval=0.1)
    app.state.index_status = follower.status
    follower.start()
    try:
        with TestClient(app) as client:
            body = client.get("/v1/search", params={"q": "ESS-200-7731 delivery", "limit": 5}).json()
            assert body["decision_id"] and body["hits"]
            assert all("13812345678" not in h["text"] for h in body["hits"])
            assert {h["record"] for h in body["hits"]} <= {"activity:1", "activity:2", "activity:3", "activity:4",
                                                        "case:1", "article:1", "account:1", "account:2", "contact:1"}
            assert client.get("/v1/search", params={"q": ""}).status_code == 422
            assert client.get("/v1/search", params={"q": "x", "object_type": "event"}).status_code == 422
            with transaction() as s:
                s.add(Activity(id=50, kind="note", subject="Solar", body="They asked about PV-77 solar carports.",
                               occurred_at=datetime(2026, 5, 1), account_id=1, owner_id=1, team_id=1))
                s.flush()
                outbox.emit(s, "activity", 50)
            import time
            for _ in range(100):
                hits = client.get("/v1/search", params={"q": "PV-77 carports", "mode": "sparse"}).json()["hits"]
                if hits and hits[0]["record"] == "activity:50":
                    break
                time.sleep(0.1)
            assert hits[0]["record"] == "activity:50" and hits[0]["link"] == "/v1/activities/50"
            assert client.get("/v1/search/status").json()["state"] == "following"
    finally:
        follower.stop()
    assert follower.status.state == "stopped" and not follower.running
