"""Merging duplicate records, as a proposal a person approves, and unmerging it exactly.

A merge keeps one record (the survivor), fills its fields from the duplicates by a survivorship policy,
re-links every child record (activities, cases, opportunities, events, contacts of an account) from the
duplicates to the survivor, and keeps each duplicate as a tombstone (``merged_into_id``). Its before-image
holds everything it changed, including the identity-link rows of the records involved, so unmerge restores
every record and link as it was, or refuses when something changed since.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

import ledger
from config.db import Base
from config.objects import ref
from config.settings import get_settings
from crm import outbox
from crm.access import Principal, check_writable, get_record, model_for, writable_fields
from crm.customer_models import IdentityLink
from crm.errors import ApprovalRefused, InvalidInput, NeedsHuman, NotFound, StaleRecord
from crm.fields import coerce
from crm.models import OBJECT_MODELS, Proposal, utcnow
from crm.values import jsonable

Survivorship = Literal["most_recent", "most_complete", "source_priority"]
MERGEABLE = ("contact", "lead", "account")
MAX_MERGED = 20  # duplicates folded into one survivor per proposal
# Fields a merge never takes from a duplicate: who owns the survivor stays an owner-change decision.
KEEP_SURVIVOR = frozenset({"owner_id", "merged_into_id"})
# Lead sources, most trusted first, for the source-priority policy.
SOURCE_PRIORITY = ("referral", "partner", "event", "web", "cold_call")
_OBJECT_BY_TABLE = {m.__tablename__: name for name, m in OBJECT_MODELS.items()}


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == {}


def _source_rank(record: Any) -> int:
    source = getattr(record, "source", None) or (record.custom or {}).get("source")
    return SOURCE_PRIORITY.index(source) if source in SOURCE_PRIORITY else len(SOURCE_PRIORITY)


def survivor_values(obj: str, survivor: Any, duplicates: list[Any], policy: Survivorship) -> dict[str, Any]:
    """Per field, the value the merged record keeps: field -> value (only fields that change).

    ``most_recent`` takes each field from the most recently updated record that has it, ``most_complete``
    from the record with the most filled fields, ``source_priority`` from the most trusted source (lead source
    or ``custom.source``), newer first among equals. An empty value never wins over a filled one.
    """
    if policy not in get_args(Survivorship):
        raise InvalidInput(f"unknown survivorship policy '{policy}'; use one of {', '.join(get_args(Survivorship))}")
    records = [survivor, *duplicates]
    fields = sorted(writable_fields(obj) - KEEP_SURVIVOR)

    def filled(r: Any) -> int:
        return sum(not _empty(getattr(r, f, None)) for f in fields)

    orders = {
        "most_recent": lambda r: (r.updated_at or datetime.min, r.id),
        "most_complete": lambda r: (filled(r), r.updated_at or datetime.min),
        "source_priority": lambda r: (-_source_rank(r), r.updated_at or datetime.min),
    }
    ranked = sorted(records, key=orders[policy], reverse=True)
    out: dict[str, Any] = {}
    for field in fields:
        current = jsonable(getattr(survivor, field))
        if field == "account_id" and not _empty(current):
            continue  # a contact keeps its company; only an empty one is filled
        value = next((jsonable(getattr(r, field)) for r in ranked if not _empty(getattr(r, field))), current)
        if value != current:
            out[field] = value
    custom = dict(survivor.custom or {})
    for r in reversed(ranked):  # the best-ranked record's custom values win
        custom.update({k: v for k, v in (r.custom or {}).items() if not _empty(v)})
    if custom != (survivor.custom or {}):
        out["custom"] = custom
    return out


def propose_merge(session: Session, principal: Principal, *, object_type: str, survivor_id: int,
                  duplicate_ids: list[int], policy: Survivorship | None = None, reason: str = "",
                  evidence: list[str] | None = None, source: str = "user") -> Proposal:
    """A pending ``merge`` proposal: the survivor's field changes plus the duplicates it folds in.

    ``policy`` defaults to ``CRMIND_MERGE_SURVIVORSHIP``.
    """
    policy = policy or get_settings().merge_survivorship
    if object_type not in MERGEABLE:
        raise InvalidInput(f"only {', '.join(MERGEABLE)} records can be merged, not {object_type}")
    ids = list(dict.fromkeys(int(i) for i in duplicate_ids))
    if not ids:
        raise InvalidInput("a merge needs at least one duplicate to fold into the survivor")
    if survivor_id in ids:
        raise InvalidInput("the survivor cannot also be one of the duplicates")
    if len(ids) > MAX_MERGED:
        raise InvalidInput(f"a merge folds at most {MAX_MERGED} duplicates into one record")
    survivor = get_record(session, principal, object_type, survivor_id)
    duplicates = [get_record(session, principal, object_type, i) for i in ids]
    for record in (survivor, *duplicates):
        check_writable(principal, object_type, record)
        if record.merged_into_id is not None:
            raise InvalidInput(f"{object_type} {record.id} was already merged into {object_type} "
                               f"{record.merged_into_id}")
    values = survivor_values(object_type, survivor, duplicates, policy)
    changes = {f: {"before": jsonable(getattr(survivor, f)), "after": v} for f, v in values.items()}
    teams = sorted({r.team_id for r in (survivor, *duplicates) if r.team_id is not None})
    payload = {"duplicates": ids, "versions": {str(r.id): r.version for r in duplicates}, "policy": policy,
               "teams": teams}
    from crm.proposals import _key, _ledger_safe  # the proposal machinery; imported late (it imports us)

    key = _key({"merge": object_type, "s": survivor_id, "d": ids, "v": survivor.version, "u": principal.user_id,
                "p": policy})
    existing = session.scalar(select(Proposal).where(Proposal.idempotency_key == key))
    if existing is not None:
        return existing
    proposal = Proposal(object_type=object_type, record_id=survivor_id, action="merge", changes=changes,
                        reason=reason[:4000], evidence=list(evidence or []), status="pending",
                        requires_human=True, source=source, created_by=principal.user_id,
                        base_version=survivor.version, idempotency_key=key, payload=payload)
    session.add(proposal)
    session.flush()
    row = ledger.append(
        session, kind="proposal", actor=principal.actor if source == "user" else source,
        input_summary=f"merge {object_type} {', '.join(map(str, ids))} into {survivor_id}: {reason[:200]}",
        output={"proposal_id": proposal.id, "changes": _ledger_safe(object_type, changes), "merge": payload},
        evidence=proposal.evidence,
        refs=[f"proposal:{proposal.id}", ref(object_type, survivor_id), *(ref(object_type, i) for i in ids)])
    proposal.decision_id = row.id
    return proposal


def check_merge_approver(principal: Principal, proposal: Proposal, *, by_policy: str | None) -> None:
    """A person approves every merge; one across teams needs a manager of each team, or an admin."""
    what = f"proposal {proposal.id} (merge {proposal.object_type} into {proposal.record_id})"
    if by_policy:
        raise NeedsHuman(f"{what} must be approved by a person, not by {by_policy}", rule="human_only_actions")
    teams = set((proposal.payload or {}).get("teams", []))
    if len(teams) <= 1 or principal.role == "admin":
        return
    if principal.role != "manager" or not teams <= set(principal.team_ids):
        raise ApprovalRefused(f"{what} joins records of teams {', '.join(map(str, sorted(teams)))}: it needs a "
                              f"manager of each of them or an admin; {principal.actor} is a {principal.role}",
                              rule="approval_policy.merge=managers_of_each_team")


def _children(obj: str) -> list[tuple[Any, Any]]:
    """(table, column) pairs whose foreign key points at ``obj``'s table."""
    target = model_for(obj).__table__
    return [(t, fk.parent) for t in Base.metadata.sorted_tables for fk in t.foreign_keys
            if fk.column.table is target and t.name in _OBJECT_BY_TABLE]


