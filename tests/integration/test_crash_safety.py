"""SIGKILL ``crmind serve`` again and again in the middle of writes; nothing is lost, doubled or half-written.

Each life of the server runs approvals, undos, CSV imports and data-subject erases from a few client threads
and is killed at a random moment. After the last restart the database must show:
- every proposal applied exactly once or not at all (one apply row, one undo row at most, none stuck);
- ledger rows and outbox rows one-to-one with the changes applied, and every record's version agreeing;
- a chain that verifies, anchor included;
- a search index that caught up from the outbox (nothing deleted or erased is left in it).

``CRMIND_CRASH_KILLS`` sets the number of kills per database (default 50). The server runs without the
model engine and with the MiniLM embedder, on the small test world, to keep this within minutes on 2 cores.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

import ledger
from config.db import session_factory
from config.objects import ref
from crm import outbox
from crm.access import model_for
from crm.models import Contact, OutboxCursor, OutboxEntry, Proposal
from inference.engine_process import free_port
from ledger.models import Decision, DecisionRef
from retrieval.indexer import CONSUMER
from tests.fixtures.server import ServerProcess
from tests.world import World

pytestmark = [pytest.mark.integration, pytest.mark.slow]
KILLS = int(os.environ.get("CRMIND_CRASH_KILLS", "50"))
CHANGE_KINDS = ("apply", "undo", "erase")


class Workload:
    """Client threads that keep writing through the API until the server dies under them."""

    def __init__(self, world: World, base_url: str, rng: random.Random, serial: list[int]) -> None:
        self.world, self.base_url, self.rng, self.serial = world, base_url, rng, serial
        self.server_errors: list[str] = []
        self.stop = threading.Event()

    def _h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.world.tokens[who]}"}

    def _next(self) -> int:
        self.serial[0] += 1
        return self.serial[0]

    def _check(self, resp: httpx.Response) -> httpx.Response:
        if resp.status_code >= 500:
            self.server_errors.append(f"{resp.request.method} {resp.request.url.path}: {resp.status_code} {resp.text}")
        return resp

    def update(self, c: httpx.Client) -> None:
        rec = self.world.records["a"]
        obj, field, value = self.rng.choice([
            ("opportunity", "probability", self.rng.randint(0, 100)), ("lead", "score", self.rng.randint(0, 100)),
            ("account", "industry", f"industry {self._next()}"), ("contact", "title", f"title {self._next()}")])
        created = self._check(c.post("/v1/proposals", headers=self._h("a:rep"), json={
            "object_type": obj, "action": "update", "record_id": rec[obj], "changes": {field: value}}))
        if created.status_code == 201:
            self._check(c.post(f"/v1/proposals/{created.json()['id']}/approve", headers=self._h("a:rep")))

    def undo(self, c: httpx.Client) -> None:
        with session_factory(self.world.engine)() as s:
            ids = list(s.scalars(select(Proposal.id).where(Proposal.status == "applied",
                                                            Proposal.action != "delete").limit(50)))
        if ids:
            self._check(c.post(f"/v1/proposals/{self.rng.choice(ids)}/undo", headers=self._h("a:rep")))

    def import_rows(self, c: httpx.Client) -> None:
        n = self._next()
        if self.rng.random() < 0.5:
            data = "name,industry\n" + "".join(f"Crash Co {n}-{i},energy\n" for i in range(3))
            self._check(c.post("/v1/import/accounts", headers=self._h("a:rep"),
                               files={"file": ("a.csv", data.encode(), "text/csv")}))
        else:
            acct = self.world.records["a"]["account"]
            data = "name,account_id,phone,email\n" + "".join(
                f"Person {n}-{i},{acct},1390000{n % 1000:03d}{i},p{n}.{i}@example.cn\n" for i in range(2))
            self._check(c.post("/v1/import/contacts", headers=self._h("a:rep"),
                               files={"file": ("c.csv", data.encode(), "text/csv")}))

    def erase(self, c: httpx.Client) -> None:
        with session_factory(self.world.engine)() as s:
            ids = list(s.scalars(select(Contact.id).where(Contact.erased_at.is_(None),
                                                          Contact.name.like("Person %")).limit(20)))
        if ids:
            self._check(c.post(f"/v1/contacts/{self.rng.choice(ids)}/erase", headers=self._h("a:manager")))

    def run(self) -> None:
        ops = [self.update, self.update, self.update, self.undo, self.import_rows, self.erase]
        with httpx.Client(base_url=self.base_url, timeout=30.0) as c:
            while not self.stop.is_set():
                try:
                    self.rng.choice(ops)(c)
                except httpx.TransportError:
                    return  # the server is gone


def _one_life(world: World, server: ServerProcess, rng: random.Random, serial: list[int],
              errors: list[str]) -> None:
    server.start()
    workloads = [Workload(world, server.base_url, random.Random(rng.random()), serial) for _ in range(3)]
    threads = [threading.Thread(target=w.run, daemon=True) for w in workloads]
    for t in threads:
        t.start()
    time.sleep(rng.uniform(0.3, 1.5))
    server.kill()
    for w in workloads:
        w.stop.set()
    for t in threads:
        t.join(timeout=60)
    for w in workloads:
        errors.extend(w.server_errors)


def _wait_for_index(world: World, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with session_factory(world.engine)() as s:
            if outbox.lag(s, CONSUMER) == 0 and s.get(OutboxCursor, CONSUMER) is not None:
                return
        time.sleep(0.5)
    raise AssertionError("the search index did not catch up with the outbox")


def _indexed_points(data_dir: Path) -> list[dict[str, Any]]:
    import qdrant_edge as qe

    from retrieval.embeddings import make_embedder
    from retrieval.store import EdgeStore

    store = EdgeStore(data_dir / "qdrant" / "default", make_embedder("minilm", cache=False).dim)
    try:
        points, offset = [], None
        while True:
            page, offset = store.shard.scroll(qe.ScrollRequest(offset=offset, limit=1000, with_payload=True,
                                                               with_vector=False))
            points.extend(dict(p.payload or {}) for p in page)
            if offset is None:
                return points
    finally:
        store.close()


def test_killing_the_server_mid_write_loses_nothing_and_doubles_nothing(world: World, tmp_path: Path) -> None:
    data_dir = Path(os.environ["CRMIND_DATA_DIR"])
    server = ServerProcess(port=free_port(), log_path=tmp_path / "serve.log", env={
        "CRMIND_DATA_DIR": str(data_dir), "CRMIND_DATABASE_URL": os.environ["CRMIND_DATABASE_URL"],
        "CRMIND_EMBEDDING_MODEL": "minilm"})
    rng, serial, errors = random.Random(13), [0], []
    started = time.monotonic()
    for _ in range(KILLS):
        _one_life(world, server, rng, serial, errors)
    server.start()
    try:
        _wait_for_index(world)
    finally:
        server.signal(15)
        server.wait()
    elapsed = time.monotonic() - started
    assert not errors, errors[:5]

    with session_factory(world.engine)() as s:
        changes = Counter((r, k) for r, k in s.execute(
            select(DecisionRef.ref, Decision.kind).join(Decision, Decision.seq == DecisionRef.decision_seq)
            .where(Decision.kind.in_(CHANGE_KINDS))))
        proposals = list(s.scalars(select(Proposal)))
        outbox_rows = Counter(ref(e.object_type, e.record_id) for e in s.scalars(select(OutboxEntry)))
        verified = ledger.verify(s)
        # Every proposal applied exactly once or not at all, and undone at most once.
        assert not [p.id for p in proposals if p.status not in ("pending", "applied", "undone", "rejected")]
        for p in proposals:
            applied = 1 if p.status in ("applied", "undone") else 0
            assert changes[(f"proposal:{p.id}", "apply")] == applied, (p.id, p.status)
            assert changes[(f"proposal:{p.id}", "undo")] == (p.status == "undone"), (p.id, p.status)
        # One outbox row per change the ledger records, per record; the record's version agrees.
        per_record = Counter()
        for (r, _kind), n in changes.items():
            if not r.startswith("proposal:"):
                per_record[r] += n
        assert outbox_rows == per_record
        created = {ref(p.object_type, p.record_id) for p in proposals
                   if p.action == "create" and p.status in ("applied", "undone")}
        existing: set[str] = set()
        for obj in ("account", "contact", "lead", "opportunity", "activity", "case"):
            model: Any = model_for(obj)
            for rid, version in s.execute(select(model.id, model.version)):
                r = ref(obj, rid)
                existing.add(r)
                assert version == (0 if r in created else 1) + per_record[r], (r, version)
        erased = {ref("contact", c) for c in s.scalars(select(Contact.id).where(Contact.erased_at.is_not(None)))}
        applied_count = sum(1 for p in proposals if p.status in ("applied", "undone"))
    assert verified.ok, verified.reason
    assert applied_count > KILLS  # the workload really wrote in every life, on average

    in_index = {p["record"] for p in _indexed_points(data_dir)}
    assert {r for r in in_index if not r.startswith("article:")} <= existing  # nothing deleted is left
    assert {r for r in per_record if r in existing} - erased <= in_index  # every change reached it
    assert not erased & in_index  # nothing erased is left
    print(f"\n{KILLS} kills on {world.engine.dialect.name}: {applied_count} proposals applied, "
          f"{sum(outbox_rows.values())} outbox rows, {verified.rows} ledger rows, {elapsed:.0f} s")
