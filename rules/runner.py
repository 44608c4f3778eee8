"""Running rules for real: store events idempotently, feed the engine, apply firings through the proposal path.

The same ``Runner`` serves the HTTP API (in process, the embedded default) and the NATS JetStream workers.
A firing is recorded in ``rule_firings`` (unique per rule version and triggering event key) in the same
transaction as its proposals and ledger rows, so a redelivered or re-posted event never acts twice.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator
from sqlalchemy import Engine as SqlEngine
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import ledger
from config.errors import CrmindError
from config.objects import ref
from crm import proposals
from crm.access import Principal
from crm.auth import principal_for
from crm.models import Account, Contact, Event, Lead, User
from rules.engine import DAY_S, Engine, Ev, Firing, compile_rule
from rules.language import (
    EVENT_TYPES,
    Assign,
    CreateContact,
    CreateLead,
    CreateTask,
    Delete,
    Escalate,
    Export,
    Notify,
    Rule,
    SendMessage,
    UpdateField,
    needs_person,
)
from rules.lifecycle import active_rules, rule_tag
from rules.models import IngestedEvent, RuleFiring, RuleRecord
from rules.records import TickResult, customer_owner, process_changes, rule_problems, run_schedules

EventTypeName = str


class EventIn(BaseModel):
    """One web or app event as clients post it; ``event_id`` makes posting it again harmless."""

    model_config = ConfigDict(extra="forbid")
    event_id: str = Field(min_length=1, max_length=120, pattern=r"^[\w\-.:]+$")
    visitor_id: str = Field(min_length=1, max_length=64)
    type: str = Field(min_length=1, max_length=40, pattern=r"^[a-z_]+$",
                      description=f"One of {', '.join(EVENT_TYPES)} (or another lower_snake name).")
    page: str = Field("", max_length=300)
    duration_s: StrictInt = Field(0, ge=0, le=86_400)
    occurred_at: datetime | None = None
    contact_id: StrictInt | None = Field(None, ge=1, le=2**31 - 1)
    account_id: StrictInt | None = Field(None, ge=1, le=2**31 - 1)
    properties: dict[str, Any] = Field(default_factory=dict, max_length=50)

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _iso_text_only(cls, value: Any) -> Any:
        """ISO 8601 text only: a bare number is ambiguous (seconds? milliseconds?) and the schema says text."""
        if isinstance(value, int | float):
            raise ValueError("occurred_at must be ISO 8601 text, e.g. 2026-11-30T09:15:00Z")
        return value


def _naive(ts: datetime | None) -> datetime:
    if ts is None:
        return datetime.now(UTC).replace(tzinfo=None)
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def epoch(ts: datetime) -> float:
    """Naive-UTC datetime -> epoch seconds."""
    return ts.replace(tzinfo=UTC).timestamp()


def ev_from_row(row: Event, key: str | None = None, depth: int = 0) -> Ev:
    """The engine's view of a stored event."""
    return Ev(key=key or f"event:{row.id}", customer=row.visitor_id, type=row.type, ts=epoch(row.occurred_at),
              page=row.page or "", duration_s=row.duration_s or 0, contact_id=row.contact_id,
              account_id=row.account_id, team_id=row.team_id, event_id=row.id, depth=depth,
              properties=dict(row.properties or {}))


def store_events(session: Session, events: Sequence[EventIn]) -> tuple[list[Ev], int]:
    """Store events whose key is new; returns them (in order) and how many were duplicates."""
    keys = [e.event_id for e in events]
    seen = set(session.scalars(select(IngestedEvent.event_key).where(IngestedEvent.event_key.in_(keys))))
    stored: list[Ev] = []
    duplicates = 0
    for e in events:
        if e.event_id in seen:
            duplicates += 1
            continue
        seen.add(e.event_id)
        team_id = None
        if e.contact_id is not None:
            contact = session.get(Contact, e.contact_id)
            team_id = contact.team_id if contact else None
        elif e.account_id is not None:
            account = session.get(Account, e.account_id)
            team_id = account.team_id if account else None
        row = Event(visitor_id=e.visitor_id, contact_id=e.contact_id, account_id=e.account_id, team_id=team_id,
                    type=e.type, page=e.page, duration_s=e.duration_s, occurred_at=_naive(e.occurred_at),
                    properties=e.properties)
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
                session.add(IngestedEvent(event_key=e.event_id, event_id=row.id))
                session.flush()
        except IntegrityError:  # the same key committed concurrently by another worker
            duplicates += 1
            continue
        stored.append(ev_from_row(row, e.event_id))
    return stored, duplicates


