"""``crmind drift simulate``: replay a synthetic history day by day and watch the drift loop fire and resolve.

Each simulated day writes the ledger rows real use would (a rep's question, the routed model call with its A/B
variant, the assistant's follow-up proposal and the rep's decision; leads created by a rule and, days later,
their conversions), then runs one monitor tick over them and the job queue. From ``inject_day`` on, the world
changes: the model in service converts ``drop`` less, and the reps start asking about other things. The monitor
sees seven days under its baseline, queues a retrain (the real queue, with the given handler), the challenger gets
its share through the real router, and the A/B test promotes it (``recovers``: a model trained after the change
converts as well as the old one did before) or rolls it back.

Every simulated row is by a ``drift-sim/`` actor and says ``simulated: true`` (``modelops.strategies.Scope``), so
a live monitor never counts it; ``crmind drift simulate`` also keeps its own database by default.
"""

from __future__ import annotations

import contextlib
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

import ledger
from config.db import get_engine, transaction
from inference import registry
from inference.registry_models import RegisteredModel
from inference.router import assign, config_for_base
from modelops.drift import DriftRule
from modelops.jobs import Handler, JobQueue
from modelops.monitor import CheckReport, MonitorConfig, check
from modelops.strategies import SIMULATION, SeriesCache

SIM = SIMULATION
COMPANIES = ["Acme Robotics", "Northwind", "Fremont Storage", "Blue Harbor", "Kestrel Foods", "Lumen Grid",
             "Orchid Health", "Summit Rail"]
QUESTIONS = [  # what reps ask before the change
    "What is the status of the {c} renewal?",
    "Summarise my last three calls with {c}.",
    "Which open opportunities at {c} close this quarter?",
    "Schedule a follow-up with {c} about the pricing proposal.",
    "Who is the main contact at {c} and when did we last talk?",
    "Are there open support cases for {c}?",
    "Draft next steps for the {c} pilot.",
    "What did {c} say about the delivery timeline?",
]
SHIFTED = [  # what they ask after it: a new product line, asked about in Chinese
    "{c} 的储能逆变器保修期是多久？",
    "{c} 想了解新款储能柜的交付周期，怎么回复？",
    "帮我安排和 {c} 关于储能项目招标的跟进。",
    "{c} 对储能柜报价有什么异议？",
    "{c} 的储能项目现场勘察安排在哪天？",
]


@dataclass(kw_only=True)
class SimConfig:
    """The synthetic world."""

    days: int = 60
    seed: int = 7
    inject_day: int = 20
    """First day of the change (0-based)."""
    drop: float = 0.3
    """Relative conversion drop of the model in service from ``inject_day``."""
    conversion: float = 0.6
    """Next-step suggestions approved, per conversation, before the change."""
    conversations: int = 150
    """Conversations per day."""
    leads: int = 25
    """Leads a rule creates per day (a strategy that does not drift)."""
    lead_conversion: float = 0.3
    recovers: bool = True
    """Whether a model retrained after the change converts as well as before it (promote) or not (roll back)."""
    base: str = "smollm2"
    start: date | None = None
    """First simulated day; None: the history ends yesterday."""
    questions_shift: bool = True


@dataclass
class SimDay:
    """One simulated day, as the table prints it."""

    index: int
    day: date
    conversations: int
    rate: float | None
    baseline: float | None
    threshold: float | None
    phase: str
    champion: str
    challenger: str | None
    share: float
    input_p: float | None
    events: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class SimResult:
    """The replay, day by day, and how the loop ended."""

    days: list[SimDay]
    config: SimConfig

    def first(self, kind: str) -> SimDay | None:
        """The first day a step of ``kind`` happened."""
        return next((d for d in self.days if any(k == kind for k, _ in d.events)), None)

    @property
    def decisions(self) -> list[str]:
        """Each A/B decision's text, in order."""
        return [text for d in self.days for k, text in d.events if k == "ab_decision"]


def _noon(day: date) -> datetime:
    return datetime.combine(day, time(12, 0))


def _evening(day: date) -> datetime:
    return datetime.combine(day, time(23, 0))


