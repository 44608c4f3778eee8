"""Feature rows for scoring: leads (profile and web behaviour), deals and accounts, read from the CRM store.

Each builder returns a ``FeatureTable``: record ids, a dict of feature values per record (what a reason
quotes and the ledger keeps), the outcome where one is known, and the time that orders records for a time
split. Lead features are taken as of the lead's creation (the moment it is scored first), so a model trained
on old leads sees the same inputs a new lead has.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.models import Activity, Case, Event, Lead, Opportunity

CONVERSION_WINDOW = timedelta(days=90)
# Categories, in a fixed order: a category's code is its index, so model files stay valid between runs.
SENIORITIES = ("c_level", "vp_director", "manager", "individual", "unknown")
FUNCTIONS = ("executive", "finance", "technical", "operations", "procurement", "other")
SOURCES = ("web", "event", "referral", "partner", "cold_call", "other")
INDUSTRIES = ("Manufacturing", "EV & Batteries", "SaaS", "Retail", "Logistics", "Healthcare", "Fintech",
              "Utilities", "Telecom", "other")
PRODUCT_LINES = ("ess", "pack", "iot", "saas", "other")
# Title keywords (English lower-case and Chinese) -> seniority. The first match wins, so deputy markers come
# before the chief words they contain ("运营副总裁" holds "总裁", "vice president" holds "president").
_SENIORITY_WORDS = (
    ("vp_director", ("vp ", "vice president", "副总裁", "副总")),
    ("c_level", ("ceo", "cfo", "cto", "coo", "chief", "founder", "president", "总经理", "总裁", "首席", "财务总监",
                 "技术总监", "董事")),
    ("vp_director", ("director", "head of", "总监")),
    ("manager", ("manager", "lead", "厂长", "经理", "主管")),
    ("individual", ("engineer", "analyst", "specialist", "工程师", "专员", "分析师")),
)
_FUNCTION_WORDS = (
    ("finance", ("cfo", "finance", "财务")), ("procurement", ("procurement", "purchas", "采购")),
    ("technical", ("cto", "engineer", "it ", "security", "技术", "工程师", "信息安全")),
    ("operations", ("operations", "plant", "facilities", "fleet", "energy", "project", "运营", "厂长", "设施",
                    "车队", "能源", "项目")),
    ("executive", ("ceo", "president", "founder", "总经理", "总裁")),
)
# Currencies to USD for comparing deal sizes (a fixed table: scores must not move with the day's rates).
USD_PER = {"USD": 1.0, "CNY": 1 / 7.1, "EUR": 1 / 0.92, "GBP": 1 / 0.79}
_PRODUCT_LINE = {"ESS": "ess", "BP": "pack", "TL": "iot", "GP": "saas"}
_BEHAVIOUR_TYPES = ("page_view", "pricing_view", "download", "demo_request", "form_submit", "video_play")


@dataclass
class FeatureTable:
    """Feature values per record, in a fixed column order, with outcomes and times when known."""

    object_type: str
    columns: tuple[str, ...]
    categorical: dict[str, tuple[str, ...]]
    ids: list[int] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    labels: list[int | None] = field(default_factory=list)  # 1/0 where the outcome is known, else None
    times: list[datetime] = field(default_factory=list)

    def matrix(self, indexes: list[int] | None = None) -> list[list[float]]:
        """Rows as numbers (categories as their codes) for the chosen record positions (all by default)."""
        picked = range(len(self.ids)) if indexes is None else indexes
        out = []
        for i in picked:
            row = self.rows[i]
            out.append([float(self.categorical[c].index(row[c])) if c in self.categorical else float(row[c])
                        for c in self.columns])
        return out


def classify_title(title: str) -> tuple[str, str]:
    """(seniority, function) of a job title in English or Chinese; unknown titles give ('unknown', 'other')."""
    text = f" {title.lower()} "
    seniority = next((s for s, words in _SENIORITY_WORDS if any(w in text for w in words)), "unknown")
    function = next((f for f, words in _FUNCTION_WORDS if any(w in text for w in words)), "other")
    return seniority, function


def _known(value: Any, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else "other"


def data_clock(session: Session) -> datetime:
    """'Now' for the data: the latest activity or event time (the demo lives at a fixed date)."""
    latest = [session.scalar(select(func.max(Activity.occurred_at))), session.scalar(select(func.max(
        Event.occurred_at)))]
    known = [t for t in latest if t is not None]
    return max(known) if known else datetime.now()


def _visitor_events(session: Session, visitors: list[str]) -> dict[str, list[tuple[datetime, str, int]]]:
    out: dict[str, list[tuple[datetime, str, int]]] = defaultdict(list)
    for start in range(0, len(visitors), 500):  # bounded IN lists: SQLite allows a limited number of parameters
        chunk = visitors[start:start + 500]
        for vid, when, etype, dur in session.execute(
                select(Event.visitor_id, Event.occurred_at, Event.type, Event.duration_s)
                .where(Event.visitor_id.in_(chunk), Event.type.in_(_BEHAVIOUR_TYPES))):
            out[vid].append((when, etype, dur or 0))
    return out


LEAD_COLUMNS = ("seniority", "function", "company_size", "industry", "source", "sessions", "pricing_views",
                "dwell_minutes", "downloads", "demo_requests", "recency_days")


def lead_features(session: Session, *, now: datetime | None = None) -> FeatureTable:
    """Profile and behaviour of every (unmerged) lead, as of its creation; label = converted within 90 days.

    A lead's label is known when it converted (``custom.converted_at``) or when 90 days have passed since
    its creation without a conversion; younger unconverted leads get ``None`` (still open).
    """
    now = now or data_clock(session)
    table = FeatureTable("lead", LEAD_COLUMNS, {"seniority": SENIORITIES, "function": FUNCTIONS,
                                                "industry": INDUSTRIES, "source": SOURCES})
    leads = list(session.execute(select(Lead.id, Lead.created_at, Lead.source, Lead.custom)
                                 .where(Lead.merged_into_id.is_(None)).order_by(Lead.id)))
    events = _visitor_events(session, sorted({str(c.get("visitor_id")) for _, _, _, c in leads
                                              if c and c.get("visitor_id")}))
    for lead_id, created, source, custom in leads:
        custom = custom or {}
        seniority, function = classify_title(str(custom.get("title") or ""))
        seen = [e for e in events.get(str(custom.get("visitor_id")), []) if e[0] <= created]
        days = {e[0].date() for e in seen}
        last = max((e[0] for e in seen), default=None)
        table.ids.append(lead_id)
        table.times.append(created)
        table.rows.append({
            "seniority": seniority, "function": function,
            "company_size": int(custom.get("company_size") or 0),
            "industry": _known(custom.get("industry"), INDUSTRIES), "source": _known(source, SOURCES),
            "sessions": len(days), "pricing_views": sum(e[1] == "pricing_view" for e in seen),
            "dwell_minutes": round(sum(e[2] for e in seen) / 60, 1),
            "downloads": sum(e[1] == "download" for e in seen),
            "demo_requests": sum(e[1] == "demo_request" for e in seen),
            # No visit at all reads as a visit long ago (60 days, the longest look-back that matters).
            "recency_days": 60 if last is None else min(60, (created - last).days)})
        converted = custom.get("converted_at")
        if converted and date.fromisoformat(str(converted)) <= (created + CONVERSION_WINDOW).date():
            table.labels.append(1)
        elif now - created >= CONVERSION_WINDOW:
            table.labels.append(0)
        else:
            table.labels.append(None)
    return table


OPP_COLUMNS = ("amount_usd_log", "product_line", "days_in_pipeline", "meetings", "calls", "emails",
               "has_competitor", "budget_confirmed", "champion", "exec_sponsor", "pilot_done", "stakeholders",
               "discount_pct")


def opportunity_features(session: Session, *, now: datetime | None = None) -> FeatureTable:
    """Deal features; label = won (1) or lost (0) for closed deals, ``None`` while open."""
    now = now or data_clock(session)
    table = FeatureTable("opportunity", OPP_COLUMNS, {"product_line": PRODUCT_LINES})
    acts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for opp_id, kind, n in session.execute(select(Activity.opportunity_id, Activity.kind, func.count())
                                           .where(Activity.opportunity_id.is_not(None))
                                           .group_by(Activity.opportunity_id, Activity.kind)):
        acts[opp_id][kind] = n
    for opp in session.scalars(select(Opportunity).order_by(Opportunity.id)):
        custom = opp.custom or {}
        closed = opp.stage in ("closed_won", "closed_lost")
        end = datetime.combine(opp.close_date, datetime.min.time()) if closed else now
        usd = float(opp.amount or 0) * USD_PER.get(opp.currency, 1.0)
        table.ids.append(opp.id)
        table.times.append(end)
        table.rows.append({
            "amount_usd_log": round(math.log10(max(usd, 1.0)), 3),
            "product_line": _PRODUCT_LINE.get(opp.product.split("-")[0], "other"),
            "days_in_pipeline": max(0, (end - opp.created_at).days), "meetings": acts[opp.id]["meeting"],
            "calls": acts[opp.id]["call"], "emails": acts[opp.id]["email"],
            "has_competitor": int(bool(opp.competitor)), "budget_confirmed": int(bool(custom.get(
                "budget_confirmed"))), "champion": int(bool(custom.get("champion"))),
            "exec_sponsor": int(bool(custom.get("exec_sponsor"))), "pilot_done": int(bool(custom.get("pilot_done"))),
            "stakeholders": int(custom.get("stakeholders") or 1), "discount_pct": float(custom.get("discount_pct")
                                                                                        or 0.0)})
        table.labels.append((1 if opp.stage == "closed_won" else 0) if closed else None)
    return table


def case_breached(case: Case, now: datetime) -> bool:
    """An SLA breach: closed after its due time, or still open past it."""
    if case.sla_due is None:
        return False
    if case.status == "closed":
        return case.updated_at > case.sla_due
    return now > case.sla_due
