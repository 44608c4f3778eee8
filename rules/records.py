"""Rules on CRM records: triggered by a change (through the outbox) or by the clock (a date field, or daily).

Event rules (``rules.engine``) look at per-customer windows of web events. Record rules look at one record at
a time: its fields and when it last had an activity. A change rule reads the applied proposal behind each
outbox entry, so "changed to a value" means the value the change wrote, even if the record moved on since.
A schedule rule scans, in SQL, the records the rule's author may read whose date (plus the offset) has come.

Both feed the same ``apply_firing`` as event rules: a firing is unique per rule version and key, so a
restarted worker, two workers or a re-run tick never act twice. The keys:

- change: ``opportunity:7@v3`` (the record version the change produced);
- date: ``case:4@sla_due=2026-12-01T18:00:00`` (each deadline once; a moved deadline fires again);
- daily: ``opportunity:7@2026-12-03``; with a "no activity for N days" condition, ``opportunity:7@quiet-since=…``
  (once per quiet stretch, not once a day while it stays quiet).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Date, DateTime, func, select
from sqlalchemy.orm import Session

from config.objects import ref
from crm import outbox
from crm.access import Principal, field_names, get_record, model_for, readable
from crm.customer_models import SAME_PERSON, CustomerScore, IdentityLink
from crm.errors import NotFound
from crm.models import Activity, Contact, Lead, OutboxEntry, Proposal
from crm.values import jsonable
from ledger.models import Decision
from rules.engine import COMPARE, HOUR_S, Ev, Firing
from rules.errors import RuleInvalid
from rules.language import (
    AggregateCondition,
    EventTrigger,
    FieldCondition,
    IdentityCondition,
    InactivityCondition,
    RecordTrigger,
    Rule,
    ScheduleTrigger,
    ScoreCondition,
    SegmentCondition,
    SequenceCondition,
)
from rules.models import RuleFiring

if TYPE_CHECKING:  # the runner imports this module
    from rules.runner import Loaded

CONSUMER = "rules"  # the outbox cursor of record-change rules
CATCH_UP = timedelta(days=1)  # a date that came due longer ago than this (e.g. the server was down) is let go
SCAN_LIMIT = 5_000  # records one schedule rule looks at per tick; the rest come due on the next tick
_LINKS = {"account": "account_id", "contact": "contact_id", "opportunity": "opportunity_id", "case": "case_id",
          "lead": "lead_id"}


def date_fields(obj: str) -> list[str]:
    """The date and datetime columns of an object type (what a schedule rule can count from)."""
    cols = model_for(obj).__table__.columns
    return [c.name for c in cols if isinstance(c.type, Date | DateTime)]


def _known(obj: str, name: str) -> bool:
    return name.startswith("custom.") or name in field_names(obj)


# Which scores a record of each type can be tested on: its own (lead, win) or its account's (health, rfm, ltv).
ACCOUNT_SCORES = ("health", "rfm", "ltv")
SCORES_OF = {"lead": ("lead",), "opportunity": ("win", *ACCOUNT_SCORES), "account": ACCOUNT_SCORES,
             "contact": ACCOUNT_SCORES, "case": ACCOUNT_SCORES, "activity": ACCOUNT_SCORES}
IDENTITY_OBJECTS = ("lead", "contact")


def _record_conditions(c: Any) -> bool:
    return isinstance(c, InactivityCondition | ScoreCondition | SegmentCondition | IdentityCondition)


def _record_problem(obj: str, c: Any) -> str | None:
    if isinstance(c, ScoreCondition) and c.score not in SCORES_OF[obj]:
        return f"a {obj} has no {c.score} score (it has: {', '.join(SCORES_OF[obj])})"
    if isinstance(c, SegmentCondition) and c.of not in SCORES_OF[obj]:
        return f"a {obj} has no {c.of} band (it has: {', '.join(SCORES_OF[obj])})"
    if isinstance(c, IdentityCondition) and obj not in IDENTITY_OBJECTS:
        return f"'matches an existing customer' is about a lead or a contact, not a {obj}"
    return None


def rule_problems(rule: Rule) -> list[str]:
    """Why the engine could not run ``rule`` as written (unknown fields, conditions of the wrong kind)."""
    t = rule.trigger
    if isinstance(t, EventTrigger):
        return [f"a {c.kind} condition is about a record; a rule on web events can't test it"
                for c in rule.conditions if _record_conditions(c)]
    obj, problems = t.object, []
    if isinstance(t, RecordTrigger):
        if t.on == "field_changed" and not t.field:
            problems.append(f"a rule on a changed {obj} field must name the field")
        elif t.field and not _known(obj, t.field):
            problems.append(f"{obj} has no field '{t.field}'")
    if isinstance(t, ScheduleTrigger) and t.date_field is not None and t.date_field not in date_fields(obj):
        problems.append(f"'{t.date_field}' is not a date of {obj} (dates: {', '.join(date_fields(obj))})")
    for c in rule.conditions:
        if isinstance(c, AggregateCondition | SequenceCondition):
            problems.append(f"a {c.kind} condition counts web events; a {obj} rule can test the {obj}'s fields "
                            "and its activity")
        elif isinstance(c, FieldCondition) and not _known(obj, c.field):
            problems.append(f"{obj} has no field '{c.field}'")
        elif isinstance(c, InactivityCondition) and obj == "activity":
            problems.append("an activity has no activities of its own to be quiet about")
        elif (problem := _record_problem(obj, c)) is not None:
            problems.append(problem)
    return problems


def check_runnable(rule: Rule) -> None:
    """Raise ``RuleInvalid`` naming every problem ``rule_problems`` finds."""
    problems = rule_problems(rule)
    if problems:
        raise RuleInvalid("this rule can't run: " + "; ".join(problems))


def _naive_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _value(record: Any, name: str) -> Any:
    """A record's value as a rule compares it: its one JSON form (amounts as numbers, dates as ISO text)."""
    if name.startswith("custom."):
        return jsonable((record.custom or {}).get(name.removeprefix("custom.")))
    return jsonable(getattr(record, name, None))


