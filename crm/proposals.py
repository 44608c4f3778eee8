"""Writes go through proposals: propose -> approve / edit / reject -> apply (one transaction) -> undo."""

from __future__ import annotations

import hashlib
import json
import uuid
from types import SimpleNamespace
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

import ledger
from config.db import Base
from config.masking import mask_value
from config.objects import ref
from config.settings import get_settings
from crm import outbox
from crm.access import (
    Principal,
    check_writable,
    field_names,
    get_record,
    model_for,
    text_for_reader,
    writable_fields,
)
from crm.approval import check_approver
from crm.errors import Conflict, Forbidden, InvalidInput, NotFound, StaleRecord
from crm.fields import REQUIRED_ON_CREATE, coerce
from crm.models import OBJECT_MODELS, CustomFieldDef, Proposal, User, utcnow
from crm.values import jsonable

Action = Literal["create", "update", "close", "delete", "owner_change"]
HUMAN_ONLY_ACTIONS = frozenset({"delete", "owner_change", "bulk", "export"})
CLOSE_FIELDS = {"opportunity": "stage", "case": "status"}
CLOSED_VALUES = {"opportunity": ("closed_won", "closed_lost"), "case": ("closed",)}
# Fields that point at other records: the proposer must be able to read the target.
LINK_FIELDS = {"account_id": "account", "contact_id": "contact", "opportunity_id": "opportunity",
               "case_id": "case", "lead_id": "lead"}


_CUSTOM_TYPES: dict[str, type | tuple[type, ...]] = {"text": str, "number": (int, float), "bool": bool, "date": str}


def _custom_defs(session: Session, obj: str) -> dict[str, CustomFieldDef]:
    rows = session.scalars(select(CustomFieldDef).where(CustomFieldDef.object_type == obj))
    return {d.name: d for d in rows}


def _coerce_change(session: Session, principal: Principal, obj: str, field: str, value: Any) -> Any:
    if field.startswith("custom."):
        name = field.removeprefix("custom.")
        definition = _custom_defs(session, obj).get(name)
        if definition is None:
            raise InvalidInput(f"{obj} has no custom field '{name}'")
        expected = _CUSTOM_TYPES[definition.type]
        if value is not None and (not isinstance(value, expected) or
                                  (definition.type == "number" and isinstance(value, bool))):
            raise InvalidInput(f"{obj}.{field} expects a {definition.type}")
        return value
    if field not in field_names(obj):
        raise InvalidInput(f"{obj} has no field '{field}'")
    if field not in writable_fields(obj):
        raise InvalidInput(f"{obj}.{field} is not a field a proposal can change")
    out = coerce(obj, field, value)
    target = LINK_FIELDS.get(field)
    if target and out is not None:
        get_record(session, principal, target, out)  # NotFound if the linked record is not readable
    if field == "owner_id" and out is not None:
        owner = session.get(User, out)
        if owner is None or not owner.active:
            raise InvalidInput(f"owner {out} is not an active user")
    return out


