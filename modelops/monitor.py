"""One monitor tick (``check``): judge every strategy, measure input drift, and move each drift incident on.

Every step is a ledger row by the monitor's actor (``drift-monitor``; ``drift-sim/drift-monitor`` in a replay):

    drift_check                      every tick: each strategy's latest day and run, and the input drift
      drift_detected                 opens an incident for the strategy's target (its base model, or the rule)
        retrain_queued               assistant strategies: the retrain job (jobs.py adds _started, _done, _failed)
        ab_started                   the job's challenger is live; the test's horizon is fixed here
        ab_decision                  at the horizon: promote or roll back (the registry adds promotion / rollback)
        drift_resolved               the incident is closed (promoted, rolled back, retrain failed, reported)

A rule strategy has no model to retrain: its incident is reported and closed at once, for a person to review the
rule. One incident per target at a time; after it closes, only days after the close can form the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import ledger
from inference import registry
from inference.errors import LLMError
from inference.registry_models import RegisteredModel
from ledger.models import Decision
from modelops.abtest import ABDesign, ABResult, decide, design
from modelops.drift import DriftRule, DriftStatus, evaluate
from modelops.input_drift import InputDrift, check_input
from modelops.job_models import Job
from modelops.jobs import JobQueue
from modelops.strategies import LIVE, SIMULATION, STRATEGIES, Scope, SeriesCache, Strategy, sync_lead_conversions

log = logging.getLogger(__name__)
LOOP_KINDS = ("drift_check", "drift_detected", "retrain_queued", "retrain_started", "retrain_done", "retrain_failed",
              "retrain_requeued", "ab_started", "ab_decision", "drift_resolved")


@dataclass(frozen=True, kw_only=True)
class MonitorConfig:
    """What the monitor decides with (defaults from settings)."""

    rule: DriftRule = field(default_factory=DriftRule)
    base: str = "smollm2"
    """The assistant's base model: what an assistant strategy's drift retrains."""
    share: float = 0.5
    mde: float = 0.10
    alpha: float = 0.05
    power: float = 0.8
    retrain: dict[str, Any] = field(default_factory=dict)
    """Extra payload for the retrain job (the fine-tuning overrides, eval suites)."""

    @classmethod
    def from_settings(cls, *, base: str | None = None) -> MonitorConfig:
        """The configured monitor (``CRMIND_DRIFT_*``, ``CRMIND_AB_*``, the assistant's ``CRMIND_LLM_MODEL``)."""
        from config.settings import get_settings

        s = get_settings()
        return cls(rule=DriftRule.from_settings(), base=base or s.llm_model, share=s.ab_share, mde=s.ab_mde,
                   alpha=s.ab_alpha, power=s.ab_power, retrain=dict(s.drift_retrain))


@dataclass
class Incident:
    """One drift incident and the rows under it."""

    detected: Decision
    queued: Decision | None = None
    ab_started: Decision | None = None
    ab_decision: Decision | None = None
    resolved: Decision | None = None

    @property
    def out(self) -> dict[str, Any]:
        """The ``drift_detected`` row's output."""
        return self.detected.output

    @property
    def open(self) -> bool:
        """Not resolved yet."""
        return self.resolved is None


def incidents(session: Session, scope: Scope) -> list[Incident]:
    """Every incident of ``scope``, oldest first, with its steps."""
    rows = list(session.scalars(select(Decision).where(
        Decision.actor == scope.monitor,
        Decision.kind.in_(("drift_detected", "retrain_queued", "ab_started", "ab_decision", "drift_resolved")))
        .order_by(Decision.seq)))
    found = {r.id: Incident(r) for r in rows if r.kind == "drift_detected"}
    for r in rows:
        inc = found.get(r.parent_id or "")
        if inc is not None and r.kind != "drift_detected":
            setattr(inc, r.kind.removeprefix("retrain_").removeprefix("drift_"), r)
    return list(found.values())


@dataclass
class StrategyState:
    """A strategy after a tick: its judged days, and where its target's incident stands."""

    strategy: Strategy
    status: DriftStatus
    phase: str


@dataclass
class CheckReport:
    """What one tick saw and did."""

    as_of: date
    check_id: str
    strategies: list[StrategyState]
    input: InputDrift | None
    events: list[tuple[str, str]] = field(default_factory=list)
    """(ledger kind, a line for a person) for each step taken."""


class _Tick:
    """The state one ``check`` call threads through its steps."""

    def __init__(self, session: Session, scope: Scope, config: MonitorConfig, as_of: date,
                 queue: JobQueue | None, replay_ts: datetime | None) -> None:
        self.session, self.scope, self.config, self.as_of = session, scope, config, as_of
        self.queue, self.replay_ts = queue, replay_ts
        self.events: list[tuple[str, str]] = []

    def row(self, kind: str, summary: str, output: dict[str, Any], *, parent: str | None = None,
            base: str | None = None) -> Decision:
        """One monitor row; a simulated one says so in its output."""
        out = {"day": self.as_of.isoformat(), **output}
        if self.scope is SIMULATION:
            out["simulated"] = True
        row = ledger.append(self.session, kind=kind, actor=self.scope.monitor, parent_id=parent,
                            input_summary=summary, output=out, refs=self.refs(base))
        if kind != "drift_check":
            self.events.append((kind, summary))
        return row

    def refs(self, base: str | None) -> list[str]:
        """The base model's registry id (``model:3``), so managers can open the trace of its incident."""
        if base is None:
            return []
        model_id = self.session.scalar(select(RegisteredModel.id).where(RegisteredModel.name == base))
        return [f"model:{model_id}"] if model_id else []


def target_of(strategy: Strategy, config: MonitorConfig) -> str:
    """What an incident of ``strategy`` is about: the assistant's base model, or the strategy (a rule) itself."""
    return f"model:{config.base}" if strategy.target == "assistant" else f"strategy:{strategy.name}"


def check(session: Session, *, as_of: date, scope: Scope = LIVE, config: MonitorConfig | None = None,
          queue: JobQueue | None = None, embedder: Any = None, cache: SeriesCache | None = None,
          strategies: list[Strategy] | None = None, replay_ts: datetime | None = None) -> CheckReport:
    """One tick, judging days up to ``as_of``, in ``session``'s transaction (the caller commits; jobs run after).

    ``embedder`` (None: skip input drift) embeds questions; ``cache`` keeps judged days across ticks of a
    replay; ``replay_ts`` stamps the rows of a replayed day (``crmind drift simulate``).
    """
    config = config or MonitorConfig.from_settings()
    if replay_ts is not None:
        with ledger.replay_at(session, replay_ts):
            return _check(_Tick(session, scope, config, as_of, queue, replay_ts), embedder, cache, strategies)
    return _check(_Tick(session, scope, config, as_of, queue, None), embedder, cache, strategies)


def _check(tick: _Tick, embedder: Any, cache: SeriesCache | None, strategies: list[Strategy] | None) -> CheckReport:
    session, scope, config, as_of = tick.session, tick.scope, tick.config, tick.as_of
    if scope is LIVE:
        synced = sync_lead_conversions(session, actor=scope.monitor)
        if synced:
            log.info("%d rule-created leads converted since the last check", synced)
    cache = cache or SeriesCache()
    by_target: dict[str, Incident] = {}
    for inc in incidents(session, scope):
        by_target[inc.out["target"]] = inc  # the latest incident of each target
    states = []
    for strategy in strategies or list(STRATEGIES.values()):
        last = as_of - timedelta(days=strategy.maturity_days)
        first = last - timedelta(days=config.rule.lookback_days + config.rule.days)
        latest = by_target.get(target_of(strategy, config))
        after = None if latest is None or latest.resolved is None else date.fromisoformat(
            latest.resolved.output["day"])
        status = evaluate(cache.series(session, strategy, scope, first, last), config.rule, after=after)
        states.append(StrategyState(strategy, status, ""))
    input_drift = None
    if embedder is not None:
        try:
            input_drift = check_input(session, scope, as_of, config.rule, embedder)
        except Exception as exc:  # an embedder that fails must not stop conversion monitoring
            log.warning("input drift not measured: %s", exc)
    check_row = tick.row("drift_check", f"drift check of {as_of}", {
        "scope": scope.name,
        "strategies": {s.strategy.name: {"last": s.status.last.as_dict() if s.status.last else None,
                                         "run": len(s.status.run), "drifted": s.status.drifted}
                       for s in states},
        "input": None if input_drift is None else input_drift.as_dict()})
    for state in states:
        target = target_of(state.strategy, config)
        latest = by_target.get(target)
        if state.status.drifted and (latest is None or not latest.open):
            by_target[target] = _open(tick, state, check_row.id)
    for inc in by_target.values():
        # An incident opened in this tick waits for its job, which runs after this transaction commits.
        if inc.open and inc.out.get("action") == "retrain" and inc.detected.output["day"] != as_of.isoformat():
            _advance(tick, inc)
    for state in states:
        state.phase = _phase(state, by_target.get(target_of(state.strategy, config)), config)
    return CheckReport(as_of, check_row.id, states, input_drift, tick.events)


def _open(tick: _Tick, state: StrategyState, check_id: str) -> Incident:
    """Open an incident: retrain the assistant's model, or report a rule's drift for a person."""
    strategy, status, config = state.strategy, state.status, tick.config
    n, k = status.run_counts()
    first, last = status.run[0], status.run[-1]
    assistant = strategy.target == "assistant"
    base = config.base if assistant else None
    detected = tick.row("drift_detected", (
        f"{strategy.name}: conversion {k / n:.3f} over {first.day}..{last.day}, more than {config.rule.drop:.0%} "
        f"under its baseline {last.baseline:.3f} for {len(status.run)} days"), {
        "strategy": strategy.name, "target": target_of(strategy, config), "base": base,
        "action": "retrain" if assistant else "review", "run": [first.day.isoformat(), last.day.isoformat()],
        "n": n, "k": k, "rate": k / n, "baseline": last.baseline, "threshold": last.threshold,
        "rule": {"drop": config.rule.drop, "days": config.rule.days, "baseline_days": config.rule.baseline_days}},
        parent=check_id, base=base)
    inc = Incident(detected)
    if not assistant:
        inc.resolved = tick.row("drift_resolved", f"{strategy.name}: reported for review (a rule has no model to "
                                "retrain)", {"strategy": strategy.name, "how": "reported"}, parent=detected.id)
        return inc
    if tick.queue is None:
        raise ValueError("an assistant strategy drifted but check() was given no job queue to retrain with")
    meta: dict[str, Any] = {"actor": tick.scope.monitor, "parent": detected.id, "refs": tick.refs(base),
                            "output": {"simulated": True} if tick.scope is SIMULATION else {}}
    if tick.replay_ts is not None:
        meta["ts"] = tick.replay_ts.isoformat()
    payload = {"base": base, "strategy": strategy.name, "incident": detected.id, "share": config.share,
               "reason": f"drift of {strategy.name}: {k / n:.3f} vs baseline {last.baseline:.3f}",
               **config.retrain, "ledger": meta}
    job = tick.queue.enqueue(tick.session, "retrain", payload)
    tick.events.append(("retrain_queued", f"retrain job {job.id} queued for {base}"))
    return inc


def _resolve(tick: _Tick, inc: Incident, how: str, summary: str) -> None:
    inc.resolved = tick.row("drift_resolved", summary, {"strategy": inc.out["strategy"], "how": how},
                            parent=inc.detected.id, base=inc.out.get("base"))


def _advance(tick: _Tick, inc: Incident) -> None:
    """Move an assistant incident one step: retraining -> challenger live with a fixed horizon -> decision."""
    session = tick.session
    job = job_of(session, inc)
    if job is None or job.state in ("queued", "running"):
        return
    base = inc.out["base"]
    if job.state == "failed":
        _resolve(tick, inc, "retrain_failed", f"{base}: retraining failed ({job.error[:200]}); the champion stays")
        return
    if inc.ab_started is None:
        _start_ab(tick, inc, job)
        return
    if inc.ab_decision is None:
        _decide(tick, inc)


def job_of(session: Session, inc: Incident) -> Job | None:
    """The incident's retrain job, found by the incident id in its payload.

    Not by the id in the ``retrain_queued`` row: the ledger masks phone-like digit groups in every payload, so
    what it keeps of an id is for people to read, not for lookups.
    """
    return session.scalar(select(Job).where(Job.kind == "retrain",
                                            Job.payload["incident"].as_string() == inc.detected.id)
                          .order_by(Job.created_at.desc()).limit(1))


def _start_ab(tick: _Tick, inc: Incident, job: Job) -> None:
    """Put the retrained model in the A/B split (unless the retrain already did) and fix the test's horizon."""
    session, config = tick.session, tick.config
    result = job.result or {}
    base, model = result.get("base") or inc.out["base"], result.get("model")
    try:
        dep = registry.get_deployment(session, base)
        if not model or dep.champion == model:
            raise LLMError(f"the retrain job returned {model!r}, which is not a new model for {base}")
        if dep.challenger != model:
            registry.set_challenger(session, name=model, share=config.share, actor=tick.scope.monitor,
                                    reason=f"drift retrain of {inc.out['strategy']}: challenger at {config.share:.0%}")
    except LLMError as exc:
        _resolve(tick, inc, "retrain_failed", f"{base}: no challenger from the retrain ({exc})")
        return
    plan = design(inc.out["rate"], mde=config.mde, alpha=config.alpha, power=config.power,
                  share=dep.challenger_share)
    inc.ab_started = tick.row("ab_started", (
        f"{base}: A/B {dep.champion} vs {model} at {dep.challenger_share:.0%}; decides at {plan.n_challenger} "
        f"challenger and {plan.n_champion} champion conversations"), {
        "strategy": inc.out["strategy"], "base": base, "champion": dep.champion, "challenger": model,
        "share": dep.challenger_share, "since": (tick.as_of + timedelta(days=1)).isoformat(),
        "eval_run_id": result.get("eval_run_id"), "design": plan.as_dict()}, parent=inc.detected.id, base=base)


def ab_counts(session: Session, scope: Scope, started: dict[str, Any], as_of: date
              ) -> tuple[tuple[int, int], tuple[int, int]]:
    """(conversions, conversations) of the champion and the challenger arm since the A/B started."""
    strategy = STRATEGIES[started["strategy"]]
    since = date.fromisoformat(started["since"])
    arms = {"champion": [0, 0], "challenger": [0, 0]}
    if since <= as_of:
        for unit in strategy.read(session, scope, since, as_of):
            if unit.variant in arms and unit.model == started[unit.variant]:
                arms[unit.variant][0] += unit.converted
                arms[unit.variant][1] += 1
    (kc, nc), (kh, nh) = arms["champion"], arms["challenger"]
    return (kc, nc), (kh, nh)


def ab_result(session: Session, scope: Scope, started: dict[str, Any], as_of: date) -> ABResult:
    """The A/B test as it stands on ``as_of`` (a verdict only at the horizon)."""
    champion, challenger = ab_counts(session, scope, started, as_of)
    return decide(ABDesign.from_dict(started["design"]), champion=champion, challenger=challenger)


def _decide(tick: _Tick, inc: Incident) -> None:
    session, scope = tick.session, tick.scope
    assert inc.ab_started is not None
    started = inc.ab_started.output
    base = started["base"]
    dep = registry.get_deployment(session, base)
    if (dep.champion, dep.challenger) != (started["champion"], started["challenger"]):
        _resolve(tick, inc, "superseded", f"{base}: the deployment changed by hand during the A/B test "
                                          f"(now {dep.champion} / {dep.challenger}); the test is void")
        return
    result = ab_result(session, scope, started, tick.as_of)
    if result.decision is None:
        return
    inc.ab_decision = tick.row("ab_decision", f"{base}: {result.decision} {started['challenger']}: {result.reason}",
                               {"strategy": started["strategy"], "base": base, "champion": started["champion"],
                                "challenger": started["challenger"], **result.as_dict()},
                               parent=inc.detected.id, base=base)
    if result.decision == "promote":
        registry.promote(session, base=base, name=started["challenger"], actor=scope.monitor,
                         reason=f"A/B test: {result.reason}")
        _resolve(tick, inc, "promoted", f"{base}: {started['challenger']} promoted to champion")
    else:
        registry.clear_challenger(session, base=base, actor=scope.monitor, reason=f"A/B test: {result.reason}")
        _resolve(tick, inc, "rolled_back", f"{base}: challenger {started['challenger']} rolled back; "
                                           f"{started['champion']} stays champion")


def _phase(state: StrategyState, inc: Incident | None, config: MonitorConfig) -> str:
    """A word or two for a person: where this strategy stands."""
    if inc is not None and inc.open:
        if inc.ab_started is not None:
            return "a/b test"
        return "retraining" if inc.queued is not None else "drift"
    if state.status.drifted:
        return "drift"
    if state.status.run:
        return f"below {len(state.status.run)}/{config.rule.days}"
    return "ok" if state.status.last is not None else "no data"
