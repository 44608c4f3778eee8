"""The customer 360 view and the duplicate review queue, as one principal may see them.

A customer is the cluster of records the identity link table puts together. Every record in the view is read
through ``crm.access`` like any other read: a member the reader may not read is left out (it does not exist
for them), and personal fields are masked for the roles that see them masked.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from config.objects import ref
from crm.access import Principal, get_record, model_for, readable, row_filter, view
from crm.customer_models import MERGEABLE_LINKS, CustomerScore, IdentityLink
from crm.errors import InvalidInput, NotFound
from crm.merge import MERGEABLE, merged_into
from crm.models import Activity, Case, Event, Opportunity, Proposal

SCORED = ("lead", "opportunity", "account", "contact")
TIMELINE_LIMIT = 100
QUEUE_LIMIT = 200


def parse_ref(customer_ref: str) -> tuple[str, str]:
    """``contact:12`` -> ("contact", "12"); a visitor's key is its visitor id."""
    obj, sep, key = customer_ref.partition(":")
    if not sep or not key or obj not in (*MERGEABLE, "visitor"):
        raise InvalidInput(f"'{customer_ref}' is not a customer reference; use contact:ID, lead:ID, account:ID "
                           "or visitor:ID")
    if obj != "visitor" and not key.isdigit():
        raise InvalidInput(f"'{customer_ref}': the record id must be a number")
    return obj, key


def _members(session: Session, obj: str, key: str) -> tuple[str, list[IdentityLink]]:
    link = session.scalar(select(IdentityLink).where(IdentityLink.object_type == obj,
                                                     IdentityLink.record_key == key))
    if link is None:
        return ref(obj, int(key)) if obj != "visitor" else f"visitor:{key}", []
    links = list(session.scalars(select(IdentityLink).where(IdentityLink.customer_id == link.customer_id)
                                 .order_by(IdentityLink.id)))
    return link.customer_id, links


def _readable_ids(session: Session, principal: Principal, obj: str, ids: list[int]) -> dict[int, Any]:
    if not ids:
        return {}
    model: Any = model_for(obj)
    stmt = select(model).where(model.id.in_(ids), row_filter(principal, obj))
    return {r.id: r for r in session.scalars(stmt)}


def customer_view(session: Session, principal: Principal, customer_ref: str) -> dict[str, Any]:
    """One customer: linked identities with their reasons, a timeline, scores with reasons, segment and value.

    ``customer_ref`` may name any member record; a merged-away record leads to the record it was merged into.
    Raises ``NotFound`` when the named record is not readable (the same 404 as the record API).
    """
    obj, key = parse_ref(customer_ref)
    if obj != "visitor":
        record = get_record(session, principal, obj, int(key))
        target = merged_into(session, obj, record.id)
        if target is not None:
            key = str(target)
            get_record(session, principal, obj, target)
    elif not session.scalar(select(func.count()).select_from(Event).where(
            Event.visitor_id == key, row_filter(principal, "event"))):
        raise NotFound(f"visitor {key} not found")
    customer_id, links = _members(session, obj, key)
    if not links:
        links = [IdentityLink(customer_id=customer_id, object_type=obj, record_key=key, match_probability=1.0,
                              reasons=[], strength="anchor")]
    by_type: dict[str, list[int]] = defaultdict(list)
    visitors: list[str] = []
    for link in links:
        if link.object_type == "visitor":
            visitors.append(link.record_key)
        elif link.record_key.isdigit():
            by_type[link.object_type].append(int(link.record_key))
    records = {t: _readable_ids(session, principal, t, ids) for t, ids in by_type.items()}
    identities = []
    for link in links:
        if link.object_type == "visitor":
            seen = session.scalar(select(func.count()).select_from(Event).where(
                Event.visitor_id == link.record_key, row_filter(principal, "event")))
            if not seen:
                continue
            shown: dict[str, Any] = {"visitor_id": link.record_key, "events": seen}
        else:
            rec = records.get(link.object_type, {}).get(int(link.record_key))
            if rec is None:
                continue  # not readable: it does not exist for this reader
            shown = view(principal, link.object_type, rec)
        identities.append({"ref": f"{link.object_type}:{link.record_key}", "object_type": link.object_type,
                           "match_probability": round(link.match_probability, 4), "reasons": list(link.reasons),
                           "strength": link.strength, "record": shown})
    contacts = [i for i, r in records.get("contact", {}).items() if r.merged_into_id is None]
    leads = [i for i, r in records.get("lead", {}).items() if r.merged_into_id is None]
    accounts = sorted({r.account_id for r in records.get("contact", {}).values() if r.account_id} |
                      set(records.get("account", {})))
    timeline = _timeline(session, principal, contacts, leads, accounts, visitors)
    return {"customer_id": customer_id, "identities": identities, "accounts": accounts,
            "timeline": timeline, "scores": _scores(session, principal, contacts, leads, accounts),
            "pending_merges": _pending_merges(session, by_type)}