@dataclass
class Loaded:
    """A running rule with its record and the principal it acts as (its author)."""

    record: RuleRecord
    rule: Rule
    author: Principal


class Runner:
    """One engine over the active rules, fed by any source, applying firings through proposals."""

    def __init__(self, sql: SqlEngine | None = None) -> None:
        self.sql = sql
        self.engine = Engine()
        self.loaded: dict[int, Loaded] = {}
        self.by_kind: dict[str, list[Loaded]] = {}  # runnable rules by trigger kind, sorted once per refresh
        self.signature: tuple[Any, ...] | None = None
        self.warm: set[str] = set()
        self.lock = threading.Lock()

    def _signature(self, session: Session) -> tuple[Any, ...]:
        row = session.execute(select(func.count(RuleRecord.id), func.max(RuleRecord.updated_at),
                                     func.sum(RuleRecord.active_version)).where(RuleRecord.status == "active")).one()
        return tuple(row)

    def refresh(self, session: Session) -> None:
        """Reload the active rules if any changed (cheap check per batch)."""
        sig = self._signature(session)
        if sig == self.signature:
            return
        self.signature = sig
        self.engine, self.loaded, self.warm = Engine(), {}, set()
        for rec, rule in active_rules(session):
            author = session.get(User, rec.author_id)
            assert author is not None
            self.loaded[rec.id] = Loaded(rec, rule, principal_for(author))
            compiled = compile_rule(rec.id, rec.active_version or rec.version, rule)
            if compiled is not None:
                self.engine.add(compiled)
        self.by_kind = {}
        for loaded in self.loaded.values():
            if not rule_problems(loaded.rule):  # saved before the create-time check: skipped, not crashed on
                self.by_kind.setdefault(loaded.rule.trigger.kind, []).append(loaded)

    def rules_of(self, kind: str) -> list[Loaded]:
        """The loaded rules whose trigger is of ``kind`` (event | record | schedule) and that can run."""
        return self.by_kind.get(kind, [])

    def tick(self, session: Session, now: datetime | None = None, *, changes: bool = True,
             schedules: bool = True) -> TickResult:
        """Record rules: the CRM changes since the last tick, then (if ``schedules``) what has come due at ``now``.

        The caller commits; the outbox cursor moves in the same transaction as the firings.
        """
        with self.lock:
            self.refresh(session)
            result = TickResult()
            if changes:
                result = process_changes(session, self.rules_of("record"))
            if schedules:
                due = run_schedules(session, self.rules_of("schedule"), _naive(now))
                result.firings += due.firings
                result.skipped_by_limits += due.skipped_by_limits
            return result

    def _warm(self, session: Session, ev: Ev) -> None:
        """First sight of a customer here: rebuild their window from stored events (restart or takeover)."""
        if ev.customer in self.warm:
            return
        self.warm.add(ev.customer)
        since = datetime.fromtimestamp(ev.ts - self.engine.horizon_s, UTC).replace(tzinfo=None)
        rows = session.execute(
            select(Event, IngestedEvent.event_key).outerjoin(IngestedEvent, IngestedEvent.event_id == Event.id)
            .where(Event.visitor_id == ev.customer, Event.occurred_at >= since, Event.id < (ev.event_id or 2**31))
            .order_by(Event.occurred_at, Event.id))
        for row, key in rows:
            self.engine.remember(ev_from_row(row, key))
        day_ago = datetime.fromtimestamp(ev.ts - DAY_S, UTC).replace(tzinfo=None)
        for rule_id, fired_at in session.execute(select(RuleFiring.rule_id, RuleFiring.fired_at).where(
                RuleFiring.customer_key == ev.customer, RuleFiring.fired_at >= day_ago)):
            self.engine.note_fired(ev.customer, rule_id, epoch(fired_at))

    def handle(self, session: Session, events: Iterable[Ev]) -> list[RuleFiring]:
        """Evaluate stored events in order; apply what fires. The caller commits."""
        with self.lock:
            self.refresh(session)
            out: list[RuleFiring] = []
            for ev in events:
                self._warm(session, ev)
                for firing in self.engine.process(ev):
                    done = apply_firing(session, self.loaded[firing.rule_id], firing)
                    if done is not None:
                        out.append(done)
            return out


def _key(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:64]