class _World:
    """The simulated reps, models and rule, with one random stream so a seed replays exactly."""

    def __init__(self, config: SimConfig, original_champion: str) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.original = original_champion
        self.conversions: dict[date, list[str]] = {}

    def rate(self, model: str, index: int) -> float:
        """Conversion of ``model`` on day ``index``: the change hurts the old model, and new ones unless told."""
        c = self.config
        if index < c.inject_day or (model != self.original and c.recovers):
            return c.conversion
        return c.conversion * (1 - c.drop)

    def question(self, index: int) -> str:
        c = self.config
        shifted = c.questions_shift and index >= c.inject_day and self.rng.random() < 0.5
        template = self.rng.choice(SHIFTED if shifted else QUESTIONS)
        return template.format(c=self.rng.choice(COMPANIES))


def _conversation(session: Any, world: _World, ab: Any, day: date, index: int, n: int) -> float:
    """One conversation's rows: question, routed model call, follow-up proposal, the rep's decision."""
    rep = world.rng.randint(1, 12)
    thread = f"sim-{day.isoformat()}-{n}"
    turn = ledger.append(session, kind="agent_turn", actor=SIM.actor(f"user:{rep}"), thread_id=thread,
                         input_summary=world.question(index), output={"simulated": True})
    chosen = assign(ab, thread)
    ledger.append(session, kind="model_call", actor=SIM.actor("assistant"), thread_id=thread, parent_id=turn.id,
                  model_id=chosen.model, output={"variant": chosen.variant, "simulated": True})
    proposal = ledger.append(
        session, kind="proposal", actor=SIM.actor("agent"), parent_id=turn.id,
        input_summary="create activity (new): follow-up task",
        output={"object_type": "activity", "action": "create", "changes": {"kind": {"before": None, "after": "task"}},
                "simulated": True})
    approved = world.rng.random() < world.rate(chosen.model, index)
    ledger.set_outcome(session, proposal.id, "accepted" if approved else "rejected", SIM.actor(f"user:{rep}"))
    return float(approved)


def _leads(session: Any, world: _World, day: date) -> None:
    """The rule's leads of the day; each converts, or not, within ten days."""
    for _ in range(world.config.leads):
        row = ledger.append(session, kind="proposal", actor=SIM.actor("rule:1"),
                            input_summary="create lead (new): rule 1 web sign-up",
                            output={"object_type": "lead", "action": "create", "simulated": True})
        ledger.set_outcome(session, row.id, "accepted", SIM.actor("rule:1"))
        if world.rng.random() < world.config.lead_conversion:
            when = day + timedelta(days=world.rng.randint(0, 10))
            world.conversions.setdefault(when, []).append(row.id)
    for decision_id in world.conversions.pop(day, []):
        ledger.set_outcome(session, decision_id, "converted", SIM.actor("user:1"))


def simulate(config: SimConfig, *, handler: Handler, engine: Engine | None = None, embedder: Any = None,
             monitor: MonitorConfig | None = None, on_day: Callable[[SimDay], None] | None = None) -> SimResult:
    """Replay ``config.days`` days into ``engine``'s database (migrated, no earlier simulation in it)."""
    engine = engine or get_engine()
    start = config.start or (datetime.now(UTC).date() - timedelta(days=config.days))
    monitor = monitor or MonitorConfig(rule=DriftRule(), base=config.base,
                                       share=0.5, mde=0.10, alpha=0.05, power=0.8)
    queue = JobQueue(engine, redis_url=None, use_settings=False, handlers={"retrain": handler})
    with transaction(engine) as session:
        if session.scalar(select(func.count()).select_from(ledger.Decision)
                          .where(ledger.Decision.actor == SIM.monitor)):
            raise ValueError("this database already holds a simulation; use a fresh one (--data-dir, --reset)")
        registry.ensure_bases(session)
        world = _World(config, registry.get_deployment(session, config.base).champion)
    cache = SeriesCache()
    out: list[SimDay] = []
    for index in range(config.days):
        day = start + timedelta(days=index)
        with transaction(engine) as session, ledger.replay_at(session, _noon(day)):
            ab = config_for_base(session, config.base)
            converted = sum(_conversation(session, world, ab, day, index, n) for n in range(config.conversations))
            _leads(session, world, day)
        with transaction(engine) as session:
            report = check(session, as_of=day, scope=SIM, config=monitor, queue=queue, embedder=embedder,
                           cache=cache, replay_ts=_evening(day))
        for job in queue.run_pending():
            report.events.append((f"retrain_{job.state}", f"retrain job {job.id}: {job.state}"
                                  + (f" -> {job.result.get('model')}" if job.result else f" ({job.error[:120]})")))
        with transaction(engine) as session:
            dep = registry.get_deployment(session, config.base)
            sim_day = _day(index, day, config.conversations, converted, report, dep)
        out.append(sim_day)
        if on_day is not None:
            on_day(sim_day)
    return SimResult(out, config)