def _compare(op: str, current: Any, wanted: Any) -> bool:
    if isinstance(wanted, int | float) and isinstance(current, str):
        try:
            current = float(current)
        except ValueError:
            return False
    try:
        return COMPARE[op](current, wanted)
    except TypeError:  # text against a number, and the like: the condition does not hold
        return False


def last_activity(session: Session, obj: str, record: Any) -> tuple[datetime, int] | None:
    """When ``record`` last had an activity logged (and which one), or None."""
    column = getattr(Activity, _LINKS[obj])
    row = session.execute(select(Activity.occurred_at, Activity.id).where(column == record.id)
                          .order_by(Activity.occurred_at.desc(), Activity.id.desc()).limit(1)).first()
    return (row[0], row[1]) if row else None


@dataclass(frozen=True)
class Holds:
    """The conditions held: the records that show it, and when the record went quiet (inactivity rules)."""

    evidence: tuple[str, ...]
    quiet_since: datetime | None = None


def conditions_hold(session: Session, rule: Rule, obj: str, record: Any, now: datetime) -> Holds | None:
    """Every condition of a record rule, on ``record`` as it is now; None when one fails."""
    evidence: list[str] = []
    quiet_since = None
    for c in rule.conditions:
        if isinstance(c, FieldCondition):
            if not _compare(c.op, _value(record, c.field), c.value):
                return None
        elif isinstance(c, InactivityCondition):
            last = last_activity(session, obj, record)
            since = last[0] if last else record.created_at
            if since is None or since > now - timedelta(days=c.days):
                return None
            quiet_since = since
            if last:
                evidence.append(ref("activity", last[1]))
        elif isinstance(c, ScoreCondition | SegmentCondition):
            score = score_of(session, obj, record, c.score if isinstance(c, ScoreCondition) else c.of)
            if score is None:
                return None
            held = (_compare(c.op, score.value, c.value) if isinstance(c, ScoreCondition)
                    else score.label.lower() == c.label.lower())
            if not held:
                return None
            evidence.append(ref(score.object_type, score.record_id))
        elif isinstance(c, IdentityCondition):
            match = existing_customer(session, obj, record)
            if match is None:
                return None
            evidence.append(match)
        else:  # event conditions: refused at create time (rule_problems); never true here
            return None
    return Holds(tuple(evidence), quiet_since)


def score_of(session: Session, obj: str, record: Any, kind: str) -> CustomerScore | None:
    """The stored score ``kind`` a condition on ``record`` tests: the record's own, or its account's."""
    if kind in ACCOUNT_SCORES:
        target = ("account", record.id if obj == "account" else getattr(record, "account_id", None))
    else:
        target = (obj, record.id)
    if target[1] is None:
        return None
    return session.scalar(select(CustomerScore).where(CustomerScore.object_type == target[0],
                                                      CustomerScore.record_id == target[1],
                                                      CustomerScore.kind == kind))


