"""A keyword stand-in for the search index while building training data, shaped exactly like ``search_as``.

The dataset is built from the CRM database alone (the embedded index has one owner, the server), so
``search_notes`` reads the same chunks the indexer would make (``retrieval.documents.Loader``), keeps those that
mention a query word and the caller may read, and returns them as ``Hit``s with text masked for the caller. The
tool's output then has the shape the model sees in production; only the ranking differs. Nothing is written
(``search_as`` records a ledger row; a dataset build must not).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlalchemy.orm import Session

from crm.access import Principal, readable
from crm.models import Activity, Case
from crm.queries import escape_like
from retrieval.documents import Loader
from retrieval.search import Hit, reader_text

_WORDS = re.compile(r"[\w\u4e00-\u9fff]+")


def keyword_search(session: Session, principal: Principal, query: str, *, limit: int = 5,
                   account_id: int | None = None, date_from: datetime | None = None,
                   date_to: datetime | None = None, **_: Any) -> tuple[list[Hit], str]:
    """Chunks of readable activities and cases that contain a word of ``query``, newest first."""
    words = [w for w in _WORDS.findall(query) if len(w) >= 2][:6] or [query.strip()]
    loader = Loader(session)
    hits: list[Hit] = []
    sources: tuple[tuple[str, Any, Any, list[Any]], ...] = (
        ("activity", Activity, Activity.occurred_at, [Activity.subject, Activity.body]),
        ("case", Case, Case.created_at, [Case.subject, Case.description]))
    for obj, model, when, texts in sources:
        stmt = readable(principal, obj).where(or_(*(t.ilike(f"%{escape_like(w)}%", escape="\\")
                                                    for t in texts for w in words)))
        if account_id is not None:
            stmt = stmt.where(model.account_id == account_id)
        if date_from is not None:
            stmt = stmt.where(when >= date_from)
        if date_to is not None:
            stmt = stmt.where(when < date_to)
        for row in session.scalars(stmt.order_by(when.desc(), model.id).limit(limit)):
            for chunk in loader.chunks_of_row(obj, row):
                if any(w.lower() in chunk.text.lower() for w in words):
                    p = chunk.payload
                    hits.append(Hit(chunk_id=chunk.chunk_id, record=str(p["record"]), object_type=obj,
                                    record_id=int(p["record_id"]), account_id=p.get("account_id"), score=1.0,
                                    text=reader_text(principal, chunk.text),
                                    title=reader_text(principal, str(p.get("title", ""))),
                                    timestamp=p.get("timestamp")))
                    break  # one passage per record, as a ranked search mostly returns
    hits.sort(key=lambda h: h.timestamp or "", reverse=True)
    return hits[:limit], ""
