"""The background runner of record rules: CRM changes every second, schedules every minute.

Event rules run where events arrive (``POST /v1/events``, or the NATS workers). Record rules need someone to
watch the outbox and the clock; in the embedded default that is a thread of the server, started and stopped by
the app's lifespan. ``crmind rules run`` is the same loop as a process of its own (several API workers, or a
deployment that keeps rules apart). Two of them at once are safe: firings are unique per rule version and key.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass

from sqlalchemy import Engine

from config.db import get_engine, session_factory
from customers.keys_follower import follow as follow_keys
from rules.runner import Runner, runner_for

log = logging.getLogger(__name__)


@dataclass
class WorkerStatus:
    """What the worker has done (kept on the app's state; its passes and failures are also logged)."""

    state: str = "idle"  # idle | running | failed | stopped
    ticks: int = 0
    changes_seen: int = 0
    firings: int = 0
    last_error: str = ""

    def as_dict(self) -> dict[str, object]:
        """Plain dict for JSON."""
        return asdict(self)


def tick_once(engine: Engine, runner: Runner | None = None, *, schedules: bool = True) -> tuple[int, int]:
    """One pass in its own transaction: (changes seen, firings).

    The same pass keeps identity keys current (``customers.keys_follower``), in a transaction of its own so a
    failure there never holds rules back: a new contact's likely duplicates are found through those keys.
    """
    with session_factory(engine)() as session, session.begin():
        result = (runner or runner_for(session)).tick(session, schedules=schedules)
    try:
        with session_factory(engine)() as session, session.begin():
            follow_keys(session)
    except Exception:  # noqa: BLE001 - logged; the keys catch up on the next pass or the next resolve run
        log.exception("identity keys: pass failed")
    return result.changes_seen, result.firings


class RuleWorker:
    """Runs ``tick_once`` in a daemon thread until stopped."""

    def __init__(self, engine: Engine | None = None, *, interval: float = 1.0, schedule_every: float = 60.0) -> None:
        self.engine = engine
        self.interval = interval
        self.schedule_every = schedule_every
        self.status = WorkerStatus()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (no-op if it runs)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="rule-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current pass."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.status.state = "stopped"

    def _run(self) -> None:
        engine = self.engine or get_engine()
        self.status.state = "running"
        next_schedule = 0.0
        while not self._stop.is_set():
            due = time.monotonic() >= next_schedule
            try:
                seen, fired = tick_once(engine, schedules=due)
                self.status.ticks += 1
                self.status.changes_seen += seen
                self.status.firings += fired
                self.status.last_error = ""
                if due:
                    next_schedule = time.monotonic() + self.schedule_every
            except Exception as exc:  # a bad pass must not end the worker; it retries on the next one
                self.status.last_error = f"{type(exc).__name__}: {exc}"[:500]
                log.exception("rule worker pass failed")
            self._stop.wait(self.interval)
