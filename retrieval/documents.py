"""CRM rows to documents to chunks, with the payload that permissions and filters need."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.masking import mask_text
from config.objects import INDEXED_ORDER, ref
from config.settings import Role, get_settings
from crm.access import READABLE
from crm.models import (
    Account,
    Activity,
    Case,
    Contact,
    KnowledgeArticle,
    Lead,
    Opportunity,
)
from retrieval.chunking import chunk_text, is_chinese

_POINT_NS = uuid.UUID("7d0c3f4e-1f7a-4a5e-9a51-3c0b6f1c9e21")


@dataclass(frozen=True)
class Document:
    """One CRM record's searchable text and the facts that decide who may read it."""

    object_type: str
    record_id: int
    text: str
    title: str = ""
    account_id: int | None = None
    contact_id: int | None = None
    owner_id: int | None = None
    team_id: int | None = None
    language: str = "en"
    timestamp: datetime | None = None

    @property
    def record(self) -> str:
        """``"activity:123"``: the record reference used in links, ledger evidence and deletes."""
        return ref(self.object_type, self.record_id)


@dataclass(frozen=True)
class Chunk:
    """A piece of a document, ready to embed and store."""

    chunk_id: str
    text: str
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def point_id(self) -> str:
        """Deterministic point id, so replaying an upsert overwrites instead of duplicating."""
        return point_id(self.chunk_id)


def point_id(chunk_id: str) -> str:
    """UUID derived from the tenant and chunk id."""
    return str(uuid.uuid5(_POINT_NS, f"{get_settings().tenant}/{chunk_id}"))


def _visible_to_all(obj: str, field_name: str) -> bool:
    """Profile text only carries fields every reading role sees in clear (no masked or hidden ones)."""
    s = get_settings()
    roles: list[Role] = [role for role, objs in READABLE.items() if obj in objs]  # type: ignore[misc]
    return all(s.visibility(obj, field_name, role) == "visible" for role in roles)


def _profile(obj: str, pairs: list[tuple[str, str, Any]]) -> str:
    return "; ".join(f"{label}: {value}" for name, label, value in pairs
                     if value not in (None, "") and _visible_to_all(obj, name))