def existing_customer(session: Session, obj: str, record: Any) -> str | None:
    """The older contact or lead identity resolution holds for the same person as ``record`` (its ref), or None."""
    link = session.scalar(select(IdentityLink).where(IdentityLink.object_type == obj,
                                                     IdentityLink.record_key == str(record.id),
                                                     IdentityLink.strength.in_(SAME_PERSON)))
    if link is None:
        return None
    others = session.execute(select(IdentityLink.object_type, IdentityLink.record_key).where(
        IdentityLink.customer_id == link.customer_id, IdentityLink.strength.in_(SAME_PERSON),
        IdentityLink.object_type.in_(IDENTITY_OBJECTS))).all()
    created = record.created_at
    best: tuple[Any, str] | None = None
    for other_obj, key in others:
        if (other_obj, key) == (obj, str(record.id)) or not key.isdigit():
            continue
        model: Any = Contact if other_obj == "contact" else Lead
        row = session.get(model, int(key))
        if row is None or row.merged_into_id is not None or (created and row.created_at and row.created_at > created):
            continue
        if best is None or (other_obj == "contact", row.created_at) > (best[0][0] == "contact", best[0][1]):
            best = ((other_obj, row.created_at), ref(other_obj, row.id))
    return best[1] if best else None


def customer_owner(session: Session, obj: str, record: Any) -> int | None:
    """The owner of the existing customer ``record`` matches (``customer_owner`` in an action), or None."""
    match = existing_customer(session, obj, record)
    if match is None:
        return None
    other_obj, _, key = match.partition(":")
    row: Any = session.get(Contact if other_obj == "contact" else Lead, int(key))
    return int(row.owner_id) if row is not None and row.owner_id else None


def _customer(obj: str, record: Any) -> str:
    """Whose firings a per-customer rate limit counts: the account where there is one."""
    account = record.id if obj == "account" else getattr(record, "account_id", None)
    return ref("account", account) if account else ref(obj, record.id)


def _event(obj: str, record: Any, key: str, ts: datetime, depth: int, kind: str) -> Ev:
    contact = record.id if obj == "contact" else getattr(record, "contact_id", None)
    account = record.id if obj == "account" else getattr(record, "account_id", None)
    return Ev(key=key, customer=_customer(obj, record), type=f"{obj}.{kind}", ts=ts.replace(tzinfo=UTC).timestamp(),
              contact_id=contact, account_id=account, team_id=getattr(record, "team_id", None), depth=depth)


def within_limits(session: Session, rule_id: int, rule: Rule, customer: str, now: datetime) -> bool:
    """The rule's rate limits, counted from its stored firings (they hold across workers and restarts)."""
    per_customer = session.scalar(select(func.count(RuleFiring.id)).where(
        RuleFiring.rule_id == rule_id, RuleFiring.customer_key == customer,
        RuleFiring.fired_at > now - timedelta(days=1))) or 0
    if per_customer >= rule.limits.max_fires_per_customer_per_day:
        return False
    hourly = session.scalar(select(func.count(RuleFiring.id)).where(
        RuleFiring.rule_id == rule_id, RuleFiring.fired_at > now - timedelta(seconds=HOUR_S))) or 0
    return hourly < rule.limits.max_fires_per_hour


def _fired(session: Session, rule_id: int, version: int, key: str) -> bool:
    return session.scalar(select(RuleFiring.id).where(RuleFiring.rule_id == rule_id, RuleFiring.rule_version == version,
                                                      RuleFiring.event_key == key)) is not None


def change_depth(session: Session, proposal: Proposal) -> int:
    """How deep in a chain of rules a change is: 0 for a person's, the firing's depth + 1 for a rule's."""
    if not (proposal.source or "").startswith("rule:") or not proposal.decision_id:
        return 0
    parent = session.scalar(select(Decision.parent_id).where(Decision.id == proposal.decision_id))
    depth = session.scalar(select(RuleFiring.depth).where(RuleFiring.decision_id == parent)) if parent else None
    return (depth or 0) + 1


def _same(after: Any, wanted: Any) -> bool:
    if isinstance(wanted, bool) or isinstance(after, bool):
        return after is wanted
    if isinstance(wanted, int | float):
        try:
            return float(after) == float(wanted)
        except (TypeError, ValueError):
            return False
    return str(after).strip().lower() == str(wanted).strip().lower()


def change_matches(trigger: RecordTrigger, proposal: Proposal) -> bool:
    """Whether an applied proposal is the change ``trigger`` waits for."""
    if proposal.object_type != trigger.object:
        return False
    if trigger.on == "created":
        return proposal.action == "create"
    if proposal.action not in ("update", "owner_change") or trigger.field not in (proposal.changes or {}):
        return False
    change = proposal.changes[trigger.field]
    if trigger.to_value is not None and not _same(change.get("after"), trigger.to_value):
        return False
    return bool(change.get("before") != change.get("after"))