def _timeline(session: Session, principal: Principal, contacts: list[int], leads: list[int], accounts: list[int],
              visitors: list[str]) -> list[dict[str, Any]]:
    items: list[tuple[str, str, dict[str, Any]]] = []
    if contacts or leads:
        conds = [c for c in (Activity.contact_id.in_(contacts) if contacts else None,
                             Activity.lead_id.in_(leads) if leads else None) if c is not None]
        for a in session.scalars(readable(principal, "activity").where(or_(*conds))
                                 .order_by(Activity.occurred_at.desc()).limit(TIMELINE_LIMIT)):
            items.append((a.occurred_at.isoformat(), "activity", view(principal, "activity", a)))
    if contacts:
        for c in session.scalars(readable(principal, "case").where(Case.contact_id.in_(contacts))
                                 .order_by(Case.created_at.desc()).limit(TIMELINE_LIMIT)):
            items.append((c.created_at.isoformat(), "case", view(principal, "case", c)))
    event_conds = [c for c in (Event.contact_id.in_(contacts) if contacts else None,
                               Event.visitor_id.in_(visitors) if visitors else None) if c is not None]
    if event_conds:
        for e in session.scalars(readable(principal, "event").where(or_(*event_conds))
                                 .order_by(Event.occurred_at.desc()).limit(TIMELINE_LIMIT)):
            items.append((e.occurred_at.isoformat(), "event", view(principal, "event", e)))
    if accounts:
        for o in session.scalars(readable(principal, "opportunity").where(Opportunity.account_id.in_(accounts))
                                 .order_by(Opportunity.close_date.desc()).limit(TIMELINE_LIMIT)):
            items.append((o.close_date.isoformat(), "opportunity", view(principal, "opportunity", o)))
    items.sort(key=lambda t: t[0], reverse=True)
    return [{"at": at, "type": kind, "ref": f"{kind}:{rec['id']}", "record": rec}
            for at, kind, rec in items[:TIMELINE_LIMIT]]


def _scores(session: Session, principal: Principal, contacts: list[int], leads: list[int],
            accounts: list[int]) -> list[dict[str, Any]]:
    wanted = [("contact", contacts), ("lead", leads), ("account", accounts)]
    opp_ids = list(session.scalars(select(Opportunity.id).where(
        Opportunity.account_id.in_(accounts), row_filter(principal, "opportunity")))) if accounts else []
    wanted.append(("opportunity", opp_ids))
    out = []
    for obj, ids in wanted:
        if not ids:
            continue
        for s in session.scalars(select(CustomerScore).where(CustomerScore.object_type == obj,
                                                             CustomerScore.record_id.in_(ids))
                                 .order_by(CustomerScore.kind, CustomerScore.record_id)):
            out.append(score_view(s))
    return out


