"""The cast: teams, users, accounts, contacts (with planted duplicates) and leads, as plain row dicts."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from crm.demo import names as nm
from crm.demo.catalog import (
    INDUSTRY_PRODUCTS,
    LEAD_SOURCES,
    LEAD_STATUS,
    REFERENCE,
    TEAMS,
    TITLE_WEIGHTS,
    TITLES,
    VENDOR_DOMAIN,
)

Row = dict[str, Any]
_SLUG = {"manufacturing": "mfg", "ev_batteries": "power", "saas": "soft", "retail": "retail", "logistics": "log",
         "healthcare": "health", "fintech": "fin", "utilities": "energy", "telecom": "tel"}


@dataclass
class AccountInfo:
    """What stories need to know about an account beyond its row."""

    row: Row
    lang: str
    industry: str
    dial: str
    domain: str
    city_label: str
    contacts: list[Row] = field(default_factory=list)  # not duplicates: the real people of the account


@dataclass
class World:
    """Everything generated before the timeline: rows plus lookups the later stages use."""

    teams: list[Row] = field(default_factory=list)
    users: list[Row] = field(default_factory=list)
    reps: dict[int, list[Row]] = field(default_factory=dict)
    support: dict[int, list[Row]] = field(default_factory=dict)
    accounts: list[AccountInfo] = field(default_factory=list)
    contacts: list[Row] = field(default_factory=list)
    title_key: dict[int, str] = field(default_factory=dict)
    leads: list[Row] = field(default_factory=list)
    duplicate_of: dict[int, int] = field(default_factory=dict)  # planted duplicate contact id -> original's id


def _weighted(rng: random.Random, pairs: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def build_people(rng: random.Random) -> World:
    """Teams and users: per team 5 reps, 1 manager, 1 support agent; plus one admin."""
    w = World()
    seen: set[str] = set()
    uid = 0

    def user(role: str, team_id: int | None, lang: str) -> Row:
        nonlocal uid
        while True:
            p = nm.zh_person(rng) if lang == "zh" else nm.en_person(rng)
            email = f"{nm._ascii(p.local)}@{VENDOR_DOMAIN}"
            if email not in seen:
                seen.add(email)
                break
        uid += 1
        row = {"id": uid, "name": p.name, "email": email, "role": role, "team_id": team_id, "active": True}
        w.users.append(row)
        return row

    for tid, spec in enumerate(TEAMS, start=1):
        w.teams.append({"id": tid, "name": spec.name, "region": spec.region})
        w.reps[tid] = [user("rep", tid, spec.lang) for _ in range(5)]
        user("manager", tid, spec.lang)
        w.support[tid] = [user("support", tid, spec.lang)]
    user("admin", None, "en")
    return w


def _team_for(rng: random.Random, zh: bool) -> int:
    if zh:
        return 1 if rng.random() < 0.6 else 2
    r = rng.random()
    return 3 if r < 0.45 else 4 if r < 0.85 else 2


def build_accounts(rng: random.Random, w: World, n: int) -> None:
    """Accounts: exactly a third Chinese (Chinese name, city, language), the rest English."""
    n_zh = round(n / 3)
    flags = [k < n_zh for k in range(n)]
    rng.shuffle(flags)
    used: set[str] = set()
    for i, zh in enumerate(flags, start=1):
        team = _team_for(rng, zh)
        industry = rng.choice(list(INDUSTRY_PRODUCTS))
        for _ in range(50):
            if zh:
                city, city_py, _area = rng.choice(nm.ZH_CITIES)
                (head, head_py) = rng.choice(nm.ZH_COMPANY_HEAD)
                name = f"{city}{head}{rng.choice(nm.ZH_COMPANY_TAIL[industry])}有限公司"
                domain = f"{head_py}-{_SLUG[industry]}.com.cn"
                country, label, dial = "China", city, "+86"
            else:
                region = TEAMS[team - 1].en_region or "North America"
                city, country, dial = rng.choice(nm.EN_CITIES[region])
                head = rng.choice(nm.EN_COMPANY_HEAD)
                tail = rng.choice(nm.EN_COMPANY_TAIL[industry])
                name = f"{head} {tail}{nm.EN_SUFFIX[country]}"
                domain = f"{head.lower()}{tail.split()[0].lower().strip('.&')}.{nm.TLD[country]}"
                label = city
            if name not in used and domain not in {a.domain for a in w.accounts[-200:]}:
                break
            name, domain = f"{name} ({i})", f"{i}{domain}"
        used.add(name)
        employees = int(rng.lognormvariate(6.0, 1.3)) + 20
        created = REFERENCE - timedelta(days=rng.randrange(380, 1200), minutes=rng.randrange(600))
        owner = rng.choice(w.reps[team])
        segment = "enterprise" if employees > 2000 else "mid-market" if employees > 250 else "smb"
        sites = rng.randrange(1, 25)
        desc = (f"{nm.INDUSTRY_ZH[industry]}企业，总部位于{city}，员工约{employees}人，共{sites}个厂区/站点。"
                if zh else f"{nm.INDUSTRY_LABEL[industry]} company headquartered in {city}, {country}; about "
                f"{employees} employees across {sites} sites.")
        row = {"id": i, "name": name, "industry": nm.INDUSTRY_LABEL[industry], "country": country, "city": city,
               "website": f"https://www.{domain}", "employees": employees,
               "annual_revenue": Decimal(employees * rng.randrange(90, 400) * 1000),
               "tier": _weighted(rng, (("standard", 70), ("gold", 22), ("strategic", 8))),
               "language": "zh" if zh else "en", "description": desc, "owner_id": owner["id"], "team_id": team,
               "custom": {"segment": segment}, "created_at": created, "updated_at": created, "version": 1}
        w.accounts.append(AccountInfo(row, "zh" if zh else "en", industry, dial, domain, label))


def build_contacts(rng: random.Random, w: World, n: int) -> None:
    """Contacts on each account's domain; about 5% are duplicates of another contact spelled differently."""
    n_dup = round(n * 0.05) if n >= 20 else 1
    n_base = max(len(w.accounts), n - n_dup)
    per_acct = [1] * len(w.accounts)
    for _ in range(n_base - len(w.accounts)):
        per_acct[rng.randrange(len(w.accounts))] += 1
    alts: dict[int, tuple[str, ...]] = {}
    cid = 0
    for acct, k in zip(w.accounts, per_acct, strict=True):
        names_here: set[str] = set()
        for j in range(k):
            p = nm.zh_person(rng) if acct.lang == "zh" else nm.en_person(rng)
            while p.name in names_here:
                p = nm.zh_person(rng) if acct.lang == "zh" else nm.en_person(rng)
            names_here.add(p.name)
            cid += 1
            key = _weighted(rng, TITLE_WEIGHTS) if j > 1 else ("procurement", "cfo", "cto", "ops")[rng.randrange(4)]
            phone = nm.cn_mobile(rng) if acct.lang == "zh" else nm.intl_phone(rng, acct.dial)
            local = nm._ascii(p.local) if rng.random() < 0.7 else nm._ascii(p.local.split(".")[0][0] + "." +
                                                                            p.local.split(".")[1])
            created = acct.row["created_at"] + timedelta(days=rng.randrange(1, 300))
            wechat = acct.lang == "zh" and rng.random() < 0.5
            custom = {"wechat_id": f"wxid_{rng.randrange(16**8):08x}"} if wechat else {}
            row = {"id": cid, "account_id": acct.row["id"], "name": p.name, "title": _title(key, acct.lang),
                   "phone": phone, "email": f"{local}@{acct.domain}", "language": acct.lang,
                   "owner_id": acct.row["owner_id"], "team_id": acct.row["team_id"], "custom": custom,
                   "created_at": created, "updated_at": created, "version": 1}
            w.contacts.append(row)
            acct.contacts.append(row)
            w.title_key[cid] = key
            alts[cid] = p.alt_names
    originals = rng.sample(w.contacts, min(n_dup, len(w.contacts)))
    for orig in originals:
        cid += 1
        name = rng.choice(alts[orig["id"]])
        email, dup_phone = str(orig["email"]), orig["phone"]
        style = rng.randrange(3)
        if style == 0:
            email = email.split("@")[0].title() + "@" + email.split("@")[1].upper()
        elif style == 1:
            pool = nm.PERSONAL_MAIL_ZH if orig["language"] == "zh" else nm.PERSONAL_MAIL_EN
            email = f"{email.split('@')[0].replace('.', '')}{rng.randrange(10, 99)}@{rng.choice(pool)}"
        else:
            dup_phone = nm.spoken_phone(dup_phone) if dup_phone and rng.random() < 0.5 else None
        created = orig["created_at"] + timedelta(days=rng.randrange(30, 400))
        row = {**orig, "id": cid, "name": name, "email": email, "phone": dup_phone, "custom": {},
               "created_at": created, "updated_at": created}
        w.contacts.append(row)
        w.title_key[cid] = w.title_key[orig["id"]]
        w.duplicate_of[cid] = orig["id"]


