"""One ``VectorStore`` interface, two Qdrant backends with the same schema.

Schema: a collection per tenant; named vectors ``dense`` (cosine) and ``sparse`` (BM25 weights, IDF
modifier); payload indexes on the permission and filter fields.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from retrieval.documents import Chunk
from retrieval.embeddings import Matrix
from retrieval.errors import IndexBusy, RetrievalError
from retrieval.filters import All, AnyOf, Condition, Match, Range
from retrieval.sparse import SparseVec

Mode = Literal["hybrid", "dense", "sparse"]
DENSE, SPARSE = "dense", "sparse"
KEYWORD_FIELDS = ("object_type", "record", "language", "visibility")
INTEGER_FIELDS = ("owner_id", "team_id", "account_id", "contact_id", "record_id", "chunk_no", "ts")
RRF_K = 60
# Filtered queries whose matching vectors fit in this many KB (about 260k 384-d vectors per segment) are
# answered by the payload index plus a scan of the int8 copies (rescored with the float vectors) instead of the
# HNSW graph. On the 1M benchmark (benchmarks/retrieval.py) a rep's filter passes ~120k chunks: the graph walk found
# 0.62 of the true top 10 (p95 29 ms), the scan finds all of them (p95 87 ms; README, "Retrieval").
# Segments smaller than this get no graph at all (a tenant under ~260k chunks is always scanned exactly).
FULL_SCAN_KB = 400_000
# A Qdrant server keeps float vectors only (no int8 copy is configured there), so it scans only small filters.
SERVER_FULL_SCAN_KB = 30_000
# Graph search width when the graph is used: filtered walks need a wider beam than unfiltered ones.
MIN_EF = 128


@dataclass(frozen=True)
class EdgeTuning:
    """How the embedded engine stores and searches dense vectors (benchmarks/retrieval.py measures each knob).

    ``quantize`` keeps an int8 copy of every dense vector beside the float one; searches score the int8
    copy and rescore ``oversampling`` x the candidates with the float vectors. ``full_scan_kb`` is Qdrant's
    threshold below which a filtered query skips the HNSW graph for the payload index plus a scan.
    ``acorn`` lets a filtered graph walk step over neighbours the filter rejects (Qdrant's ACORN), for
    filters that pass more than the scan threshold. ``payload_m`` adds per-value graph links for the
    fields in ``payload_hnsw`` (Qdrant's multitenancy index); 0 leaves them out. ``principal`` names the integer
    field the optimizer orders each segment's points by (Qdrant's ``is_principal``), so one team's points are
    stored together and a scan of them reads contiguous memory.
    """

    quantize: bool = True
    oversampling: float = 2.0
    full_scan_kb: int = FULL_SCAN_KB
    acorn: bool = True
    acorn_max_selectivity: float = 0.4
    payload_m: int = 0
    payload_hnsw: tuple[str, ...] = ()
    principal: str | None = "team_id"


DEFAULT_TUNING = EdgeTuning()


@dataclass(frozen=True)
class Fusion:
    """Reciprocal rank fusion of the query's legs, as the engine computes it (Qdrant's weighted RRF).

    ``cross`` weighs an optional second dense leg that only ranks chunks in other languages than the
    query's (see ``VectorStore.query``'s ``cross_language``); 0 leaves it out.
    """

    k: int = RRF_K
    dense: float = 1.0
    sparse: float = 1.0
    cross: float = 0.0


DEFAULT_FUSION = Fusion()


@dataclass(frozen=True)
class StoredHit:
    """A point returned by a query, with its fused (or single-leg) score."""

    point_id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class Leg:
    """One prefetch of a query: which named vector, under which filter, with which weight in the fusion."""

    using: str
    cond: Condition
    weight: float


def plan_legs(dense: Matrix | None, sparse: SparseVec | None, cond: Condition, mode: Mode, fusion: Fusion,
              cross_language: Condition | None) -> list[Leg]:
    """The legs both backends run, in fusion order: dense, cross-language dense (hybrid only), sparse."""
    legs: list[Leg] = []
    if mode in ("hybrid", "dense") and dense is not None:
        legs.append(Leg(DENSE, cond, fusion.dense))
        if mode == "hybrid" and cross_language is not None and fusion.cross > 0:
            legs.append(Leg(DENSE, All((cond, cross_language)), fusion.cross))
    if mode in ("hybrid", "sparse") and sparse is not None and sparse.indices:
        legs.append(Leg(SPARSE, cond, fusion.sparse))
    return legs


class VectorStore(Protocol):
    """What retrieval needs from a vector engine."""

    def upsert(self, chunks: Sequence[Chunk], dense: Matrix | None, sparse: Sequence[SparseVec]) -> None:
        """Insert or overwrite chunks (point ids are deterministic); ``dense`` None writes the sparse leg alone."""
        ...

    def delete_records(self, records: Sequence[str]) -> None:
        """Remove every chunk of these records (``"activity:12"``)."""
        ...

    def delete_stale_chunks(self, record: str, keep: int) -> None:
        """Remove a record's chunks numbered ``keep`` and above (after it got shorter)."""
        ...

    def delete_where(self, key: str, value: int) -> None:
        """Remove every chunk whose payload ``key`` equals ``value``."""
        ...

    def records_where(self, key: str, value: int) -> set[str]:
        """The records that have a chunk with payload ``key`` equal to ``value``."""
        ...

    def query(self, dense: Matrix | None, sparse: SparseVec | None, cond: Condition, *, limit: int,
              candidates: int, mode: Mode = "hybrid", exact: bool = False,
              fusion: Fusion = DEFAULT_FUSION, cross_language: Condition | None = None) -> list[StoredHit]:
        """Top chunks within ``cond``: dense and sparse prefetch fused by RRF, in one engine query.

        ``fusion`` sets RRF's k and the legs' weights; it only matters in hybrid mode. In hybrid mode,
        ``cross_language`` (a condition on ``language``) adds a dense leg restricted to it, weighted
        ``fusion.cross``: a multilingual encoder ranks same-language text first, so a Chinese question
        about an English note needs a leg where only English notes compete.
        """
        ...

    def count(self) -> int:
        """Number of chunks stored."""
        ...

    def flush(self) -> None:
        """Make every accepted write durable."""
        ...

    def optimize(self) -> None:
        """Build indexes after a bulk load."""
        ...

    def clear(self) -> None:
        """Drop and recreate the collection (rebuild)."""
        ...

    def close(self) -> None:
        """Release files and handles."""
        ...