def _day(index: int, day: date, n: int, converted: float, report: CheckReport, dep: Any) -> SimDay:
    state = next(s for s in report.strategies if s.strategy.name == "next_step")
    last = state.status.verdicts[-1] if state.status.verdicts else None
    baseline = last.baseline if last is not None and last.day == day else None
    threshold = last.threshold if last is not None and last.day == day else None
    return SimDay(index, day, n, converted / n if n else None, baseline, threshold, state.phase, dep.champion,
                  dep.challenger, dep.challenger_share, None if report.input is None else report.input.p_value,
                  list(report.events))


# ---------------------------------------------------------------------- the retrain handlers a replay can use
def _adapter_files(source: Path) -> tuple[Path | None, Path | None]:
    """(peft folder, GGUF-LoRA file) in ``source``: a peft folder, a .gguf file, or a folder holding both."""
    if source.is_file():
        return None, source
    if (source / "adapter_config.json").exists():
        return source, None
    peft = source / "peft" if (source / "peft" / "adapter_config.json").exists() else None
    ggufs = sorted(source.glob("*.gguf"))
    if peft is None and not ggufs:
        raise FileNotFoundError(f"{source} holds no peft adapter (adapter_config.json) and no .gguf file")
    return peft, ggufs[0] if ggufs else None


def copy_adapter_handler(source: Path, *, actor: str = SIM.actor("retrain"), engine: Engine | None = None
                         ) -> Handler:
    """A retrain that trains nothing: it registers a copy of an existing adapter as the base's challenger.

    For tests and quick demos (``--retrain fake``); the real handler is ``modelops.retrain.retrain_job``.
    """

    def retrain(payload: dict[str, Any]) -> dict[str, Any]:
        from config.settings import get_settings

        base = payload["base"]
        meta = payload.get("ledger") or {}
        with transaction(engine) as session:
            stamp = datetime.fromisoformat(meta["ts"]) if meta.get("ts") else None
            count = session.scalar(select(func.count()).select_from(RegisteredModel)
                                   .where(RegisteredModel.base == base, RegisteredModel.kind == "adapter")) or 0
            name = f"{base}-drift-{count + 1}"
            dest = Path(get_settings().data_dir) / "adapters" / name
            peft, gguf = _adapter_files(Path(source))
            if peft is not None:
                shutil.copytree(peft, dest / "peft", dirs_exist_ok=True)
            if gguf is not None:
                dest.mkdir(parents=True, exist_ok=True)
                shutil.copy2(gguf, dest / "adapter.gguf")
            with ledger.replay_at(session, stamp) if stamp else contextlib.nullcontext():
                registry.register(session, name=name, base=base, actor=actor,
                                  peft_path=dest / "peft" if peft else None,
                                  gguf_lora_path=dest / "adapter.gguf" if gguf else None,
                                  notes=f"copy of {source} (a fake retrain: {payload.get('reason', '')})")
                registry.set_challenger(session, name=name, share=float(payload.get("share", 0.5)), actor=actor,
                                        reason=f"retrained {name} becomes challenger")
        return {"model": name, "base": base, "eval_run_id": None, "fake": True, "source": str(source)}

    return retrain


def identity_adapter(base: str, out_dir: Path) -> Path:
    """A rank-1 LoRA on the first layer's query projection whose B is zero: it changes nothing in the base.

    The fake retrain needs an adapter file to copy; this one is honest about being no training at all.
    """
    import numpy as np

    from finetune.lora_gguf import convert_peft_to_gguf, write_peft_lora
    from inference.bases import get_base

    gguf_path = get_base(base).gguf_path()
    import gguf

    reader = gguf.GGUFReader(str(gguf_path))
    shape = next(tuple(int(d) for d in t.shape) for t in reader.tensors if t.name == "blk.0.attn_q.weight")
    n_in, n_out = shape  # GGUF shapes are (in, out)
    key = "base_model.model.model.layers.0.self_attn.q_proj"
    tensors = {f"{key}.lora_A.weight": np.full((1, n_in), 0.01, dtype=np.float32),
               f"{key}.lora_B.weight": np.zeros((n_out, 1), dtype=np.float32)}
    peft = write_peft_lora(out_dir / "peft", tensors, rank=1, alpha=1.0, targets=["q_proj"], base_name=base)
    convert_peft_to_gguf(peft, out_dir / "adapter.gguf", base_gguf=gguf_path)
    return out_dir
