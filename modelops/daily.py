"""The drift monitor's daily tick inside ``crmind serve``: yesterday is judged once, by whichever process gets there.

A day counts as checked when the ledger holds the live monitor's ``drift_check`` row for it, so the tick is
idempotent across restarts and across several server processes: each one looks before it checks, and a second
one that races the first only adds a second check row of the same day (the monitor's steps themselves are
guarded by incident state, so nothing is retrained twice). ``crmind drift check`` stays the manual tick.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from config.db import transaction
from ledger.models import Decision
from modelops.jobs import JobQueue
from modelops.monitor import CheckReport, check
from modelops.strategies import LIVE

log = logging.getLogger(__name__)


def last_checked_day(session: Session) -> date | None:
    """The newest day the live monitor has judged, from its latest ``drift_check`` row."""
    row = session.scalar(select(Decision).where(Decision.kind == "drift_check", Decision.actor == LIVE.monitor)
                         .order_by(Decision.seq.desc()).limit(1))
    day = (row.output or {}).get("day") if row is not None else None
    return date.fromisoformat(day) if day else None


class DailyDriftCheck:
    """A daemon thread that, every ``interval_s``, judges yesterday (UTC) unless the ledger says it was judged."""

    def __init__(self, engine: Engine | None = None, *, interval_s: float = 600.0, first_delay_s: float = 60.0,
                 queue: JobQueue | None = None,
                 embedder: Callable[[], Any] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self.first_delay_s = first_delay_s  # the server's start (index, model) goes first
        self.queue = queue
        self.embedder = embedder
        self.clock = clock
        self.last_error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def due(self) -> date:
        """The day a tick now would judge."""
        return self.clock().date() - timedelta(days=1)

    def run_once(self) -> CheckReport | None:
        """Judge yesterday if nobody has; None when it was already judged."""
        day = self.due()
        with transaction(self.engine) as session:
            last = last_checked_day(session)
            if last is not None and last >= day:
                return None
            embedder = None
            if self.embedder is not None:
                try:
                    embedder = self.embedder()
                except Exception as exc:  # conversion monitoring must not wait on the embedder
                    log.warning("input drift skipped: %s", exc)
            report = check(session, as_of=day, queue=self.queue or JobQueue(), embedder=embedder)
        for kind, text in report.events:
            log.info("drift monitor %s: %s: %s", day, kind, text)
        return report

    def _run(self) -> None:
        if self._stop.wait(self.first_delay_s):
            return
        while not self._stop.is_set():
            try:
                self.run_once()
                self.last_error = ""
            except Exception as exc:  # a failed tick is retried at the next interval, never kills the server
                self.last_error = str(exc)
                log.exception("daily drift check failed")
            self._stop.wait(self.interval_s)

    def start(self) -> None:
        """Start the thread (the first tick runs after ``first_delay_s``)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="drift-daily", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current tick."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
