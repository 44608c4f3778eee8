"""The server's background index owner: build the index once, then follow the outbox.

One object owns the thread, its stop signal and its status, so the app's lifespan starts and stops it
and the assistant (which shares the process-wide index owner) sees the same state.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from typing import Literal

from sqlalchemy import Engine

from retrieval.service import IndexService, close_service, get_service

log = logging.getLogger(__name__)
State = Literal["idle", "building", "following", "failed", "stopped"]


@dataclass
class IndexStatus:
    """Where the background build stands (``GET /v1/search/status``)."""

    state: State = "idle"
    records_done: int = 0
    records_total: int = 0

    def as_dict(self) -> dict[str, object]:
        """Plain dict for JSON."""
        return asdict(self)


class IndexFollower:
    """Builds the whole index in a daemon thread if it is missing, then keeps it in step with the outbox.

    The API answers from the first minute; search covers more of the CRM as the build goes on.
    """

    def __init__(self, engine: Engine | None = None, *, interval: float = 1.0) -> None:
        self.engine = engine
        self.interval = interval
        self.status = IndexStatus()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Open the process-wide index owner and start the thread (``IndexBusy`` if another process owns it)."""
        if self.running:
            return
        service = get_service()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(service,), name="index-follower", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and release the index owner."""
        self._stop.set()
        busy = False
        if self._thread is not None:
            self._thread.join(timeout)
            busy = self._thread.is_alive()
            self._thread = None
        if self.status.state != "failed":
            self.status.state = "stopped"
        if busy:
            # The build checks its stop signal between batches, and one batch of a cold e5 build can outlast the
            # timeout. Closing the store under a running writer would block shutdown on its lock; the engine's
            # write-ahead log makes leaving it to process exit safe (it survived kills without a flush).
            log.warning("index follower still finishing a batch after %.0fs; leaving it to process exit", timeout)
            return
        close_service()

    def _progress(self, done: int, total: int) -> None:
        self.status.records_done, self.status.records_total = done, total

    def _run(self, service: IndexService) -> None:
        from retrieval.indexer import build, follow, is_built

        try:
            if not is_built(self.engine):
                self.status.state = "building"
                summary = build(self.engine, service.store, service.embedder, progress=False,
                                on_progress=self._progress, stop=self._stop)
                log.info("index build: %s", summary.line())
            self.status.state = "following"
            follow(self.engine, service.store, service.embedder, interval=self.interval, stop=self._stop)
        except Exception:
            self.status.state = "failed"
            log.exception("index follower stopped")