def _recipient(session: Session, who: str, loaded: Loaded, record: Any | None, ev: Ev) -> int:
    """The user an action is for."""
    if who == "author":
        return loaded.record.author_id
    if who == "account_owner":
        account_id = getattr(record, "account_id", None) or ev.account_id
        account = session.get(Account, account_id) if account_id else None
        if account is not None and account.owner_id:
            return account.owner_id
    if who == "customer_owner" and record is not None:
        owner = customer_owner(session, ev.type.partition(".")[0], record)
        if owner is not None:
            return owner
    if who == "owner" and record is not None and getattr(record, "owner_id", None):
        return int(record.owner_id)
    team = getattr(record, "team_id", None) or ev.team_id or loaded.record.team_id
    manager = session.scalar(select(User.id).where(User.team_id == team, User.role == "manager",
                                                   User.active.is_(True)).order_by(User.id).limit(1))
    return manager or loaded.record.author_id


def _plan(session: Session, loaded: Loaded, action: Any, ev: Ev, record: tuple[str, Any] | None
          ) -> list[dict[str, Any]]:
    """Proposals (``propose`` keyword arguments) that carry out one action."""
    obj, rec = record or (None, None)
    link = {"contact_id": ev.contact_id, "account_id": ev.account_id} if obj is None else {f"{obj}_id": rec.id}
    link = {k: v for k, v in link.items() if v is not None and k in ("contact_id", "account_id", "opportunity_id",
                                                                     "case_id", "lead_id")}
    now = datetime.now(UTC).replace(tzinfo=None)
    name = loaded.record.name[:80]

    def note(subject: str, owner: int, kind: str = "note") -> dict[str, Any]:
        return {"object_type": "activity", "action": "create", "changes": {
            "kind": kind, "subject": subject[:300], "occurred_at": now.isoformat(), "owner_id": owner, **link}}

    if isinstance(action, CreateLead):
        who = (getattr(rec, "name", None) or getattr(rec, "subject", None)) if rec is not None else None
        changes: dict[str, Any] = {"name": (who or f"Web visitor {ev.customer}")[:160], "pool": action.pool,
                                   "source": "web" if rec is None else "rule"}
        if action.score is not None:
            changes["score"] = action.score
        return [{"object_type": "lead", "action": "create", "changes": changes}]
    if isinstance(action, CreateContact):
        return [{"object_type": "contact", "action": "create",
                 "changes": {"name": f"Web visitor {ev.customer}"[:160], **({"account_id": ev.account_id}
                                                                            if ev.account_id else {})}}]
    if isinstance(action, CreateTask):
        owner = _recipient(session, action.assignee, loaded, rec, ev)
        task = note(f"[Task] {action.subject} (rule: {name})", owner)
        task["changes"]["occurred_at"] = (now + timedelta(days=action.due_in_days)).isoformat()
        return [task]
    if isinstance(action, Notify):
        return [note(f"[Notify] {name}", _recipient(session, action.recipient, loaded, rec, ev))]
    if isinstance(action, Escalate | UpdateField | Assign | Delete) and rec is None:
        raise _Skip(f"{action.type} needs a record; this rule fired on a web event")
    if isinstance(action, Escalate):
        return [{"object_type": obj, "action": "update", "record_id": rec.id,
                 "changes": {"status": "escalated", "priority": "urgent"}},
                note(f"[Escalated] {name}", _recipient(session, action.to, loaded, rec, ev))]
    if isinstance(action, UpdateField):
        return [{"object_type": obj, "action": "update", "record_id": rec.id, "changes": {action.field: action.value}}]
    if isinstance(action, Assign):
        if action.pool:
            return [{"object_type": obj, "action": "update", "record_id": rec.id, "changes": {"pool": action.pool}}]
        if action.queue:
            return [note(f"[Queue {action.queue}] {name}", _recipient(session, "team_manager", loaded, rec, ev))]
        return [{"object_type": obj, "action": "owner_change", "record_id": rec.id,
                 "changes": {"owner_id": _recipient(session, action.owner or "owner", loaded, rec, ev)}}]
    if isinstance(action, Delete):
        return [{"object_type": obj, "action": "delete", "record_id": rec.id, "changes": {}}]
    if isinstance(action, SendMessage):
        out = note(f"[{action.channel}] {name}", loaded.record.author_id, kind="email")
        return [out]
    if isinstance(action, Export):
        out = note(f"[Export to {action.destination}] {', '.join(action.fields)}", loaded.record.author_id)
        out["bulk"] = True  # an export always waits for a person
        return [out]
    raise _Skip(f"unknown action {action!r}")


class _Skip(CrmindError):
    status = 422


