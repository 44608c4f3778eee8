"""Several API workers on one database, with the search index owned by one other process.

``crmind index --follow --serve`` owns the embedded shard; ``crmind serve --workers 2`` searches it through
``CRMIND_INDEX_URL``. Checked: both workers serve, search answers with each caller's permissions, a change
written through one worker becomes searchable through the owner's follower, the owner's status shows in
``/v1/search/status``, and the whole process tree goes on SIGTERM and on SIGKILL. Without an index owner,
``--workers 2`` is refused before anything starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from inference.engine_process import _pdeathsig_hook, free_port
from tests.fixtures.server import ROOT, ServerProcess
from tests.world import World

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class IndexOwner:
    """``crmind index --follow --serve`` as a child process."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env, self.log_path = env, log_path
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "serving.cli", "index", "--follow", "--serve", "--port", str(self.port)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_pdeathsig_hook())

    def wait_following(self, timeout_s: float = 300.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text()[-3000:]
            try:
                headers = {"Authorization": f"Bearer {self.env['CRMIND_INDEX_API_KEY']}"}
                info = httpx.get(f"{self.url}/v1/index/info", headers=headers, timeout=2)
                assert info.status_code != 401, info.text
                if info.json()["status"]["state"] == "following":
                    return
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.3)
        raise AssertionError("the index owner did not finish its build:\n" + self.log_path.read_text()[-3000:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def layout(world: World, tmp_path: Path) -> Iterator[tuple[IndexOwner, ServerProcess]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "CRMIND_EMBEDDING_MODEL": "minilm",
           "CRMIND_DATA_DIR": os.environ["CRMIND_DATA_DIR"], "CRMIND_DATABASE_URL": os.environ["CRMIND_DATABASE_URL"],
           "CRMIND_INDEX_API_KEY": "between-processes"}
    owner = IndexOwner(env, tmp_path / "owner.log")
    server = ServerProcess(port=free_port(), log_path=tmp_path / "serve.log", workers=2,
                           env={**env, "CRMIND_INDEX_URL": owner.url})
    try:
        owner.wait_following()
        server.start()
        yield owner, server
    finally:
        server.kill()
        owner.stop()


def _hits(server: ServerProcess, token: str, q: str) -> list[str]:
    resp = httpx.get(f"{server.base_url}/v1/search", params={"q": q, "limit": 50},
                     headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert resp.status_code == 200, resp.text
    return [h["record"] for h in resp.json()["hits"]]


def _workers(server: ServerProcess, n: int, timeout_s: float = 120.0) -> list[psutil.Process]:
    """The server's ``n`` worker processes (uvicorn spawns them with multiprocessing), once all are up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        kids = [k for k in psutil.Process(server.pid).children() if "spawn_main" in " ".join(k.cmdline())]
        if len(kids) >= n and server.tail(200).count("Application startup complete") >= n:
            return kids
        time.sleep(0.3)
    raise AssertionError(f"{n} workers did not start:\n{server.tail()}")


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_two_workers_search_one_index_owner_and_see_each_others_writes(
        layout: tuple[IndexOwner, ServerProcess], world: World) -> None:
    owner, server = layout
    workers = _workers(server, 2)
    rep_a, rep_b = world.tokens["a:rep"], world.tokens["b:rep"]

    # Permissions travel inside the query to the owner: each rep finds their own team's records only.
    a_hits, b_hits = set(_hits(server, rep_a, "ESS-200 rollout")), set(_hits(server, rep_b, "ESS-200 rollout"))
    assert a_hits and b_hits and a_hits != b_hits
    status = httpx.get(f"{server.base_url}/v1/search/status", headers={"Authorization": f"Bearer {rep_a}"}).json()
    assert status["state"] == "following" and status["records_done"] > 0

    # A note written and approved through the workers reaches search through the owner's outbox follower.
    h = {"Authorization": f"Bearer {rep_a}"}
    created = httpx.post(f"{server.base_url}/v1/proposals", headers=h, timeout=30, json={
        "object_type": "activity", "action": "create", "changes": {
            "kind": "note", "occurred_at": "2026-11-01T09:00:00", "subject": "Zephyrine turbine",
            "body": "Customer asked about the Zephyrine turbine retrofit for their second plant.",
            "account_id": world.records["a"]["account"]}})
    assert created.status_code == 201, created.text
    approved = httpx.post(f"{server.base_url}/v1/proposals/{created.json()['id']}/approve", headers=h, timeout=30)
    assert approved.status_code == 200, approved.text
    note = f"activity:{approved.json()['record_id']}"
    deadline = time.monotonic() + 120
    while note not in _hits(server, rep_a, "Zephyrine turbine retrofit"):
        assert time.monotonic() < deadline, "the new note never became searchable"
        time.sleep(0.5)
    assert note not in _hits(server, rep_b, "Zephyrine turbine retrofit")  # still team a's only

    # SIGKILL of the supervisor takes its workers with it (they would keep serving the socket otherwise).
    server.kill()
    _, alive = psutil.wait_procs(workers, timeout=60)
    assert alive == [], [p.cmdline() for p in alive]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{server.base_url}/healthz", timeout=2)
    assert owner.proc.poll() is None  # the index owner is its own process and keeps following


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_sigterm_stops_every_worker(layout: tuple[IndexOwner, ServerProcess]) -> None:
    _, server = layout
    workers = _workers(server, 2)
    server.signal(signal.SIGTERM)
    server.wait(timeout_s=60)
    _, alive = psutil.wait_procs(workers, timeout=60)
    assert alive == []


def test_several_workers_on_the_embedded_index_are_refused(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CRMIND_DATA_DIR": str(tmp_path),
           "CRMIND_DATABASE_URL": f"sqlite:///{tmp_path}/crm.db"}
    env.pop("CRMIND_INDEX_URL", None)
    env.pop("CRMIND_QDRANT_URL", None)
    out = subprocess.run([sys.executable, "-m", "serving.cli", "serve", "--workers", "3", "--no-llm",
                          "--port", str(free_port())], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "3 workers can't share the embedded search index" in out.stderr
    assert "crmind index --follow --serve" in out.stderr and "Traceback" not in out.stderr


def test_an_index_owner_open_to_the_network_needs_a_key(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CRMIND_DATA_DIR": str(tmp_path),
           "CRMIND_DATABASE_URL": f"sqlite:///{tmp_path}/crm.db"}
    for key in ("CRMIND_INDEX_URL", "CRMIND_QDRANT_URL", "CRMIND_INDEX_API_KEY"):
        env.pop(key, None)
    out = subprocess.run([sys.executable, "-m", "serving.cli", "index", "--follow", "--serve", "--host", "0.0.0.0",
                          "--port", str(free_port())], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "without a key; set CRMIND_INDEX_API_KEY" in out.stderr and "Traceback" not in out.stderr