def _link_rows(session: Session, obj: str, ids: list[int]) -> list[dict[str, Any]]:
    """The identity-link rows of the records (and of every record sharing their customers), exactly."""
    keys = [str(i) for i in ids]
    customers = set(session.scalars(select(IdentityLink.customer_id).where(
        IdentityLink.object_type == obj, IdentityLink.record_key.in_(keys))))
    rows: list[IdentityLink] = list(session.scalars(select(IdentityLink).where(
        IdentityLink.customer_id.in_(customers)).order_by(IdentityLink.id))) if customers else []
    cols = [c.name for c in IdentityLink.__table__.columns]
    return [{c: jsonable(getattr(r, c)) for c in cols} for r in rows]


def apply_merge(session: Session, principal: Principal, proposal: Proposal) -> list[tuple[str, int, str]]:
    """Apply an approved merge in the caller's transaction; returns the outbox entries to emit."""
    obj, payload = proposal.object_type, proposal.payload or {}
    survivor = get_record(session, principal, obj, proposal.record_id or 0, for_update=True)
    if survivor.version != proposal.base_version:
        raise StaleRecord(f"{obj} {survivor.id} changed after the merge was proposed; propose it again")
    duplicates = []
    for i in payload.get("duplicates", []):
        record = get_record(session, principal, obj, int(i), for_update=True)
        if record.version != payload["versions"].get(str(i)) or record.merged_into_id is not None:
            raise StaleRecord(f"{obj} {i} changed after the merge was proposed; propose it again")
        duplicates.append(record)
    ids = [r.id for r in duplicates]
    image: dict[str, Any] = {
        "survivor": {f: jsonable(getattr(survivor, f)) for f in proposal.changes} | {"__version__": survivor.version},
        "duplicates": {str(r.id): r.version for r in duplicates},
        "relinked": [], "links": _link_rows(session, obj, [survivor.id, *ids]),
    }
    for table, column in _children(obj):
        moved = list(session.scalars(select(table.c.id).where(column.in_(ids)).order_by(table.c.id)))
        if not moved:
            continue
        rows = list(session.execute(select(table.c.id, column).where(table.c.id.in_(moved))).all())
        image["relinked"].append({"table": table.name, "column": column.name,
                                  "rows": {str(r[0]): r[1] for r in rows}})
        session.execute(update(table).where(column.in_(ids)).values({column.name: survivor.id})
                        .execution_options(synchronize_session=False))
    proposal.before_image = image
    for field, change in proposal.changes.items():
        setattr(survivor, field, change["after"] if field == "custom" else coerce(obj, field, change["after"]))
    survivor.version += 1
    for record in duplicates:
        record.merged_into_id = survivor.id
        record.version += 1
    survivor_link = session.scalar(select(IdentityLink).where(IdentityLink.object_type == obj,
                                                              IdentityLink.record_key == str(survivor.id)))
    customer = survivor_link.customer_id if survivor_link else ref(obj, survivor.id)
    for record in duplicates:
        link = session.scalar(select(IdentityLink).where(IdentityLink.object_type == obj,
                                                         IdentityLink.record_key == str(record.id)))
        if link is None:
            session.add(IdentityLink(customer_id=customer, object_type=obj, record_key=str(record.id),
                                     match_probability=1.0, reasons=["merged by a person"], strength="merged",
                                     run_id=f"proposal:{proposal.id}"))
        else:
            link.customer_id, link.strength = customer, "merged"
            link.reasons = [*link.reasons, "merged by a person"]
    session.flush()
    entries = [(obj, survivor.id, "upsert"), *((obj, i, "delete") for i in ids)]
    for moved in image["relinked"]:
        entries += [(_OBJECT_BY_TABLE[moved["table"]], int(i), "upsert") for i in moved["rows"]]
    return entries