def _clean_payload(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if v is not None}


@dataclass(frozen=True)
class FilterDialect:
    """How one Qdrant API spells a filter: the two backends share the translation, not the classes."""

    match: Callable[[str, list[Any]], Any]
    range: Callable[[str, float | None, float | None], Any]
    filter: Callable[..., Any]


def to_filter(cond: Condition, d: FilterDialect) -> Any:
    """Translate a backend-neutral ``Condition`` into one Qdrant ``Filter``."""
    built = _translate(cond, d)
    return built if isinstance(cond, All | AnyOf) else d.filter(must=[built])


def _translate(cond: Condition, d: FilterDialect) -> Any:
    if isinstance(cond, Match):
        return d.match(cond.key, list(cond.values))
    if isinstance(cond, Range):
        return d.range(cond.key, cond.gte, cond.lte)
    if isinstance(cond, All):
        return d.filter(must=[_translate(c, d) for c in cond.conditions])
    if not cond.conditions:  # an empty AnyOf matches nothing
        return d.filter(must=[d.match("object_type", ["\x00none"])])
    return d.filter(should=[_translate(c, d) for c in cond.conditions])


def _edge_dialect() -> FilterDialect:
    import qdrant_edge as qe
    return FilterDialect(
        match=lambda key, values: qe.FieldCondition(
            key=key, match=qe.MatchValue(values[0]) if len(values) == 1 else qe.MatchAny(values)),
        range=lambda key, gte, lte: qe.FieldCondition(key=key, range=qe.RangeFloat(gte=gte, lte=lte)),
        filter=qe.Filter)


def _client_dialect() -> FilterDialect:
    from qdrant_client import models as m
    return FilterDialect(
        match=lambda key, values: m.FieldCondition(
            key=key, match=m.MatchValue(value=values[0]) if len(values) == 1 else m.MatchAny(any=values)),
        range=lambda key, gte, lte: m.FieldCondition(key=key, range=m.Range(gte=gte, lte=lte)),
        filter=m.Filter)


class _Filters:
    """The filter translation both backends share."""

    _dialect: FilterDialect

    def _to_filter(self, cond: Condition) -> Any:
        return to_filter(cond, self._dialect)


