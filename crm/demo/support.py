"""Support cases (symptoms, resolutions, SLA by priority, people's phone numbers in free text) and their activities."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from crm.demo import cases_text as ct
from crm.demo.catalog import (
    CASE_PRIORITY_SLA_H,
    CASE_PRIORITY_WEIGHTS,
    CASE_STATUS_WEIGHTS,
    INDUSTRY_PRODUCTS,
    PRODUCT_BY_CODE,
    REFERENCE,
)
from crm.demo.deals import fmt_day
from crm.demo.facts import CASE_KINDS, Fact, case_fact
from crm.demo.world import Row, World


def build_cases(rng: random.Random, w: World, n: int, fact_target: int,
                used_kinds: dict[int, set[str]]) -> tuple[list[Row], list[tuple[Fact, int, Any]]]:
    """Cases owned by the account team's support agent; ``fact_target`` of them carry a planted fact."""
    carriers = set(rng.sample(range(n), min(n, fact_target * 2)))
    rows: list[Row] = []
    facts: list[tuple[Fact, int, Any]] = []
    for i in range(1, n + 1):
        acct = rng.choice(w.accounts)
        lang = acct.lang
        contact = rng.choice(acct.contacts)
        code = rng.choice(INDUSTRY_PRODUCTS[acct.industry])
        product = PRODUCT_BY_CODE[code]
        subject, symptom, resolution = rng.choice(ct.ISSUES[lang][product.line])
        status = rng.choices([s for s, _ in CASE_STATUS_WEIGHTS], [x for _, x in CASE_STATUS_WEIGHTS])[0]
        priority = rng.choices([s for s, _ in CASE_PRIORITY_WEIGHTS], [x for _, x in CASE_PRIORITY_WEIGHTS])[0]
        created = REFERENCE - timedelta(days=rng.randrange(0, 365), minutes=rng.randrange(1440))
        agent = w.support[acct.row["team_id"]][0]
        ctx = {"acct": acct.row["name"], "c1": contact["name"], "product": product.name_zh if lang == "zh" else
               product.name, "code": code, "n": rng.randrange(1, 6), "city": acct.city_label,
               "since": fmt_day(created - timedelta(days=rng.randrange(1, 6)), lang), "phone": contact["phone"] or
               contact["email"], "email": contact["email"] or contact["phone"], "agent": agent["name"],
               "alarm": rng.choice(ct.ALARMS), "fw": rng.choice(ct.FIRMWARE)}
        sep = "" if lang == "zh" else " "
        desc = [rng.choice(ct.OPENERS[lang]).format(**ctx) + symptom.format(**ctx)]
        desc += [d.format(**ctx) for d in rng.sample(ct.DETAILS[lang], rng.randrange(1, 3))]
        if rng.random() < 0.35:
            desc.append(rng.choice(ct.CALLBACK[lang]).format(**ctx))
        closed = status == "closed"
        res = [resolution.format(**ctx)] if closed else []
        notes = rng.choice(ct.INTERNAL[lang]).format(**ctx) if rng.random() < 0.5 else ""
        kinds = [k for k in CASE_KINDS if k not in used_kinds.setdefault(acct.row["id"], set())
                 and (closed or k != "part_number")]
        if i - 1 in carriers and len(facts) < fact_target and kinds:
            kind = rng.choice(kinds)
            fact = case_fact(rng, kind, lang, {"acct": acct.row["name"], "code": code})
            (res if kind == "part_number" else desc).append(fact.sentence)
            used_kinds[acct.row["id"]].add(kind)
            facts.append((fact, i, created))
        updated = created + timedelta(hours=rng.randrange(2, 240)) if closed or status != "new" else created
        rows.append({"id": i, "account_id": acct.row["id"], "contact_id": contact["id"],
                     "subject": subject.format(**ctx)[:300], "description": sep.join(desc),
                     "resolution": sep.join(res), "internal_notes": notes, "status": status, "priority": priority,
                     "sla_due": created + timedelta(hours=CASE_PRIORITY_SLA_H[priority]), "product": code,
                     "language": lang, "owner_id": agent["id"], "team_id": acct.row["team_id"], "custom": {},
                     "created_at": created, "updated_at": updated, "version": 1})
    return rows, facts


def case_activities(rng: random.Random, w: World, cases: list[Row], first_id: int, budget: int) -> Iterator[Row]:
    """Follow-up calls, emails and notes by the support agent, up to ``budget`` rows."""
    by_acct = {a.row["id"]: a for a in w.accounts}
    contact_name = {c["id"]: c["name"] for c in w.contacts}
    k = 0
    for case in cases:
        lang = case["language"]
        steps = ct.FOLLOW_UPS[lang]
        count = rng.randrange(1, 4) if case["status"] != "new" else 1
        for j in range(count):
            if k >= budget:
                return
            text = steps[-1] if case["status"] == "closed" and j == count - 1 else steps[min(j, len(steps) - 2)]
            when = case["created_at"] + timedelta(hours=2 + 20 * j + rng.randrange(0, 12))
            kind = rng.choice(("call", "email", "note"))
            label = {"call": "Call", "email": "Email", "note": "Note"}[kind] if lang == "en" else \
                {"call": "电话", "email": "邮件", "note": "备注"}[kind]
            yield {"id": first_id + k, "kind": kind, "subject": f"{label}: {case['subject']}"[:300],
                   "body": text.format(c1=contact_name[case["contact_id"]]), "occurred_at": when, "language": lang,
                   "account_id": case["account_id"], "contact_id": case["contact_id"], "opportunity_id": None,
                   "case_id": case["id"], "lead_id": None, "owner_id": case["owner_id"],
                   "team_id": by_acct[case["account_id"]].row["team_id"], "custom": {}, "created_at": when,
                   "updated_at": when, "version": 1}
            k += 1
