"""A small, hand-written CRM for tests: two teams, every role, every object, personal data in text."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Engine

from config.db import session_factory
from crm.access import Principal
from crm.auth import hash_token, principal_for
from crm.models import (
    Account,
    Activity,
    Case,
    Contact,
    CustomFieldDef,
    Event,
    KnowledgeArticle,
    Lead,
    Opportunity,
    Team,
    User,
)

ROLES = ("rep", "manager", "support", "admin")


@dataclass
class World:
    """Ids and principals of the test CRM; ``records[team][obj]`` is a record id owned by that team."""

    engine: Engine
    principals: dict[str, Principal] = field(default_factory=dict)  # "<team>:<role>" and "admin"
    tokens: dict[str, str] = field(default_factory=dict)
    records: dict[str, dict[str, int]] = field(default_factory=dict)
    phones: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    other_rep: dict[str, Principal] = field(default_factory=dict)

    def p(self, team: str, role: str) -> Principal:
        """Principal of ``role`` in ``team`` ("a" or "b")."""
        return self.principals["admin" if role == "admin" else f"{team}:{role}"]


def build_world(engine: Engine) -> World:
    """Insert the world and return its handles."""
    w = World(engine=engine)
    with session_factory(engine)() as s, s.begin():
        s.add(CustomFieldDef(object_type="account", name="segment", type="text", label="Segment"))
        s.add(CustomFieldDef(object_type="opportunity", name="budget_confirmed", type="bool", label="Budget ok"))
        s.add(KnowledgeArticle(title="Warranty policy for ESS-200", body="The ESS-200 warranty covers battery "
                               "degradation below 70% capacity within 8 years.", product="ESS-200"))
        admin = User(name="Ada Admin", email="admin@crmind.test", role="admin", team_id=None,
                     token_hash=hash_token("tok-admin"))
        s.add(admin)
        s.flush()
        w.principals["admin"] = principal_for(admin)
        w.tokens["admin"] = "tok-admin"
        for t, (team_name, phone, email) in {
            "a": ("East China", "13812345678", "li.wei@acme-energy.cn"),
            "b": ("North America", "+1 415-555-0134", "jon.smith@northwind.com"),
        }.items():
            team = Team(name=team_name, region=t)
            s.add(team)
            s.flush()
            users = {}
            for role in ("rep", "manager", "support"):
                u = User(name=f"{role} {t}", email=f"{role}.{t}@crmind.test", role=role, team_id=team.id,
                         token_hash=hash_token(f"tok-{t}-{role}"))
                s.add(u)
                users[role] = u
            rep2 = User(name=f"rep2 {t}", email=f"rep2.{t}@crmind.test", role="rep", team_id=team.id,
                        token_hash=hash_token(f"tok-{t}-rep2"))
            s.add(rep2)
            s.flush()
            for role, u in users.items():
                w.principals[f"{t}:{role}"] = principal_for(u)
                w.tokens[f"{t}:{role}"] = f"tok-{t}-{role}"
            w.other_rep[t] = principal_for(rep2)
            w.tokens[f"{t}:rep2"] = f"tok-{t}-rep2"
            owner = users["rep"].id
            common = {"owner_id": owner, "team_id": team.id}
            acct = Account(name=f"Acme {team_name}", industry="energy", country="CN" if t == "a" else "US",
                           annual_revenue=Decimal("1200000.00"), description=f"Account of team {t}",
                           custom={"segment": "enterprise"}, **common)
            s.add(acct)
            s.flush()
            contact = Contact(account_id=acct.id, name=f"Buyer {t}", title="CFO", phone=phone, email=email, **common)
            s.add(contact)
            s.flush()
            opp = Opportunity(account_id=acct.id, name=f"ESS-200 rollout {t}", stage="proposal",
                              amount=Decimal("250000"), currency="CNY" if t == "a" else "USD",
                              close_date=date(2026, 12, 15), probability=60, competitor="Voltacore", **common)
            case = Case(account_id=acct.id, contact_id=contact.id, subject="Inverter fault E42",
                        description=f"Customer says: call me back on {phone} or mail {email}.",
                        internal_notes="Suspect firmware 3.1", status="open", priority="high",
                        owner_id=users["support"].id, team_id=team.id)
            lead = Lead(name=f"Lead {t}", company="Prospect Co", phone=phone, email=email, source="web", **common)
            s.add_all([opp, case, lead])
            s.flush()
            act = Activity(kind="call", subject="Pricing call", occurred_at=datetime(2026, 10, 3, 10, 0),
                           body=f"Spoke with Buyer {t} ({phone}, {email}); budget capped at 1.2M; next step demo.",
                           account_id=acct.id, contact_id=contact.id, opportunity_id=opp.id, **common)
            s.add(act)
            s.flush()
            ev = Event(visitor_id=f"v-{t}", contact_id=contact.id, account_id=acct.id, team_id=team.id,
                       type="pricing_view", page="/pricing", duration_s=200, occurred_at=datetime(2026, 10, 1))
            s.add(ev)
            s.flush()
            w.records[t] = {"account": acct.id, "contact": contact.id, "opportunity": opp.id, "case": case.id,
                            "lead": lead.id, "activity": act.id, "event": ev.id}
            w.phones[t], w.emails[t] = phone, email
    return w
