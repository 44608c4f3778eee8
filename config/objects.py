"""The CRM's object types and record references (``"contact:42"``), defined once for every layer."""

from __future__ import annotations

import re
from enum import StrEnum


class ObjectType(StrEnum):
    """Every kind of CRM record."""

    account = "account"
    contact = "contact"
    lead = "lead"
    opportunity = "opportunity"
    activity = "activity"
    case = "case"
    article = "article"
    event = "event"


OBJECT_TYPES: tuple[str, ...] = tuple(t.value for t in ObjectType)
# Records a proposal can create or change (events are facts that happened, never edited).
WRITABLE_TYPES: tuple[str, ...] = tuple(t for t in OBJECT_TYPES if t != "event")
# Records whose text is searchable (events carry no prose), in the order a first build indexes them:
# the note- and case-heavy types first, since that is where answers are.
INDEXED_ORDER: tuple[str, ...] = ("activity", "case", "article", "account", "opportunity", "contact", "lead")
INDEXED: frozenset[str] = frozenset(INDEXED_ORDER)
# URL segment of each object type in the API (``/v1/activities/12``).
PLURALS: dict[str, str] = {
    "account": "accounts", "contact": "contacts", "lead": "leads", "opportunity": "opportunities",
    "activity": "activities", "case": "cases", "article": "articles", "event": "events",
}
# What a ledger row may reference besides CRM records.
REF_KINDS: frozenset[str] = frozenset(OBJECT_TYPES) | {"proposal", "rule", "model"}
REF_PATTERN = r"^(" + "|".join(sorted(REF_KINDS)) + r"):[1-9][0-9]{0,9}$"
_REF_RE = re.compile(REF_PATTERN)


def ref(obj: str, record_id: int) -> str:
    """``ref("contact", 42) == "contact:42"``."""
    return f"{obj}:{record_id}"


def parse_ref(value: str) -> tuple[str, int]:
    """``"contact:42" -> ("contact", 42)``; ``ValueError`` for anything else."""
    if not _REF_RE.match(value):
        raise ValueError(f"'{value}' is not a record reference like contact:42")
    obj, _, ident = value.partition(":")
    return obj, int(ident)


def is_ref(value: str) -> bool:
    """True for ``"contact:42"``-shaped values whose kind the ledger indexes."""
    return bool(_REF_RE.match(value))
