"""200 reps at once against one server process: every request is answered, none with a server error.

Two deadlocks were found this way (benchmarks/load.py): request sessions kept their connection until the
response was sent, which needed a thread that every route waiting for a connection held; and the ledger
anchor, advanced after each commit, read the head through the same pool while the commit's connection was
still out. Both stopped the server until SQLAlchemy's 30 s pool timeout turned every request into a 500.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from pathlib import Path

import httpx
import pytest

from inference.engine_process import free_port
from tests.fixtures.server import ServerProcess
from tests.world import World

pytestmark = [pytest.mark.integration, pytest.mark.slow]
USERS, ROUNDS = 200, 3


async def _rep(base: str, token: str, records: dict[str, int], rng: random.Random, codes: Counter[str]) -> None:
    h = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=h, timeout=300) as c:
        for n in range(ROUNDS):
            calls = [c.get("/v1/opportunities"), c.get(f"/v1/opportunities/{records['opportunity']}"),
                     c.get("/v1/activities", params={"account_id": records["account"]})]
            for call in calls:
                try:
                    codes[str((await call).status_code)] += 1
                except httpx.HTTPError as exc:
                    codes[type(exc).__name__] += 1
            created = await c.post("/v1/proposals", json={
                "object_type": "opportunity", "action": "update", "record_id": records["opportunity"],
                "changes": {"competitor": f"rival {rng.random():.12f} {n}"}})  # never the current value
            codes[str(created.status_code)] += 1
            if created.status_code == 201:
                approved = await c.post(f"/v1/proposals/{created.json()['id']}/approve")
                codes[str(approved.status_code)] += 1


async def _crowd(base: str, world: World) -> Counter[str]:
    codes: Counter[str] = Counter()
    await asyncio.gather(*(_rep(base, world.tokens[f"{team}:rep"], world.records[team], random.Random(i), codes)
                           for i, team in ((i, "ab"[i % 2]) for i in range(USERS))))
    return codes


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_two_hundred_concurrent_reps_get_answers_not_server_errors(world: World, tmp_path: Path) -> None:
    server = ServerProcess(port=free_port(), log_path=tmp_path / "serve.log", env={
        "CRMIND_DATA_DIR": os.environ["CRMIND_DATA_DIR"], "CRMIND_DATABASE_URL": os.environ["CRMIND_DATABASE_URL"],
        "CRMIND_EMBEDDING_MODEL": "minilm"})
    try:
        server.start()
        codes = asyncio.run(_crowd(server.base_url, world))
    finally:
        server.kill()
    # Reads answer 200; each proposal 201 then its approval 200, or 409 when another rep changed the record first.
    assert sum(codes.values()) >= USERS * ROUNDS * 4
    assert set(codes) <= {"200", "201", "409"}, (codes, server.tail())
    assert codes["201"] > 0 and codes["200"] >= USERS * ROUNDS * 3
