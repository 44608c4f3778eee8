"""Building the index from the CRM and keeping it in step through the outbox.

At least once and idempotent: point ids are deterministic, a record is re-read from the CRM on every
entry, and the outbox cursor moves only after the store has made the batch durable. A crash between
the two replays the batch, which changes nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from config.db import session_factory
from config.objects import INDEXED_ORDER, parse_ref, ref
from crm import outbox
from crm.models import OutboxCursor, OutboxEntry
from retrieval.documents import Chunk, Loader
from retrieval.embeddings import Embedder
from retrieval.sparse import encode_document
from retrieval.store import VectorStore

CONSUMER = "retrieval"
DENSE_DONE = "retrieval-dense"  # a cursor row that exists once every record has its dense vectors
BATCH = 256
log = logging.getLogger(__name__)


@dataclass
class IndexSummary:
    """What a build or a sync did."""

    records: int = 0
    chunks: int = 0
    deleted_records: int = 0
    embedded: int = 0
    cached: int = 0
    seconds: float = 0.0
    total_chunks: int = 0
    entries: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """The one-line summary printed at the end of a job."""
        rate = self.chunks / self.seconds if self.seconds else 0.0
        return (f"indexed {self.records} records -> {self.chunks} chunks in {self.seconds:.1f}s "
                f"({rate:.0f} chunks/s; {self.embedded} embedded, {self.cached} from cache); "
                f"{self.deleted_records} removed; the index holds {self.total_chunks} chunks")


def _cache_counts(embedder: Embedder) -> tuple[int, int]:
    return int(getattr(embedder, "misses", 0)), int(getattr(embedder, "hits", 0))


def write_chunks(store: VectorStore, embedder: Embedder | None, chunks: list[Chunk]) -> None:
    """Embed (batched, cached) and upsert chunks; with no embedder, the sparse vectors alone."""
    if not chunks:
        return
    texts = [c.text for c in chunks]
    dense = embedder.embed_documents(texts) if embedder is not None else None
    store.upsert(chunks, dense, [encode_document(t) for t in texts])


def build(engine: Engine | None, store: VectorStore, embedder: Embedder, *, rebuild: bool = False,
          progress: bool = True, on_progress: Callable[[int, int], None] | None = None,
          stop: threading.Event | None = None, sparse_only: bool = False) -> IndexSummary:
    """Index every CRM record (``rebuild`` starts from an empty collection), then catch up on the outbox.

    ``sparse_only`` writes the BM25 leg alone (minutes, not the encoder's tens of minutes): search covers the
    whole CRM at once, and ``DenseFill`` adds the dense vectors afterwards while the outbox is followed.
    """
    writer: Embedder | None = None if sparse_only else embedder
    from tqdm import tqdm

    started = time.perf_counter()
    misses0, hits0 = _cache_counts(embedder)
    summary = IndexSummary()
    if rebuild:
        store.clear()
    with session_factory(engine)() as session:
        # Everything up to here is covered by the full pass; later entries are replayed by sync.
        high_water = session.scalar(select(func.max(OutboxEntry.id))) or 0
        loader = Loader(session)
        bar = tqdm(total=loader.count(), desc="indexing", unit="rec", disable=not progress)
        pending: list[Chunk] = []
        for obj, row in loader.iter_all():
            pending.extend(loader.chunks_of_row(obj, row))
            summary.records += 1
            bar.update(1)
            if on_progress is not None and summary.records % 100 == 0:
                on_progress(summary.records, int(bar.total or 0))
            if stop is not None and stop.is_set():
                # Interrupted: the cursor stays put, so the next start builds again (cache makes it quick).
                bar.close()
                store.flush()
                summary.seconds = time.perf_counter() - started
                return summary
            if len(pending) >= BATCH:
                write_chunks(store, writer, pending)
                summary.chunks += len(pending)
                pending = []
        write_chunks(store, writer, pending)
        summary.chunks += len(pending)
        bar.close()
        if on_progress is not None:
            on_progress(summary.records, summary.records)
        store.flush()
        store.optimize()
        outbox.advance(session, CONSUMER, high_water)
        if not sparse_only:
            outbox.advance(session, DENSE_DONE, 1)
        session.commit()
    catch_up = sync(engine, store, embedder)
    misses, hits = _cache_counts(embedder)
    summary.embedded, summary.cached = misses - misses0, hits - hits0
    summary.deleted_records = catch_up.deleted_records
    summary.entries = catch_up.entries
    summary.seconds = time.perf_counter() - started
    summary.total_chunks = store.count()
    return summary


def is_built(engine: Engine | None) -> bool:
    """True once a full build finished (the indexer's outbox cursor exists)."""
    with session_factory(engine)() as session:
        return session.get(OutboxCursor, CONSUMER) is not None


def is_dense_complete(engine: Engine | None) -> bool:
    """True once every record has its dense vectors (a full build, or a finished ``DenseFill``)."""
    with session_factory(engine)() as session:
        return session.get(OutboxCursor, DENSE_DONE) is not None


class DenseFill:
    """Adds dense vectors to a sparse-first index, a batch at a time, in the thread that follows the outbox.

    Each step re-reads its records from the CRM and upserts them with both legs, so a record that changed
    meanwhile is written as it is now; the follower applies outbox entries (with both legs) between steps, in
    the same thread, so the two never race. A restart starts over: the embedding cache makes the part already
    done quick.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self._order = list(INDEXED_ORDER)
        self._last_id = 0

    @property
    def finished(self) -> bool:
        """True once every object type has been read to its end."""
        return not self._order

    def step(self, session: Session, store: VectorStore, embedder: Embedder, chunks: int = BATCH) -> int:
        """Embed and write about ``chunks`` chunks' worth of records; returns the records written."""
        loader = Loader(session)
        pending: list[Chunk] = []
        written = 0
        while self._order and len(pending) < chunks:
            obj = self._order[0]
            rows = loader.page(obj, self._last_id, 64)
            if not rows:
                self._order.pop(0)
                self._last_id = 0
                continue
            for row in rows:
                pending.extend(loader.chunks_of_row(obj, row))
            self._last_id = rows[-1].id
            written += len(rows)
        write_chunks(store, embedder, pending)
        store.flush()
        self.done += written
        if self.finished:
            outbox.advance(session, DENSE_DONE, 1)
        return written


def sync_once(session: Session, store: VectorStore, embedder: Embedder, limit: int = 500) -> IndexSummary:
    """Apply one batch of outbox entries, make it durable, then advance the cursor (the caller commits)."""
    summary = IndexSummary()
    entries = outbox.pending(session, CONSUMER, limit=limit)
    if not entries:
        return summary
    summary.entries = len(entries)
    last_op: dict[tuple[str, int], str] = {}
    erased: set[tuple[str, int]] = set()
    for e in entries:
        key = (e.object_type, e.record_id)
        last_op.pop(key, None)
        last_op[key] = e.op
        if e.op == "erase":
            erased.add(key)
    loader = Loader(session)
    to_refresh: list[tuple[str, int]] = []
    for (obj, rid) in erased:
        store.delete_records([ref(obj, rid)])
        summary.deleted_records += 1
        if obj == "contact":
            # Text that named the person lives in linked activities and cases: drop it, then re-read them
            # from the CRM (with the erased person's phone and email masked).
            linked = store.records_where("contact_id", rid)
            store.delete_where("contact_id", rid)
            for record in linked:
                kind, ident = parse_ref(record)
                if kind != "contact":
                    to_refresh.append((kind, ident))
    to_delete: list[str] = []
    fresh: list[Chunk] = []
    sizes: dict[str, int] = {}
    for (obj, rid), op in list(last_op.items()) + [(k, "upsert") for k in to_refresh]:
        if op in ("delete", "erase"):
            to_delete.append(ref(obj, rid))
            continue
        chunks = loader.chunks_of(obj, rid)
        if chunks is None:
            to_delete.append(ref(obj, rid))
            continue
        fresh.extend(chunks)
        sizes[ref(obj, rid)] = len(chunks)
    for start in range(0, len(fresh), BATCH):
        write_chunks(store, embedder, fresh[start:start + BATCH])
    for record, keep in sizes.items():
        store.delete_stale_chunks(record, keep)
    store.delete_records(to_delete)
    store.flush()
    outbox.advance(session, CONSUMER, entries[-1].id)
    summary.records = len(sizes)
    summary.chunks = len(fresh)
    summary.deleted_records += len(to_delete)
    return summary


def sync(engine: Engine | None, store: VectorStore, embedder: Embedder, limit: int = 500) -> IndexSummary:
    """Apply every pending outbox entry, batch by batch, committing the cursor after each."""
    total = IndexSummary()
    factory = session_factory(engine)
    while True:
        with factory() as session:
            part = sync_once(session, store, embedder, limit=limit)
            session.commit()
        total.entries += part.entries
        total.records += part.records
        total.chunks += part.chunks
        total.deleted_records += part.deleted_records
        if part.entries < limit:
            return total


def follow(engine: Engine | None, store: VectorStore, embedder: Embedder, *, interval: float = 1.0,
           stop: threading.Event | None = None, on_batch: Callable[[IndexSummary], None] | None = None) -> None:
    """Keep syncing until ``stop`` is set; errors are logged and retried (the cursor did not move)."""
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            part = sync(engine, store, embedder)
        except Exception:  # noqa: BLE001 - a follower must survive a bad batch and retry it
            log.exception("index follower: batch failed; retrying")
            stop.wait(max(interval, 5.0))
            continue
        if part.entries and on_batch:
            on_batch(part)
        if not part.entries:
            stop.wait(interval)
