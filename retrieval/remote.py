"""The index owner as a service, so several API worker processes can search one embedded shard.

The embedded engine lets one process open a shard folder. With several API workers, one process owns it
(``crmind index --follow --serve``: it builds the index, follows the outbox and answers queries), and each
worker talks to it through ``RemoteStore`` (``CRMIND_INDEX_URL``). Workers only read: every write to the
index comes from the outbox, which only the owner follows. A Qdrant server (``CRMIND_QDRANT_URL``) plays the
same part at scale; this is the layout for one machine with no Qdrant server.

The wire format is the ``VectorStore.query`` call itself: the permission filter travels inside the query,
as it does to Qdrant, so the owner never needs to know who asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from retrieval.documents import Chunk
from retrieval.embeddings import Matrix
from retrieval.errors import RetrievalError
from retrieval.filters import All, AnyOf, Condition, Match, Range
from retrieval.sparse import SparseVec
from retrieval.store import DEFAULT_FUSION, Fusion, Mode, StoredHit

# Deep enough for any permission tree crmind builds (a handful of levels); bounds what a request can nest.
MAX_DEPTH = 16
MAX_NODES = 10_000


def condition_to_json(cond: Condition) -> dict[str, Any]:
    """A filter tree as plain JSON."""
    if isinstance(cond, Match):
        return {"match": cond.key, "values": list(cond.values)}
    if isinstance(cond, Range):
        return {"range": cond.key, "gte": cond.gte, "lte": cond.lte}
    kind = "all" if isinstance(cond, All) else "any"
    return {kind: [condition_to_json(c) for c in cond.conditions]}


def condition_from_json(data: Any, _depth: int = 0, _budget: list[int] | None = None) -> Condition:
    """Parse ``condition_to_json``'s output; anything else is a ``RetrievalError`` naming what is wrong."""
    budget = _budget if _budget is not None else [MAX_NODES]
    budget[0] -= 1
    if _depth > MAX_DEPTH or budget[0] < 0:
        raise RetrievalError("filter is nested too deeply or too large")
    if not isinstance(data, dict) or len(data.keys() & {"match", "range", "all", "any"}) != 1:
        raise RetrievalError("a filter node must have exactly one of match, range, all, any")
    if "match" in data:
        values = data.get("values")
        if not isinstance(data["match"], str) or not isinstance(values, list) \
                or not all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in values):
            raise RetrievalError("match needs a key and a list of integer or string values")
        return Match(data["match"], tuple(values))
    if "range" in data:
        bounds = [data.get("gte"), data.get("lte")]
        if not isinstance(data["range"], str) or not all(
                b is None or (isinstance(b, (int, float)) and not isinstance(b, bool)) for b in bounds):
            raise RetrievalError("range needs a key and numeric bounds")
        return Range(data["range"], bounds[0], bounds[1])
    kind = "all" if "all" in data else "any"
    if not isinstance(data[kind], list):
        raise RetrievalError(f"{kind} needs a list of filters")
    children = tuple(condition_from_json(c, _depth + 1, budget) for c in data[kind])
    return All(children) if kind == "all" else AnyOf(children)


class RemoteStore:
    """``VectorStore`` reads answered by the index owner process; writes are refused (the owner follows)."""

    def __init__(self, url: str, *, api_key: str | None = None, timeout_s: float = 30.0,
                 client: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = client or httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RetrievalError(f"the index owner at {self.url} does not answer ({exc.__class__.__name__}); "
                                 "is `crmind index --follow --serve` running?") from exc
        if resp.status_code != 200:
            raise RetrievalError(f"the index owner at {self.url} answered {resp.status_code}: {resp.text[:200]}")
        return resp.json()

    def info(self) -> dict[str, Any]:
        """The owner's embedding model, chunk count and build status."""
        out: dict[str, Any] = self._call("GET", "/v1/index/info")
        return out

    def query(self, dense: Matrix | None, sparse: SparseVec | None, cond: Condition, *, limit: int,
              candidates: int, mode: Mode = "hybrid", exact: bool = False,
              fusion: Fusion = DEFAULT_FUSION, cross_language: Condition | None = None) -> list[StoredHit]:
        """See ``VectorStore.query``: one POST with the whole call."""
        body = {
            "dense": None if dense is None else [float(x) for x in np.asarray(dense).ravel()],
            "sparse": None if sparse is None else {"indices": list(sparse.indices), "values": list(sparse.values)},
            "cond": condition_to_json(cond), "limit": limit, "candidates": candidates, "mode": mode,
            "exact": exact, "fusion": {"k": fusion.k, "dense": fusion.dense, "sparse": fusion.sparse,
                                       "cross": fusion.cross},
            "cross_language": None if cross_language is None else condition_to_json(cross_language),
        }
        hits = self._call("POST", "/v1/index/query", json=body)["hits"]
        return [StoredHit(h["point_id"], float(h["score"]), h["payload"]) for h in hits]

    def count(self) -> int:
        """See ``VectorStore.count``."""
        return int(self.info()["chunks"])

    def records_where(self, key: str, value: int) -> set[str]:
        """Only the owner's indexer asks this; a worker never does."""
        raise self._not_owner()

    def upsert(self, chunks: Sequence[Chunk], dense: Matrix | None, sparse: Sequence[SparseVec]) -> None:
        """Refused: the index is written by its owner from the outbox."""
        raise self._not_owner()

    def delete_records(self, records: Sequence[str]) -> None:
        """Refused, as ``upsert``."""
        raise self._not_owner()

    def delete_stale_chunks(self, record: str, keep: int) -> None:
        """Refused, as ``upsert``."""
        raise self._not_owner()

    def delete_where(self, key: str, value: int) -> None:
        """Refused, as ``upsert``."""
        raise self._not_owner()

    def clear(self) -> None:
        """Refused, as ``upsert``."""
        raise self._not_owner()

    def flush(self) -> None:
        """Nothing is written here."""

    def optimize(self) -> None:
        """The owner optimizes its shard."""

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()

    def _not_owner(self) -> RetrievalError:
        return RetrievalError(f"this process searches the index owned by {self.url}; only the owner "
                              "(`crmind index --follow --serve`) writes it, from the outbox")
