"""Backtest: a draft rule run over the stored event history in DuckDB (window functions, not a Python loop).

Events are mirrored into a DuckDB file under the data dir, incrementally by id, so a backtest scans a
columnar copy: each condition becomes a windowed aggregate over ``PARTITION BY customer ORDER BY ts``. Only the
candidate firings (a few per customer) come back to Python, where the per-customer-per-day and per-hour limits
are applied in order, as the engine applies them.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import get_settings
from crm.access import Principal, get_record, view
from crm.errors import NotFound
from crm.models import Event
from rules.engine import DAY_S, HOUR_S
from rules.explain import explain_action
from rules.language import (
    AggregateCondition,
    Assign,
    CreateContact,
    CreateLead,
    CreateTask,
    Delete,
    Escalate,
    EventFilter,
    EventTrigger,
    Export,
    FieldCondition,
    Notify,
    Rule,
    SendMessage,
    SequenceCondition,
    UpdateField,
)

_COLUMNS = ("id", "customer", "type", "page", "duration_s", "ts", "contact_id", "account_id", "properties")
_EVENT_COLUMNS = {"type", "page", "duration_s", "contact_id", "account_id"}
_SYNC_BATCH = 100_000
_LOCKS: dict[str, threading.Lock] = defaultdict(threading.Lock)


def _lit(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _match(f: EventFilter) -> str:
    parts = []
    if f.types:
        parts.append(f"type IN ({', '.join(_lit(t) for t in f.types)})")
    if f.page_prefix:
        p = f.page_prefix.replace("'", "''")
        parts.append(f"(starts_with(page, '{p}') OR starts_with(page, '/zh{p}'))")
    if f.min_duration_s is not None:
        parts.append(f"duration_s >= {int(f.min_duration_s)}")
    return " AND ".join(parts) or "TRUE"


_OPS = {"eq": "=", "ne": "IS DISTINCT FROM", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _field_sql(c: FieldCondition) -> str:
    if c.field in _EVENT_COLUMNS:
        col = c.field
    else:
        name = c.field.split(".", 1)[-1].replace("'", "''")
        col = f"json_extract(properties, '$.{name}')"
        if isinstance(c.value, bool):
            col = f"TRY_CAST({col} AS BOOLEAN)"
        elif isinstance(c.value, int | float):
            col = f"TRY_CAST({col} AS DOUBLE)"
        else:
            col = f"json_extract_string(properties, '$.{name}')"
    if c.op in ("in", "not_in"):
        values = c.value if isinstance(c.value, list) else [c.value]
        return f"{col} {'NOT ' if c.op == 'not_in' else ''}IN ({', '.join(_lit(v) for v in values)})"
    return f"{col} {_OPS[c.op]} {_lit(c.value)}"


def rule_sql(rule: Rule) -> str:
    """SQL selecting the events on which ``rule`` fires (before rate limits) from table ``ev``."""
    if not isinstance(rule.trigger, EventTrigger):
        raise ValueError("only event-triggered rules are backtested over events")
    ctes = ["c0 AS (SELECT * FROM ev)"]
    checks = [_match(rule.trigger.filter)]
    cols: list[str] = []
    part = "PARTITION BY customer ORDER BY ts"
    for k, c in enumerate(rule.conditions):
        if isinstance(c, AggregateCondition):
            value = "1" if c.fn == "count" else "duration_s"
            w = f"({part} RANGE BETWEEN {c.window_minutes * 60.0} PRECEDING AND CURRENT ROW)"
            cols.append(f"coalesce(sum({value}) FILTER (WHERE {_match(c.filter)}) OVER {w}, 0) AS a{k}")
            checks.append(f"a{k} {_OPS[c.op] if c.op != 'eq' else '='} {c.value}")
        elif isinstance(c, SequenceCondition):
            prev = f"CASE WHEN {_match(c.steps[0])} THEN ts END"
            for i, step in enumerate(c.steps[1:], start=1):
                n = len(ctes)
                ctes.append(f"c{n} AS (SELECT *, {prev} AS q{k}_{i} FROM c{n - 1})")
                prev = (f"CASE WHEN {_match(step)} THEN max(q{k}_{i}) OVER ({part} ROWS BETWEEN UNBOUNDED PRECEDING "
                        "AND 1 PRECEDING) END")
            n = len(ctes)
            ctes.append(f"c{n} AS (SELECT *, {prev} AS q{k}_end FROM c{n - 1})")
            cols.append(f"max(q{k}_end) OVER ({part} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS s{k}")
            checks.append(f"s{k} >= ts - {c.within_minutes * 60.0}")
        elif isinstance(c, FieldCondition):
            checks.append(_field_sql(c))
        else:
            raise ValueError(f"{c.kind} conditions are about records, not events")
    last = f"c{len(ctes) - 1}"
    select_cols = ", ".join(["*", *cols])
    return (f"WITH {', '.join(ctes)}, w AS (SELECT {select_cols} FROM {last}) "
            f"SELECT id, customer, ts, contact_id, account_id FROM w WHERE {' AND '.join(checks)} ORDER BY ts, id")


class EventMirror:
    """A DuckDB copy of the ``events`` table, caught up by id before each backtest."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or get_settings().data_dir / "rules_events.duckdb"

    def connect(self) -> Any:
        """A DuckDB connection with table ``ev``."""
        import duckdb

        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.path))
        con.execute("CREATE TABLE IF NOT EXISTS ev (id BIGINT, customer VARCHAR, type VARCHAR, page VARCHAR, "
                    "duration_s INTEGER, ts DOUBLE, contact_id BIGINT, account_id BIGINT, properties JSON)").fetchall()
        return con

    def sync(self, session: Session) -> tuple[Any, int]:
        """Copy events newer than the mirror's last id; returns the connection and rows copied."""
        lock = _LOCKS[str(self.path)]
        with lock:
            con = self.connect()
            last = con.execute("SELECT coalesce(max(id), 0) FROM ev").fetchall()[0][0]
            total = 0
            while True:
                rows = session.execute(
                    select(Event.id, Event.visitor_id, Event.type, Event.page, Event.duration_s, Event.occurred_at,
                           Event.contact_id, Event.account_id, Event.properties)
                    .where(Event.id > last).order_by(Event.id).limit(_SYNC_BATCH)).all()
                if not rows:
                    return con, total
                cols = list(zip(*rows, strict=True))
                data = {
                    "id": np.array(cols[0], dtype=np.int64), "customer": np.array(cols[1], dtype=object),
                    "type": np.array(cols[2], dtype=object), "page": np.array(cols[3], dtype=object),
                    "duration_s": np.array(cols[4], dtype=np.int32),
                    "ts": np.array([t.replace(tzinfo=UTC).timestamp() for t in cols[5]], dtype=np.float64),
                    "contact_id": np.array([-1 if v is None else v for v in cols[6]], dtype=np.int64),
                    "account_id": np.array([-1 if v is None else v for v in cols[7]], dtype=np.int64),
                    "properties": np.array([json.dumps(p or {}) for p in cols[8]], dtype=object),
                }
                con.register("batch", data)
                con.execute("INSERT INTO ev SELECT id, customer, type, page, duration_s, ts, nullif(contact_id, -1), "
                            "nullif(account_id, -1), properties::JSON FROM batch").fetchall()
                con.unregister("batch")
                last, total = int(cols[0][-1]), total + len(rows)