def _as_datetime(value: datetime | date | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.combine(value, time())


def document_for(obj: str, row: Any, account_name: str = "", contact_erased: bool = False) -> Document | None:
    """The document of one row, or None when it has nothing to index (an erased contact, a merge tombstone)."""
    if getattr(row, "merged_into_id", None) is not None:
        return None  # its survivor is indexed; a tombstone would show up twice in search
    common: dict[str, Any] = {"owner_id": getattr(row, "owner_id", None), "team_id": getattr(row, "team_id", None),
                              "language": getattr(row, "language", "en") or "en"}
    if obj == "activity":
        text = "\n".join(p for p in (row.subject, row.body) if p)
        doc = Document(obj, row.id, text, title=row.subject, account_id=row.account_id,
                       contact_id=row.contact_id, timestamp=row.occurred_at, **common)
    elif obj == "case":
        parts = [row.subject, row.description]
        if row.resolution:
            parts.append(("解决方案：" if is_chinese(row.resolution) else "Resolution: ") + row.resolution)
        # internal_notes are hidden from reps, so they never enter the index.
        doc = Document(obj, row.id, "\n".join(p for p in parts if p), title=row.subject,
                       account_id=row.account_id, contact_id=row.contact_id, timestamp=row.created_at, **common)
    elif obj == "article":
        doc = Document(obj, row.id, f"{row.title}\n{row.body}", title=row.title, language=row.language,
                       timestamp=row.updated_at)
    elif obj == "account":
        text = _profile(obj, [("name", "Account", row.name), ("industry", "Industry", row.industry),
                              ("city", "City", row.city), ("country", "Country", row.country),
                              ("tier", "Tier", row.tier), ("employees", "Employees", row.employees),
                              ("annual_revenue", "Annual revenue", row.annual_revenue),
                              ("description", "About", row.description)])
        doc = Document(obj, row.id, text, title=row.name, account_id=row.id, timestamp=row.updated_at, **common)
    elif obj == "opportunity":
        text = _profile(obj, [("name", "Opportunity", row.name), ("account_id", "Account", account_name),
                              ("stage", "Stage", row.stage), ("amount", "Amount", f"{row.amount} {row.currency}"),
                              ("close_date", "Close date", row.close_date), ("product", "Product", row.product),
                              ("competitor", "Competitor", row.competitor)])
        doc = Document(obj, row.id, text, title=row.name, account_id=row.account_id,
                       timestamp=_as_datetime(row.close_date), **common)
    elif obj == "contact":
        if row.erased_at is not None:
            return None
        # Phone and email never enter the index: some roles see them masked.
        text = _profile(obj, [("name", "Contact", row.name), ("title", "Title", row.title),
                              ("account_id", "Account", account_name)])
        doc = Document(obj, row.id, text, title=row.name, account_id=row.account_id, contact_id=row.id,
                       timestamp=row.updated_at, **common)
    elif obj == "lead":
        text = _profile(obj, [("name", "Lead", row.name), ("company", "Company", row.company),
                              ("source", "Source", row.source), ("status", "Status", row.status)])
        doc = Document(obj, row.id, text, title=row.name, timestamp=row.updated_at, **common)
    else:
        return None
    if contact_erased:
        # The erased person's phone and email must not come back through linked records' text.
        doc = Document(**{**doc.__dict__, "text": mask_text(doc.text)})
    return doc if doc.text.strip() else None


def chunks_for(doc: Document, account_name: str = "") -> list[Chunk]:
    """Cut a document into sentence-aware chunks; each carries the account name as context."""
    header = f"[{account_name}] " if account_name and doc.object_type not in ("account", "opportunity") else ""
    ts = doc.timestamp
    payload_base: dict[str, Any] = {
        "record": doc.record, "object_type": doc.object_type, "record_id": doc.record_id,
        "account_id": doc.account_id, "contact_id": doc.contact_id, "owner_id": doc.owner_id,
        "team_id": doc.team_id, "language": "zh" if is_chinese(doc.text) else doc.language,
        "visibility": "everyone" if doc.object_type == "article" else "team",
        "timestamp": ts.isoformat() if ts else None, "ts": int(ts.timestamp()) if ts else None,
        "title": doc.title,
    }
    pieces = chunk_text(doc.text)
    return [Chunk(f"{doc.record}#{i}", header + piece, {**payload_base, "chunk_no": i, "text": header + piece})
            for i, piece in enumerate(pieces)]


_MODELS: dict[str, Any] = {"activity": Activity, "case": Case, "article": KnowledgeArticle, "account": Account,
                           "opportunity": Opportunity, "contact": Contact, "lead": Lead}


class Loader:
    """Reads CRM rows as the indexer (a system reader), with account names and erased contacts cached."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._accounts: dict[int, str] = {i: n for i, n in session.execute(select(Account.id, Account.name))}
        self._erased: set[int] = set(session.scalars(select(Contact.id).where(Contact.erased_at.is_not(None))))

    def account_name(self, account_id: int | None) -> str:
        """Name of an account (cached), or ``""``."""
        if account_id is None:
            return ""
        if account_id not in self._accounts:
            self._accounts[account_id] = self.session.scalar(
                select(Account.name).where(Account.id == account_id)) or ""
        return self._accounts[account_id]

    def chunks_of_row(self, obj: str, row: Any) -> list[Chunk]:
        """All chunks of one row (empty when it has no text)."""
        account_id = row.id if obj == "account" else getattr(row, "account_id", None)
        name = self.account_name(account_id)
        contact_id = getattr(row, "contact_id", None)
        doc = document_for(obj, row, account_name=name, contact_erased=contact_id in self._erased)
        return chunks_for(doc, account_name=name) if doc else []

    def chunks_of(self, obj: str, record_id: int) -> list[Chunk] | None:
        """Chunks of one record; None when the record no longer exists."""
        row = self.session.get(_MODELS[obj], record_id, populate_existing=True)
        if row is None:
            return None
        if obj == "contact" and row.erased_at is not None:
            self._erased.add(row.id)
        return self.chunks_of_row(obj, row)

    def count(self) -> int:
        """How many rows a full build will read."""
        from sqlalchemy import func
        return sum(self.session.scalar(select(func.count()).select_from(m)) or 0 for m in _MODELS.values())

    def page(self, obj: str, after_id: int, limit: int) -> list[Any]:
        """Up to ``limit`` rows of ``obj`` with ids above ``after_id``, in id order."""
        model = _MODELS[obj]
        return list(self.session.scalars(select(model).where(model.id > after_id).order_by(model.id).limit(limit)))

    def iter_all(self, batch: int = 500) -> Iterator[tuple[str, Any]]:
        """Every indexable row, type by type, in id order."""
        for obj in INDEXED_ORDER:
            last = 0
            while True:
                rows = self.page(obj, last, batch)
                if not rows:
                    break
                for row in rows:
                    yield obj, row
                last = rows[-1].id
                self.session.expunge_all()
