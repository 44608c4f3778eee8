"""Where rules may send records (lead pools, case queues): ``catalog.yaml`` plus the pools already in the CRM."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml
from sqlalchemy import distinct, select
from sqlalchemy.orm import Session

from crm.models import Lead

CATALOG_FILE = Path(__file__).resolve().parent / "catalog.yaml"


@dataclass(frozen=True)
class Destination:
    """A pool or queue: its key (stored on records), label, and the words managers use for it."""

    key: str
    label: str
    words: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalog:
    """The pools and queues a rule may name."""

    pools: tuple[Destination, ...] = ()
    queues: tuple[Destination, ...] = field(default_factory=tuple)

    def pool(self, name: str) -> str | None:
        """The pool key for a word a manager used, or None."""
        return _lookup(self.pools, name)

    def queue(self, name: str) -> str | None:
        """The queue key for a word a manager used, or None."""
        return _lookup(self.queues, name)

    @property
    def pool_keys(self) -> frozenset[str]:
        """Every pool key."""
        return frozenset(p.key for p in self.pools)


def _lookup(items: tuple[Destination, ...], name: str) -> str | None:
    wanted = name.strip().lower()
    for item in items:
        if wanted == item.key or wanted in item.words or wanted == item.label.lower():
            return item.key
    return None


def _destinations(raw: dict[str, dict[str, object]]) -> tuple[Destination, ...]:
    out = []
    for key, spec in raw.items():
        words = [str(w).lower() for lang in ("en", "zh") for w in (spec.get(lang) or [])]  # type: ignore[attr-defined]
        out.append(Destination(key=key, label=str(spec.get("label", key)), words=tuple(words)))
    return tuple(out)


@lru_cache(maxsize=1)
def file_catalog() -> Catalog:
    """The catalog file alone (what the parser uses when no database is at hand)."""
    data = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
    return Catalog(pools=_destinations(data.get("pools", {})), queues=_destinations(data.get("queues", {})))


def load_catalog(session: Session | None = None) -> Catalog:
    """The file's pools and queues, plus any pool already used on a lead in the CRM."""
    base = file_catalog()
    if session is None:
        return base
    known = base.pool_keys
    extra = [Destination(key=p, label=p, words=(p.lower(),))
             for p in session.scalars(select(distinct(Lead.pool))) if p and p not in known]
    return Catalog(pools=base.pools + tuple(extra), queues=base.queues)