def _title(key: str, lang: str) -> str:
    return TITLES[key][0 if lang == "en" else 1]


def build_leads(rng: random.Random, w: World, n: int) -> None:
    """Leads from web, events, referrals, partners and cold calls, a third of them Chinese."""
    pools = {1: "east_china", 2: "south_china_apac", 3: "north_america", 4: "emea"}
    for i in range(1, n + 1):
        zh = rng.random() < 1 / 3
        team = _team_for(rng, zh)
        p = nm.zh_person(rng) if zh else nm.en_person(rng)
        industry = rng.choice(list(INDUSTRY_PRODUCTS))
        if zh:
            head, head_py = rng.choice(nm.ZH_COMPANY_HEAD)
            city = rng.choice(nm.ZH_CITIES)[0]
            company, domain = f"{city}{head}{rng.choice(nm.ZH_COMPANY_TAIL[industry])}", f"{head_py}{i}.cn"
            phone = nm.cn_mobile(rng)
        else:
            head = rng.choice(nm.EN_COMPANY_HEAD)
            company = f"{head} {rng.choice(nm.EN_COMPANY_TAIL[industry])}"
            domain = f"{head.lower()}-{_SLUG[industry]}.com"
            phone = nm.intl_phone(rng, rng.choice(nm.EN_CITIES["North America"] + nm.EN_CITIES["EMEA"])[2])
        status = _weighted(rng, LEAD_STATUS)
        base = {"new": 20, "working": 40, "qualified": 70, "converted": 80, "disqualified": 5}[status]
        personal = rng.choice(nm.PERSONAL_MAIL_ZH if zh else nm.PERSONAL_MAIL_EN)
        email = f"{nm._ascii(p.local)}@{domain}" if rng.random() < 0.8 else \
            f"{nm._ascii(p.local).replace('.', '')}@{personal}"
        created = REFERENCE - timedelta(days=rng.randrange(0, 365), minutes=rng.randrange(1440))
        owner = rng.choice(w.reps[team])
        w.leads.append({"id": i, "name": p.name, "company": company, "phone": phone if rng.random() < 0.85 else None,
                        "email": email, "source": _weighted(rng, LEAD_SOURCES), "status": status,
                        "score": max(0, min(100, base + rng.randrange(-15, 20))),
                        "pool": pools[team] if rng.random() < 0.8 else "general", "language": "zh" if zh else "en",
                        "owner_id": owner["id"], "team_id": team,
                        "custom": {"industry": nm.INDUSTRY_LABEL[industry]}, "created_at": created,
                        "updated_at": created, "version": 1})
