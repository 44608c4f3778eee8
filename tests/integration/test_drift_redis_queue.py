"""The job queue over the real local Redis: FIFO after commit, and recovery of a dead worker's processing list."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from modelops.jobs import JobQueue
from tests.unit.test_drift_jobs import T0, Clock, echo, enqueue

pytestmark = pytest.mark.integration


def _redis_or_skip() -> str:
    import redis

    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    return url


def test_redis_queue_runs_jobs_and_recovers_a_dead_workers_list(sqlite_engine: Engine) -> None:
    import redis

    url = _redis_or_skip()
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    clock = Clock()
    producer = JobQueue(sqlite_engine, redis_url=url, worker="producer", clock=clock, stale_after_s=60,
                        handlers={"retrain": echo})
    ids = [enqueue(producer, sqlite_engine, v) for v in (1, 2)]
    assert client.lrange("crmind:jobs:queue", 0, -1) == list(reversed(ids))  # pushed after commit, FIFO order

    dying = JobQueue(sqlite_engine, redis_url=url, worker=f"dying-{uuid.uuid4().hex[:6]}", clock=clock,
                     stale_after_s=60, handlers={"retrain": echo})
    taken = client.blmove("crmind:jobs:queue", f"crmind:jobs:processing:{dying.worker}", 1, "RIGHT", "LEFT")
    assert taken == ids[0] and dying.claim(taken) is not None  # claimed, then the worker died (no alive key)

    client.delete("crmind:jobs:queue")  # Redis keeps nothing on disk: a restart loses what it held
    clock.now = T0 + timedelta(minutes=2)
    survivor = JobQueue(sqlite_engine, redis_url=url, worker="survivor", clock=clock, stale_after_s=60,
                        handlers={"retrain": echo})
    assert survivor.recover() == [ids[0]]
    assert not client.exists(f"crmind:jobs:processing:{dying.worker}")
    done = survivor.run_pending()
    assert sorted((j.id, j.state) for j in done) == sorted((i, "done") for i in ids)
    assert client.llen("crmind:jobs:processing:survivor") == 0
    client.flushdb()
