"""Learnable outcomes: lead profiles, their web behaviour and conversion; deal signals; account product usage.

Every draw here comes from rng parts of its own (``lead-signal``, ``opp-signal``, ``account-usage``), so the
rows drawn elsewhere stay exactly as they were.

The generative process, so that a model has something to learn and the truth is known:

* **Leads.** Each lead gets a profile (a job title, company size, the industry its company name was drawn
  for) and a latent buying intent that rises with seniority. The intent drives the web behaviour of the
  lead's visitor: sessions, pricing views, dwell time, downloads, demo requests and how recently they came.
  The lead carries its visitor id in ``custom.visitor_id`` and those events use it as their ``visitor_id``
  (contact_id stays empty: a lead is not a contact yet). Conversion within 90 days is drawn from a logistic
  function of the observable features (``LEAD_TRUTH``) plus Gaussian noise; the conversion date is stored
  in ``custom.converted_at`` only when it is not after the demo's reference day (the future is unseen), and
  the status agrees with it.
* **Deals.** Closed outcomes are left as they are (ground-truth facts depend on them); features are drawn
  conditional on the outcome (a champion, an executive sponsor, a pilot, stakeholders, the discount asked).
  Open deals draw a hidden outcome from their stage's probability and their features from it.
* **Accounts.** A latent health drives weekly ``product_usage`` events (active users, sessions) over the
  last 26 weeks, declining for unhealthy accounts; cases and notes already carry priority, SLA and tone.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import timedelta

from crm.demo.catalog import PROBABILITY, REFERENCE, TITLE_WEIGHTS, TITLES
from crm.demo.world import Row, World

# How much each observable feature moves a lead's log-odds of converting within 90 days (the truth).
SENIORITY_OF = {"ceo": "c_level", "cfo": "c_level", "cto": "c_level", "ops": "vp_director",
                "facilities": "vp_director", "procurement": "manager", "plant": "manager", "energy": "manager",
                "fleet": "manager", "it_sec": "manager", "pm": "manager", "engineer": "individual"}
LEAD_TRUTH = {
    "intercept": -2.4,
    "seniority": {"c_level": 0.7, "vp_director": 0.5, "manager": 0.2, "individual": -0.4},
    "source": {"referral": 1.2, "partner": 0.7, "event": 0.2, "web": 0.0, "cold_call": -1.1},
    "industry": {"Utilities": 0.8, "Manufacturing": 0.5, "EV & Batteries": 0.4, "Logistics": 0.1,
                 "Healthcare": -0.2, "Retail": -0.5, "Fintech": -0.8},
    # Mid-market companies buy fastest; the largest ones rarely close within 90 days (long procurement).
    "mid_market": 0.6,  # 200..3,000 employees
    "enterprise": -0.6,  # over 5,000 employees
    "pricing_views": 0.3,  # per view, up to 5
    "demo_request": 1.2,
    "downloads": 0.2,  # per download, up to 3
    "recency": -0.04,  # per day between the last visit and the lead's creation, up to 60
    "c_level_and_pricing": 0.6,  # a senior buyer who looked at pricing twice or more
    "noise_sd": 0.6,
}
CONVERSION_WINDOW_DAYS = 90
_LEAD_DOWNLOADS = ("/resources/ess-200-datasheet.pdf", "/resources/roi-calculator.xlsx",
                   "/resources/gridpilot-security-whitepaper.pdf")
_USAGE_WEEKS = 26


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method; the rates here are small."""
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def lead_visitor_id(lead_id: int) -> str:
    """The web visitor id a demo lead carries in ``custom.visitor_id`` and its events use."""
    return f"l-{lead_id:06d}"


def _behaviour(rng: random.Random, intent: float) -> list[tuple[int, str, str, int]]:
    """(days before the lead's creation, event type, page, duration_s) of the lead's visitor."""
    steps: list[tuple[int, str, str, int]] = []
    sessions = min(10, _poisson(rng, math.exp(0.2 + 0.6 * intent)))
    mean_gap = math.exp(2.3 - 0.6 * intent)  # high intent comes back sooner
    day = int(rng.expovariate(1 / mean_gap))
    for _ in range(sessions):
        steps.append((day, "page_view", "/", int(rng.lognormvariate(3.2 + 0.3 * intent, 0.7)) + 3))
        if rng.random() < _sigmoid(-0.8 + 0.9 * intent):
            steps.append((day, "pricing_view", "/pricing", int(rng.lognormvariate(3.6 + 0.3 * intent, 0.6)) + 5))
        if rng.random() < _sigmoid(-1.8 + 0.7 * intent):
            steps.append((day, "download", rng.choice(_LEAD_DOWNLOADS), 0))
        if rng.random() < _sigmoid(-3.4 + 1.0 * intent):
            steps.append((day, "demo_request", "/demo", rng.randrange(30, 90)))
        day += 1 + int(rng.expovariate(1 / mean_gap))
    return steps


def lead_logit(*, seniority: str, source: str, industry: str, employees: int, pricing_views: int,
               demo_request: bool, downloads: int, recency_days: float) -> float:
    """The true log-odds of converting within 90 days, before noise (the demo's ground truth)."""
    t = LEAD_TRUTH
    pv = min(pricing_views, 5)
    z = (t["intercept"] + t["seniority"][seniority] + t["source"].get(source, 0.0)
         + t["industry"].get(industry, 0.0) + (t["mid_market"] if 200 <= employees <= 3000 else 0.0)
         + (t["enterprise"] if employees > 5000 else 0.0) + t["pricing_views"] * pv
         + (t["demo_request"] if demo_request else 0.0) + t["downloads"] * min(downloads, 3)
         + t["recency"] * min(recency_days, 60))
    if seniority == "c_level" and pricing_views >= 2:
        z += t["c_level_and_pricing"]
    return float(z)


