"""The durable job queue: a job runs once, retries, and survives its worker dying (Redis: tests/integration)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

import ledger
from config.db import session_factory, transaction
from modelops.job_models import Job
from modelops.jobs import JobQueue

T0 = datetime(2026, 5, 1, 9, 0)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def echo(payload: dict[str, Any]) -> dict[str, Any]:
    return {"echo": payload["value"]}


def queue(engine: Engine, *, worker: str, clock: Clock | None = None, **handlers: Any) -> JobQueue:
    return JobQueue(engine, redis_url=None, use_settings=False, worker=worker, clock=clock or Clock(),
                    handlers={"retrain": echo, **handlers}, stale_after_s=60)


def enqueue(q: JobQueue, engine: Engine, value: int = 1, kind: str = "retrain") -> str:
    with transaction(engine) as session:
        return q.enqueue(session, kind, {"value": value, "ledger": {"actor": "drift-monitor"}}).id


def kinds(engine: Engine) -> list[str]:
    with session_factory(engine)() as s:
        return [d.kind for d in reversed(ledger.decisions_for(s, actor="drift-monitor", limit=50))]


def test_a_job_runs_once_and_each_step_is_a_ledger_row(sqlite_engine: Engine) -> None:
    q = queue(sqlite_engine, worker="w1")
    job_id = enqueue(q, sqlite_engine, 7)
    done = q.run_pending()
    assert [(j.id, j.state, j.result, j.attempts) for j in done] == [(job_id, "done", {"echo": 7}, 1)]
    assert q.run_pending() == []
    assert kinds(sqlite_engine) == ["retrain_queued", "retrain_started", "retrain_done"]
    with session_factory(sqlite_engine)() as s:
        rows = list(reversed(ledger.decisions_for(s, actor="drift-monitor")))
        assert rows[1].parent_id == rows[0].id and rows[2].parent_id == rows[0].id  # the job's rows hang together


def test_a_failing_job_is_retried_then_fails_for_good(sqlite_engine: Engine) -> None:
    calls = []

    def broken(payload: dict[str, Any]) -> dict[str, Any]:
        calls.append(payload["value"])
        raise RuntimeError("trainer crashed")

    q = queue(sqlite_engine, worker="w1", retrain=broken)
    enqueue(q, sqlite_engine)
    q.run_pending()
    with session_factory(sqlite_engine)() as s:
        job = s.scalars(select(Job)).one()
    assert (job.state, job.attempts, len(calls)) == ("failed", 3, 3)
    assert "trainer crashed" in job.error
    assert kinds(sqlite_engine).count("retrain_failed") == 3


def test_a_new_worker_picks_up_a_job_left_running_by_a_dead_one(engine: Engine) -> None:
    # On SQLite and on the local PostgreSQL (the `engine` fixture).
    clock = Clock()
    first = queue(engine, worker="host-a:1:dead", clock=clock)
    job_id = enqueue(first, engine, 5)
    assert first.claim(job_id) is not None  # the first worker took it, then its process died mid-job

    second = queue(engine, worker="host-b:2:new", clock=clock)
    assert second.recover() == []  # its heartbeat is fresh: the first worker may still be running it
    assert second.run_pending() == []
    clock.now = T0 + timedelta(seconds=61)
    assert second.recover() == [job_id]
    done = second.run_pending()
    assert [(j.state, j.attempts, j.result) for j in done] == [("done", 2, {"echo": 5})]
    assert "retrain_requeued" in kinds(engine)


def test_a_worker_process_that_is_gone_on_this_host_is_not_waited_for(sqlite_engine: Engine) -> None:
    import socket

    dead = f"{socket.gethostname()}:{2**22 + 12345}:x"  # beyond pid_max: no such process
    q = queue(sqlite_engine, worker=dead)
    job_id = enqueue(q, sqlite_engine)
    assert q.claim(job_id) is not None
    again = queue(sqlite_engine, worker="fresh")
    assert again.recover() == [job_id]  # no waiting for the heartbeat to go stale


def test_a_job_whose_worker_died_on_its_last_attempt_fails(sqlite_engine: Engine) -> None:
    clock = Clock()
    q = queue(sqlite_engine, worker="a:1:x", clock=clock)
    with transaction(sqlite_engine) as session:
        job_id = q.enqueue(session, "retrain", {"value": 1}, max_attempts=1).id
    q.claim(job_id)
    clock.now = T0 + timedelta(minutes=5)
    queue(sqlite_engine, worker="b:2:y", clock=clock).recover()
    with session_factory(sqlite_engine)() as s:
        job = s.get(Job, job_id)
        assert job is not None and (job.state, job.attempts) == ("failed", 1)


def test_an_uncommitted_job_never_runs(sqlite_engine: Engine) -> None:
    q = queue(sqlite_engine, worker="w")
    with pytest.raises(RuntimeError), transaction(sqlite_engine) as session:
        q.enqueue(session, "retrain", {"value": 1})
        raise RuntimeError("the cause of the job rolled back")
    assert q.run_pending() == []


def test_job_ids_come_back_from_the_ledger_unmasked() -> None:
    from config.masking import mask_text
    from modelops.jobs import new_job_id

    for _ in range(2000):  # dashed UUIDs lose a few percent of their digits to the phone mask
        job_id = new_job_id()
        assert mask_text(f"retrain job {job_id} queued") == f"retrain job {job_id} queued"
