"""``build_demo``: generate the whole demo CRM deterministically and bulk-load it (SQLAlchemy Core)."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, func, insert, inspect, select, text
from sqlalchemy.orm import Session
from tqdm import tqdm

import ledger
from config.db import transaction
from crm.auth import hash_token, new_token
from crm.customer_models import IdentityKey, IdentityLink
from crm.demo.articles import build_articles
from crm.demo.deals import account_notes, build_opportunities, story
from crm.demo.events import build_events, with_form_emails
from crm.demo.facts import OPP_KINDS, Fact
from crm.demo.signals import lead_signal, opp_signal, product_usage
from crm.demo.support import build_cases, case_activities
from crm.demo.world import Row, World, build_accounts, build_contacts, build_leads, build_people
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
    OutboxCursor,
    OutboxEntry,
    Proposal,
    Team,
    User,
)
from crm.schema import migrate
from ledger.anchor import replacing_chain
from ledger.models import Decision, DecisionRef

# Rows at scale 1; users and teams do not scale.
BASE = {"accounts": 500, "contacts": 2000, "leads": 1000, "opportunities": 1500, "activities": 20_000,
        "cases": 2000, "knowledge_articles": 200, "events": 50_000}
FACTS_AT_SCALE_1 = 450
IDENTITY_TRUTH = "identity_truth.jsonl"  # written next to ground_truth.jsonl: the planted duplicates
BATCH = 5000
# Children before parents: the order rows are deleted on reset.
RESET_ORDER = (IdentityLink, IdentityKey, DecisionRef, Decision, OutboxEntry, OutboxCursor, Proposal, Event, Activity,
               Case, Opportunity, Contact, Lead, Account, KnowledgeArticle, CustomFieldDef, User, Team)
CUSTOM_FIELDS = (
    {"object_type": "account", "name": "segment", "type": "text", "label": "Segment", "personal": False},
    {"object_type": "opportunity", "name": "budget_confirmed", "type": "bool", "label": "Budget confirmed",
     "personal": False},
    {"object_type": "contact", "name": "wechat_id", "type": "text", "label": "WeChat ID", "personal": True},
    # Lead profile and outcome (crm/demo/signals.py): the lead's web visitor id links it to its events.
    {"object_type": "lead", "name": "title", "type": "text", "label": "Job title", "personal": False},
    {"object_type": "lead", "name": "company_size", "type": "number", "label": "Company size (employees)",
     "personal": False},
    {"object_type": "lead", "name": "industry", "type": "text", "label": "Industry", "personal": False},
    {"object_type": "lead", "name": "visitor_id", "type": "text", "label": "Web visitor id", "personal": False},
    {"object_type": "lead", "name": "converted_at", "type": "date", "label": "Converted on", "personal": False},
    # Deal signals a win model can learn from.
    {"object_type": "opportunity", "name": "champion", "type": "bool", "label": "Has a champion", "personal": False},
    {"object_type": "opportunity", "name": "exec_sponsor", "type": "bool", "label": "Executive sponsor",
     "personal": False},
    {"object_type": "opportunity", "name": "pilot_done", "type": "bool", "label": "Pilot done", "personal": False},
    {"object_type": "opportunity", "name": "stakeholders", "type": "number", "label": "Stakeholders engaged",
     "personal": False},
    {"object_type": "opportunity", "name": "discount_pct", "type": "number", "label": "Discount asked (%)",
     "personal": False},
)


@dataclass
class DemoResult:
    """What a demo load produced: rows per table, one token per role, the ground-truth file and the time taken."""

    counts: dict[str, int]
    tokens: dict[str, tuple[str, str]]
    ground_truth_path: Path
    seconds: float


def sizes(scale: float) -> dict[str, int]:
    """Rows per table at ``scale`` (at least one of each)."""
    return {k: max(1, round(v * scale)) for k, v in BASE.items()}


def _reset(session: Session) -> None:
    existing = set(inspect(session.connection()).get_table_names())
    for model in RESET_ORDER:
        table: Any = model.__table__
        if table.name in existing:
            session.execute(table.delete())


class _Loader:
    """Batches rows into Core INSERTs and advances the progress bar."""

    def __init__(self, session: Session, bar: tqdm[Any]) -> None:
        self.session, self.bar = session, bar
        self.counts: dict[str, int] = {}

    def load(self, model: Any, rows: Iterable[Row]) -> None:
        table: Table = model.__table__
        cols = [c.name for c in table.columns]
        colset = set(cols)
        batch: list[Row] = []
        for row in rows:
            batch.append(row if row.keys() == colset else {c: row.get(c) for c in cols})
            if len(batch) >= BATCH:
                self._flush(table, batch)
                batch = []
        if batch:
            self._flush(table, batch)
        self.counts.setdefault(table.name, 0)

    def _flush(self, table: Table, batch: list[Row]) -> None:
        self.session.execute(insert(table), batch)
        self.counts[table.name] = self.counts.get(table.name, 0) + len(batch)
        self.bar.update(len(batch))


def _gt_entry(n: int, fact: Fact, record: str, acct: Row, when: Any) -> dict[str, Any]:
    return {"id": f"gt-{n:04d}", "lang": fact.lang, "kind": fact.kind, "record": record, "account_id": acct["id"],
            "account": acct["name"], "date": when.date().isoformat(), "fact": fact.sentence, "answer": fact.answer,
            "questions": fact.questions}


def _stories(rng: random.Random, w: World, opps: list[Row], fact_target: int, used: dict[int, set[str]],
             gt: list[dict[str, Any]]) -> tuple[list[Row], int]:
    accounts = {a.row["id"]: a for a in w.accounts}
    rep_names = {u["id"]: u["name"] for u in w.users}
    carriers = set(rng.sample(range(len(opps)), min(len(opps), int(fact_target * 1.3) + 1)))
    rows: list[Row] = []
    next_id = 1
    for i, opp in enumerate(opps):
        acct = accounts[opp["account_id"]]
        kind = None
        if i in carriers and len(gt) < fact_target:
            free = [k for k in OPP_KINDS if k not in used.setdefault(acct.row["id"], set())]
            kind = rng.choice(free) if free else None
        acts, planted = story(rng, opp, acct, rep_names[opp["owner_id"]], next_id, kind)
        if planted and kind:
            fact, act_id, when = planted
            used[acct.row["id"]].add(kind)
            gt.append(_gt_entry(len(gt) + 1, fact, f"activity:{act_id}", acct.row, when))
        rows.extend(acts)
        next_id += len(acts)
    return rows, next_id


def _write_identity_truth(path: Path, w: World, visitors: dict[str, str]) -> None:
    """Which records are one person: each planted duplicate contact and each form-filling visitor, with its original."""
    lines = [{"record": f"contact:{dup}", "same_as": f"contact:{orig}"} for dup, orig in sorted(w.duplicate_of.items())]
    lines += [{"record": f"visitor:{v}", "same_as": ref} for v, ref in sorted(visitors.items())]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")


def build_demo(engine: Engine, scale: float = 1.0, seed: int = 7, out_dir: Path = Path("data"),
               progress: bool = True, *, reset: bool = False) -> DemoResult:
    """Generate the demo CRM into ``engine``'s database; refuses a database with accounts unless ``reset``."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    started = time.perf_counter()
    migrate(engine)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with engine.connect() as conn:
        if conn.scalar(select(func.count()).select_from(Account)) and not reset:
            raise ValueError("the database already has accounts; pass reset=True to wipe it and load the demo")
    n = sizes(scale)
    fact_target = max(20, round(FACTS_AT_SCALE_1 * scale))

    def rng(part: str) -> random.Random:
        return random.Random(f"{seed}:{part}")

    w = build_people(rng("people"))
    build_accounts(rng("accounts"), w, n["accounts"])
    build_contacts(rng("contacts"), w, n["contacts"])
    build_leads(rng("leads"), w, n["leads"])
    lead_events = lead_signal(rng("lead-signal"), w, n["events"] + 1)
    opps = build_opportunities(rng("opps"), w, n["opportunities"])
    opp_signal(rng("opp-signal"), opps)
    gt: list[dict[str, Any]] = []
    used: dict[int, set[str]] = {}
    acts, next_act = _stories(rng("stories"), w, opps, fact_target * 2 // 3, used, gt)
    cases, case_facts = build_cases(rng("cases"), w, n["cases"], fact_target - len(gt), used)
    accts = {a.row["id"]: a.row for a in w.accounts}
    for fact, case_id, when in case_facts:
        gt.append(_gt_entry(len(gt) + 1, fact, f"case:{case_id}", accts[cases[case_id - 1]["account_id"]], when))
    tokens: list[dict[str, Any]] = []
    for u in w.users:
        token = new_token(u["role"])
        u["token_hash"] = hash_token(token)
        tokens.append({"user_id": u["id"], "name": u["name"], "email": u["email"], "role": u["role"],
                       "team": w.teams[u["team_id"] - 1]["name"] if u["team_id"] else None, "token": token})
    remaining = max(0, n["activities"] - len(acts))
    expected = (len(w.teams) + len(w.users) + sum(n.values()) + len(CUSTOM_FIELDS) + max(0, len(acts) - n[
        "activities"]) + len(lead_events) + 26 * len(w.accounts))  # the last term: at most a usage row a week
    # A reset replaces the whole ledger too: its anchor starts afresh (see ledger.anchor.replacing_chain).
    replacing = replacing_chain(engine) if reset else nullcontext()
    with replacing, transaction(engine) as session, tqdm(total=expected, desc="demo", unit="row",
                                                         disable=not progress) as bar:
        if reset:
            _reset(session)
        load = _Loader(session, bar)
        load.load(Team, w.teams)
        load.load(User, w.users)
        load.load(CustomFieldDef, ({"id": i, **d} for i, d in enumerate(CUSTOM_FIELDS, start=1)))
        load.load(Account, (a.row for a in w.accounts))
        load.load(Contact, w.contacts)
        load.load(Lead, w.leads)
        load.load(Opportunity, opps)
        load.load(Case, cases)
        follow = list(case_activities(rng("case-acts"), w, cases, next_act, remaining * 2 // 5))
        notes = account_notes(rng("notes"), w, remaining - len(follow), next_act + len(follow))
        load.load(Activity, [*acts, *follow])
        load.load(Activity, notes)
        load.load(KnowledgeArticle, build_articles(rng("articles"), n["knowledge_articles"]))
        visitor_truth: dict[str, str] = {}
        load.load(Event, with_form_emails(rng("visitor-forms"), w, build_events(rng("events"), w, n["events"]),
                                          visitor_truth))
        load.load(Event, lead_events)
        load.load(Event, product_usage(rng("account-usage"), w, n["events"] + len(lead_events) + 1))
        if engine.dialect.name == "postgresql":
            for model in (Team, User, CustomFieldDef, Account, Contact, Lead, Opportunity, Case, Activity,
                          KnowledgeArticle, Event):
                name = model.__tablename__
                session.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                     f"COALESCE((SELECT MAX(id) FROM {name}), 1))"))
        counts = dict(load.counts)
        ledger.append(session, kind="demo_load", actor="system", input_summary=f"scale={scale} seed={seed}",
                      output={"counts": counts, "facts": len(gt), "scale": scale, "seed": seed})
    if engine.dialect.name == "postgresql":
        # The planner has no statistics for freshly loaded tables until autovacuum gets to them (a minute or
        # more); until then queries run on plans made for empty tables. Gather them now.
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    token_path = out_dir / "demo_tokens.json"
    fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(tokens, fh, ensure_ascii=False, indent=1)
    os.chmod(token_path, 0o600)
    gt_path = out_dir / "ground_truth.jsonl"
    gt_path.write_text("".join(json.dumps(g, ensure_ascii=False) + "\n" for g in gt), encoding="utf-8")
    _write_identity_truth(out_dir / IDENTITY_TRUTH, w, visitor_truth)
    per_role: dict[str, tuple[str, str]] = {}
    for t in tokens:
        per_role.setdefault(t["role"], (t["email"], t["token"]))
    seconds = time.perf_counter() - started
    if progress:
        total = sum(counts.values())
        print(f"demo: {total:,} rows ({counts['accounts']:,} accounts, {counts['activities']:,} activities, "
              f"{counts['events']:,} events), {len(gt)} ground-truth facts in {seconds:.1f} s "
              f"({total / seconds:,.0f} rows/s); tokens in {token_path}")
    return DemoResult(counts=counts, tokens=per_role, ground_truth_path=gt_path, seconds=seconds)