# --------------------------------------------------------------------------- embedded: qdrant-edge-py
class EdgeStore(_Filters):
    """Qdrant's engine in-process (``qdrant-edge-py``), one shard folder per tenant under the data dir."""

    def __init__(self, path: Path | str, dim: int, *, indexing_threads: int = 2,
                 tuning: EdgeTuning = DEFAULT_TUNING) -> None:
        self.path = Path(path)
        self.dim = dim
        self.indexing_threads = indexing_threads
        self.tuning = tuning
        self._dialect = _edge_dialect()
        self.shard: Any = self._open()

    def _config(self) -> Any:
        import qdrant_edge as qe
        t = self.tuning
        quant = qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=0.99, always_ram=True) if t.quantize else None
        return qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=self.dim, distance=qe.Distance.Cosine,
                                                quantization_config=quant)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            hnsw_config=qe.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=t.full_scan_kb,
                                           max_indexing_threads=self.indexing_threads,
                                           payload_m=t.payload_m or None),
        )

    def _open(self) -> Any:
        import qdrant_edge as qe
        try:
            if (self.path / "edge_config.json").exists() or any(self.path.glob("segments*")):
                return qe.EdgeShard.load(str(self.path))
            self.path.mkdir(parents=True, exist_ok=True)
            shard = qe.EdgeShard.create(str(self.path), self._config())
        except Exception as exc:
            if "WouldBlock" in str(exc) or "lock" in str(exc).lower():
                raise IndexBusy("the index is owned by another crmind process (the server?); stop it or use "
                                "GET /v1/search") from exc
            raise
        for name in KEYWORD_FIELDS + INTEGER_FIELDS:
            shard.update(qe.UpdateOperation.create_field_index(name, self._index_params(name)))
        return shard

    def _index_params(self, name: str) -> Any:
        """A payload field's index: the plain type unless the tuning sets per-value graph links or the principal.

        With payload_m, Qdrant links a graph per value of every indexed field unless told not to; only the fields
        named in payload_hnsw get those links (each one costs build time).
        """
        import qdrant_edge as qe
        t = self.tuning
        hnsw = name in t.payload_hnsw if t.payload_m > 0 else None
        if name in KEYWORD_FIELDS:
            return qe.PayloadSchemaType.Keyword if hnsw is None else qe.KeywordIndexParams(enable_hnsw=hnsw)
        principal = name == t.principal or None
        if hnsw is None and principal is None:
            return qe.PayloadSchemaType.Integer
        return qe.IntegerIndexParams(lookup=True, range=True, enable_hnsw=hnsw, is_principal=principal)

    def upsert(self, chunks: Sequence[Chunk], dense: Matrix | None, sparse: Sequence[SparseVec]) -> None:
        """Upsert points with both named vectors (or the sparse one alone: a point may lack the dense one)."""
        import qdrant_edge as qe
        rows = dense if dense is not None else [None] * len(chunks)
        points = [qe.Point(c.point_id, {**({DENSE: d.tolist()} if d is not None else {}),
                                        SPARSE: qe.SparseVector(s.indices, s.values)}, _clean_payload(c.payload))
                  for c, d, s in zip(chunks, rows, sparse, strict=True)]
        if points:
            self.shard.update(qe.UpdateOperation.upsert_points(points))

    def delete_records(self, records: Sequence[str]) -> None:
        """Delete by the indexed ``record`` field."""
        import qdrant_edge as qe
        if records:
            self.shard.update(qe.UpdateOperation.delete_points_by_filter(
                self._to_filter(Match("record", tuple(records)))))

    def delete_stale_chunks(self, record: str, keep: int) -> None:
        """Delete chunk numbers >= keep of one record."""
        import qdrant_edge as qe
        self.shard.update(qe.UpdateOperation.delete_points_by_filter(
            self._to_filter(All((Match("record", (record,)), Range("chunk_no", gte=keep))))))

    def delete_where(self, key: str, value: int) -> None:
        """Delete by one payload value."""
        import qdrant_edge as qe
        self.shard.update(qe.UpdateOperation.delete_points_by_filter(self._to_filter(Match(key, (value,)))))

    def records_where(self, key: str, value: int) -> set[str]:
        """Scroll the matching points' ``record`` field."""
        import qdrant_edge as qe
        out: set[str] = set()
        offset = None
        while True:
            points, offset = self.shard.scroll(qe.ScrollRequest(
                offset=offset, limit=1000, filter=self._to_filter(Match(key, (value,))),
                with_payload=True, with_vector=False))
            out.update(p.payload["record"] for p in points if p.payload)
            if offset is None:
                return out

    def query(self, dense: Matrix | None, sparse: SparseVec | None, cond: Condition, *, limit: int,
              candidates: int, mode: Mode = "hybrid", exact: bool = False,
              fusion: Fusion = DEFAULT_FUSION, cross_language: Condition | None = None) -> list[StoredHit]:
        """One engine query: prefetch dense (and cross-language dense) and sparse under the filter, fuse with RRF."""
        import qdrant_edge as qe
        flt = self._to_filter(cond)
        params = self._params(candidates, exact)
        plan = plan_legs(dense, sparse, cond, mode, fusion, cross_language)
        vector = dense.tolist() if dense is not None else []
        legs: list[Any] = []
        for leg in plan:
            if leg.using == DENSE:
                legs.append(qe.Prefetch(limit=candidates, query=qe.Query.Nearest(vector, using=DENSE),
                                        filter=self._to_filter(leg.cond), params=params))
            else:
                assert sparse is not None
                legs.append(qe.Prefetch(limit=candidates,
                                        query=qe.Query.Nearest(qe.SparseVector(sparse.indices, sparse.values),
                                                               using=SPARSE), filter=flt))
        if not legs:
            return []
        if len(legs) == 1:
            leg = legs[0]
            request = qe.QueryRequest(limit=limit, query=leg.query, filter=flt, with_payload=True,
                                      params=params if mode == "dense" else None)
        else:
            rrf = qe.Fusion.Rrf(k=fusion.k, weights=[leg.weight for leg in plan])
            request = qe.QueryRequest(limit=limit, query=rrf,  # type: ignore[arg-type]
                                      prefetches=legs, filter=flt,
                                      with_payload=True)
        return [StoredHit(str(p.id), float(p.score), dict(p.payload or {})) for p in self.shard.query(request)]

    def _params(self, candidates: int, exact: bool) -> Any:
        import qdrant_edge as qe
        t = self.tuning
        if exact:  # the ground truth: float vectors, every point
            return qe.SearchParams(exact=True, quantization=qe.QuantizationSearchParams(ignore=True)
                                   if t.quantize else None)
        return qe.SearchParams(
            hnsw_ef=max(MIN_EF, candidates),
            quantization=qe.QuantizationSearchParams(rescore=True, oversampling=t.oversampling)
            if t.quantize else None,
            acorn=qe.AcornSearchParams(enable=True, max_selectivity=t.acorn_max_selectivity) if t.acorn else None)

    def count(self) -> int:
        """Exact point count."""
        import qdrant_edge as qe
        return int(self.shard.count(qe.CountRequest(exact=True)))

    def flush(self) -> None:
        """Flush segments to disk (the WAL already makes accepted writes survive a crash)."""
        self.shard.flush()

    def optimize(self) -> None:
        """Build HNSW and payload indexes (Edge has no background optimizer)."""
        self.shard.optimize()

    def clear(self) -> None:
        """Delete the shard folder and create an empty one."""
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
        self.shard = self._open()

    def close(self) -> None:
        """Close the shard, releasing its folder lock."""
        if self.shard is not None:
            self.shard.close()
            self.shard = None


