"""What the drift monitor watches: each strategy's outcomes, read from the ledger alone.

A *strategy* is something the system does on its own whose success people decide later. Each one turns ledger
rows into *units*, one per decided thing, dated and marked converted or not; a day's conversion is its converted
units over its units. The three strategies:

- ``next_step``: the assistant's next-step suggestions. A unit is a conversation in which the rep decided at
  least one follow-up task the assistant proposed (a ``proposal`` row by actor ``agent`` that creates an activity
  of kind ``task``, with an ``outcome`` row below it). It converts when at least one of them was approved, as
  proposed or edited; rejected ones count against it. Its day is the day of its first decision.
- ``proposals``: the same for every proposal the assistant makes in a conversation.
- ``rule_leads``: leads that rules created. A unit is a ``proposal`` row by a rule (actor ``rule:<id>``) that
  creates a lead and was applied (outcome accepted or edited). It converts when a ``converted`` outcome follows
  within ``maturity_days`` of its creation (``sync_lead_conversions`` writes that row once the CRM lead's status
  is ``converted``). Its day is its creation day, so a day's rate is final only ``maturity_days`` later.

Conversations are the assistant's units, not single proposals, because the A/B router assigns whole
conversations to a variant: the conversation is what the A/B test may treat as independent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

import ledger
from ledger.models import Decision

SIM_PREFIX = "drift-sim/"
APPROVED = frozenset({"accepted", "edited"})
DECIDED = frozenset({"accepted", "edited", "rejected"})
FOLLOW_UP_KIND = "task"  # agents.assistant.tools.FOLLOW_UP_KIND: the activity kind of a proposed follow-up
_CHUNK = 500  # ids per IN (...) list


@dataclass(frozen=True)
class Scope:
    """Whose rows a reading uses: live ones, or those a simulation replayed, never both.

    Simulated rows carry actor names with the ``drift-sim/`` prefix (``drift-sim/agent``), so a live reading,
    which matches actors exactly (``agent``), can never count them.
    """

    name: Literal["live", "simulation"]
    prefix: str

    def actor(self, name: str) -> str:
        """The actor name a row of this scope carries for ``name``."""
        return self.prefix + name

    @property
    def monitor(self) -> str:
        """The actor of the monitor's own rows."""
        return self.actor("drift-monitor")

    def owns(self, actor: str) -> bool:
        """Whether a row by ``actor`` belongs to this scope."""
        return actor.startswith(SIM_PREFIX) == bool(self.prefix)


LIVE = Scope("live", "")
SIMULATION = Scope("simulation", SIM_PREFIX)


@dataclass(frozen=True)
class Unit:
    """One decided thing: a conversation, or a created lead."""

    key: str
    day: date
    converted: bool
    model: str | None = None
    variant: str | None = None


@dataclass(frozen=True)
class Day:
    """One day's units and conversions."""

    day: date
    n: int
    k: int

    @property
    def rate(self) -> float | None:
        """Conversion, or None for a day without units."""
        return self.k / self.n if self.n else None


Reader = Callable[[Session, Scope, date, date], list[Unit]]


@dataclass(frozen=True)
class Strategy:
    """A strategy whose daily conversion the monitor watches."""

    name: str
    title: str
    target: Literal["assistant", "rule"]
    """What drift of it retrains: the assistant's model, or nothing (a rule is reviewed by a person)."""
    read: Reader
    """Units whose day lies in [first, last]."""
    maturity_days: int = 0
    """Days before a unit's outcome is final; the monitor judges only days at least this old."""


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """The [start, end) timestamps of the days ``first`` to ``last``."""
    return datetime.combine(first, time.min), datetime.combine(last + timedelta(days=1), time.min)


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i:i + _CHUNK]


def _creates_follow_up(output: dict[str, Any]) -> bool:
    kind = (output.get("changes") or {}).get("kind") or {}
    return output.get("object_type", "activity") == "activity" and kind.get("after") == FOLLOW_UP_KIND


def assistant_units(session: Session, scope: Scope, first: date, last: date, *,
                    keep: Callable[[dict[str, Any]], bool] = lambda _: True) -> list[Unit]:
    """Conversations with a decided assistant proposal (``keep`` picks which proposals), with model and variant."""
    start, end = day_bounds(first, last)
    outcome, proposal, turn = aliased(Decision), aliased(Decision), aliased(Decision)
    rows = session.execute(
        select(outcome.ts, outcome.output, proposal.id, proposal.output, turn.thread_id)
        .join(proposal, outcome.parent_id == proposal.id)
        .join(turn, proposal.parent_id == turn.id)
        .where(outcome.kind == "outcome", proposal.kind == "proposal", proposal.actor == scope.actor("agent"),
               turn.kind == "agent_turn", turn.thread_id.is_not(None), outcome.ts >= start, outcome.ts < end)
        .order_by(outcome.seq))
    latest: dict[str, tuple[str, datetime, str]] = {}  # proposal -> (thread, first decided, latest outcome)
    for ts, out, proposal_id, proposal_out, thread in rows:
        verdict = (out or {}).get("outcome")
        if verdict not in DECIDED or not keep(proposal_out or {}):
            continue
        first_ts = latest[proposal_id][1] if proposal_id in latest else ts
        latest[proposal_id] = (thread, first_ts, verdict)
    threads: dict[str, tuple[datetime, bool]] = {}
    for thread, ts, verdict in latest.values():
        seen_ts, converted = threads.get(thread, (ts, False))
        threads[thread] = (min(seen_ts, ts), converted or verdict in APPROVED)
    served = _served_by(session, scope, list(threads))
    return [Unit(key=t, day=ts.date(), converted=c, model=served.get(t, (None, None))[0],
                 variant=served.get(t, (None, None))[1]) for t, (ts, c) in threads.items()]