def _current(record: Any, field: str) -> Any:
    if field.startswith("custom."):
        return (record.custom or {}).get(field.removeprefix("custom."))
    return jsonable(getattr(record, field))


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _ledger_safe(obj: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Changes as the ledger stores them: personal values masked, since ledger rows are never erased."""
    personal = set(get_settings().personal_fields.get(obj, []))
    return {f: ({k: mask_value(f, v) for k, v in c.items()} if f in personal else c) for f, c in changes.items()}


def _key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def propose(
    session: Session,
    principal: Principal,
    *,
    object_type: str,
    action: Action,
    changes: dict[str, Any],
    record_id: int | None = None,
    reason: str = "",
    evidence: list[str] | None = None,
    source: str = "user",
    idempotency_key: str | None = None,
    parent_decision: str | None = None,
    bulk: bool = False,
    model_id: str | None = None,
) -> Proposal:
    """Create a pending proposal with before/after per field. Nothing in the CRM changes yet.

    ``model_id`` names the model that suggested it (the assistant's), so its "why?" shows the model version.
    """
    model_for(object_type)
    if action not in ("create", "update", "close", "delete", "owner_change"):
        raise InvalidInput(f"unknown action '{action}'")
    if action == "create":
        if record_id is not None:
            raise InvalidInput("a create proposal must not name a record id")
        record = None
        check_writable(principal, object_type, None)
        missing = [f for f in REQUIRED_ON_CREATE.get(object_type, ()) if changes.get(f) in (None, "")]
        if missing:
            raise InvalidInput(f"creating {_article(object_type)} {object_type} needs: {', '.join(missing)}")
    else:
        if record_id is None:
            raise InvalidInput(f"a {action} proposal needs a record id")
        record = get_record(session, principal, object_type, record_id)
    check_writable(principal, object_type, record)
    if action == "delete":
        if changes:
            raise InvalidInput("a delete proposal takes no field changes")
    elif not changes:
        raise InvalidInput("a proposal needs at least one field change")
    if action == "close":
        close_field = CLOSE_FIELDS.get(object_type)
        if close_field is None:
            raise InvalidInput(f"{object_type} records cannot be closed; use update")
        if changes.get(close_field) not in CLOSED_VALUES[object_type]:
            raise InvalidInput(f"closing a {object_type} sets {close_field} to one of "
                               f"{', '.join(CLOSED_VALUES[object_type])}")
    if action == "owner_change" and set(changes) != {"owner_id"}:
        raise InvalidInput("an owner change proposal changes owner_id only")

    diff: dict[str, Any] = {}
    for field, value in changes.items():
        after = jsonable(_coerce_change(session, principal, object_type, field, value))
        before = None if record is None else _current(record, field)
        if before != after:
            diff[field] = {"before": before, "after": after}
    if action != "delete" and not diff:
        raise InvalidInput("the proposed values equal the current ones; nothing to change")
    if action == "update" and "owner_id" in diff:
        action = "owner_change" if set(diff) == {"owner_id"} else action
    requires_human = bulk or action in HUMAN_ONLY_ACTIONS or "owner_id" in diff and record is not None

    key = idempotency_key or _key({"o": object_type, "r": record_id, "a": action, "c": diff,
                                   "v": None if record is None else record.version,
                                   "u": principal.user_id, "s": source})
    existing = session.scalar(select(Proposal).where(Proposal.idempotency_key == key))
    if existing is not None:
        return existing
    proposal = Proposal(
        object_type=object_type, record_id=record_id, action=action, changes=diff, reason=reason[:4000],
        evidence=list(evidence or []), status="pending", requires_human=requires_human, source=source,
        created_by=principal.user_id, base_version=None if record is None else record.version,
        idempotency_key=key, decision_id=str(uuid.uuid4()),  # the ledger row's id, known before it is written
    )
    session.add(proposal)
    session.flush()
    ledger.append(
        session, kind="proposal", actor=principal.actor if source == "user" else f"{source}",
        input_summary=f"{action} {object_type} {record_id or '(new)'}: {reason[:200]}",
        # Object and action make the row self-describing for readers of the ledger alone (the drift monitor).
        output={"proposal_id": proposal.id, "object_type": object_type, "action": action,
                "changes": _ledger_safe(object_type, diff), "requires_human": requires_human},
        evidence=proposal.evidence, refs=[f"proposal:{proposal.id}"] + (
            [ref(object_type, record_id)] if record_id else []),
        parent_id=parent_decision, model_id=model_id, decision_id=proposal.decision_id,
    )
    return proposal


def get_proposal(session: Session, principal: Principal, proposal_id: int) -> Proposal:
    """A proposal the principal may see: their own, or one about a record they can write."""
    proposal = session.get(Proposal, proposal_id)
    if proposal is None:
        raise NotFound(f"proposal {proposal_id} not found")
    if principal.role == "admin" or proposal.created_by == principal.user_id:
        return proposal
    if proposal.record_id is not None:
        try:
            record = get_record(session, principal, proposal.object_type, proposal.record_id)
            check_writable(principal, proposal.object_type, record)
            return proposal
        except (NotFound, Forbidden):
            pass
    image = proposal.before_image or {}
    if proposal.action == "delete" and proposal.status == "applied" and "team_id" in image:
        # The record is gone; whoever could change it may still see (and undo) its deletion.
        ghost = SimpleNamespace(id=proposal.record_id, owner_id=image.get("owner_id"), team_id=image["team_id"])
        try:
            check_writable(principal, proposal.object_type, ghost)
            return proposal
        except Forbidden:
            pass
    raise NotFound(f"proposal {proposal_id} not found")


def _claim(session: Session, proposal: Proposal, from_status: tuple[str, ...], to_status: str,
           **values: Any) -> None:
    """Atomically move a proposal between states, setting ``values`` too; a concurrent second caller: ``Conflict``."""
    result = session.execute(update(Proposal).where(Proposal.id == proposal.id, Proposal.status.in_(from_status))
                             .values(status=to_status, **values).execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(proposal)
        raise Conflict(f"proposal {proposal.id} is {proposal.status}; it cannot be moved to {to_status}")
    for name, value in {"status": to_status, **values}.items():  # what the row now holds: no reload needed
        set_committed_value(proposal, name, value)


def reject(session: Session, principal: Principal, proposal_id: int, reason: str = "") -> Proposal:
    """Reject a pending proposal; nothing is written to the CRM."""
    proposal = get_proposal(session, principal, proposal_id)
    _claim(session, proposal, ("pending",), "rejected", decided_by=principal.user_id, decided_at=utcnow())
    ledger.append(session, kind="rejection", actor=principal.actor, parent_id=proposal.decision_id,
                  input_summary=reason[:500], output={"proposal_id": proposal.id},
                  refs=_refs(proposal))
    if proposal.decision_id:
        ledger.set_outcome(session, proposal.decision_id, "rejected", principal.actor)
    return proposal


def approve(
    session: Session,
    principal: Principal,
    proposal_id: int,
    *,
    edits: dict[str, Any] | None = None,
    by_policy: str | None = None,
) -> Proposal:
    """Approve (optionally editing proposed fields only) and apply in the caller's transaction.

    ``by_policy`` names a rule whose approved policy auto-approves; such approvals refuse anything
    that needs a person, and a person approving a delete, owner change or bulk change must be the second
    person ``crm.approval`` names. Applying twice is impossible: the second call gets ``Conflict``.
    """
    proposal = get_proposal(session, principal, proposal_id)
    if proposal.action == "merge":
        from crm.merge import check_merge_approver

        check_merge_approver(principal, proposal, by_policy=by_policy)
    elif proposal.requires_human:
        record = (None if proposal.action == "create" or proposal.record_id is None
                  else get_record(session, principal, proposal.object_type, proposal.record_id))
        check_approver(session, principal, proposal, record, by_policy=by_policy)
    edited = False
    if edits:
        unknown = set(edits) - set(proposal.changes)
        if unknown:
            raise InvalidInput(f"an edit may only change proposed fields; not {', '.join(sorted(unknown))}")
        changes = dict(proposal.changes)
        for field, value in edits.items():
            after = jsonable(_coerce_change(session, principal, proposal.object_type, field, value))
            changes[field] = {"before": changes[field]["before"], "after": after}
        proposal.changes = changes
        edited = True
    _claim(session, proposal, ("pending",), "applying", decided_by=principal.user_id, decided_at=utcnow())
    approval = ledger.append(
        session, kind="approval", actor=by_policy or principal.actor, parent_id=proposal.decision_id,
        input_summary=f"{'edited and ' if edited else ''}approved proposal {proposal.id}",
        output={"proposal_id": proposal.id, "edits": _ledger_safe(
            proposal.object_type, {k: {"after": v} for k, v in (edits or {}).items()})},
        refs=_refs(proposal), rule_id=by_policy)
    _apply(session, principal, proposal, approval.id)
    if proposal.decision_id:
        ledger.set_outcome(session, proposal.decision_id, "edited" if edited else "accepted", principal.actor)
    return proposal


def _refs(proposal: Proposal) -> list[str]:
    refs = [f"proposal:{proposal.id}"]
    if proposal.record_id is not None:
        refs.append(ref(proposal.object_type, proposal.record_id))
    return refs


def _apply(session: Session, principal: Principal, proposal: Proposal, parent: str) -> None:
    """Change + before-image + ledger row + outbox row, all in the caller's transaction."""
    obj = proposal.object_type
    model: Any = model_for(obj)
    if proposal.action == "merge":
        _apply_merge(session, principal, proposal, parent)
        return
    if proposal.action == "create":
        record = model()
        values = {f: coerce(obj, f, c["after"]) for f, c in proposal.changes.items() if "." not in f}
        custom = {f.removeprefix("custom."): c["after"] for f, c in proposal.changes.items() if "." in f}
        for field, value in values.items():
            setattr(record, field, value)
        if hasattr(record, "owner_id") and record.owner_id is None:
            record.owner_id = principal.user_id
        if hasattr(record, "team_id"):
            owner = session.get(User, record.owner_id) if record.owner_id else None
            record.team_id = owner.team_id if owner else min(principal.team_ids, default=None)
        record.custom = custom
        record.version = 1
        session.add(record)
        session.flush()
        proposal.record_id = record.id
        proposal.before_image = {"__created__": True}
    else:
        record = get_record(session, principal, obj, proposal.record_id or 0, for_update=True)
        if record.version != proposal.base_version:
            raise StaleRecord(f"{obj} {record.id} changed after the proposal was made "
                              f"(version {proposal.base_version} -> {record.version}); propose again")
        before = {f: _current(record, f) for f in proposal.changes}
        if proposal.action == "delete":
            before = {c.name: jsonable(getattr(record, c.name)) for c in model.__table__.columns}
            proposal.before_image = before
            _delete(session, obj, record, "it cannot be deleted")
        else:
            proposal.before_image = {**before, "__version__": record.version}
            _set_fields(record, obj, {f: c["after"] for f, c in proposal.changes.items()})
            if "owner_id" in proposal.changes and hasattr(record, "team_id"):
                owner = session.get(User, record.owner_id)
                record.team_id = owner.team_id if owner else record.team_id
            record.version += 1  # written with the proposal's row and the outbox entry, in one flush below
    proposal.status = "applied"
    proposal.applied_at = utcnow()
    proposal.applied_version = None if proposal.action == "delete" else record.version
    outbox.emit(session, obj, proposal.record_id or 0, "delete" if proposal.action == "delete" else "upsert",
                proposal.id)
    ledger.append(session, kind="apply", actor=principal.actor, parent_id=parent,
                  input_summary=f"applied {proposal.action} on {obj} {proposal.record_id}",
                  output={"proposal_id": proposal.id, "changes": _ledger_safe(obj, proposal.changes),
                          "version": proposal.applied_version},
                  refs=_refs(proposal))


def _apply_merge(session: Session, principal: Principal, proposal: Proposal, parent: str) -> None:
    from crm.merge import apply_merge, emit_all

    entries = apply_merge(session, principal, proposal)
    proposal.status = "applied"
    proposal.applied_at = utcnow()
    survivor: Any = session.get(model_for(proposal.object_type), proposal.record_id)
    proposal.applied_version = survivor.version
    emit_all(session, entries, proposal.id)
    merged = (proposal.payload or {}).get("duplicates", [])
    ledger.append(session, kind="apply", actor=principal.actor, parent_id=parent,
                  input_summary=f"merged {proposal.object_type} {', '.join(map(str, merged))} into "
                                f"{proposal.record_id}",
                  output={"proposal_id": proposal.id, "changes": _ledger_safe(proposal.object_type, proposal.changes),
                          "merged": merged, "relinked": {m["table"]: len(m["rows"]) for m in
                                                         (proposal.before_image or {}).get("relinked", [])},
                          "version": proposal.applied_version},
                  refs=_refs(proposal) + [ref(proposal.object_type, i) for i in merged])


_OBJECT_BY_TABLE = {m.__tablename__: name for name, m in OBJECT_MODELS.items()}
LINKS_NAMED = 5  # how many linked record ids a refusal lists per object type


def linked_records(session: Session, obj: str, record_id: int) -> dict[str, tuple[int, list[int]]]:
    """Records whose foreign keys point at ``obj`` ``record_id``: object type -> (count, first few ids)."""
    table = model_for(obj).__table__
    found: dict[str, tuple[int, list[int]]] = {}
    for other in Base.metadata.sorted_tables:
        for fk in other.foreign_keys:
            if fk.column.table is not table or other.name not in _OBJECT_BY_TABLE:
                continue
            where = fk.parent == record_id
            count = session.scalar(select(func.count()).select_from(other).where(where)) or 0
            if count:
                ids = list(session.scalars(select(other.c.id).where(where).order_by(other.c.id).limit(LINKS_NAMED)))
                kind = _OBJECT_BY_TABLE[other.name]
                prev_count, prev_ids = found.get(kind, (0, []))
                found[kind] = (prev_count + count, sorted(set(prev_ids + ids))[:LINKS_NAMED])
    return found


def _delete(session: Session, obj: str, record: Any, what: str) -> None:
    """Delete ``record``, or raise ``Conflict`` naming the records that still link to it (nothing is written).

    The links are checked first so the refusal can name them; the savepoint keeps a link added concurrently
    (caught only by the database's foreign key) from leaving the caller's transaction failed.
    """
    record_id = record.id
    links = linked_records(session, obj, record_id)
    if not links:
        try:
            with session.begin_nested():
                session.delete(record)
                session.flush()
            return
        except IntegrityError:
            links = linked_records(session, obj, record_id)
    named = "; ".join(f"{n} {kind}{'' if n == 1 else ' records'} ({', '.join(f'{kind}:{i}' for i in ids)}"
                      f"{', …' if n > len(ids) else ''})" for kind, (n, ids) in sorted(links.items()))
    raise Conflict(f"{obj} {record_id} still has linked records, so {what}: {named or 'added meanwhile'}. "
                   "Delete them or link them elsewhere first.")


def _set_fields(record: Any, obj: str, values: dict[str, Any]) -> None:
    custom = dict(record.custom or {})
    for field, value in values.items():
        if field.startswith("custom."):
            custom[field.removeprefix("custom.")] = value
        else:
            setattr(record, field, coerce(obj, field, value))
    record.custom = custom


def undo(session: Session, principal: Principal, proposal_id: int) -> Proposal:
    """Restore the before-image of an applied proposal, if nothing changed the record since."""
    proposal = get_proposal(session, principal, proposal_id)
    _claim(session, proposal, ("applied",), "undoing")
    obj, model = proposal.object_type, model_for(proposal.object_type)
    image = dict(proposal.before_image or {})
    if proposal.action == "merge":
        from crm.merge import emit_all, unmerge

        entries = unmerge(session, principal, proposal)
        proposal.status = "undone"
        emit_all(session, entries, None)
        ledger.append(session, kind="undo", actor=principal.actor, parent_id=proposal.decision_id,
                      input_summary=f"unmerged proposal {proposal.id}",
                      output={"restored": [ref(obj, proposal.record_id or 0),
                                           *(ref(obj, int(i)) for i in image.get("duplicates", {}))],
                              "relinked_back": sum(len(m["rows"]) for m in image.get("relinked", []))},
                      refs=_refs(proposal))
        return proposal
    if proposal.action == "delete":
        record: Any = model(**{k: coerce(obj, k, v) if k not in ("custom",) else v for k, v in image.items()
                               if k not in ("created_at", "updated_at", "erased_at")})
        check_writable(principal, obj, record)
        session.add(record)
        op = "upsert"
    else:
        record = get_record(session, principal, obj, proposal.record_id or 0, for_update=True)
        check_writable(principal, obj, record)
        if record.version != proposal.applied_version:
            raise StaleRecord(f"{obj} {record.id} changed after this proposal was applied; undo it by a new proposal")
        if image.get("__created__"):
            _delete(session, obj, record, "undoing its creation would delete it")
            op = "delete"
        else:
            _set_fields(record, obj, {k: v for k, v in image.items() if not k.startswith("__")})
            if "owner_id" in image and hasattr(record, "team_id"):
                owner = session.get(User, record.owner_id)
                record.team_id = owner.team_id if owner else record.team_id
            record.version += 1
            op = "upsert"
    session.flush()
    proposal.status = "undone"
    outbox.emit(session, obj, proposal.record_id or 0, op)
    ledger.append(session, kind="undo", actor=principal.actor, parent_id=proposal.decision_id,
                  input_summary=f"undid proposal {proposal.id}",
                  output={"restored": sorted(k for k in image if not k.startswith("__"))},
                  refs=_refs(proposal))
    return proposal


def list_proposals(session: Session, principal: Principal, *, status: str | None = None,
                   limit: int = 50) -> list[Proposal]:
    """Proposals the caller made, newest first (admins: everyone's)."""
    stmt = select(Proposal).order_by(Proposal.id.desc()).limit(limit)
    if principal.role != "admin":
        stmt = stmt.where(Proposal.created_by == principal.user_id)
    if status:
        stmt = stmt.where(Proposal.status == status)
    return list(session.scalars(stmt))


def proposal_view(principal: Principal, proposal: Proposal) -> dict[str, Any]:
    """A proposal as ``principal`` may see it: hidden fields dropped, personal values masked for their role."""
    settings = get_settings()
    changes: dict[str, dict[str, Any]] = {}
    for f, c in proposal.changes.items():
        vis = settings.visibility(proposal.object_type, f, principal.role)
        if vis == "visible":
            changes[f] = {"before": c.get("before"), "after": c.get("after")}
        elif vis == "masked":
            changes[f] = {"before": mask_value(f, c.get("before")), "after": mask_value(f, c.get("after"))}
    return {
        "id": proposal.id, "object_type": proposal.object_type, "record_id": proposal.record_id,
        "action": proposal.action, "changes": changes, "reason": text_for_reader(principal, proposal.reason),
        "evidence": [str(e) for e in proposal.evidence], "status": proposal.status,
        "requires_human": proposal.requires_human, "source": proposal.source, "created_by": proposal.created_by,
        "decided_by": proposal.decided_by, "base_version": proposal.base_version,
        "applied_version": proposal.applied_version, "created_at": proposal.created_at.isoformat(),
        "decided_at": proposal.decided_at.isoformat() if proposal.decided_at else None,
        "applied_at": proposal.applied_at.isoformat() if proposal.applied_at else None,
        "merge": ({"duplicates": proposal.payload.get("duplicates", []), "policy": proposal.payload.get("policy")}
                  if proposal.action == "merge" and proposal.payload else None),
    }