@dataclass
class Fire:
    """One backtested firing."""

    event_id: int
    customer: str
    ts: float
    contact_id: int | None


def limited(rule: Rule, rows: list[tuple[Any, ...]]) -> list[Fire]:
    """Apply the rule's rate limits in event-time order, as the engine does."""
    per_customer: dict[str, list[float]] = defaultdict(list)
    hour: list[float] = []
    out = []
    cap_day, cap_hour = rule.limits.max_fires_per_customer_per_day, rule.limits.max_fires_per_hour
    for event_id, customer, ts, contact_id, _account_id in rows:
        fires = [t for t in per_customer[customer] if t > ts - DAY_S]
        hour = [t for t in hour if t > ts - HOUR_S]
        if len(fires) >= cap_day or len(hour) >= cap_hour:
            per_customer[customer] = fires
            continue
        per_customer[customer] = [*fires, ts]
        hour.append(ts)
        out.append(Fire(int(event_id), customer, float(ts), contact_id))
    return out


def touches(rule: Rule) -> set[tuple[str, str]]:
    """The (object, field) pairs a rule's actions write, for conflict checks."""
    out: set[tuple[str, str]] = set()
    for a in rule.actions:
        if isinstance(a, CreateLead):
            out |= {("lead", "create"), ("lead", "pool")}
        elif isinstance(a, CreateContact):
            out.add(("contact", "create"))
        elif isinstance(a, CreateTask | Notify | SendMessage | Export):
            out.add(("activity", "create"))
        elif isinstance(a, Assign):
            out.add(("record", "pool" if a.pool else "queue" if a.queue else "owner_id"))
        elif isinstance(a, UpdateField):
            out.add(("record", a.field))
        elif isinstance(a, Escalate):
            out |= {("record", "status"), ("record", "priority")}
        elif isinstance(a, Delete):
            out.add(("record", "delete"))
    return out


class Overlap(BaseModel):
    """Another active rule firing on the same customers on the same days."""

    rule_id: int
    name: str
    shared_customer_days: int
    conflict: bool
    fields: list[str]


