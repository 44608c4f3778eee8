"""Accounts cluster among themselves: the same company name (in the same city, when both have one).

A company name with a city missing on either side links too. Company names are compared without legal forms
and across scripts (``customers.normalize.company_key``). A website domain alone is not enough: group
companies share one site, across cities and within one (the demo has 21 pairs across cities at scale 1, and 2 of
differently named companies in one city).

These are rules, not a trained model: a CRM holds few duplicate accounts, too few for EM to learn m values from,
and a company's own domain is close to an identifier already.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.models import Account
from customers.normalize import city_key, company_key, is_personal_domain, website_domain


class _Components:
    """Union-find over record refs; the root of a set is its anchor-most member."""

    def __init__(self, order: dict[str, tuple[Any, ...]]) -> None:
        self.parent = {k: k for k in order}
        self.order = order

    def find(self, x: str) -> str:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            keep, drop = (ra, rb) if self.order[ra] <= self.order[rb] else (rb, ra)
            self.parent[drop] = keep


def link_accounts(session: Session) -> list[dict[str, Any]]:
    """One link row per live account; the customer id is the oldest account of its cluster."""
    rows = session.execute(select(Account.id, Account.name, Account.city, Account.website, Account.created_at)
                           .where(Account.merged_into_id.is_(None))).all()
    order = {f"account:{r.id}": (r.created_at or datetime.max, r.id) for r in rows}
    comps = _Components(order)
    reasons: dict[str, set[str]] = {ref: set() for ref in order}
    by_name: dict[str, list[tuple[str, str | None]]] = {}
    by_domain: dict[tuple[str, str | None], str] = {}
    for r in rows:
        ref = f"account:{r.id}"
        key, city = company_key(r.name), city_key(r.city)
        if key:
            for other, other_city in by_name.get(key, []):
                if city is None or other_city is None or city == other_city:
                    comps.union(ref, other)
                    reasons[ref].add("company agrees (normalised)")
                    reasons[other].add("company agrees (normalised)")
                    if city is not None and city == other_city:
                        reasons[ref].add("city agrees")
                        reasons[other].add("city agrees")
            by_name.setdefault(key, []).append((ref, city))
        domain = website_domain(r.website)
        if domain and not is_personal_domain(domain):
            site = (domain, city)
            # A shared domain backs up a name match but links nothing alone: divisions of one group (赛普新能源发电
            # and 赛普电力 in one city) share a site and are still two customers to sell to.
            if site in by_domain and comps.find(ref) == comps.find(by_domain[site]):
                for x in (ref, by_domain[site]):
                    reasons[x].add("website domain agrees")
            by_domain.setdefault(site, ref)
    out = []
    for ref in order:
        root = comps.find(ref)
        anchor = root == ref
        out.append({"object_type": "account", "record_key": ref.split(":", 1)[1], "customer_id": root,
                    "strength": "anchor" if anchor else "strong", "match_probability": 1.0,
                    "reasons": [] if anchor else sorted(reasons[ref])})
    return out
