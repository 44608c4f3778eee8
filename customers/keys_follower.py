"""Keep contacts' and leads' identity keys current between resolve runs, by following the outbox.

A resolve run rewrites every key; after it, each created, changed, merged or erased contact or lead gets its keys
rewritten from its outbox entry, whoever wrote it (a rep through the API, the assistant, a rule). So a new
contact proposed a minute after another is already findable as its likely duplicate.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from crm import outbox
from customers.identity import KEYS_CONSUMER, write_keys

CONSUMER = KEYS_CONSUMER
PEOPLE = ("contact", "lead")


def follow(session: Session, limit: int = 500) -> int:
    """Rewrite the keys of the people changed since the cursor, then advance it; returns entries read."""
    entries = outbox.pending(session, CONSUMER, limit)
    for record in sorted({(e.object_type, e.record_id) for e in entries if e.object_type in PEOPLE}):
        write_keys(session, *record)
    if entries:
        outbox.advance(session, CONSUMER, entries[-1].id)
    return len(entries)