def apply_firing(session: Session, loaded: Loaded, firing: Firing, record: tuple[str, Any] | None = None
                 ) -> RuleFiring | None:
    """Record the firing (exactly once), propose each action, approve by policy where allowed."""
    rec, rule, ev = loaded.record, loaded.rule, firing.event
    tag = rule_tag(rec.id, firing.version)
    exists = session.scalar(select(RuleFiring.id).where(
        RuleFiring.rule_id == rec.id, RuleFiring.rule_version == firing.version, RuleFiring.event_key == ev.key))
    if exists is not None:
        return None
    evidence = [k if k.startswith("event:") else k for k in firing.evidence]
    row = RuleFiring(rule_id=rec.id, rule_version=firing.version, event_key=ev.key, customer_key=ev.customer,
                     depth=ev.depth, status="pending", evidence=evidence, proposal_ids=[],
                     fired_at=datetime.fromtimestamp(ev.ts, UTC).replace(tzinfo=None))
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # another worker recorded this firing first
        return None
    refs = [f"rule:{rec.id}"] + [f"{o}:{i}" for o, i in (("contact", ev.contact_id), ("account", ev.account_id)) if i]
    if ev.event_id:
        refs.append(f"event:{ev.event_id}")
    if record is not None:
        refs.append(ref(record[0], record[1].id))
    on = "event" if record is None else ev.type  # e.g. "opportunity.field_changed", "case.schedule"
    decision = ledger.append(
        session, kind="rule_firing", actor=f"rule:{rec.id}",
        input_summary=f"rule {rec.id} v{firing.version} fired on {on} {ev.key} (customer {ev.customer})",
        output={"rule_id": rec.id, "version": firing.version, "event_key": ev.key, "customer": ev.customer,
                "depth": ev.depth, "events": evidence, "actions": [a.type for a in rule.actions]},
        # An event rule's evidence is the events; a record rule's is the record, the change and the last activity.
        evidence=[k for k in evidence if k.startswith("event:")] if record is None else evidence,
        refs=list(dict.fromkeys(refs)), rule_id=tag)
    row.decision_id = decision.id
    ids, pending, problems = [], False, []
    for i, action in enumerate(rule.actions):
        try:
            with session.begin_nested():
                for j, plan in enumerate(_plan(session, loaded, action, ev, record)):
                    bulk = bool(plan.pop("bulk", False)) or action.bulk
                    p = proposals.propose(
                        session, loaded.author, **plan, bulk=bulk, source=f"rule:{rec.id}",
                        reason=f"{tag}: {rec.name[:200]}", evidence=[f"rule:{rec.id}", *evidence[:20]],
                        idempotency_key=_key(rec.id, firing.version, ev.key, i, j), parent_decision=decision.id)
                    ids.append(p.id)
                    if rule.approval.auto_approve and not p.requires_human and not needs_person(action):
                        proposals.approve(session, loaded.author, p.id, by_policy=tag)
                    else:
                        pending = True
        except CrmindError as exc:
            problems.append(f"{action.type}: {exc.message}")
    row.proposal_ids = ids
    row.status = "failed" if problems and not ids else ("pending" if pending or problems else "applied")
    row.detail = "; ".join(problems)[:2000]
    return row


_RUNNERS: dict[str, Runner] = {}
_RUNNERS_LOCK = threading.Lock()


def runner_for(session: Session) -> Runner:
    """The in-process runner for this database (the embedded default)."""
    url = str(session.get_bind().engine.url)
    with _RUNNERS_LOCK:
        if url not in _RUNNERS:
            _RUNNERS[url] = Runner()
        return _RUNNERS[url]


@dataclass
class IngestResult:
    """What ``ingest`` did."""

    accepted: int
    duplicates: int
    firings: list[RuleFiring]


def ingest(session: Session, events: Sequence[EventIn], runner: Runner | None = None) -> IngestResult:
    """Store new events and run the rules on them, in the caller's transaction."""
    stored, duplicates = store_events(session, events)
    firings = (runner or runner_for(session)).handle(session, stored)
    return IngestResult(accepted=len(stored), duplicates=duplicates, firings=firings)


def recent_firings(session: Session, rule_id: int | None = None, limit: int = 50) -> list[RuleFiring]:
    """Newest firings first."""
    stmt = select(RuleFiring).order_by(RuleFiring.id.desc()).limit(limit)
    if rule_id is not None:
        stmt = stmt.where(RuleFiring.rule_id == rule_id)
    return list(session.scalars(stmt))


def lead_for(session: Session, firing: RuleFiring) -> Lead | None:
    """The lead a firing created, if any (for tests and the page)."""
    from crm.models import Proposal

    for pid in firing.proposal_ids:
        p = session.get(Proposal, pid)
        if p is not None and p.object_type == "lead" and p.record_id:
            return session.get(Lead, p.record_id)
    return None
