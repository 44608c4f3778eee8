"""Opportunities and the activity timelines that move each one to its final stage."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from crm.demo.bank import BANKS
from crm.demo.catalog import (
    COMPETITORS_EN,
    COMPETITORS_ZH,
    INDUSTRY_PRODUCTS,
    PROBABILITY,
    PRODUCT_BY_CODE,
    REFERENCE,
    STAGE_WEIGHTS,
    STAGES,
    TITLES,
    VENDOR,
    money,
    money_zh,
)
from crm.demo.facts import Fact, opp_fact
from crm.demo.world import AccountInfo, Row, World

_PURPOSE = {"ess": ("peak shaving", "backup power", "solar self-consumption"),
            "pack": ("fleet electrification", "battery supply 2027", "forklift retrofit"),
            "iot": ("fleet telematics rollout", "cold-chain monitoring", "asset tracking"),
            "saas": ("energy management platform", "portfolio monitoring", "carbon reporting")}
_PURPOSE_ZH = {"ess": ("削峰填谷", "备用电源", "光储一体化"), "pack": ("车队电动化", "2027年电池采购", "叉车电池替换"),
               "iot": ("车队远程监控", "冷链监控", "资产追踪"), "saas": ("能源管理平台", "多站点监控", "碳排放报告")}
_FX = {"CNY": 7.1, "USD": 1.0, "EUR": 0.92, "GBP": 0.79}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WEEKDAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
_BEATS = {"prospecting": (1, 2), "qualification": (1, 2), "needs_analysis": (2, 3), "proposal": (2, 3),
          "negotiation": (2, 3), "closed_won": (1, 2), "closed_lost": (1, 2)}


def _currency(rng: random.Random, acct: AccountInfo) -> str:
    if acct.lang == "zh":
        return "CNY" if rng.random() < 0.85 else "USD"
    country = acct.row["country"]
    if country == "United Kingdom":
        return "GBP"
    return "EUR" if country in ("Germany", "Netherlands", "Italy", "France", "Spain") else "USD"


def build_opportunities(rng: random.Random, w: World, n: int) -> list[Row]:
    """Deals on accounts (strategic accounts get more), each with a product, amount, stage and close date."""
    weights = [{"standard": 1, "gold": 2, "strategic": 4}[a.row["tier"]] for a in w.accounts]
    rows = []
    for i in range(1, n + 1):
        acct = w.accounts[i - 1] if i <= len(w.accounts) and rng.random() < 0.8 else \
            rng.choices(w.accounts, weights)[0]
        code = rng.choice(INDUSTRY_PRODUCTS[acct.industry])
        product = PRODUCT_BY_CODE[code]
        qty = {"ess": rng.randrange(1, 13), "pack": rng.randrange(50, 2000, 10), "iot": rng.randrange(40, 3000, 10),
               "saas": rng.randrange(3, 80)}[product.line]
        currency = _currency(rng, acct)
        amount = round(product.unit_usd * qty * rng.uniform(0.85, 1.15) * _FX[currency], -3)
        stage = rng.choices([s for s, _ in STAGE_WEIGHTS], [wt for _, wt in STAGE_WEIGHTS])[0]
        closed = stage.startswith("closed")
        close = (REFERENCE - timedelta(days=rng.randrange(5, 330))) if closed else \
            (REFERENCE + timedelta(days=rng.randrange(7, 200)))
        prob = PROBABILITY[stage] if closed else max(5, PROBABILITY[stage] + rng.choice((-5, 0, 0, 5)))
        zh = acct.lang == "zh"
        short = acct.row["name"].removesuffix("有限公司") if zh else acct.row["name"].split(" ")[0]
        purpose = rng.choice((_PURPOSE_ZH if zh else _PURPOSE)[product.line])
        unit = ("个站点" if zh else " sites") if product.line == "saas" else \
            ("台" if zh else " units" if qty > 1 else " unit")
        name = f"{short} - {code} {purpose}" + (f"（{qty}{unit}）" if zh else f" ({qty}{unit})")
        comp_pool = COMPETITORS_ZH + COMPETITORS_EN[:4] if zh else COMPETITORS_EN
        owner = acct.row["owner_id"] if rng.random() < 0.8 else rng.choice(w.reps[acct.row["team_id"]])["id"]
        rows.append({"id": i, "account_id": acct.row["id"], "name": name, "stage": stage,
                     "amount": Decimal(int(amount)), "currency": currency, "close_date": close.date(),
                     "probability": prob, "competitor": rng.choice(comp_pool) if rng.random() < 0.85 else None,
                     "product": code, "owner_id": owner, "team_id": acct.row["team_id"],
                     "custom": {"budget_confirmed": STAGES.index(stage) >= 2 and rng.random() < 0.75},
                     "created_at": REFERENCE, "updated_at": REFERENCE, "version": 1, "_qty": qty})
    return rows


def _path(rng: random.Random, stage: str) -> list[str]:
    if stage == "closed_won":
        return list(STAGES[:5]) + ["closed_won"]
    if stage == "closed_lost":
        return list(STAGES[:rng.randrange(2, 6)]) + ["closed_lost"]
    return list(STAGES[:STAGES.index(stage) + 1])


def fmt_day(d: date | datetime, lang: str) -> str:
    """A next-step date as people write it: 'Tue 14 Mar' or '3月14日（周二）'."""
    if lang == "zh":
        return f"{d.month}月{d.day}日（{_WEEKDAYS_ZH[d.weekday()]}）"
    return f"{_WEEKDAYS[d.weekday()]} {d.day} {_MONTHS[d.month - 1]}"


def _weekday(day: datetime) -> datetime:
    return day + timedelta(days=max(0, 7 - day.weekday())) if day.weekday() >= 5 else day


def _work_time(rng: random.Random, day: datetime) -> datetime:
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day.replace(hour=rng.randrange(8, 19), minute=rng.choice((0, 10, 15, 20, 30, 40, 45, 50)), second=0)


def story(rng: random.Random, opp: Row, acct: AccountInfo, rep_name: str, first_id: int,
          fact_kind: str | None) -> tuple[list[Row], tuple[Fact, int, datetime] | None]:
    """The activities of one deal, oldest first, and the planted fact (with its activity id and time) if any."""
    lang, bank = acct.lang, BANKS[acct.lang]
    path = _path(rng, opp["stage"])
    closed = opp["stage"].startswith("closed")
    end = datetime.combine(opp["close_date"], datetime.min.time()) if closed else \
        REFERENCE - timedelta(days=rng.randrange(0, 21))
    beats = [s for s in path for _ in range(rng.randrange(_BEATS[s][0], _BEATS[s][1] + 1))]
    span = timedelta(days=14 + 9 * len(beats) + rng.randrange(0, 40))
    start = end - span
    opp["created_at"] = opp["updated_at"] = start - timedelta(days=rng.randrange(1, 10))
    contacts = acct.contacts
    product = PRODUCT_BY_CODE[opp["product"]]
    amount = float(opp["amount"])
    seniors = [c for c in contacts if c["title"] in ("CFO", "CEO", "CTO", "VP Operations", "财务总监", "总经理",
                                                      "技术总监", "运营副总裁")] or contacts
    competitor = opp["competitor"] or ("其他厂商" if lang == "zh" else "another vendor")
    golive = end + timedelta(days=rng.randrange(60, 200))
    fact_at = rng.randrange(len(beats) - 1) if fact_kind and len(beats) > 1 else 0
    rows: list[Row] = []
    planted = None
    for k, stage in enumerate(beats):
        when = _work_time(rng, start + span * (k + rng.uniform(0.2, 0.8)) / len(beats))
        c1 = rng.choice(contacts)
        c2 = rng.choice([c for c in seniors if c is not c1] or [c for c in contacts if c is not c1] or contacts)
        kind = rng.choices(("email", "call", "meeting", "note"), (35, 30, 20, 15))[0]
        ctx: dict[str, Any] = {
            "acct": acct.row["name"], "city": acct.city_label, "c1": c1["name"], "t1": c1["title"],
            "c1f": c1["name"] if lang == "zh" else c1["name"].split(" ")[0], "c2": c2["name"], "t2": c2["title"],
            "rep": rep_name, "product": product.name_zh if lang == "zh" else product.name, "code": product.code,
            "qty": opp["_qty"], "budget": money_zh(amount, opp["currency"]) if lang == "zh" else
            money(amount, opp["currency"]), "competitor": competitor, "objection": rng.choice(bank.objections),
            "next": fmt_day(_weekday(when + timedelta(days=rng.randrange(3, 15))), lang),
            "golive": f"{golive.year}年{golive.month}月" if lang == "zh" else
            f"{_MONTHS[golive.month - 1]} {golive.year}",
            "mins": rng.randrange(15, 95, 5), "vendor": VENDOR, "kw": rng.randrange(300, 6000, 50),
            "sites": rng.randrange(2, 30)}
        ctx["loss"] = rng.choice(bank.loss_reasons).format(**ctx)
        pool = bank.stage_lines[stage]
        lines = rng.sample(pool, 1 if stage.startswith("closed") else min(len(pool), rng.randrange(1, 4)))
        parts = [rng.choice(bank.openers[kind]).format(**ctx)] + [x.format(**ctx) for x in lines]
        if fact_kind and k == fact_at:
            fact = opp_fact(rng, fact_kind, lang, {"acct": ctx["acct"], "contact": c2["name"],
                                                   "title_key": _title_key(c2), "competitor": competitor,
                                                   "amount": amount, "currency": opp["currency"],
                                                   "year": golive.year})
            parts.insert(1 + rng.randrange(len(parts)), fact.sentence)
            planted = (fact, first_id + k, when)
        if not stage.startswith("closed"):
            parts.append(rng.choice(bank.next_steps).format(**ctx))
        subject = rng.choice(bank.subjects[stage]).format(**ctx)
        if kind == "email":
            head, _, first = parts[0].partition("\n\n")
            body = head + "\n\n" + bank.sep.join([first, *parts[1:]]).strip() + rng.choice(bank.sign_off).format(**ctx)
        else:
            subject = f"{bank.kind_label[kind]}: {subject}"
            body = bank.sep.join(parts)
        rows.append({"id": first_id + k, "kind": kind, "subject": subject[:300], "body": body, "occurred_at": when,
                     "language": lang, "account_id": acct.row["id"], "contact_id": c1["id"],
                     "opportunity_id": opp["id"], "case_id": None, "lead_id": None, "owner_id": opp["owner_id"],
                     "team_id": opp["team_id"], "custom": {}, "created_at": when, "updated_at": when, "version": 1})
    return rows, planted


_TITLE_KEYS = {label: key for key, pair in TITLES.items() for label in pair}


def _title_key(contact: Row) -> str:
    return _TITLE_KEYS[contact["title"]]


def account_notes(rng: random.Random, w: World, n: int, first_id: int) -> Iterator[Row]:
    """Relationship notes not tied to a deal: QBRs, check-ins, renewals, introductions."""
    for k in range(n):
        acct = rng.choice(w.accounts)
        bank, lang = BANKS[acct.lang], acct.lang
        c1 = rng.choice(acct.contacts)
        c2 = rng.choice(acct.contacts)
        when = _work_time(rng, REFERENCE - timedelta(days=rng.randrange(1, 365)))
        later = _weekday(when + timedelta(days=rng.randrange(20, 90)))
        code = rng.choice(INDUSTRY_PRODUCTS[acct.industry])
        ctx = {"acct": acct.row["name"], "city": acct.city_label, "c1": c1["name"], "t1": c1["title"],
               "c2": c2["name"], "t2": c2["title"], "mins": rng.randrange(10, 99),
               "golive": fmt_day(later, lang), "next": fmt_day(later, lang), "sites": rng.randrange(2, 30),
               "product": PRODUCT_BY_CODE[code].name_zh if lang == "zh" else PRODUCT_BY_CODE[code].name}
        kind = rng.choice(("note", "call", "meeting"))
        body = rng.choice(bank.account_notes).format(**ctx)
        subject = f"{bank.kind_label[kind]}: {acct.row['name']}"
        yield {"id": first_id + k, "kind": kind, "subject": subject[:300], "body": body, "occurred_at": when,
               "language": lang, "account_id": acct.row["id"], "contact_id": c1["id"], "opportunity_id": None,
               "case_id": None, "lead_id": None, "owner_id": acct.row["owner_id"], "team_id": acct.row["team_id"],
               "custom": {}, "created_at": when, "updated_at": when, "version": 1}

