"""The rule engine's core: compiled rules evaluated against per-customer windowed state, in memory.

This module decides; it does not write. ``rules.runner`` stores events, applies firings through the proposal
path, and feeds this engine from the HTTP API, the in-process queue or a NATS JetStream consumer: the same
code in every case. State is per customer (the visitor key) and is rebuilt from stored events, so a
restart or a partition moving to another worker loses nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from rules.language import (
    AggregateCondition,
    EventFilter,
    EventTrigger,
    FieldCondition,
    Rule,
    SequenceCondition,
)

DAY_S = 86_400.0
HOUR_S = 3_600.0


@dataclass(slots=True)
class Ev:
    """One event as the engine sees it (``ts`` in epoch seconds, event time)."""

    key: str
    customer: str
    type: str
    ts: float
    page: str = ""
    duration_s: int = 0
    contact_id: int | None = None
    account_id: int | None = None
    team_id: int | None = None
    event_id: int | None = None
    depth: int = 0
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Firing:
    """A rule version fired for an event: which rule, which version, which events made it fire."""

    rule_id: int
    version: int
    event: Ev
    evidence: tuple[str, ...]


def _filter_fn(f: EventFilter) -> Callable[[Ev], bool]:
    types = frozenset(f.types)
    prefix, min_d = f.page_prefix, f.min_duration_s
    if not types and prefix is None and min_d is None:
        return lambda e: True
    if prefix is None and min_d is None:
        return lambda e: e.type in types

    def match(e: Ev) -> bool:
        if types and e.type not in types:
            return False
        if prefix is not None and not (e.page.startswith(prefix) or e.page.startswith("/zh" + prefix)):
            return False
        return min_d is None or e.duration_s >= min_d

    return match


COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a is not None and a > b,
    "ge": lambda a, b: a is not None and a >= b, "lt": lambda a, b: a is not None and a < b,
    "le": lambda a, b: a is not None and a <= b, "in": lambda a, b: a in (b or []),
    "not_in": lambda a, b: a not in (b or []),
}

# A condition returns the keys of the events that satisfied it, or None when it does not hold.
CondFn = Callable[[Ev, "deque[Ev]"], "list[str] | None"]


def _aggregate(c: AggregateCondition) -> CondFn:
    match, window, cmp, value, total = _filter_fn(c.filter), c.window_minutes * 60.0, COMPARE[c.op], c.value, \
        c.fn == "sum_duration"

    def cond(ev: Ev, history: deque[Ev]) -> list[str] | None:
        since = ev.ts - window
        acc, keys = 0.0, []
        for e in reversed(history):
            if e.ts < since:
                break
            if e.ts <= ev.ts and match(e):
                acc += e.duration_s if total else 1
                keys.append(e.key)
        return keys if cmp(acc, value) else None

    return cond


def _sequence(c: SequenceCondition) -> CondFn:
    steps, window = [_filter_fn(s) for s in c.steps], c.within_minutes * 60.0

    def cond(ev: Ev, history: deque[Ev]) -> list[str] | None:
        # Walk back from the newest event, matching the last step first; the first step must be within window.
        i, keys, first_ts = len(steps) - 1, [], None
        for e in reversed(history):
            if e.ts > ev.ts:
                continue
            if ev.ts - e.ts > window:
                break
            if steps[i](e):
                keys.append(e.key)
                first_ts = e.ts
                i -= 1
                if i < 0:
                    break
        return list(reversed(keys)) if i < 0 and first_ts is not None else None

    return cond


def _field(c: FieldCondition) -> CondFn:
    cmp, name, value = COMPARE[c.op], c.field, c.value

    def cond(ev: Ev, _history: deque[Ev]) -> list[str] | None:
        if name.startswith("custom.") or name.startswith("properties."):
            current = ev.properties.get(name.split(".", 1)[1])
        else:
            current = getattr(ev, name, ev.properties.get(name))
        return [] if cmp(current, value) else None

    return cond


@dataclass
class CompiledRule:
    """A rule version ready to evaluate."""

    rule_id: int
    version: int
    rule: Rule
    trigger: Callable[[Ev], bool]
    conditions: list[CondFn]
    fired_hour: deque[float] = field(default_factory=deque)

    @property
    def window_s(self) -> float:
        """How far back this rule looks."""
        spans = [getattr(c, "window_minutes", 0) or getattr(c, "within_minutes", 0) for c in self.rule.conditions]
        return max([0, *spans]) * 60.0


def compile_rule(rule_id: int, version: int, rule: Rule) -> CompiledRule | None:
    """Closures for an event-triggered rule (record and schedule rules run in ``rules.runner``)."""
    if not isinstance(rule.trigger, EventTrigger):
        return None
    conds: list[CondFn] = []
    for c in rule.conditions:
        if isinstance(c, AggregateCondition):
            conds.append(_aggregate(c))
        elif isinstance(c, SequenceCondition):
            conds.append(_sequence(c))
        elif isinstance(c, FieldCondition):
            conds.append(_field(c))
        else:
            return None  # inactivity is about records, not events
    return CompiledRule(rule_id, version, rule, _filter_fn(rule.trigger.filter), conds)


@dataclass
class CustomerState:
    """One customer's recent events and when each rule last fired for them."""

    events: deque[Ev] = field(default_factory=deque)
    fires: dict[int, deque[float]] = field(default_factory=dict)