def lead_signal(rng: random.Random, w: World, first_event_id: int) -> list[Row]:
    """Give every lead a profile, a visitor, and a drawn outcome; returns the visitors' events."""
    keys, weights = [k for k, _ in TITLE_WEIGHTS], [x for _, x in TITLE_WEIGHTS]
    events: list[Row] = []
    for lead in w.leads:
        key = rng.choices(keys, weights)[0]
        seniority = SENIORITY_OF[key]
        employees = int(rng.lognormvariate(5.6, 1.4)) + 10
        intent = rng.gauss(0, 1) + {"c_level": 0.3, "vp_director": 0.2}.get(seniority, 0.0)
        steps = _behaviour(rng, intent)
        created = lead["created_at"]
        visitor = lead_visitor_id(lead["id"])
        zh = lead["language"] == "zh"
        for n, (days_before, etype, page, dur) in enumerate(steps):
            when = created - timedelta(days=days_before, minutes=30 + 3 * (len(steps) - n))
            events.append({"id": first_event_id + len(events), "visitor_id": visitor, "contact_id": None,
                           "account_id": None, "team_id": lead["team_id"], "type": etype,
                           "page": f"/zh{page}" if zh and page != "/" else page, "duration_s": dur,
                           "occurred_at": when, "properties": {"session": f"{visitor}-d{days_before}",
                                                               "lang": lead["language"]}})
        recency = min((d for d, *_ in steps), default=60)
        logit = lead_logit(seniority=seniority, source=lead["source"], industry=lead["custom"]["industry"],
                           employees=employees, pricing_views=sum(s[1] == "pricing_view" for s in steps),
                           demo_request=any(s[1] == "demo_request" for s in steps),
                           downloads=sum(s[1] == "download" for s in steps), recency_days=recency)
        converts = rng.random() < _sigmoid(logit + rng.gauss(0, LEAD_TRUTH["noise_sd"]))
        converted_at = created + timedelta(days=rng.randrange(3, CONVERSION_WINDOW_DAYS))
        custom = {**lead["custom"], "title": TITLES[key][1 if zh else 0], "company_size": employees,
                  "visitor_id": visitor}
        if converts and converted_at <= REFERENCE:
            custom["converted_at"] = converted_at.date().isoformat()
            lead["status"] = "converted"
        elif lead["status"] == "converted":
            # The drawn status said converted but the outcome says no: a lead that has not (yet) converted.
            lead["status"] = "disqualified" if REFERENCE - created > timedelta(days=CONVERSION_WINDOW_DAYS) \
                else "qualified"
        lead["custom"] = custom
    return events


def opp_signal(rng: random.Random, opps: list[Row]) -> None:
    """Deal features drawn conditional on the (closed or hidden) outcome; closed outcomes stay unchanged."""
    for opp in opps:
        stage = opp["stage"]
        won = stage == "closed_won" if stage.startswith("closed") else rng.random() < PROBABILITY[stage] / 100

        def drawn(if_won: float, if_lost: float, won: bool = won) -> bool:
            return rng.random() < (if_won if won else if_lost)

        opp["custom"] = {**opp["custom"], "champion": drawn(0.7, 0.3), "exec_sponsor": drawn(0.55, 0.25),
                         "pilot_done": drawn(0.45, 0.2),
                         "stakeholders": max(1, round(rng.gauss(4.0 if won else 2.8, 1.2))),
                         "discount_pct": round(max(0.0, rng.gauss(8 if won else 14, 5)), 1)}


def product_usage(rng: random.Random, w: World, first_event_id: int) -> Iterator[Row]:
    """Weekly ``product_usage`` events per account over the last 26 weeks, driven by a latent health."""
    eid = first_event_id
    for acct in w.accounts:
        health = rng.gauss(0, 1)
        seats = max(2, min(60, acct.row["employees"] // 40))
        decline = 0.06 if health < -0.6 else 0.0  # an unhealthy account uses the product less week by week
        for week in range(_USAGE_WEEKS):
            age = _USAGE_WEEKS - 1 - week  # weeks before the reference day
            rate = seats * _sigmoid(0.5 + health) * max(0.05, 1 - decline * (_USAGE_WEEKS - age))
            active = _poisson(rng, rate) if rate < 30 else max(0, round(rng.gauss(rate, math.sqrt(rate))))
            if active == 0:
                continue
            sessions = active * rng.randrange(2, 6)
            when = REFERENCE - timedelta(weeks=age, days=rng.randrange(0, 7), hours=rng.randrange(24))
            yield {"id": eid, "visitor_id": f"product-a{acct.row['id']:06d}", "contact_id": None,
                   "account_id": acct.row["id"], "team_id": acct.row["team_id"], "type": "product_usage",
                   "page": "/app", "duration_s": sessions * rng.randrange(120, 900), "occurred_at": when,
                   "properties": {"session": f"usage-a{acct.row['id']}-w{week}", "active_users": active,
                                  "sessions": sessions}}
            eid += 1