# --------------------------------------------------------------------------- qdrant-client
class ClientStore(_Filters):
    """A Qdrant server or cluster through ``qdrant-client``; ``location=":memory:"``/``path`` is local mode."""

    def __init__(self, dim: int, *, collection: str, url: str | None = None, api_key: str | None = None,
                 path: Path | str | None = None, location: str | None = None) -> None:
        from qdrant_client import QdrantClient

        self.dim = dim
        self.collection = collection
        self._dialect = _client_dialect()
        # Local mode is brute force: payload indexes and search params have no effect there.
        self.local = not url
        if url:
            self.client: Any = QdrantClient(url=url, api_key=api_key)
        elif path is not None:
            self.client = QdrantClient(path=str(path))
        else:
            self.client = QdrantClient(location=location or ":memory:")
        if not self.client.collection_exists(collection):
            self._create()

    def _create(self) -> None:
        from qdrant_client import models as m
        self.client.create_collection(
            self.collection,
            vectors_config={DENSE: m.VectorParams(size=self.dim, distance=m.Distance.COSINE)},
            sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
            hnsw_config=m.HnswConfigDiff(m=16, ef_construct=100, full_scan_threshold=SERVER_FULL_SCAN_KB),
        )
        if self.local:
            return
        for name in KEYWORD_FIELDS:
            self.client.create_payload_index(self.collection, name, m.PayloadSchemaType.KEYWORD)
        for name in INTEGER_FIELDS:
            self.client.create_payload_index(self.collection, name, m.PayloadSchemaType.INTEGER)

    def upsert(self, chunks: Sequence[Chunk], dense: Matrix | None, sparse: Sequence[SparseVec]) -> None:
        """Upsert points with both named vectors, or the sparse one alone (waits for the write)."""
        from qdrant_client import models as m
        rows = dense if dense is not None else [None] * len(chunks)
        points = [m.PointStruct(id=c.point_id, payload=_clean_payload(c.payload),
                                vector={**({DENSE: d.tolist()} if d is not None else {}),
                                        SPARSE: m.SparseVector(indices=s.indices, values=s.values)})
                  for c, d, s in zip(chunks, rows, sparse, strict=True)]
        if points:
            self.client.upsert(self.collection, points=points, wait=True)

    def _delete(self, cond: Condition) -> None:
        from qdrant_client import models as m
        self.client.delete(self.collection, points_selector=m.FilterSelector(filter=self._to_filter(cond)), wait=True)

    def delete_records(self, records: Sequence[str]) -> None:
        """Delete by the indexed ``record`` field."""
        if records:
            self._delete(Match("record", tuple(records)))

    def delete_stale_chunks(self, record: str, keep: int) -> None:
        """Delete chunk numbers >= keep of one record."""
        self._delete(All((Match("record", (record,)), Range("chunk_no", gte=keep))))

    def delete_where(self, key: str, value: int) -> None:
        """Delete by one payload value."""
        self._delete(Match(key, (value,)))

    def records_where(self, key: str, value: int) -> set[str]:
        """Scroll the matching points' ``record`` field."""
        out: set[str] = set()
        offset = None
        while True:
            points, offset = self.client.scroll(self.collection, scroll_filter=self._to_filter(Match(key, (value,))),
                                                limit=1000, offset=offset, with_payload=True, with_vectors=False)
            out.update(p.payload["record"] for p in points if p.payload)
            if offset is None:
                return out

    def query(self, dense: Matrix | None, sparse: SparseVec | None, cond: Condition, *, limit: int,
              candidates: int, mode: Mode = "hybrid", exact: bool = False,
              fusion: Fusion = DEFAULT_FUSION, cross_language: Condition | None = None) -> list[StoredHit]:
        """One ``query_points`` call: dense (and cross-language dense) and sparse prefetch, fused by RRF."""
        from qdrant_client import models as m
        flt = self._to_filter(cond)
        params = None if self.local else m.SearchParams(hnsw_ef=max(MIN_EF, candidates), exact=exact)
        plan = plan_legs(dense, sparse, cond, mode, fusion, cross_language)
        vector = dense.tolist() if dense is not None else []
        legs: list[Any] = []
        for leg in plan:
            if leg.using == DENSE:
                legs.append(m.Prefetch(query=vector, using=DENSE, filter=self._to_filter(leg.cond),
                                       limit=candidates, params=params))
            else:
                assert sparse is not None
                legs.append(m.Prefetch(query=m.SparseVector(indices=sparse.indices, values=sparse.values),
                                       using=SPARSE, filter=flt, limit=candidates))
        if not legs:
            return []
        if len(legs) == 1:
            res = self.client.query_points(self.collection, query=legs[0].query, using=legs[0].using,
                                           query_filter=flt, limit=limit, with_payload=True, search_params=params)
        else:
            rrf = m.Rrf(k=fusion.k, weights=[leg.weight for leg in plan])
            res = self.client.query_points(self.collection, prefetch=legs, query=m.RrfQuery(rrf=rrf),
                                           query_filter=flt, limit=limit, with_payload=True)
        return [StoredHit(str(p.id), float(p.score), dict(p.payload or {})) for p in res.points]

    def count(self) -> int:
        """Exact point count."""
        return int(self.client.count(self.collection, exact=True).count)

    def flush(self) -> None:
        """Writes were made with ``wait=True``; nothing to do."""

    def optimize(self) -> None:
        """The server optimizes in the background; nothing to do."""

    def clear(self) -> None:
        """Drop and recreate the collection."""
        self.client.delete_collection(self.collection)
        self._create()

    def close(self) -> None:
        """Close the client."""
        self.client.close()


def open_store(dim: int, *, url: str | None = None, api_key: str | None = None, data_dir: Path | None = None,
               tenant: str | None = None) -> VectorStore:
    """The configured store: a Qdrant server when ``CRMIND_QDRANT_URL`` is set, else the embedded engine."""
    from config.settings import get_settings
    s = get_settings()
    tenant = tenant or s.tenant
    if not tenant.replace("-", "").replace("_", "").isalnum():
        raise RetrievalError(f"tenant name '{tenant}' must be letters, digits, '-' or '_'")
    url = url if url is not None else s.qdrant_url
    if url:
        return ClientStore(dim, collection=f"crmind_{tenant}", url=url, api_key=api_key or s.qdrant_api_key)
    return EdgeStore((data_dir or s.data_dir) / "qdrant" / tenant, dim)


def l2_normalize(x: Matrix) -> Matrix:
    """Unit-length rows (cosine on the engine side expects nothing else, but exact baselines do)."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    out: Matrix = (x / np.maximum(norms, 1e-12)).astype(np.float32)
    return out
