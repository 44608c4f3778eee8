"""Where the drift loop stands, as plain data: for the drift page, ``GET /v1/drift`` and ``crmind drift status``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from inference.registry_models import Deployment
from ledger.models import Decision
from modelops.drift import judge
from modelops.jobs import list_jobs
from modelops.monitor import LOOP_KINDS, MonitorConfig, ab_result, incidents, target_of
from modelops.strategies import LIVE, SIMULATION, STRATEGIES, Scope, daily

REGISTRY_KINDS = ("promotion", "rollback", "model_register")


def pick_scope(session: Session, name: str | None = None) -> Scope:
    """``live`` or ``simulation`` by name; by default live, unless only a simulation has run here."""
    if name in ("live", "simulation"):
        return LIVE if name == "live" else SIMULATION
    has_live = session.scalar(select(Decision.id).where(Decision.actor == LIVE.monitor).limit(1))
    has_sim = session.scalar(select(Decision.id).where(Decision.actor == SIMULATION.monitor).limit(1))
    return SIMULATION if has_sim and not has_live else LIVE


def last_check_day(session: Session, scope: Scope) -> date | None:
    """The day the latest monitor tick judged."""
    row = session.scalar(select(Decision).where(Decision.actor == scope.monitor, Decision.kind == "drift_check")
                         .order_by(Decision.seq.desc()).limit(1))
    return date.fromisoformat(row.output["day"]) if row is not None else None


def _row(d: Decision) -> dict[str, Any]:
    return {"id": d.id, "parent_id": d.parent_id, "ts": d.ts.isoformat(), "kind": d.kind, "actor": d.actor,
            "summary": d.input_summary, "model_id": d.model_id, "day": (d.output or {}).get("day"),
            "output": d.output}


def drift_state(session: Session, *, scope: Scope | None = None, days: int = 60,
                config: MonitorConfig | None = None) -> dict[str, Any]:
    """The strategies' days judged, input drift over time, jobs, each base's A/B test, and the loop's rows."""
    scope = scope or pick_scope(session)
    config = config or MonitorConfig.from_settings()
    as_of = last_check_day(session, scope) or (datetime.now(UTC).date() - timedelta(days=1))
    all_incidents = incidents(session, scope)
    # Incidents name the model they retrained: a replay's base need not be the configured one.
    model_target = next((i.out["target"] for i in reversed(all_incidents) if i.out.get("base")), None)
    strategies = []
    for strategy in STRATEGIES.values():
        last = as_of - timedelta(days=strategy.maturity_days)
        shown_from = last - timedelta(days=days - 1)
        first = shown_from - timedelta(days=config.rule.lookback_days)
        own = [i for i in all_incidents if i.out.get("strategy") == strategy.name]
        target = own[-1].out["target"] if own else (
            model_target if strategy.target == "assistant" and model_target else target_of(strategy, config))
        mine = [i for i in all_incidents if i.out.get("target") == target]  # its target's, whichever opened them
        verdicts = [v for v in judge(daily(strategy.read(session, scope, first, last), first, last), config.rule)
                    if v.day >= shown_from]
        strategies.append({
            "name": strategy.name, "title": strategy.title,
            "target": target,
            "maturity_days": strategy.maturity_days, "days": [v.as_dict() for v in verdicts],
            "incidents": [{"id": i.detected.id, "strategy": i.out.get("strategy"), "run": i.out.get("run"),
                           "day": i.out.get("day"),
                           "how": None if i.resolved is None else i.resolved.output.get("how"),
                           "resolved_day": None if i.resolved is None else i.resolved.output.get("day")}
                          for i in mine]})
    checks = list(session.scalars(select(Decision).where(Decision.actor == scope.monitor,
                                                         Decision.kind == "drift_check")
                                  .order_by(Decision.seq.desc()).limit(days)))
    input_drift = [c.output["input"] for c in reversed(checks) if c.output.get("input")]
    return {
        "scope": scope.name, "as_of": as_of.isoformat(),
        "rule": {"drop": config.rule.drop, "days": config.rule.days, "baseline_days": config.rule.baseline_days,
                 "min_daily": config.rule.min_daily},
        "strategies": strategies, "input_drift": input_drift,
        "jobs": [{"id": j.id, "kind": j.kind, "state": j.state, "attempts": j.attempts, "max_attempts": j.max_attempts,
                  "created_at": j.created_at.isoformat(), "finished_at": j.finished_at and j.finished_at.isoformat(),
                  "result": j.result, "error": j.error} for j in list_jobs(session, limit=20)
                 if scope.owns((j.payload.get("ledger") or {}).get("actor", "jobs"))],
        "ab": _ab(session, scope, all_incidents, as_of),
        "loop": [_row(d) for d in session.scalars(
            select(Decision).where(Decision.kind.in_(LOOP_KINDS + REGISTRY_KINDS))
            .order_by(Decision.seq.desc()).limit(400)) if scope.owns(d.actor)][:150],
    }


def _ab(session: Session, scope: Scope, all_incidents: list[Any], as_of: date) -> list[dict[str, Any]]:
    """Each base: champion, challenger and share now, and its latest A/B test with the arms against the horizon."""
    out = []
    for dep in session.scalars(select(Deployment).order_by(Deployment.base)):
        tests = [i for i in all_incidents if i.ab_started is not None and i.ab_started.output["base"] == dep.base]
        entry: dict[str, Any] = {"base": dep.base, "champion": dep.champion, "challenger": dep.challenger,
                                 "share": dep.challenger_share, "earlier_champions": list(dep.history), "test": None}
        if tests:
            inc = tests[-1]
            started = inc.ab_started.output
            decided = inc.ab_decision.output if inc.ab_decision is not None else None
            result = decided or ab_result(session, scope, started, as_of).as_dict()
            entry["test"] = {"incident": inc.detected.id, "started": started["day"], "since": started["since"],
                             "champion": started["champion"], "challenger": started["challenger"],
                             "design": started["design"], "result": result,
                             "decided_day": decided and decided.get("day")}
        out.append(entry)
    return out
