"""Data-subject requests for a contact: export everything held about them, or erase it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import String, cast, delete, or_, select, update
from sqlalchemy.orm import Session

import ledger
from config.masking import mask_email, mask_phone
from crm import outbox
from crm.access import Principal, get_record, row_filter, view
from crm.customer_models import SAME_PERSON, IdentityKey, IdentityLink
from crm.errors import Conflict, Forbidden, NotFound
from crm.models import Activity, Case, Contact, Event, Lead, Proposal, utcnow

ERASED = "[erased]"
# A store outside the CRM tables that also holds personal text (e.g. the assistant's conversations): called with the
# erase pattern and the replacement, returns how many items it changed.
Scrubber = Callable[[re.Pattern[str], str], int]
PRIVACY_ROLES = frozenset({"manager", "admin"})


def _check_role(principal: Principal, what: str) -> None:
    if principal.role not in PRIVACY_ROLES:
        raise Forbidden(f"only managers and admins can {what} a contact's personal data")


def export_contact(session: Session, principal: Principal, contact_id: int) -> dict[str, Any]:
    """Everything the CRM holds about one contact, as JSON-ready data (an export needs a person)."""
    _check_role(principal, "export")
    contact = get_record(session, principal, "contact", contact_id)
    activities = session.scalars(select(Activity).where(Activity.contact_id == contact_id).order_by(Activity.id))
    cases = session.scalars(select(Case).where(Case.contact_id == contact_id).order_by(Case.id))
    events = session.scalars(select(Event).where(Event.contact_id == contact_id).order_by(Event.id))
    proposals = session.scalars(select(Proposal).where(Proposal.object_type == "contact",
                                                       Proposal.record_id == contact_id))
    data = {
        "contact": view(principal, "contact", contact),
        "activities": [view(principal, "activity", a) for a in activities],
        "cases": [view(principal, "case", c) for c in cases],
        "events": [view(principal, "event", e) for e in events],
        "proposals": [{"id": p.id, "action": p.action, "status": p.status, "changes": p.changes,
                       "created_at": p.created_at.isoformat()} for p in proposals],
        "linked": _export_linked(session, principal, contact_id),
    }
    ledger.append(session, kind="export", actor=principal.actor, refs=[f"contact:{contact_id}"],
                  input_summary=f"data-subject export of contact {contact_id}",
                  output={k: len(v) for k, v in data.items() if isinstance(v, list)})
    return data


def _flexible_pattern(value: str) -> str:
    """Regex for a phone number written with any spacing or dashes, or a literal string."""
    digits = re.sub(r"\D", "", value)
    if len(digits) >= 7 and not re.search(r"[A-Za-z@]", value):
        national = digits[-10:] if len(digits) > 10 else digits
        return r"(?:\+?\d{1,3}[\s\-.]?)?" + r"[\s\-.()]*".join(national)
    # Latin names and addresses match whole words only ("Ann" is not inside "Annual"); Chinese text has no
    # spaces between words, so a Chinese name matches wherever it stands.
    return r"(?<![A-Za-z0-9])" + re.escape(value) + r"(?![A-Za-z0-9])"


def _scrubbed(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(ERASED, value)
    if isinstance(value, dict):
        return {k: _scrubbed(v, pattern) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, pattern) for v in value]
    return value




def linked_identities(session: Session, obj: str, record_id: int) -> list[tuple[str, str]]:
    """The other records identity resolution holds for the same person: (object type, record key) pairs."""
    customer = session.scalar(select(IdentityLink.customer_id).where(
        IdentityLink.object_type == obj, IdentityLink.record_key == str(record_id),
        IdentityLink.strength.in_(SAME_PERSON)))
    if customer is None:
        return []
    rows = session.execute(select(IdentityLink.object_type, IdentityLink.record_key).where(
        IdentityLink.customer_id == customer, IdentityLink.strength.in_(SAME_PERSON)).order_by(IdentityLink.id))
    return [(o, k) for o, k in rows if (o, k) != (obj, str(record_id))]


def _export_linked(session: Session, principal: Principal, contact_id: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for obj, key in linked_identities(session, "contact", contact_id):
        if obj == "visitor":
            events = session.scalars(select(Event).where(Event.visitor_id == key, row_filter(principal, "event"))
                                     .order_by(Event.id))
            out.append({"ref": f"visitor:{key}", "events": [view(principal, "event", e) for e in events]})
        elif key.isdigit() and obj in ("contact", "lead", "account"):
            try:
                out.append({"ref": f"{obj}:{key}", "record": view(principal, obj, get_record(
                    session, principal, obj, int(key)))})
            except NotFound:
                continue  # not readable by the exporter: a manager of that team must export it
    return out


def _erase_lead(session: Session, lead_id: int, pattern: re.Pattern[str]) -> bool:
    lead = session.get(Lead, lead_id, populate_existing=True)
    if lead is None or lead.name == ERASED:
        return False
    lead.name, lead.phone, lead.email, lead.company = ERASED, None, None, pattern.sub(ERASED, lead.company)
    lead.custom = {}
    lead.version += 1
    outbox.emit(session, "lead", lead.id, "upsert")
    return True


def _erase_visitor(session: Session, visitor_id: str, pattern: re.Pattern[str]) -> int:
    events = list(session.scalars(select(Event).where(Event.visitor_id == visitor_id)))
    for event in events:
        event.properties = _scrubbed(event.properties or {}, pattern)
        event.contact_id = None
    return len(events)


def erase_contact(session: Session, principal: Principal, contact_id: int, *,
                  also: Mapping[str, Scrubber] | None = None, _linked: bool = True) -> dict[str, Any]:
    """Remove a contact's personal data from the CRM and its text, and queue removal from the index.

    Done in the caller's transaction: contact fields, linked activity and case text (name, phone and
    email in any spelling), pending proposal values and event links are scrubbed together. ``also`` names
    stores above the CRM that keep personal text too (the layer that owns them passes them in, so the CRM
    never imports it); each runs with the same pattern before the caller commits, and its count is reported
    under its name. A scrubber that fails fails the erase, which can then be retried as a whole.
    """
    _check_role(principal, "erase")
    contact = get_record(session, principal, "contact", contact_id, for_update=True)
    if contact.erased_at is not None:
        raise Conflict(f"contact {contact_id} was already erased")
    secrets = [v for v in (contact.name, contact.phone, contact.email) if v and len(v) >= 2]
    pattern = re.compile("|".join(_flexible_pattern(v) for v in sorted(secrets, key=len, reverse=True)),
                         re.IGNORECASE)
    # The ledger keeps phones and emails only masked; erase those forms too, with the name.
    masked = [m for m in (contact.phone and mask_phone(contact.phone), contact.email and mask_email(contact.email))
              if m]
    ledger_pattern = re.compile("|".join([pattern.pattern] + [re.escape(m) for m in masked]), re.IGNORECASE)

    def scrub(text: str) -> str:
        return pattern.sub(ERASED, text) if text else text

    touched: dict[str, list[int]] = {"activity": [], "case": []}
    linked = [Activity.contact_id == contact_id]
    if contact.account_id is not None:
        linked.append(Activity.account_id == contact.account_id)
    for act in session.scalars(select(Activity).where(or_(*linked))):
        subject, body = scrub(act.subject), scrub(act.body)
        if (subject, body) != (act.subject, act.body) or act.contact_id == contact_id:
            act.subject, act.body = subject, body
            act.version += 1
            touched["activity"].append(act.id)
    case_link = [Case.contact_id == contact_id]
    if contact.account_id is not None:
        case_link.append(Case.account_id == contact.account_id)
    for case in session.scalars(select(Case).where(or_(*case_link))):
        new = (scrub(case.subject), scrub(case.description), scrub(case.resolution), scrub(case.internal_notes))
        if new != (case.subject, case.description, case.resolution, case.internal_notes):
            case.subject, case.description, case.resolution, case.internal_notes = new
            case.version += 1
            touched["case"].append(case.id)
    for proposal in session.scalars(select(Proposal).where(Proposal.object_type == "contact",
                                                           Proposal.record_id == contact_id)):
        proposal.changes = {f: {"before": ERASED, "after": ERASED} for f in proposal.changes}
        proposal.before_image = None
        proposal.reason = ERASED
    # Other proposals may carry the subject too (an assistant's "create contact", an activity naming them); a
    # pending one left as it was would write the data back when approved.
    for proposal in session.scalars(select(Proposal)):
        held = json.dumps([proposal.changes, proposal.before_image, proposal.reason], ensure_ascii=False, default=str)
        if ledger_pattern.search(held):
            proposal.changes = _scrubbed(proposal.changes, ledger_pattern)
            proposal.before_image = _scrubbed(proposal.before_image, ledger_pattern)
            proposal.reason = ledger_pattern.sub(ERASED, proposal.reason)
    session.execute(update(Event).where(Event.contact_id == contact_id).values(contact_id=None)
                    .execution_options(synchronize_session=False))
    # A web form may have carried the email into an event's properties (identity resolution reads it there).
    if contact.email:
        for ev in session.scalars(select(Event).where(Event.type == "form_submit",
                                                      cast(Event.properties, String).ilike(f"%{contact.email}%"))):
            ev.properties = _scrubbed(ev.properties, pattern)
    # Identity keys hold the normalised email and phone: the erased person must not be findable by them.
    session.execute(delete(IdentityKey).where(IdentityKey.object_type == "contact",
                                              IdentityKey.record_key == str(contact_id)))
    contact.name, contact.phone, contact.email, contact.title = ERASED, None, None, ""
    contact.custom = {}
    contact.erased_at = utcnow()
    contact.version += 1
    summary: dict[str, Any] = {"contact_id": contact_id, "activities_scrubbed": len(touched["activity"]),
                               "cases_scrubbed": len(touched["case"]),
                               "ledger_rows_scrubbed": ledger.erase_matching(session, ledger_pattern, ERASED)}
    if _linked:
        # The same person under other records (a duplicate contact, a lead, a web visitor) is erased too, and the
        # link table forgets them all: an erase must not leave the person findable through a second record.
        same_person = linked_identities(session, "contact", contact_id)
        erased_refs: list[str] = []
        skipped: list[str] = []
        for obj, key in same_person:
            if obj == "contact" and key.isdigit():
                other = session.get(Contact, int(key))
                if other is not None and other.erased_at is None:
                    try:
                        erase_contact(session, principal, int(key), also=also, _linked=False)
                    except NotFound:
                        skipped.append(f"contact:{key}")  # another team's: its manager or an admin erases it
                        continue
                    erased_refs.append(f"contact:{key}")
            elif obj == "lead" and key.isdigit() and _erase_lead(session, int(key), ledger_pattern):
                erased_refs.append(f"lead:{key}")
            elif obj == "visitor" and _erase_visitor(session, key, ledger_pattern):
                erased_refs.append(f"visitor:{key}")
        for obj, key in [("contact", str(contact_id)), *same_person]:
            session.execute(delete(IdentityLink).where(IdentityLink.object_type == obj,
                                                       IdentityLink.record_key == key))
            session.execute(delete(IdentityKey).where(IdentityKey.object_type == obj, IdentityKey.record_key == key))
        summary["linked_erased"] = erased_refs
        if skipped:
            summary["linked_not_readable"] = skipped
    for name, scrubber in (also or {}).items():
        summary[name] = scrubber(ledger_pattern, ERASED)
    # Emitted last, next to the ledger row: both take the write lock, held from here to the commit.
    outbox.emit(session, "contact", contact_id, "erase")
    for obj, ids in touched.items():
        for record_id in ids:
            outbox.emit(session, obj, record_id, "upsert")
    # The row names every record the erase changed, so each one's history (and outbox entry) shows it.
    scrubbed = [f"{obj}:{record_id}" for obj, ids in touched.items() for record_id in ids]
    ledger.append(session, kind="erase", actor=principal.actor, refs=[f"contact:{contact_id}", *scrubbed],
                  input_summary=f"data-subject erase of contact {contact_id}", output=summary)
    return summary


__all__ = ["export_contact", "erase_contact", "ERASED", "Contact"]
