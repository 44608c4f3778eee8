"""The one process-wide owner of the index: the embedded engine allows a single opener per folder."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from config.settings import get_settings
from retrieval.documents import Chunk
from retrieval.embeddings import Embedder, Matrix, make_embedder
from retrieval.errors import RetrievalError
from retrieval.filters import Condition
from retrieval.sparse import SparseVec
from retrieval.store import DEFAULT_FUSION, Fusion, Mode, StoredHit, VectorStore, open_store


class LockedStore:
    """Serialises calls into a store shared by request threads and the background follower."""

    def __init__(self, inner: VectorStore) -> None:
        self.inner = inner
        self._lock = threading.RLock()

    def upsert(self, chunks: Sequence[Chunk], dense: Matrix | None, sparse: Sequence[SparseVec]) -> None:
        """See ``VectorStore.upsert``."""
        with self._lock:
            self.inner.upsert(chunks, dense, sparse)

    def delete_records(self, records: Sequence[str]) -> None:
        """See ``VectorStore.delete_records``."""
        with self._lock:
            self.inner.delete_records(records)

    def delete_stale_chunks(self, record: str, keep: int) -> None:
        """See ``VectorStore.delete_stale_chunks``."""
        with self._lock:
            self.inner.delete_stale_chunks(record, keep)

    def delete_where(self, key: str, value: int) -> None:
        """See ``VectorStore.delete_where``."""
        with self._lock:
            self.inner.delete_where(key, value)

    def records_where(self, key: str, value: int) -> set[str]:
        """See ``VectorStore.records_where``."""
        with self._lock:
            return self.inner.records_where(key, value)

    def query(self, dense: Matrix | None, sparse: SparseVec | None, cond: Condition, *, limit: int,
              candidates: int, mode: Mode = "hybrid", exact: bool = False,
              fusion: Fusion = DEFAULT_FUSION, cross_language: Condition | None = None) -> list[StoredHit]:
        """See ``VectorStore.query``."""
        with self._lock:
            return self.inner.query(dense, sparse, cond, limit=limit, candidates=candidates, mode=mode,
                                    exact=exact, fusion=fusion, cross_language=cross_language)

    def count(self) -> int:
        """See ``VectorStore.count``."""
        with self._lock:
            return self.inner.count()

    def flush(self) -> None:
        """See ``VectorStore.flush``."""
        with self._lock:
            self.inner.flush()

    def optimize(self) -> None:
        """See ``VectorStore.optimize``."""
        with self._lock:
            self.inner.optimize()

    def clear(self) -> None:
        """See ``VectorStore.clear``."""
        with self._lock:
            self.inner.clear()

    def close(self) -> None:
        """See ``VectorStore.close``."""
        with self._lock:
            self.inner.close()


class IndexService:
    """The store and the embedder that wrote it, opened once per process."""

    def __init__(self, store: VectorStore, embedder: Embedder, meta_path: Path | None = None) -> None:
        self.store = LockedStore(store)
        self.embedder = embedder
        self.meta_path = meta_path
        self._check_model()

    def _check_model(self) -> None:
        """An index holds one model's vectors; searching it with another model would return noise."""
        if self.meta_path is None:
            return
        if self.meta_path.exists():
            meta: dict[str, Any] = json.loads(self.meta_path.read_text())
            if meta.get("embedding_model") != self.embedder.name and self.store.count() > 0:
                raise RetrievalError(
                    f"the index was built with embedding model '{meta.get('embedding_model')}' but "
                    f"'{self.embedder.name}' is configured; run `crmind index --rebuild`")
        self.write_meta()

    def write_meta(self) -> None:
        """Record which model the index holds."""
        if self.meta_path is not None:
            self.meta_path.parent.mkdir(parents=True, exist_ok=True)
            self.meta_path.write_text(json.dumps({"embedding_model": self.embedder.name, "dim": self.embedder.dim}))

    def close(self) -> None:
        """Release the store (and its folder lock)."""
        self.store.close()
        close = getattr(self.embedder, "close", None)
        if close:
            close()


_service: IndexService | None = None
_service_lock = threading.Lock()


def open_service(embedding_model: str | None = None) -> IndexService:
    """A new owner of the configured index (the CLI uses this; the server uses ``get_service``)."""
    s = get_settings()
    embedder = make_embedder(embedding_model)
    if s.index_url and not s.qdrant_url:
        return _remote_service(s.index_url, s.index_api_key, embedder)
    store = open_store(embedder.dim)
    meta = s.data_dir / "qdrant" / f"{s.tenant}.meta.json" if not s.qdrant_url else None
    try:
        return IndexService(store, embedder, meta)
    except Exception:
        store.close()
        raise


def _remote_service(url: str, api_key: str | None, embedder: Embedder) -> IndexService:
    """A worker's view of the index another process owns; its vectors must be this embedder's."""
    from retrieval.remote import RemoteStore

    store = RemoteStore(url, api_key=api_key)
    try:
        owner_model = store.info()["embedding_model"]
        if owner_model != embedder.name:
            raise RetrievalError(f"the index owner at {url} holds '{owner_model}' vectors but this process is "
                                 f"configured for '{embedder.name}'; set the same CRMIND_EMBEDDING_MODEL on both")
    except Exception:
        store.close()
        raise
    return IndexService(store, embedder, None)


def get_service() -> IndexService:
    """The process-wide owner, opened on first use (raises ``IndexBusy`` if another process holds it)."""
    global _service
    with _service_lock:
        if _service is None:
            _service = open_service()
        return _service


def set_service(service: IndexService | None) -> None:
    """Install an owner (tests, or a server that built its own); closes nothing."""
    global _service
    with _service_lock:
        _service = service


def owner_status() -> dict[str, Any] | None:
    """The index owner's build status when another process owns the index (``CRMIND_INDEX_URL``), else None."""
    from retrieval.remote import RemoteStore

    store = get_service().store.inner
    if isinstance(store, RemoteStore):
        status: dict[str, Any] = store.info()["status"]
        return status
    return None


def close_service() -> None:
    """Close the process-wide owner, if open (server shutdown)."""
    global _service
    with _service_lock:
        if _service is not None:
            _service.close()
            _service = None
