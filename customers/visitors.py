"""Web visitors in the identity graph: strong links from a sign-in or form email, weak ones from a device or phone.

A visitor id covers all its events, so once a visitor is known (it signed in as a contact, or submitted a form
with an email), its earlier anonymous events belong to that customer too. A shared device id or a phone hash
alone is only a *weak* link (渐进式: progressive identity): shown, never merged automatically.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import Session

from crm.models import Event
from customers.normalize import normalize_email


@dataclass
class VisitorSignals:
    """What a visitor's events say about who it is."""

    contact_ids: set[int] = field(default_factory=set)
    form_emails: list[tuple[datetime, str]] = field(default_factory=list)
    device_ids: set[str] = field(default_factory=set)
    phone_hashes: set[str] = field(default_factory=set)


def phone_hash(e164: str) -> str:
    """How a phone reaches the event stream without its value: SHA-256 hex of its E.164 form."""
    return hashlib.sha256(e164.encode()).hexdigest()


def load_visitor_signals(session: Session) -> dict[str, VisitorSignals]:
    """Per visitor id: contacts it signed in as, form emails, device ids and phone hashes (indexed reads only)."""
    out: dict[str, VisitorSignals] = {}
    known = select(Event.visitor_id, Event.contact_id).where(Event.contact_id.is_not(None)).group_by(
        Event.visitor_id, Event.contact_id)
    for visitor_id, contact_id in session.execute(known):
        if contact_id is not None:
            out.setdefault(visitor_id, VisitorSignals()).contact_ids.add(contact_id)
    text = cast(Event.properties, String)
    hinted = select(Event.visitor_id, Event.type, Event.properties, Event.occurred_at).where(
        or_(Event.type == "form_submit", text.like('%"device_id"%'), text.like('%"phone_hash"%')))
    for visitor_id, etype, props, occurred_at in session.execute(hinted.execution_options(yield_per=5000)):
        props = props if isinstance(props, dict) else {}
        signals = out.setdefault(visitor_id, VisitorSignals())
        email = normalize_email(props.get("email")) if etype == "form_submit" else None
        if email:
            signals.form_emails.append((occurred_at, email))
        if props.get("device_id"):
            signals.device_ids.add(str(props["device_id"]))
        if props.get("phone_hash"):
            signals.phone_hashes.add(str(props["phone_hash"]).lower())
    return out


def visitor_count(session: Session) -> int:
    """Distinct visitor ids in the event stream."""
    return session.scalar(select(func.count(func.distinct(Event.visitor_id)))) or 0


def link_visitors(signals: dict[str, VisitorSignals], customer_of: dict[str, str], email_owner: dict[str, str],
                  phone_owner: dict[str, str], recorded: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Link rows for visitors: strong from sign-in or form email, weak from a shared device id or phone hash.

    Args:
        signals: per visitor id, from ``load_visitor_signals``.
        customer_of: record ref -> customer id, from the person resolution.
        email_owner: normalised email -> ref of the record it belongs to (the anchor-most one).
        phone_owner: SHA-256 of an E.164 phone -> ref of the record it belongs to.
        recorded: visitor id -> ref of the contact or lead that carries it (``custom.visitor_id``).
    """
    links: dict[str, dict[str, Any]] = {}
    for visitor_id, ref in sorted((recorded or {}).items()):
        if ref in customer_of:
            links[visitor_id] = _row(visitor_id, customer_of[ref], "strong", ["visitor id recorded on the record"])
    for visitor_id, sig in sorted(signals.items()):
        if visitor_id in links:
            continue
        contact = next((f"contact:{c}" for c in sorted(sig.contact_ids) if f"contact:{c}" in customer_of), None)
        if contact:
            links[visitor_id] = _row(visitor_id, customer_of[contact], "strong", ["visitor signed in as the contact"])
            continue
        for _, email in sorted(sig.form_emails):
            owner = email_owner.get(email)
            if owner:
                links[visitor_id] = _row(visitor_id, customer_of[owner], "strong", ["form email agrees (normalised)"])
                break
        else:
            if sig.form_emails:  # a form email the CRM doesn't know: the visitor is a customer of its own
                links[visitor_id] = _row(visitor_id, f"visitor:{visitor_id}", "anchor", [])
    device_customer: dict[str, str] = {}
    for visitor_id, link in sorted(links.items()):
        for device in sorted(signals[visitor_id].device_ids if visitor_id in signals else ()):
            device_customer.setdefault(device, link["customer_id"])
    for visitor_id, sig in sorted(signals.items()):
        if visitor_id in links:
            continue
        shared = next((d for d in sorted(sig.device_ids) if d in device_customer), None)
        if shared:
            links[visitor_id] = _row(visitor_id, device_customer[shared], "weak", ["shares a device id"], 0.6)
            continue
        owner = next((phone_owner[h] for h in sorted(sig.phone_hashes) if h in phone_owner), None)
        if owner:
            links[visitor_id] = _row(visitor_id, customer_of[owner], "weak", ["phone hash agrees"], 0.6)
    return list(links.values())


def _row(visitor_id: str, customer_id: str, strength: str, reasons: list[str], p: float = 1.0) -> dict[str, Any]:
    return {"object_type": "visitor", "record_key": visitor_id, "customer_id": customer_id, "strength": strength,
            "reasons": reasons, "match_probability": p}
