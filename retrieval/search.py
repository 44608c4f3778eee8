"""Hybrid, permission-filtered search: dense + sparse prefetch fused by RRF in one query, then masking."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from config.objects import PLURALS
from config.settings import get_settings
from crm.access import Principal, text_for_reader
from retrieval.chunking import is_chinese
from retrieval.embeddings import Embedder
from retrieval.filters import Condition, Match, search_filter
from retrieval.sparse import encode_query, function_word_language
from retrieval.store import Fusion, Mode, VectorStore


@dataclass(frozen=True)
class Hit:
    """One chunk as the reader may see it, with a link to its record."""

    chunk_id: str
    record: str
    object_type: str
    record_id: int
    account_id: int | None
    score: float
    text: str
    title: str
    timestamp: str | None

    @property
    def link(self) -> str:
        """API path of the record (``/v1/activities/123``)."""
        return f"/v1/{PLURALS.get(self.object_type, self.object_type)}/{self.record_id}"

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


class Reranker(Protocol):
    """Re-scores (query, passage) pairs; higher is better."""

    def score(self, query: str, passages: Sequence[str]) -> Sequence[float]:
        """One score per passage."""
        ...


class CrossEncoderReranker:
    """A sentence-transformers cross-encoder loaded from a local folder (none ships with weights today)."""

    def __init__(self, model_dir: str, batch_size: int = 32) -> None:
        from sentence_transformers import CrossEncoder

        self.model: Any = CrossEncoder(model_dir, device="cpu", local_files_only=True)
        self.batch_size = batch_size

    def score(self, query: str, passages: Sequence[str]) -> Sequence[float]:
        """Cross-encoder scores of each (query, passage) pair."""
        scores = self.model.predict([(query, p) for p in passages], batch_size=self.batch_size,
                                    show_progress_bar=False)
        return [float(s) for s in scores]


# ``config.masking`` finds phone numbers only at a non-word boundary, and CJK characters count as word
# characters, so "手机是13987654321" escaped it. An invisible separator between CJK and digits gives the
# one masking rule its boundary; the separators are removed afterwards.
_SEP = "\u2063"
_CJK_DIGIT = re.compile(r"(?<=[\u3400-\u9fff\uff00-\uffef\u3000-\u303f])(?=[0-9+])|(?<=[0-9])(?=[\u3400-\u9fff])")


def reader_text(principal: Principal, text: str) -> str:
    """Chunk text as ``principal`` may read it (``crm.access.text_for_reader``, CJK-safe)."""
    if not principal.masks_personal_data:
        return text
    return text_for_reader(principal, _CJK_DIGIT.sub(_SEP, text)).replace(_SEP, "")


def _hit(principal: Principal, payload: dict[str, Any], score: float) -> Hit:
    record = str(payload["record"])
    return Hit(chunk_id=f"{record}#{payload.get('chunk_no', 0)}", record=record,
               object_type=str(payload["object_type"]), record_id=int(payload["record_id"]),
               account_id=payload.get("account_id"), score=score,
               text=reader_text(principal, str(payload.get("text", ""))),
               title=reader_text(principal, str(payload.get("title", ""))),
               timestamp=payload.get("timestamp"))


def fusion_for(language: str | None) -> Fusion:
    """The hybrid fusion crmind runs for a question in ``language``: RRF's k and the legs' weights from settings.

    The cross-language leg's weight depends on the question's language (None: no cross leg).
    """
    settings = get_settings()
    cross = settings.hybrid_cross_language_weights.get(language, 0.0) if language else 0.0
    return Fusion(k=settings.hybrid_rrf_k, sparse=settings.hybrid_sparse_weight, cross=cross)


def configured_fusion(query: str = "") -> Fusion:
    """``fusion_for`` the language ``query`` is written in."""
    return fusion_for(query_language(query) if query else None)


def query_language(query: str) -> str:
    """The language a question is written in (``en``/``zh``, as chunks are tagged), not that of the names in it."""
    return function_word_language(query) or ("zh" if is_chinese(query) else "en")


def cross_language_filter(language: str) -> Condition | None:
    """Chunks in the indexed languages other than ``language`` (None when there are none)."""
    others = tuple(lang for lang in get_settings().search_languages if lang != language)
    return Match("language", others) if others else None


def search(principal: Principal, query: str, *, store: VectorStore, embedder: Embedder,
           account_id: int | None = None, object_types: Iterable[str] | None = None,
           date_from: date | datetime | None = None, date_to: date | datetime | None = None,
           limit: int = 10, mode: Mode = "hybrid", reranker: Reranker | None = None,
           candidates: int | None = None, fusion: Fusion | None = None) -> list[Hit]:
    """Top chunks ``principal`` may read, best first; text masked for the reader's role.

    ``fusion`` is the hybrid RRF's k and leg weights (default: ``fusion_for`` the question's language). Hybrid search
    runs three legs: dense over everything, dense over the other language's chunks only (for a multilingual
    embedder and a question language with a cross-language weight), and BM25.

    The permission filter is part of the engine query (each prefetch leg and the fusion), never a
    post-filter. With a reranker, the fused top ``candidates`` are re-scored and cut to ``limit``.
    """
    cond = search_filter(principal, account_id=account_id, object_types=object_types,
                         date_from=date_from, date_to=date_to)
    pool = candidates or max(50, limit * 5)
    dense = embedder.embed_query(query) if mode in ("hybrid", "dense") else None
    sparse = encode_query(query) if mode in ("hybrid", "sparse") else None
    fetch = pool if reranker else limit
    language = query_language(query)
    stored = store.query(dense, sparse, cond, limit=fetch, candidates=pool, mode=mode,
                         fusion=fusion or fusion_for(language),
                         cross_language=cross_language_filter(language) if embedder.multilingual else None)
    hits = [_hit(principal, h.payload, h.score) for h in stored]
    if reranker and hits:
        scores = reranker.score(query, [h.text for h in hits])
        order = sorted(range(len(hits)), key=lambda i: -scores[i])
        hits = [Hit(**{**hits[i].as_dict(), "score": float(scores[i])}) for i in order]
    return hits[:limit]


def search_logged(session: Session, principal: Principal, query: str, *, store: VectorStore, embedder: Embedder,
                  ledger_parent: str | None = None, thread_id: str | None = None,
                  **options: Any) -> tuple[list[Hit], str]:
    """``search`` plus a ledger row (kind ``retrieval``) whose evidence lists the records and chunks returned.

    The row is added in ``session``'s transaction; the caller commits. Returns the hits and the row id.
    """
    from ledger import append

    started = time.perf_counter()
    hits = search(principal, query, store=store, embedder=embedder, **options)
    language = query_language(query)
    latency = (time.perf_counter() - started) * 1000
    records = list(dict.fromkeys(h.record for h in hits))
    row = append(session, kind="retrieval", actor=principal.actor, input_summary=query,
                 output={"hits": [{"chunk_id": h.chunk_id, "score": round(h.score, 4)} for h in hits],
                         "mode": options.get("mode", "hybrid"), "model": embedder.name,
                         "fusion": asdict(options.get("fusion") or fusion_for(language)),
                         "question_language": language},
                 evidence=records + [f"chunk:{h.chunk_id}" for h in hits], parent_id=ledger_parent,
                 thread_id=thread_id, model_id=f"embedding:{embedder.name}", latency_ms=latency)
    return hits, row.id


def search_as(session: Session, principal: Principal, query: str, *, ledger_parent: str | None = None,
              thread_id: str | None = None, **options: Any) -> tuple[list[Hit], str]:
    """Search the process-wide index as ``principal`` and record it; the one entry point for routes, CLI and tools.

    Adds the ledger row in ``session``'s transaction (the caller commits). Raises ``IndexBusy`` or
    ``RetrievalError`` when the index can't be opened.
    """
    from retrieval.service import get_service

    service = get_service()
    return search_logged(session, principal, query, store=service.store, embedder=service.embedder,
                         ledger_parent=ledger_parent, thread_id=thread_id, **options)