def unmerge(session: Session, principal: Principal, proposal: Proposal) -> list[tuple[str, int, str]]:
    """Restore every record and link an applied merge changed; ``StaleRecord`` if any changed since."""
    obj, image = proposal.object_type, proposal.before_image or {}
    survivor = get_record(session, principal, obj, proposal.record_id or 0, for_update=True)
    check_writable(principal, obj, survivor)
    if survivor.version != proposal.applied_version:
        raise StaleRecord(f"{obj} {survivor.id} changed after the merge; undo those changes first")
    model: Any = model_for(obj)
    duplicates = []
    for key, version in image.get("duplicates", {}).items():
        record = session.get(model, int(key), populate_existing=True)
        if record is None or record.merged_into_id != survivor.id or record.version != version + 1:
            raise StaleRecord(f"{obj} {key} changed after the merge; it cannot be restored exactly")
        duplicates.append(record)
    for moved in image.get("relinked", []):
        table = Base.metadata.tables[moved["table"]]
        column = table.c[moved["column"]]
        ids = [int(i) for i in moved["rows"]]
        now: dict[int, Any] = dict(session.execute(select(table.c.id, column).where(table.c.id.in_(ids))).all())
        drifted = [i for i in ids if now.get(i) != survivor.id]
        if drifted:
            kind = _OBJECT_BY_TABLE[table.name]
            raise StaleRecord(f"{', '.join(f'{kind}:{i}' for i in drifted[:5])} moved after the merge; "
                              "link them back first")
    for moved in image.get("relinked", []):
        table = Base.metadata.tables[moved["table"]]
        for key, value in moved["rows"].items():
            session.execute(update(table).where(table.c.id == int(key)).values({moved["column"]: value})
                            .execution_options(synchronize_session=False))
    fields = {k: v for k, v in image.get("survivor", {}).items() if not k.startswith("__")}
    for field, value in fields.items():
        setattr(survivor, field, value if field == "custom" else coerce(obj, field, value))
    survivor.version += 1
    for record in duplicates:
        record.merged_into_id = None
        record.version += 1
    links = image.get("links", [])
    keys = {(row["object_type"], row["record_key"]) for row in links}
    keys |= {(obj, str(survivor.id))} | {(obj, str(r.id)) for r in duplicates}
    for object_type, record_key in keys:
        session.execute(delete(IdentityLink).where(IdentityLink.object_type == object_type,
                                                   IdentityLink.record_key == record_key))
    if links:
        session.execute(insert(IdentityLink), [
            {**row, "updated_at": datetime.fromisoformat(row["updated_at"]) if row.get("updated_at") else utcnow()}
            for row in links])
    session.flush()
    entries = [(obj, survivor.id, "upsert"), *((obj, r.id, "upsert") for r in duplicates)]
    for moved in image.get("relinked", []):
        entries += [(_OBJECT_BY_TABLE[moved["table"]], int(i), "upsert") for i in moved["rows"]]
    return entries


def emit_all(session: Session, entries: list[tuple[str, int, str]], proposal_id: int | None) -> None:
    """Outbox rows for every record a merge or unmerge touched (search and rules follow them)."""
    for obj, record_id, op in entries:
        outbox.emit(session, obj, record_id, op, proposal_id)


def merged_into(session: Session, obj: str, record_id: int) -> int | None:
    """Where a tombstone went (following chains of merges), or None for a live record."""
    model: Any = model_for(obj)
    seen: set[int] = set()
    current = record_id
    while True:
        target = session.scalar(select(model.merged_into_id).where(model.id == current))
        if target is None:
            return None if current == record_id else current
        if target in seen:
            raise NotFound(f"{obj} {record_id} is in a merge loop")
        seen.add(target)
        current = target