@dataclass
class Candidate:
    """A rule that would fire on a record now: what ``apply_firing`` needs."""

    firing: Firing
    obj: str
    record: Any


def _firing(loaded: Loaded, obj: str, record: Any, key: str, ts: datetime, depth: int, kind: str,
            evidence: tuple[str, ...]) -> Candidate:
    rec = loaded.record
    ev = _event(obj, record, key, ts, depth, kind)
    return Candidate(Firing(rec.id, rec.active_version or rec.version, ev, (ref(obj, record.id), *evidence)),
                     obj, record)


def change_candidates(session: Session, rules: list[Loaded], entry: OutboxEntry
                      ) -> Iterator[tuple[Loaded, Candidate]]:
    """The change rules that fire on one outbox entry, each with its firing."""
    if entry.proposal_id is None or entry.op != "upsert":
        return
    proposal = session.get(Proposal, entry.proposal_id)
    if proposal is None or proposal.status != "applied" or proposal.record_id is None:
        return
    depth = None
    for loaded in rules:
        trigger = loaded.rule.trigger
        if not isinstance(trigger, RecordTrigger) or not change_matches(trigger, proposal):
            continue
        depth = change_depth(session, proposal) if depth is None else depth
        if depth >= loaded.rule.limits.max_depth:
            continue
        try:  # the rule acts as its author: a record the author can't read does not exist for it
            record = get_record(session, loaded.author, proposal.object_type, proposal.record_id)
        except NotFound:
            continue
        holds = conditions_hold(session, loaded.rule, proposal.object_type, record, _naive_now())
        if holds is None:
            continue
        key = f"{ref(proposal.object_type, record.id)}@v{proposal.applied_version}"
        yield loaded, _firing(loaded, proposal.object_type, record, key, proposal.applied_at or _naive_now(), depth,
                              trigger.on, (ref("proposal", proposal.id), *holds.evidence))


def _due_window(trigger: ScheduleTrigger, now: datetime) -> tuple[datetime, datetime]:
    """The dates (earliest, latest] a schedule rule acts on at ``now``.

    A date's moment is date + offset. It is due once the moment has come, and let go once it is older than the
    catch-up window. A "before the date" rule acts only while the date itself is still ahead: a deadline that
    already passed is not warned about.
    """
    offset = timedelta(minutes=trigger.offset_minutes)
    earliest, latest = now - offset - CATCH_UP, now - offset
    if trigger.offset_minutes < 0:
        earliest = max(earliest, now)
    return earliest, latest


def _as_datetime(value: date | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)


def schedule_candidates(session: Session, loaded: Loaded, now: datetime) -> Iterator[Candidate]:
    """The records a schedule rule fires on at ``now``."""
    rule, trigger = loaded.rule, loaded.rule.trigger
    assert isinstance(trigger, ScheduleTrigger)
    obj = trigger.object
    model: Any = model_for(obj)
    stmt = readable(loaded.author, obj)
    for c in rule.conditions:  # simple field conditions narrow the scan in SQL; all are checked again below
        if isinstance(c, FieldCondition) and "." not in c.field and isinstance(c.value, int | float | str) \
                and not isinstance(c.value, bool) and (column := getattr(model, c.field, None)) is not None:
            stmt = stmt.where(_sql_compare(c.op, column, c.value))
        if isinstance(c, InactivityCondition) and obj in _LINKS:  # quiet records only, found by the database
            since = now - timedelta(days=c.days)
            link = getattr(Activity, _LINKS[obj])
            stmt = stmt.where(~select(Activity.id).where(link == model.id, Activity.occurred_at > since).exists())
    if trigger.date_field:
        earliest, latest = _due_window(trigger, now)
        column = getattr(model, trigger.date_field)
        # A date column compares as midnight; the bounds are a day wider in SQL and exact in Python.
        stmt = stmt.where(column.is_not(None), column >= earliest - timedelta(days=1), column <= latest)
    for record in session.scalars(stmt.order_by(model.id).limit(SCAN_LIMIT)):
        if trigger.date_field:
            when = _as_datetime(getattr(record, trigger.date_field))
            if not earliest < when <= latest:
                continue
            key_part = f"{trigger.date_field}={when.isoformat()}"
        else:
            key_part = now.date().isoformat()
        holds = conditions_hold(session, rule, obj, record, now)
        if holds is None:
            continue
        if holds.quiet_since is not None and not trigger.date_field:
            key_part = f"quiet-since={holds.quiet_since.isoformat()}"
        yield _firing(loaded, obj, record, f"{ref(obj, record.id)}@{key_part}", now, 0, "schedule", holds.evidence)


