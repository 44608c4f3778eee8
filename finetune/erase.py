"""Erased people never train a model: built sets are scrubbed on erase, and new builds leave them out.

``crm.privacy.erase_contact`` takes the stores above the CRM that keep personal text as scrubbers (``also=``);
the serving layer passes ``erase_scrubber(session)`` there (through ``agents.privacy.erase_contact``), so training
sets are scrubbed in the same erase as the CRM, the ledger and the conversations, while the CRM and the agents
never import ``finetune``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.models import Activity, Case, Contact
from finetune.files import MANIFEST, NEGATIVES, TRAIN, atomic_write, count, datasets_dir, jsonl, read_jsonl, write_json

_PERSON_CARRIERS: dict[str, Any] = {"activity": Activity, "case": Case}


def erased_contact_ids(session: Session) -> set[int]:
    """Every contact a data-subject erase has removed (``crm.privacy`` stamps ``erased_at``)."""
    return set(session.scalars(select(Contact.id).where(Contact.erased_at.is_not(None))))


def contacts_of(session: Session, refs: Iterable[str]) -> list[int]:
    """The people whose data the records ``refs`` hold: contacts named, and the contacts of activities and cases."""
    found: set[int] = set()
    carriers: dict[str, list[int]] = {}
    for r in refs:
        obj, _, ident = r.partition(":")
        if not ident.isdigit():
            continue
        if obj == "contact":
            found.add(int(ident))
        elif obj in _PERSON_CARRIERS:
            carriers.setdefault(obj, []).append(int(ident))
    for obj, ids in carriers.items():
        model = _PERSON_CARRIERS[obj]
        found |= {c for c in session.scalars(select(model.contact_id).where(model.id.in_(ids))) if c is not None}
    return sorted(found)


def _keep(ids: set[int], pattern: re.Pattern[str] | None) -> Callable[[dict[str, Any]], bool]:
    def keep(record: dict[str, Any]) -> bool:
        if ids & set(record.get("contact_ids") or ()):
            return False
        return pattern is None or not pattern.search(json.dumps(record, ensure_ascii=False))

    return keep


def _rewrite(path: Path, keep: Callable[[dict[str, Any]], bool]) -> tuple[list[dict[str, Any]], int]:
    """Keep only the records ``keep`` accepts (the file is replaced only when something goes)."""
    records = list(read_jsonl(path))
    kept = [r for r in records if keep(r)]
    if len(kept) < len(records):
        atomic_write(path, jsonl(kept))
    return kept, len(records) - len(kept)


def scrub_datasets(data_dir: Path | None, contact_id: int | Iterable[int],
                   pattern: re.Pattern[str] | None = None) -> int:
    """Remove every example and negative that holds an erased contact, from every set built so far.

    A record goes when its ``contact_ids`` name the contact, or when any of its text matches ``pattern`` (the
    erase pattern: the person's name, phone and email in any spelling, masked forms included). Files are replaced
    atomically and each manifest records the erase and its new counts. Returns how many records were removed.
    """
    keep = _keep({contact_id} if isinstance(contact_id, int) else set(contact_id), pattern)
    root = datasets_dir(data_dir)
    total = 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []:
        train, from_train = _rewrite(folder / TRAIN, keep)
        negatives, from_negatives = _rewrite(folder / NEGATIVES, keep)
        removed = from_train + from_negatives
        manifest = folder / MANIFEST
        if removed and manifest.exists():
            data = json.loads(manifest.read_text(encoding="utf-8"))
            data.update(examples=len(train), negatives=len(negatives), counts=count(train))
            data.setdefault("erasures", []).append({"at": datetime.now(UTC).isoformat(timespec="seconds"),
                                                    "train_removed": from_train,
                                                    "negatives_removed": from_negatives})
            write_json(manifest, data)
        total += removed
    return total


def erase_scrubber(session: Session, data_dir: Path | None = None) -> Callable[[re.Pattern[str], str], int]:
    """A ``crm.privacy`` scrubber for training sets, bound to the erase's transaction.

    It runs after the CRM has stamped the contact (and any linked duplicate) erased, so it removes the examples of
    every erased contact by id, and any example whose text matches the erase pattern. An erase of a person with
    linked records runs it once per record, the erased contact's own run last: it returns the running total, so
    the erase's summary counts every example removed.
    """
    removed = 0

    def scrub(pattern: re.Pattern[str], _replacement: str) -> int:
        nonlocal removed
        removed += scrub_datasets(data_dir, erased_contact_ids(session), pattern)
        return removed

    return scrub