def _served_by(session: Session, scope: Scope, threads: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """The model and A/B variant of each conversation, from its ``model_call`` rows (the router is sticky)."""
    out: dict[str, tuple[str | None, str | None]] = {}
    for chunk in _chunks(threads):
        for thread, model, output in session.execute(
                select(Decision.thread_id, Decision.model_id, Decision.output)
                .where(Decision.kind == "model_call", Decision.actor == scope.actor("assistant"),
                       Decision.thread_id.in_(chunk)).order_by(Decision.seq)):
            out[thread] = (model, (output or {}).get("variant"))
    return out


def rule_lead_units(session: Session, scope: Scope, first: date, last: date, *, maturity_days: int) -> list[Unit]:
    """Leads rules created on days ``first``..``last``, converted if a ``converted`` outcome came in time."""
    start, end = day_bounds(first, last)
    created: dict[str, datetime] = {}
    for decision_id, ts, output in session.execute(
            select(Decision.id, Decision.ts, Decision.output)
            .where(Decision.kind == "proposal", Decision.actor.startswith(scope.actor("rule:"), autoescape=True),
                   Decision.ts >= start, Decision.ts < end)):
        if (output or {}).get("object_type") == "lead" and output.get("action") == "create":
            created[decision_id] = ts
    applied: set[str] = set()
    converted: set[str] = set()
    for chunk in _chunks(list(created)):
        for parent, ts, output in session.execute(
                select(Decision.parent_id, Decision.ts, Decision.output)
                .where(Decision.kind == "outcome", Decision.parent_id.in_(chunk))):
            verdict = (output or {}).get("outcome")
            if verdict in APPROVED:
                applied.add(parent)
            elif verdict == "converted" and ts - created[parent] <= timedelta(days=maturity_days):
                converted.add(parent)
    return [Unit(key=d, day=ts.date(), converted=d in converted) for d, ts in created.items() if d in applied]


def sync_lead_conversions(session: Session, *, actor: str) -> int:
    """Write a ``converted`` outcome for each rule-created lead whose CRM status became converted; returns how many.

    The CRM knows a lead converted; the ledger, which the monitor reads, learns it here (once per lead).
    """
    from crm.models import Lead, Proposal

    rows = session.execute(
        select(Proposal.decision_id).join(Lead, Lead.id == Proposal.record_id)
        .join(Decision, Decision.id == Proposal.decision_id)
        .where(Proposal.source.startswith("rule:"), Proposal.object_type == "lead", Proposal.action == "create",
               Proposal.status == "applied", Proposal.decision_id.is_not(None), Lead.status == "converted",
               Decision.outcome.is_distinct_from("converted")))
    count = 0
    for (decision_id,) in rows.all():
        assert decision_id is not None  # filtered above
        ledger.set_outcome(session, decision_id, "converted", actor)
        count += 1
    return count


RULE_LEAD_MATURITY_DAYS = 14

STRATEGIES: dict[str, Strategy] = {
    s.name: s for s in (
        Strategy("next_step", "Assistant next-step suggestions (follow-up tasks approved / decided)", "assistant",
                 lambda session, scope, first, last: assistant_units(session, scope, first, last,
                                                                     keep=_creates_follow_up)),
        Strategy("proposals", "All assistant proposals (conversations with one approved / decided)", "assistant",
                 lambda session, scope, first, last: assistant_units(session, scope, first, last)),
        Strategy("rule_leads", f"Rule-created leads (converted within {RULE_LEAD_MATURITY_DAYS} days / created)",
                 "rule", lambda session, scope, first, last: rule_lead_units(
                     session, scope, first, last, maturity_days=RULE_LEAD_MATURITY_DAYS),
                 maturity_days=RULE_LEAD_MATURITY_DAYS),
    )
}


def daily(units: Iterable[Unit], first: date, last: date) -> list[Day]:
    """Units per day from ``first`` to ``last`` (days without units included, with n = 0)."""
    counts: dict[date, list[int]] = {}
    for u in units:
        c = counts.setdefault(u.day, [0, 0])
        c[0] += 1
        c[1] += u.converted
    out, day = [], first
    while day <= last:
        n, k = counts.get(day, (0, 0))
        out.append(Day(day, n, k))
        day += timedelta(days=1)
    return out


class SeriesCache:
    """Days already counted, so a replay that ticks every day reads each day's rows once.

    Only days older than a strategy's maturity are kept: their units no longer change.
    """

    def __init__(self) -> None:
        self._days: dict[tuple[str, str, date], Day] = {}

    def series(self, session: Session, strategy: Strategy, scope: Scope, first: date, last: date) -> list[Day]:
        """Daily counts of ``strategy`` from ``first`` to ``last``."""
        final_until = last - timedelta(days=strategy.maturity_days + 1)
        missing = first
        while missing <= last and (strategy.name, scope.name, missing) in self._days:
            missing += timedelta(days=1)
        fresh = daily(strategy.read(session, scope, missing, last), missing, last) if missing <= last else []
        for d in fresh:
            if d.day <= final_until:
                self._days[(strategy.name, scope.name, d.day)] = d
        kept = [self._days[(strategy.name, scope.name, first + timedelta(days=i))]
                for i in range((missing - first).days)]
        return kept + fresh