def scores_of(session: Session, principal: Principal, record_ref: str) -> list[dict[str, Any]]:
    """The scores stored on one readable record (``NotFound`` like the record API when it is not readable)."""
    obj, _, key = record_ref.partition(":")
    if obj not in SCORED or not key.isdigit():
        raise InvalidInput(f"'{record_ref}' is not a scored record; use one of {', '.join(SCORED)} with its id "
                           "(lead:7)")
    record = get_record(session, principal, obj, int(key))
    rows = session.scalars(select(CustomerScore).where(CustomerScore.object_type == obj,
                                                       CustomerScore.record_id == record.id)
                           .order_by(CustomerScore.kind))
    return [score_view(s) for s in rows]


def score_view(score: CustomerScore) -> dict[str, Any]:
    """A score as the API shows it: value, band or segment, reasons strongest first, the model behind it."""
    return {"ref": f"{score.object_type}:{score.record_id}", "kind": score.kind, "value": round(score.value, 2),
            "label": score.label, "reasons": list(score.reasons), "model_version": score.model_version,
            "computed_at": score.computed_at.isoformat()}


def _pending_merges(session: Session, by_type: dict[str, list[int]]) -> list[int]:
    ids: list[int] = []
    for obj, members in by_type.items():
        if obj not in MERGEABLE or not members:
            continue
        stmt = select(Proposal.id).where(Proposal.action == "merge", Proposal.status == "pending",
                                         Proposal.object_type == obj, Proposal.record_id.in_(members))
        ids += list(session.scalars(stmt))
    return sorted(ids)


def duplicate_queue(session: Session, principal: Principal, *, object_type: str | None = None,
                    limit: int = 50) -> list[dict[str, Any]]:
    """Customers holding two or more live records of one type the reader may merge: the review queue.

    Weak links (a shared device or phone hash alone) never make a queue entry: over-merging is worse than a
    missed duplicate. Each entry lists the records, the match probability and reasons, and a pending merge.
    """
    if object_type is not None and object_type not in MERGEABLE:
        raise InvalidInput(f"duplicates are found among {', '.join(MERGEABLE)}, not {object_type}")
    types = [object_type] if object_type else list(MERGEABLE)
    groups = session.execute(
        select(IdentityLink.customer_id, IdentityLink.object_type, func.count())
        .where(IdentityLink.object_type.in_(types), IdentityLink.strength.in_(MERGEABLE_LINKS))
        .group_by(IdentityLink.customer_id, IdentityLink.object_type).having(func.count() > 1)
        .order_by(IdentityLink.customer_id).limit(QUEUE_LIMIT * 4)).all()
    queue: list[dict[str, Any]] = []
    for customer_id, obj, _n in groups:
        links = list(session.scalars(select(IdentityLink).where(
            IdentityLink.customer_id == customer_id, IdentityLink.object_type == obj,
            IdentityLink.strength.in_(MERGEABLE_LINKS)).order_by(IdentityLink.id)))
        ids = [int(lk.record_key) for lk in links if lk.record_key.isdigit()]
        readable_now = {i: r for i, r in _readable_ids(session, principal, obj, ids).items()
                        if r.merged_into_id is None}
        if len(readable_now) < 2:
            continue
        survivor = min(readable_now.values(), key=lambda r: (r.created_at, r.id))
        members = [lk for lk in links if lk.record_key.isdigit() and int(lk.record_key) in readable_now]
        pending = session.scalar(select(Proposal.id).where(
            Proposal.action == "merge", Proposal.status == "pending", Proposal.object_type == obj,
            Proposal.record_id.in_(list(readable_now))))
        queue.append({
            "customer_id": customer_id, "object_type": obj, "survivor_id": survivor.id,
            "duplicate_ids": sorted(i for i in readable_now if i != survivor.id),
            "match_probability": round(min(lk.match_probability for lk in members), 4),
            "reasons": sorted({r for lk in members for r in lk.reasons}),
            "records": [view(principal, obj, readable_now[int(lk.record_key)]) for lk in members],
            "pending_proposal": pending})
        if len(queue) >= limit:
            break
    return queue
