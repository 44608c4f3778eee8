"""Reading the source records of identity resolution from the CRM store, normalised in Python.

Contacts and leads become person rows (contacts take their account's name, city and country); merge tombstones
and erased contacts are left out, since neither is a live person any more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.models import Account, Contact, Lead
from customers.person_spec import person_features

TYPE_RANK = {"contact": 0, "lead": 1, "visitor": 2}  # which record anchors a customer: contact, else lead, else visitor


@dataclass
class PersonRecord:
    """One contact or lead: its ref, age and normalised features."""

    object_type: str
    record_id: int
    created_at: datetime | None
    features: dict[str, Any]
    visitor_id: str | None = None  # the web visitor id the record carries (custom.visitor_id), if any

    @property
    def ref(self) -> str:
        """The record's ref ("contact:12"), also its Splink unique id."""
        return f"{self.object_type}:{self.record_id}"

    def anchor_order(self) -> tuple[int, datetime, int]:
        """Sort key of anchor candidates: contacts first, then the oldest, then the lowest id."""
        return TYPE_RANK[self.object_type], self.created_at or datetime.max, self.record_id


def contact_features(contact: Any, account: Any | None) -> dict[str, Any]:
    """Features of a contact row (ORM object or Core row) and its account."""
    custom = contact.custom or {}
    return person_features(name=contact.name, email=contact.email, phone=contact.phone,
                           company=account.name if account is not None else None,
                           city=account.city if account is not None else None,
                           wechat_id=custom.get("wechat_id") if isinstance(custom, dict) else None,
                           country=account.country if account is not None else None, language=contact.language)


def lead_features(lead: Any) -> dict[str, Any]:
    """Features of a lead row (leads carry their company as text and no city)."""
    custom = lead.custom or {}
    return person_features(name=lead.name, email=lead.email, phone=lead.phone, company=lead.company,
                           wechat_id=custom.get("wechat_id") if isinstance(custom, dict) else None,
                           language=lead.language)


def load_people(session: Session, ids: dict[str, list[int]] | None = None) -> list[PersonRecord]:
    """Every live contact and lead, normalised; with ``ids`` ({"contact": [...], "lead": [...]}) only those."""
    out: list[PersonRecord] = []
    contacts = select(Contact.id, Contact.account_id, Contact.name, Contact.email, Contact.phone, Contact.custom,
                      Contact.language, Contact.created_at, Account.name.label("account_name"), Account.city,
                      Account.country).outerjoin(Account, Account.id == Contact.account_id).where(
        Contact.merged_into_id.is_(None), Contact.erased_at.is_(None))
    leads = select(Lead.id, Lead.name, Lead.email, Lead.phone, Lead.company, Lead.custom, Lead.language,
                   Lead.created_at).where(Lead.merged_into_id.is_(None))
    if ids is not None:
        contacts = contacts.where(Contact.id.in_(ids.get("contact") or [-1]))
        leads = leads.where(Lead.id.in_(ids.get("lead") or [-1]))
    for c in session.execute(contacts.execution_options(yield_per=5000)):
        account = _AccountView(c.account_name, c.city, c.country) if c.account_id is not None else None
        out.append(PersonRecord("contact", c.id, c.created_at, contact_features(c, account), _visitor(c.custom)))
    for ld in session.execute(leads.execution_options(yield_per=5000)):
        out.append(PersonRecord("lead", ld.id, ld.created_at, lead_features(ld), _visitor(ld.custom)))
    return out


def _visitor(custom: Any) -> str | None:
    value = custom.get("visitor_id") if isinstance(custom, dict) else None
    return str(value) if value else None


@dataclass(frozen=True)
class _AccountView:
    """The account fields a contact's features use, from a joined row."""

    name: str | None
    city: str | None
    country: str | None


def load_person(session: Session, object_type: str, record_id: int) -> PersonRecord | None:
    """One live contact or lead, normalised; None when it is gone, merged away or erased."""
    if object_type == "contact":
        c = session.get(Contact, record_id)
        if c is None or c.merged_into_id is not None or c.erased_at is not None:
            return None
        account = session.get(Account, c.account_id) if c.account_id else None
        return PersonRecord("contact", c.id, c.created_at, contact_features(c, account))
    if object_type == "lead":
        ld = session.get(Lead, record_id)
        if ld is None or ld.merged_into_id is not None:
            return None
        return PersonRecord("lead", ld.id, ld.created_at, lead_features(ld))
    return None


def values_features(session: Session, values: dict[str, Any]) -> dict[str, Any]:
    """Features of a record not stored yet (the API's create payload); a contact's account fills company and city."""
    company, city, country = values.get("company"), values.get("city"), values.get("country")
    if values.get("account_id"):
        account = session.get(Account, int(values["account_id"]))
        if account is not None:
            company, city, country = company or account.name, city or account.city, country or account.country
    custom: dict[str, Any] = values["custom"] if isinstance(values.get("custom"), dict) else {}
    return person_features(name=values.get("name"), email=values.get("email"), phone=values.get("phone"),
                           company=company, city=city, wechat_id=values.get("wechat_id") or custom.get("wechat_id"),
                           country=country, language=values.get("language"))