class BacktestResult(BaseModel):
    """What the rule would have done over the stored history."""

    events_scanned: int
    synced: int
    seconds: float
    fires: int
    customers: int
    per_day: list[tuple[str, int]]
    sample: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    overlaps: list[Overlap] = []
    impact: dict[str, Any] | None = None
    note: str = ""


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def run_rule(con: Any, rule: Rule) -> list[Fire]:
    """Firings of one rule over the mirror."""
    return limited(rule, con.execute(rule_sql(rule)).fetchall())


@dataclass
class _Ctx:
    others: list[tuple[int, str, Rule]] = field(default_factory=list)


def backtest(session: Session, principal: Principal, rule: Rule, *, previous: Rule | None = None,
             others: list[tuple[int, str, Rule]] | None = None, mirror: EventMirror | None = None,
             sample_size: int = 10) -> BacktestResult:
    """Run ``rule`` over every stored event; compare with ``previous`` (an edit) and with ``others`` (active)."""
    started = time.perf_counter()
    con, synced = (mirror or EventMirror()).sync(session)
    try:
        scanned = con.execute("SELECT count(*) FROM ev").fetchall()[0][0]
        if not isinstance(rule.trigger, EventTrigger):
            return _record_backtest(session, principal, rule, started, sample_size)
        fires = run_rule(con, rule)
        per_day = sorted(Counter(_day(f.ts) for f in fires).items())
        customers = {f.customer for f in fires}
        sample = [_sample(session, principal, f) for f in fires[-sample_size:]][::-1]
        actions = [{"type": a.type, "count": len(fires), "text": explain_action(a, rule.language)}
                   for a in rule.actions]
        keys = {(f.customer, _day(f.ts)) for f in fires}
        overlaps = []
        for rule_id, name, other in others or []:
            if not isinstance(other.trigger, EventTrigger):
                continue
            shared = keys & {(f.customer, _day(f.ts)) for f in run_rule(con, other)}
            if shared:
                common = touches(rule) & touches(other)
                overlaps.append(Overlap(rule_id=rule_id, name=name, shared_customer_days=len(shared),
                                        conflict=bool(common), fields=sorted(f"{o}.{f}" for o, f in common)))
        impact = None
        if previous is not None and isinstance(previous.trigger, EventTrigger):
            old = {f.event_id for f in run_rule(con, previous)}
            new = {f.event_id for f in fires}
            impact = {"old_fires": len(old), "new_fires": len(new), "both": len(old & new),
                      "only_old": len(old - new), "only_new": len(new - old)}
        return BacktestResult(events_scanned=scanned, synced=synced, seconds=round(time.perf_counter() - started, 4),
                              fires=len(fires), customers=len(customers), per_day=per_day, sample=sample,
                              actions=actions, overlaps=overlaps, impact=impact)
    finally:
        con.close()


def _record_backtest(session: Session, principal: Principal, rule: Rule, started: float,
                     sample_size: int) -> BacktestResult:
    """A change or schedule rule over the CRM's own history (see ``rules.records.history``)."""
    from rules.records import history

    now = datetime.now(UTC).replace(tzinfo=None)
    fires = history(session, principal, rule, now)
    per_day = sorted(Counter(f.at.strftime("%Y-%m-%d") for f in fires).items())
    sample = []
    for f in fires[-sample_size:][::-1]:
        shown = view(principal, f.obj, f.record)
        sample.append({"customer": f"{f.obj}:{f.record.id}", "event_id": None, "at": f.at.strftime("%Y-%m-%d %H:%M"),
                       "record": {k: shown.get(k) for k in ("id", "name", "subject", "stage", "status", "amount")
                                  if shown.get(k) is not None}})
    actions = [{"type": a.type, "count": len(fires), "text": explain_action(a, rule.language)} for a in rule.actions]
    scope = ("changes applied in the last 30 days" if rule.trigger.kind == "record" else
             "dates from 30 days ago to 7 days ahead" if getattr(rule.trigger, "date_field", None) else "today")
    return BacktestResult(events_scanned=0, synced=0, seconds=round(time.perf_counter() - started, 4),
                          fires=len(fires), customers=len({f.record.id for f in fires}), per_day=per_day, sample=sample,
                          actions=actions, note=f"over {scope}; conditions tested on the records as they are now")


def _sample(session: Session, principal: Principal, fire: Fire) -> dict[str, Any]:
    """A customer the rule hit, as the viewer may see them (a contact's personal fields masked by role)."""
    out: dict[str, Any] = {"customer": fire.customer, "event_id": fire.event_id,
                           "at": datetime.fromtimestamp(fire.ts, UTC).strftime("%Y-%m-%d %H:%M")}
    if fire.contact_id is not None:
        try:
            contact = view(principal, "contact", get_record(session, principal, "contact", int(fire.contact_id)))
            out["contact"] = {k: contact.get(k) for k in ("id", "name", "email", "phone") if k in contact}
        except NotFound:
            out["contact"] = {"id": None, "name": "(another team's contact)"}
    return out
