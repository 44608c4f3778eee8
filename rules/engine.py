"""The rule engine's core: compiled rules evaluated against per-customer windowed state, in memory.

This module decides; it does not write. ``rules.runner`` stores events, applies firings through the proposal
path, and feeds this engine from the HTTP API, the in-process queue or a NATS JetStream consumer: the same
code in every case. State is per customer (the visitor key) and is rebuilt from stored events, so a
restart or a partition moving to another worker loses nothing.
"""

from __future__ import annotations

from bisect import bisect_right
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


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a setattr call per field, per firing
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
    # The limits as plain ints: the hot loop reads them per candidate, not through three attribute lookups.
    max_depth: int = 0
    max_day: int = 0
    max_hour: int = 0
    check_trigger: bool = True  # False when the engine's type-and-duration index already matched the trigger

    def __post_init__(self) -> None:
        limits = self.rule.limits
        self.max_depth, self.max_day, self.max_hour = (limits.max_depth, limits.max_fires_per_customer_per_day,
                                                       limits.max_fires_per_hour)

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


def _min_duration(compiled: CompiledRule) -> int:
    """The per-event minimum duration of an event rule's trigger (0 when it sets none)."""
    trigger = compiled.rule.trigger
    assert isinstance(trigger, EventTrigger)
    return trigger.filter.min_duration_s or 0


@dataclass
class CustomerState:
    """One customer's recent events and when each rule last fired for them."""

    events: deque[Ev] = field(default_factory=deque)
    fires: dict[int, deque[float]] = field(default_factory=dict)


class Engine:
    """Evaluates events against compiled rules; indexes rules by the event types that can trigger them."""

    def __init__(self, rules: Iterable[CompiledRule] = ()) -> None:
        self.rules: list[CompiledRule] = []
        self._typed: dict[str, list[CompiledRule]] = {}
        self.by_type: dict[str, list[CompiledRule]] = {}
        self.by_duration: dict[str, tuple[list[int], list[CompiledRule]]] = {}
        self.any_type: list[CompiledRule] = []
        self.state: dict[str, CustomerState] = {}
        self.horizon_s = DAY_S
        self.keeps_history = False
        for r in rules:
            self.add(r)

    def add(self, compiled: CompiledRule) -> None:
        """Index one rule by its trigger's event types.

        ``by_type[t]`` holds the rules for type ``t`` followed by the rules for any type, so an event looks up one
        list; a type no rule names falls back to ``any_type``.
        """
        self.rules.append(compiled)
        trigger = compiled.rule.trigger
        assert isinstance(trigger, EventTrigger)
        f = trigger.filter
        if f.types and f.page_prefix is None:
            # Type and minimum duration only (the commonest trigger): an index answers it, sorted by threshold,
            # so an event bisects to the rules it passes instead of calling each rule's filter.
            compiled.check_trigger = False
            for t in f.types:
                plain = sorted([*self.by_duration.get(t, ([], []))[1], compiled], key=_min_duration)
                self.by_duration[t] = ([_min_duration(c) for c in plain], plain)
        elif f.types:
            for t in f.types:
                self._typed.setdefault(t, []).append(compiled)
        else:
            self.any_type.append(compiled)
        self.by_type = {t: [*typed, *self.any_type] for t, typed in self._typed.items()}
        self.keeps_history = self.keeps_history or bool(compiled.conditions)
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
        # Only conditions read a customer's past events; with none among the rules, keeping them is wasted work.
        state = self.remember(ev) if self.keeps_history else self.customer(ev.customer)
        candidates = self.by_type.get(ev.type, self.any_type)
        indexed = self.by_duration.get(ev.type)
        if indexed is not None:
            thresholds, plain = indexed
            candidates = plain[:bisect_right(thresholds, ev.duration_s)] + candidates
        if not candidates:
            return []
        out: list[Firing] = []
        depth, events = ev.depth, state.events
        for compiled in candidates:
            if depth >= compiled.max_depth or (compiled.check_trigger and not compiled.trigger(ev)):
                continue
            if not compiled.conditions:
                if self._allowed(compiled, state, ev.ts):
                    out.append(Firing(compiled.rule_id, compiled.version, ev, (ev.key,)))
                continue
            evidence: list[str] = [ev.key]
            for cond in compiled.conditions:
                keys = cond(ev, events)
                if keys is None:
                    break
                evidence.extend(keys)
            else:
                if self._allowed(compiled, state, ev.ts):
                    out.append(Firing(compiled.rule_id, compiled.version, ev, tuple(dict.fromkeys(evidence))))
        return out

    @staticmethod
    def _allowed(compiled: CompiledRule, state: CustomerState, ts: float) -> bool:
        """The rule's limits (sliding day per customer, sliding hour per rule); counts the firing if allowed."""
        fires = state.fires.get(compiled.rule_id)
        if fires is None:
            fires = state.fires[compiled.rule_id] = deque()
        else:
            cutoff = ts - DAY_S
            while fires and fires[0] <= cutoff:
                fires.popleft()
            if len(fires) >= compiled.max_day:
                return False
        hour, cutoff = compiled.fired_hour, ts - HOUR_S
        while hour and hour[0] <= cutoff:
            hour.popleft()
        if len(hour) >= compiled.max_hour:
            return False
        fires.append(ts)
        hour.append(ts)
        return True
