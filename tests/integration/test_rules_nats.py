"""The engine on NATS JetStream for real: several workers, one killed mid-stream, no action lost or doubled."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from config.db import session_factory
from crm.models import Lead, Proposal
from rules import lifecycle
from rules.engine import Engine, Ev, compile_rule
from rules.models import IngestedEvent, RuleFiring
from rules.parser import parse
from rules.runner import EventIn, epoch
from rules.stream import publish
from tests.world import World

pytestmark = pytest.mark.integration
NATS_URL = "nats://127.0.0.1:4222"
ROOT = Path(__file__).resolve().parents[2]
ZH = "当客户在官网停留超3分钟且访问价格页≥2次时,自动创建高意向线索并分配至VIP销售池"


def _nats_up() -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", 4222)) == 0


def _events(n_customers: int = 30) -> list[EventIn]:
    rng = random.Random(11)
    out: list[EventIn] = []
    t0 = datetime(2026, 11, 1, 8, 0)
    for c in range(n_customers):
        t = t0 + timedelta(minutes=rng.randrange(600))
        for i in range(rng.randrange(4, 9)):
            t += timedelta(seconds=rng.randrange(20, 400))
            kind = rng.choice(["page_view", "pricing_view", "pricing_view", "download"])
            out.append(EventIn(event_id=f"n{c}-{i}", visitor_id=f"cust-{c}", type=kind, page="/x",
                               duration_s=rng.randrange(10, 90), occurred_at=t))
    return out


def _worker(parts: str, stream: str, subject: str, env: dict[str, str], delay: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rules.stream", "worker", "--url", NATS_URL, "--partitions", parts, "--stream", stream,
         "--subject", subject, "--idle-exit", "4", "--delay", str(delay), "--ack-wait", "2"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.skipif(not _nats_up(), reason="needs the NATS JetStream server on 127.0.0.1:4222")
def test_killed_worker_loses_and_doubles_nothing(sqlite_world: World) -> None:
    world = sqlite_world
    rule = parse(ZH, clarifications={"duration_scope": "total"}).rule
    assert rule is not None
    with session_factory(world.engine)() as s, s.begin():
        rec = lifecycle.create(s, world.p("a", "manager"), text=ZH, rule=rule)
        lifecycle.approve(s, world.p("a", "admin"), rec.id)
        lifecycle.activate(s, world.p("a", "admin"), rec.id)
    events = _events()
    # What must fire: the engine in memory over the same events, in per-customer order.
    engine = Engine([compile_rule(rec.id, 1, rule)])
    expected = {f.event.key for e in sorted(events, key=lambda e: e.occurred_at)
                for f in engine.process(Ev(key=e.event_id, customer=e.visitor_id, type=e.type,
                                           ts=epoch(e.occurred_at), duration_s=e.duration_s))}
    assert len(expected) >= 5

    tag = uuid.uuid4().hex[:8]
    stream, subject = f"T{tag}", f"t{tag}.ev"
    asyncio.run(publish(NATS_URL, events, partitions=6, stream=stream, subject=subject))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CRMIND_DATABASE_URL": str(world.engine.url)}
    workers = {p: _worker(p, stream, subject, env, 0.03) for p in ("0,1", "2,3", "4,5")}
    try:
        deadline = time.monotonic() + 30
        with session_factory(world.engine)() as s:  # let the victim get going, then kill it mid-stream
            while s.scalar(select(func.count(IngestedEvent.event_key))) < len(events) // 4:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        workers["2,3"].send_signal(signal.SIGKILL)
        workers["2,3"].wait()
        workers["2,3 takeover"] = _worker("2,3", stream, subject, env, 0.0)
        for name, proc in workers.items():
            if name != "2,3":
                out, err = proc.communicate(timeout=120)
                assert proc.returncode == 0, err[-2000:]
    finally:
        for proc in workers.values():
            if proc.poll() is None:
                proc.kill()
        asyncio.run(_drop(stream))

    with session_factory(world.engine)() as s:
        assert s.scalar(select(func.count(IngestedEvent.event_key))) == len(events)
        fired = list(s.scalars(select(RuleFiring.event_key)))
        assert Counter(fired).most_common(1)[0][1] == 1
        assert set(fired) == expected
        proposals = list(s.scalars(select(Proposal.idempotency_key).where(Proposal.source == f"rule:{rec.id}")))
        assert len(proposals) == len(set(proposals)) == len(expected)
        assert s.scalar(select(func.count(Lead.id)).where(Lead.pool == "vip")) == len(expected)


async def _drop(stream: str) -> None:
    from rules.stream import connect

    nc, js = await connect(NATS_URL)
    try:
        await js.delete_stream(stream)
    finally:
        await nc.close()
