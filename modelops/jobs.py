"""A durable background job queue: state in the database, transport in-process or on Redis.

- A job is a row (``modelops.job_models.Job``): queued -> running -> done | failed. Enqueueing writes the row and
  a ``<kind>_queued`` ledger row in the caller's transaction, so a job exists exactly when its cause committed.
- Workers claim a job with one conditional UPDATE (queued -> running, attempts + 1): two workers never run it
  both. A running job's worker beats a heartbeat; a job whose worker died (its heartbeat went stale, or its pid
  is gone on this host) is queued again by the next worker that starts or idles, until ``max_attempts`` claims
  were spent, then it fails. So a job survives a restart of the process that ran it.
- In-process (default): a worker thread polls the table. With ``CRMIND_REDIS_URL``: the reliable-queue pattern,
  LPUSH on enqueue (after commit) and BLMOVE into the worker's own processing list, LREM when finished, and
  ``crmind jobs worker`` processes consume it. Redis here keeps nothing on disk, so the table stays the truth: a
  starting worker re-pushes queued jobs that Redis lost and drops the processing lists of dead workers.
- Kinds are looked up in ``HANDLERS`` (``{"retrain": ...}``): a handler takes the JSON payload and returns a JSON
  result. Each run adds ``<kind>_started`` and ``<kind>_done`` / ``<kind>_failed`` ledger rows under the queued row.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import secrets
import socket
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, select, update
from sqlalchemy.orm import Session

import ledger
from config.db import get_engine, transaction
from config.settings import get_settings
from modelops.job_models import Job

log = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any]], dict[str, Any]]
QUEUE_KEY = "crmind:jobs:queue"
PROCESSING_KEY = "crmind:jobs:processing:"  # + worker name: the jobs that worker took
ALIVE_KEY = "crmind:jobs:alive:"  # + worker name: expires when the worker stops beating


def _retrain(payload: dict[str, Any]) -> dict[str, Any]:
    """Fine-tune, evaluate, register a challenger: the fine-tuning layer's job (imported only when it runs)."""
    module = importlib.import_module("modelops.retrain")
    result: dict[str, Any] = module.retrain_job(payload)
    return result


HANDLERS: dict[str, Handler] = {"retrain": _retrain}


class JobError(Exception):
    """A job cannot be run (unknown kind)."""


