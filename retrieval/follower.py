"""The server's background index owner: build the index once, then follow the outbox.

One object owns the thread, its stop signal and its status, so the app's lifespan starts and stops it
and the assistant (which shares the process-wide index owner) sees the same state.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from typing import Literal

from sqlalchemy import Engine

from retrieval.service import IndexService, close_service, get_service

log = logging.getLogger(__name__)
State = Literal["idle", "building", "filling", "following", "failed", "stopped"]


@dataclass
class IndexStatus:
    """Where the background build stands (``GET /v1/search/status``), per leg.

    ``building``: the sparse (BM25) pass over every record; ``filling``: search covers the whole CRM through
    the sparse leg, and dense vectors are being added (``dense_done`` of ``records_total``) while changes are
    followed; ``following``: both legs complete.
    """

    state: State = "idle"
    records_done: int = 0
    records_total: int = 0
    sparse_complete: bool = False
    dense_complete: bool = False
    dense_done: int = 0

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
        from retrieval.indexer import build, follow, is_built, is_dense_complete

        try:
            if not is_built(self.engine):
                self.status.state = "building"
                summary = build(self.engine, service.store, service.embedder, progress=False,
                                on_progress=self._progress, stop=self._stop, sparse_only=True)
                log.info("index build (sparse leg): %s", summary.line())
                if self._stop.is_set():
                    return
            self.status.sparse_complete = True
            if not is_dense_complete(self.engine):
                self.status.state = "filling"
                self._fill_dense(service)
                if self._stop.is_set():
                    return
            self.status.dense_complete = True
            self.status.dense_done = self.status.records_total
            self.status.state = "following"
            follow(self.engine, service.store, service.embedder, interval=self.interval, stop=self._stop)
        except Exception:
            self.status.state = "failed"
            log.exception("index follower stopped")

    def _fill_dense(self, service: IndexService) -> None:
        """Dense vectors for every record, a batch at a time, with the outbox applied between batches."""
        from config.db import session_factory
        from retrieval.documents import Loader
        from retrieval.indexer import DenseFill, sync

        factory = session_factory(self.engine)
        with factory() as session:
            total = Loader(session).count()
        fill = DenseFill(total)
        self.status.records_total = total
        started = time.perf_counter()
        while not fill.finished and not self._stop.is_set():
            sync(self.engine, service.store, service.embedder)  # changes first: they carry both legs
            with factory() as session:
                fill.step(session, service.store, service.embedder)
                session.commit()
            self.status.dense_done = fill.done
        if fill.finished:
            log.info("index dense leg complete: %d records in %.0fs", fill.done, time.perf_counter() - started)
