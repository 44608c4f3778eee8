"""Account health: a transparent weighted index of recent touchpoints, open cases, SLA breaches, tone and usage.

There is no churn label to learn from, so health is a documented formula: each input is turned into points
around a neutral account (weights in ``WEIGHTS``), the points are the reasons, and 50 + their sum, clipped
to 0..100, is the score.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.models import Account, Activity, Case, Event
from customers.features import case_breached

HEALTH_VERSION = "health-rules-v1"
# Points per unit of each input, around a neutral account.
WEIGHTS = {"activities_90d": 1.5, "days_since_touch": -0.25, "open_urgent_high": -8.0, "open_cases": -2.0,
           "sla_breaches_180d": -4.0, "tone": 20.0, "usage_per_seat": 25.0, "usage_trend": 30.0}
NEUTRAL = {"activities_90d": 6, "days_since_touch": 20, "open_urgent_high": 0, "open_cases": 1,
           "sla_breaches_180d": 1, "tone": 0.0, "usage_per_seat": 0.5, "usage_trend": 0.0}
CAPS = {"activities_90d": 20, "days_since_touch": 120, "open_urgent_high": 4, "open_cases": 8,
        "sla_breaches_180d": 6}
# A small bilingual tone lexicon for notes and cases (whole English words; Chinese by substring).
POSITIVE = ("happy", "satisfied", "pleased", "great", "thanks", "thank", "resolved", "renewal", "upsell", "expand",
            "multi-year", "recommend", "满意", "感谢", "顺利", "已解决", "续约", "增购", "推荐", "好评")
NEGATIVE = ("outage", "fault", "failure", "failed", "alarm", "complaint", "complain", "frustrated", "angry",
            "escalate", "escalated", "urgent", "delay", "delayed", "cancel", "churn", "refund", "down", "故障",
            "告警", "投诉", "不满", "延误", "紧急", "升级处理", "取消", "退款", "停机", "报警")
_WORD = re.compile(r"[a-z][a-z\-]+")


def tone(texts: list[str]) -> float:
    """(positive - negative) / (positive + negative + 1) hits over ``texts``: -1 (negative) .. 1 (positive)."""
    pos = neg = 0
    for text in texts:
        lower = text.lower()
        words = set(_WORD.findall(lower))
        pos += sum((w in words) if w.isascii() else (w in lower) for w in POSITIVE)
        neg += sum((w in words) if w.isascii() else (w in lower) for w in NEGATIVE)
    return round((pos - neg) / (pos + neg + 1), 3)


def health_inputs(session: Session, now: datetime) -> dict[int, dict[str, Any]]:
    """The inputs of every account's health, as of ``now``."""
    since_90, since_180 = now - timedelta(days=90), now - timedelta(days=180)
    acts: dict[int, list[datetime]] = defaultdict(list)
    texts: dict[int, list[str]] = defaultdict(list)
    for acct, when, subject, body in session.execute(
            select(Activity.account_id, Activity.occurred_at, Activity.subject, Activity.body)
            .where(Activity.account_id.is_not(None), Activity.occurred_at <= now)):
        acts[acct].append(when)
        if when >= since_180:
            texts[acct].append(f"{subject} {body}")
    cases: dict[int, list[Case]] = defaultdict(list)
    for case in session.scalars(select(Case).where(Case.account_id.is_not(None), Case.created_at <= now)):
        cases[case.account_id or 0].append(case)
        if case.created_at >= since_180:
            texts[case.account_id or 0].append(f"{case.subject} {case.description}")
    usage: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for acct, when, props in session.execute(select(Event.account_id, Event.occurred_at, Event.properties)
                                             .where(Event.type == "product_usage", Event.account_id.is_not(None),
                                                    Event.occurred_at >= now - timedelta(weeks=12))):
        usage[acct].append((when, int((props or {}).get("active_users", 0))))
    out = {}
    for acct_id, employees in session.execute(select(Account.id, Account.employees)
                                              .where(Account.merged_into_id.is_(None))):
        times = acts.get(acct_id, [])
        recent = [u for w, u in usage.get(acct_id, []) if w >= now - timedelta(weeks=4)]
        before = [u for w, u in usage.get(acct_id, []) if w < now - timedelta(weeks=4)]
        seats = max(2, min(60, (employees or 0) // 40))  # the seats a customer of this size is expected to use
        recent_avg, before_avg = sum(recent) / 4, sum(before) / 8
        its_cases = cases.get(acct_id, [])
        open_cases = [c for c in its_cases if c.status != "closed"]
        out[acct_id] = {
            "activities_90d": sum(t >= since_90 for t in times),
            "days_since_touch": (now - max(times)).days if times else CAPS["days_since_touch"],
            "open_urgent_high": sum(c.priority in ("urgent", "high") for c in open_cases),
            "open_cases": len(open_cases),
            "sla_breaches_180d": sum(c.created_at >= since_180 and case_breached(c, now) for c in its_cases),
            "tone": tone(texts.get(acct_id, [])),
            "usage_per_seat": round(min(1.5, recent_avg / seats), 3),
            "usage_trend": round(max(-1.0, min(1.0, (recent_avg - before_avg) / before_avg)), 3) if before_avg
            else 0.0,
        }
    return out


def health_points(inputs: dict[str, Any]) -> dict[str, float]:
    """Each input's points relative to a neutral account (positive = healthier)."""
    out = {}
    for name, weight in WEIGHTS.items():
        value = min(inputs[name], CAPS[name]) if name in CAPS else inputs[name]
        out[name] = round(weight * (value - NEUTRAL[name]), 3)
    return out


def health_value(points: dict[str, float]) -> float:
    """50 plus the points, clipped to 0..100."""
    return float(max(0.0, min(100.0, 50 + sum(points.values()))))