def utcnow() -> datetime:
    """Naive UTC, as the tables store times."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_job_id() -> str:
    """A new job id: 32 hex digits without dashes, so the ledger's phone mask never touches it.

    The mask takes digit groups between dashes for phone numbers (about 9% of dashed UUIDs lose digits, e.g.
    ``-4309-9171-`` becomes ``-430****171-``); a digit run next to a letter is never masked.
    """
    return uuid.uuid4().hex


def worker_name() -> str:
    """host:pid:random, so a worker on this host can tell whether another one's process still exists."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _pid_gone(worker: str | None) -> bool:
    """True when ``worker`` ran on this host in a process that no longer exists."""
    host, _, rest = (worker or "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by someone else
        return False
    return False


def _ledger_meta(job: Job) -> dict[str, Any]:
    return dict(job.payload.get("ledger") or {})


@contextlib.contextmanager
def _replayed(session: Session, meta: dict[str, Any]) -> Iterator[None]:
    """Rows of a replayed job (``crmind drift simulate``) carry the replayed day, not the wall clock."""
    if meta.get("ts"):
        with ledger.replay_at(session, datetime.fromisoformat(meta["ts"])):
            yield
    else:
        yield


def _job_row(session: Session, job: Job, suffix: str, summary: str, output: dict[str, Any]) -> str:
    meta = _ledger_meta(job)
    with _replayed(session, meta):
        row = ledger.append(session, kind=f"{job.kind}_{suffix}", actor=meta.get("actor", "jobs"),
                            parent_id=meta.get("parent"), refs=meta.get("refs", []), input_summary=summary,
                            output={"job_id": job.id, **output, **meta.get("output", {})})
    return row.id


class JobQueue:
    """Enqueue jobs and run them; one instance per worker (its name tags the jobs it claims)."""

    def __init__(self, engine: Engine | None = None, *, redis_url: str | None = None, use_settings: bool = True,
                 handlers: dict[str, Handler] | None = None, worker: str | None = None,
                 stale_after_s: float | None = None, clock: Callable[[], datetime] = utcnow) -> None:
        settings = get_settings()
        self.engine = engine or get_engine()
        self.redis_url = redis_url if redis_url is not None or not use_settings else settings.redis_url
        self.handlers = {**HANDLERS, **(handlers or {})}
        self.worker = worker or worker_name()
        self.stale_after = timedelta(seconds=stale_after_s or settings.jobs_stale_after_s)
        self.max_attempts = settings.jobs_max_attempts
        self.clock = clock
        self._redis: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    # ------------------------------------------------------------------ transport
    @property
    def redis(self) -> Any:
        """The Redis client (None in-process)."""
        if self.redis_url and self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(self.redis_url, decode_responses=True)
        return self._redis

    def _push(self, job_id: str) -> None:
        if self.redis is None:
            self._wake.set()
            return
        try:
            self.redis.lpush(QUEUE_KEY, job_id)
        except Exception as exc:  # the row is committed: the next worker start re-pushes it
            log.warning("job %s queued in the database but not on Redis (%s); a worker will pick it up", job_id, exc)

    # ------------------------------------------------------------------ enqueue
    def enqueue(self, session: Session, kind: str, payload: dict[str, Any], *,
                max_attempts: int | None = None) -> Job:
        """Queue a job in ``session``'s transaction, with its ``<kind>_queued`` ledger row; runs after commit.

        ``payload["ledger"]`` may say who the job's ledger rows are by (``actor``), under which row (``parent``),
        with which ``refs`` and extra ``output``; the job's later rows hang under its queued row.
        """
        if kind not in self.handlers:
            raise JobError(f"no handler for job kind {kind!r}; known: {', '.join(sorted(self.handlers))}")
        job = Job(id=new_job_id(), kind=kind, state="queued", payload=dict(payload), error="", attempts=0,
                  max_attempts=max_attempts or self.max_attempts, created_at=self.clock())
        session.add(job)
        session.flush()
        queued = _job_row(session, job, "queued", f"{kind} job queued", {"max_attempts": job.max_attempts})
        job.payload = {**job.payload, "ledger": {**_ledger_meta(job), "parent": queued}}
        session.flush()
        event.listen(session, "after_commit", lambda _s: self._push(job.id), once=True)
        return job

    # ------------------------------------------------------------------ recovery
    def recover(self) -> list[str]:
        """Queue again the running jobs whose worker died (or fail them when out of attempts); returns their ids."""
        now = self.clock()
        moved: list[str] = []
        with transaction(self.engine) as session:
            for job in session.scalars(select(Job).where(Job.state == "running")):
                stale = job.heartbeat_at is None or job.heartbeat_at < now - self.stale_after
                if job.worker == self.worker or not (stale or _pid_gone(job.worker)):
                    continue
                dead = job.worker
                if job.attempts >= job.max_attempts:
                    job.state, job.finished_at, job.worker = "failed", now, None
                    job.error = f"worker {dead} died on the last of {job.max_attempts} attempts"
                    _job_row(session, job, "failed", job.error, {"attempt": job.attempts, "final": True,
                                                                 "error": job.error})
                else:
                    job.state, job.worker = "queued", None
                    _job_row(session, job, "requeued", f"worker {dead} died; job queued again",
                             {"attempt": job.attempts, "dead_worker": dead})
                moved.append(job.id)
        if self.redis is not None:
            self._reconcile_redis()
        return moved

    def _reconcile_redis(self) -> None:
        """Drop dead workers' processing lists; push every queued job Redis does not hold (it keeps no disk)."""
        held = set(self.redis.lrange(QUEUE_KEY, 0, -1))
        for key in self.redis.scan_iter(PROCESSING_KEY + "*"):
            name = key.removeprefix(PROCESSING_KEY)
            if name != self.worker and not self.redis.exists(ALIVE_KEY + name):
                self.redis.delete(key)  # its jobs are queued again in the table by recover()
            else:
                held.update(self.redis.lrange(key, 0, -1))
        with transaction(self.engine) as session:
            queued = list(session.scalars(select(Job.id).where(Job.state == "queued").order_by(Job.created_at)))
        for job_id in queued:
            if job_id not in held:
                self.redis.lpush(QUEUE_KEY, job_id)

    # ------------------------------------------------------------------ running
    def claim(self, job_id: str) -> Job | None:
        """Take ``job_id`` if it is still queued (one UPDATE: a concurrent claimer gets None)."""
        now = self.clock()
        with transaction(self.engine) as session:
            result = session.execute(
                update(Job).where(Job.id == job_id, Job.state == "queued")
                .values(state="running", worker=self.worker, attempts=Job.attempts + 1, started_at=now,
                        heartbeat_at=now).execution_options(synchronize_session=False))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            job = session.get(Job, job_id)
            assert job is not None
            session.refresh(job)
            _job_row(session, job, "started", f"{job.kind} job started (attempt {job.attempts})",
                     {"attempt": job.attempts, "worker": self.worker})
            return job

    def _next_ids(self, block_s: float) -> list[str]:
        if self.redis is not None:
            job_id = self.redis.blmove(QUEUE_KEY, PROCESSING_KEY + self.worker, block_s or 0.001, "RIGHT", "LEFT")
            return [job_id] if job_id else []
        with transaction(self.engine) as session:
            ids = list(session.scalars(select(Job.id).where(Job.state == "queued").order_by(Job.created_at)
                                       .limit(5)))
        if not ids and block_s:
            self._wake.wait(block_s)
            self._wake.clear()
        return ids

    def run_one(self, *, block_s: float = 0.0) -> Job | None:
        """Claim and run the next queued job; None when there was none."""
        for job_id in self._next_ids(block_s):
            job = self.claim(job_id)
            if job is None:
                if self.redis is not None:
                    self.redis.lrem(PROCESSING_KEY + self.worker, 0, job_id)
                continue
            return self._execute(job)
        return None

    def run_pending(self) -> list[Job]:
        """Run queued jobs until none is left (the simulation and tests; a worker loops in ``work``)."""
        done = []
        while (job := self.run_one()) is not None:
            done.append(job)
        return done

    def _execute(self, job: Job) -> Job:
        handler = self.handlers.get(job.kind)
        beating = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job.id, beating), daemon=True)
        beat.start()
        try:
            if handler is None:
                raise JobError(f"no handler for job kind {job.kind!r}")
            result, error = handler(dict(job.payload)), None
        except Exception as exc:  # a job's failure is recorded on it, never raised into the worker loop
            result, error = None, f"{type(exc).__name__}: {exc}"
            log.warning("job %s (%s) failed: %s", job.id, job.kind, traceback.format_exc(limit=5))
        finally:
            beating.set()
            beat.join()
        finished = self._finish(job.id, result, error)
        if self.redis is not None:
            self.redis.lrem(PROCESSING_KEY + self.worker, 0, job.id)
            if finished.state == "queued":
                self._push(job.id)
        return finished

    def _finish(self, job_id: str, result: dict[str, Any] | None, error: str | None) -> Job:
        now = self.clock()
        with transaction(self.engine) as session:
            job = session.get(Job, job_id)
            assert job is not None
            job.heartbeat_at, job.worker = now, None
            if error is None:
                job.state, job.result, job.finished_at, job.error = "done", result or {}, now, ""
                _job_row(session, job, "done", f"{job.kind} job done", {"attempt": job.attempts,
                                                                        "result": result or {}})
            else:
                final = job.attempts >= job.max_attempts
                job.error = error[:4000]
                job.state = "failed" if final else "queued"
                job.finished_at = now if final else None
                _job_row(session, job, "failed", f"{job.kind} job failed (attempt {job.attempts})",
                         {"attempt": job.attempts, "final": final, "error": error[:2000]})
            return job

    def _heartbeat(self, job_id: str, stop: threading.Event) -> None:
        """Refresh the running job's heartbeat (and this worker's liveness on Redis) until ``stop``."""
        period = max(self.stale_after.total_seconds() / 4, 0.05)
        while not stop.wait(period):
            try:
                with transaction(self.engine) as session:
                    session.execute(update(Job).where(Job.id == job_id, Job.worker == self.worker)
                                    .values(heartbeat_at=self.clock()))
                self._alive()
            except Exception as exc:  # a missed beat is retried next period
                log.warning("heartbeat of job %s failed: %s", job_id, exc)

    def _alive(self) -> None:
        if self.redis is not None:
            self.redis.set(ALIVE_KEY + self.worker, "1", ex=max(int(self.stale_after.total_seconds()), 1))

    def work(self, *, poll_s: float = 2.0, recover_every_s: float = 60.0) -> None:
        """The worker loop: recover, then run jobs as they come, until ``stop()``."""
        self._alive()
        self.recover()
        last_recover = self.clock()
        while not self._stop.is_set():
            self._alive()
            job = self.run_one(block_s=poll_s)
            if job is None and (self.clock() - last_recover).total_seconds() >= recover_every_s:
                self.recover()
                last_recover = self.clock()

    def start(self) -> threading.Thread:
        """Run ``work`` on a daemon thread (the in-process default inside ``crmind serve``)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.work, name="crmind-jobs", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the loop to end after the current job and wait for it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._redis is not None:
            self._redis.delete(ALIVE_KEY + self.worker)


def list_jobs(session: Session, *, limit: int = 50) -> list[Job]:
    """Newest jobs first."""
    return list(session.scalars(select(Job).order_by(Job.created_at.desc()).limit(limit)))