def _sql_compare(op: str, column: Any, value: Any) -> Any:
    return {"eq": column == value, "ne": column != value, "gt": column > value, "ge": column >= value,
            "lt": column < value, "le": column <= value}.get(op, column.is_not(None) | column.is_(None))


@dataclass
class TickResult:
    """What one pass over changes and schedules did."""

    changes_seen: int = 0
    firings: int = 0
    skipped_by_limits: int = 0


def fire(session: Session, loaded: Loaded, candidate: Candidate, now: datetime, result: TickResult
         ) -> RuleFiring | None:
    """Apply one candidate, unless it fired before or the rule's limits hold it back."""
    from rules.runner import apply_firing

    f = candidate.firing
    if _fired(session, f.rule_id, f.version, f.event.key):
        return None
    if not within_limits(session, f.rule_id, loaded.rule, f.event.customer, now):
        result.skipped_by_limits += 1
        return None
    row = apply_firing(session, loaded, f, record=(candidate.obj, candidate.record))
    if row is not None:
        result.firings += 1
    return row


def process_changes(session: Session, rules: list[Loaded], *, limit: int = 500) -> TickResult:
    """Run the change rules over the outbox entries after this consumer's cursor, then advance it."""
    result = TickResult()
    entries = outbox.pending(session, CONSUMER, limit)
    now = _naive_now()
    for entry in entries:
        result.changes_seen += 1
        for loaded, candidate in change_candidates(session, rules, entry):
            fire(session, loaded, candidate, now, result)
    if entries:
        outbox.advance(session, CONSUMER, entries[-1].id)
    return result


def run_schedules(session: Session, rules: list[Loaded], now: datetime) -> TickResult:
    """Fire every schedule rule on the records whose moment has come at ``now``."""
    result = TickResult()
    for loaded in rules:
        for candidate in schedule_candidates(session, loaded, now):
            fire(session, loaded, candidate, now, result)
    return result


@dataclass(frozen=True)
class PastFiring:
    """A firing a record rule would have made: when, and on which record."""

    at: datetime
    obj: str
    record: Any


def history(session: Session, viewer: Principal, rule: Rule, now: datetime, days: int = 30) -> list[PastFiring]:
    """What a record rule would have fired on over the last ``days`` (and, for dates, the next seven).

    Change rules replay the applied proposals of the window; date rules place each record's moment on the
    calendar; daily rules check today. Conditions are tested on the records as they are now (the CRM keeps the
    changes, not every past state of a record), which the backtest says in its note.
    """
    trigger = rule.trigger
    assert not isinstance(trigger, EventTrigger)
    obj, since = trigger.object, now - timedelta(days=days)
    out: list[PastFiring] = []

    def readable_record(record_id: int) -> Any | None:
        try:
            return get_record(session, viewer, obj, record_id)
        except NotFound:
            return None

    if isinstance(trigger, RecordTrigger):
        proposals = session.scalars(select(Proposal).where(
            Proposal.object_type == obj, Proposal.status.in_(("applied", "undone")), Proposal.applied_at >= since)
            .order_by(Proposal.applied_at, Proposal.id).limit(SCAN_LIMIT * 4))
        for p in proposals:
            if p.record_id is None or not change_matches(trigger, p):
                continue
            record = readable_record(p.record_id)
            if record is not None and conditions_hold(session, rule, obj, record, now) is not None:
                out.append(PastFiring(p.applied_at or now, obj, record))
        return out
    if trigger.date_field is None:
        for record in session.scalars(readable(viewer, obj).limit(SCAN_LIMIT)):
            if conditions_hold(session, rule, obj, record, now) is not None:
                out.append(PastFiring(now, obj, record))
        return out
    model: Any = model_for(obj)
    column, offset = getattr(model, trigger.date_field), timedelta(minutes=trigger.offset_minutes)
    horizon = now + timedelta(days=7)
    stmt = readable(viewer, obj).where(column.is_not(None), column >= since - offset - timedelta(days=1),
                                       column <= horizon - offset).order_by(column).limit(SCAN_LIMIT)
    for record in session.scalars(stmt):
        when = _as_datetime(getattr(record, trigger.date_field))
        moment = when + offset
        if since <= moment <= horizon and conditions_hold(session, rule, obj, record, now) is not None:
            out.append(PastFiring(moment, obj, record))
    return out