class Engine:
    """Evaluates events against compiled rules; indexes rules by the event types that can trigger them."""

    def __init__(self, rules: Iterable[CompiledRule] = ()) -> None:
        self.rules: list[CompiledRule] = []
        self.by_type: dict[str, list[CompiledRule]] = {}
        self.any_type: list[CompiledRule] = []
        self.state: dict[str, CustomerState] = {}
        self.horizon_s = DAY_S
        for r in rules:
            self.add(r)

    def add(self, compiled: CompiledRule) -> None:
        """Index one rule by its trigger's event types."""
        self.rules.append(compiled)
        trigger = compiled.rule.trigger
        assert isinstance(trigger, EventTrigger)
        if trigger.filter.types:
            for t in trigger.filter.types:
                self.by_type.setdefault(t, []).append(compiled)
        else:
            self.any_type.append(compiled)
        self.horizon_s = max(self.horizon_s, compiled.window_s)

    def customer(self, key: str) -> CustomerState:
        """The state of one customer (created empty)."""
        state = self.state.get(key)
        if state is None:
            state = self.state[key] = CustomerState()
        return state

    def remember(self, ev: Ev) -> CustomerState:
        """Add an event to its customer's window without evaluating rules (used when rebuilding state)."""
        state = self.customer(ev.customer)
        events = state.events
        if events and ev.ts < events[-1].ts:  # late arrival: keep the window in event-time order
            i = len(events)
            while i > 0 and events[i - 1].ts > ev.ts:
                i -= 1
            events.insert(i, ev)
        else:
            events.append(ev)
        cutoff = ev.ts - self.horizon_s
        while events and events[0].ts < cutoff:
            events.popleft()
        return state

    def note_fired(self, customer: str, rule_id: int, ts: float) -> None:
        """Restore a past firing (rate limits survive a restart)."""
        self.customer(customer).fires.setdefault(rule_id, deque()).append(ts)

    def process(self, ev: Ev) -> list[Firing]:
        """Add ``ev`` to its customer's state and return the rules that fire on it."""
        state = self.remember(ev)
        candidates = self.by_type.get(ev.type)
        if not candidates and not self.any_type:
            return []
        out: list[Firing] = []
        for compiled in (candidates or []) + self.any_type if candidates else self.any_type:
            if ev.depth >= compiled.rule.limits.max_depth or not compiled.trigger(ev):
                continue
            evidence: list[str] = [ev.key]
            for cond in compiled.conditions:
                keys = cond(ev, state.events)
                if keys is None:
                    break
                evidence.extend(keys)
            else:
                if self._allowed(compiled, state, ev):
                    out.append(Firing(compiled.rule_id, compiled.version, ev, tuple(dict.fromkeys(evidence))))
        return out

    def _allowed(self, compiled: CompiledRule, state: CustomerState, ev: Ev) -> bool:
        limits = compiled.rule.limits
        fires = state.fires.setdefault(compiled.rule_id, deque())
        while fires and fires[0] <= ev.ts - DAY_S:
            fires.popleft()
        if len(fires) >= limits.max_fires_per_customer_per_day:
            return False
        hour = compiled.fired_hour
        while hour and hour[0] <= ev.ts - HOUR_S:
            hour.popleft()
        if len(hour) >= limits.max_fires_per_hour:
            return False
        fires.append(ev.ts)
        hour.append(ev.ts)
        return True
