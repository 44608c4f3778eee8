"""``crmind drift ...`` and ``crmind jobs ...``: the drift monitor, its replayed demo, and the background jobs."""

from __future__ import annotations

import os
import shutil
import signal
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from serving.cli.common import fail

drift_app = typer.Typer(help="The drift monitor: conversion per strategy, retraining, A/B promote or roll back.",
                        no_args_is_help=True)
jobs_app = typer.Typer(help="Background jobs (retraining): list them, or run a worker.", no_args_is_help=True)
SIM_MARKER = ".crmind-drift-sim"  # a folder `drift simulate` made, so --reset may empty it


def _phase_line(report: Any) -> list[str]:
    lines = []
    for s in report.strategies:
        last = s.status.last
        what = (f"{last.day} rate {last.rate:.3f} baseline {last.baseline:.3f} threshold {last.threshold:.3f}"
                if last is not None and last.rate is not None and last.baseline is not None else "no judged day")
        lines.append(f"{s.strategy.name:<11} {s.phase:<12} {what}")
    if report.input is not None:
        i = report.input
        lines.append(f"{'input':<11} {'drift' if i.drifted else 'ok':<12} MMD²={i.mmd2:.4f} p={i.p_value:.3f} "
                     f"({i.n_current} vs {i.n_baseline} questions, {i.embedder})")
    return lines


@drift_app.command("status")
def status(scope: Annotated[str | None, typer.Option(help="live or simulation (default: live, unless only a "
                                                     "simulation ran here)")] = None) -> None:
    """Each strategy's latest judged day, the A/B test of each base, and recent jobs."""
    from config.db import session_factory
    from modelops.status import drift_state, pick_scope

    with session_factory()() as session:
        state = drift_state(session, scope=pick_scope(session, scope), days=14)
    typer.echo(f"scope {state['scope']}, judged up to {state['as_of']}")
    for s in state["strategies"]:
        last = next((d for d in reversed(s["days"]) if d["below"] is not None), None)
        open_ = [i for i in s["incidents"] if i["how"] is None]
        shown = (f"{last['day']} rate {last['rate']:.3f} vs baseline {last['baseline']:.3f}"
                 + (" BELOW" if last["below"] else "") if last else "no judged day")
        typer.echo(f"  {s['name']:<11} {shown}" + (f"  incident open since {open_[0]['day']}" if open_ else ""))
    for ab in state["ab"]:
        test = ab["test"]
        line = f"  {ab['base']}: champion {ab['champion']}" + (
            f", challenger {ab['challenger']} at {ab['share']:.0%}" if ab["challenger"] else "")
        if test:
            r, d = test["result"], test["design"]
            line += (f"; A/B {r['n_challenger']}/{d['n_challenger']} challenger, {r['n_champion']}/{d['n_champion']}"
                     f" champion conversations" + (f" -> {r['decision']}" if r.get("decision") else ""))
        typer.echo(line)
    for j in state["jobs"][:5]:
        typer.echo(f"  job {j['id'][:8]} {j['kind']} {j['state']} ({j['attempts']}/{j['max_attempts']})")


@drift_app.command("check")
def check_now(
    as_of: Annotated[str | None, typer.Option(help="Last day to judge, YYYY-MM-DD (default: yesterday)")] = None,
    input_drift: Annotated[bool, typer.Option(help="Also measure input drift (loads the embedder)")] = True,
) -> None:
    """One monitor tick now: judge every strategy, and queue retraining or decide an A/B test when due."""
    from config.db import transaction
    from modelops.jobs import JobQueue
    from modelops.monitor import check

    day = date.fromisoformat(as_of) if as_of else datetime.now(UTC).date() - timedelta(days=1)
    embedder = None
    if input_drift:
        from retrieval.embeddings import shared_embedder

        embedder = shared_embedder()
    with transaction() as session:
        report = check(session, as_of=day, queue=JobQueue(), embedder=embedder)
    for line in _phase_line(report):
        typer.echo(line)
    for kind, text in report.events:
        typer.echo(f"{kind}: {text}")
    typer.echo(f"drift check {report.check_id} recorded; retraining runs in `crmind serve` or `crmind jobs worker`")


def _use_folder(folder: Path, reset: bool) -> None:
    """Point crmind at the simulation's own folder and database (emptied first when it is one of ours)."""
    from config.db import get_engine
    from config.settings import get_settings

    if (folder / "crm.db").exists():
        if not (folder / SIM_MARKER).exists():
            fail(f"{folder} holds a database that no simulation made; give --data-dir an empty or new folder")
        if not reset:
            fail(f"{folder} already holds a simulation; pass --reset to replace it")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SIM_MARKER).write_text("made by crmind drift simulate\n")
    os.environ["CRMIND_DATA_DIR"] = str(folder)
    os.environ["CRMIND_DATABASE_URL"] = f"sqlite:///{folder / 'crm.db'}"
    get_settings.cache_clear()
    get_engine.cache_clear()


def _training_set(live: Any, out: Path) -> Path:
    """Training examples from the live CRM for the replay's real retrain (the replay's own database has no CRM)."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from crm.models import Account
    from finetune.dataset import build_dataset

    with Session(live) as session:
        if not session.scalar(select(func.count()).select_from(Account)):
            fail("--retrain real trains on the CRM's records, and the CRM is empty: run `crmind demo` first, "
                 "or use --retrain fake")
    build_dataset(live, out_dir=out, n_synthetic=300, include_ledger=False)
    return out


def _admin_token() -> str:
    """An admin in the simulation's database, so its drift page can be opened."""
    from config.db import transaction
    from crm.auth import hash_token, new_token
    from crm.models import User

    token = new_token("admin")
    with transaction() as session:
        session.add(User(name="Drift demo admin", email="drift-admin@example.com", role="admin",
                         token_hash=hash_token(token), active=True))
    return token


@drift_app.command("simulate")
def simulate_cmd(
    days: Annotated[int, typer.Option(min=30, max=365, help="Days to replay")] = 60,
    seed: Annotated[int, typer.Option(help="Same seed, same history")] = 7,
    inject_day: Annotated[int, typer.Option(help="Day the world changes (0-based)")] = 20,
    drop: Annotated[float, typer.Option(min=0.05, max=0.95, help="Relative conversion drop from --inject-day")] = 0.3,
    conversations: Annotated[int, typer.Option(min=20, help="Conversations per day")] = 150,
    leads: Annotated[int, typer.Option(min=0, help="Leads a rule creates per day (a strategy that stays put)")] = 25,
    recovers: Annotated[bool, typer.Option("--recovers/--no-recovers", help="Whether the retrained model wins "
                                           "back the conversion (promote) or not (roll back)")] = True,
    retrain: Annotated[str, typer.Option(help="real: fine-tune with modelops.retrain (minutes); fake: register a "
                                         "copy of an adapter, no training")] = "real",
    adapter: Annotated[Path | None, typer.Option(help="--retrain fake: the adapter to copy (peft folder, .gguf, or "
                                                 "a folder holding both); default: a no-op adapter made here")] = None,
    base: Annotated[str, typer.Option(help="Base model whose challenger the retrain makes")] = "smollm2",
    max_steps: Annotated[int, typer.Option(help="--retrain real: fine-tuning steps (about a minute each on 2 cores)")
                         ] = 3,
    input_drift: Annotated[bool, typer.Option(help="Measure input drift with the configured embedder")] = True,
    data_dir: Annotated[Path | None, typer.Option(help="Folder of the simulation's own database "
                                                  "(default: <data dir>/drift-sim)")] = None,
    reset: Annotated[bool, typer.Option(help="Replace an earlier simulation in that folder")] = True,
) -> None:
    """Replay a synthetic history with drift injected: detection, retraining, challenger, A/B, promote or roll back.

    It runs in its own database (``--data-dir``), so the live model registry is never touched; open the drift page
    with the printed command, or read ``drift-report.html`` beside the database.
    """
    from config.settings import get_settings

    if retrain not in ("real", "fake"):
        fail("--retrain is real or fake")
    folder = (data_dir or Path(get_settings().data_dir) / "drift-sim").resolve()
    from config.db import get_engine

    live = get_engine()  # the CRM the real retrain's examples come from, before crmind points at the replay's
    _use_folder(folder, reset)

    from config.db import session_factory
    from crm.schema import migrate
    from modelops import report
    from modelops.jobs import HANDLERS
    from modelops.simulate import SimConfig, copy_adapter_handler, identity_adapter, simulate
    from modelops.status import drift_state

    migrate(get_engine())
    if retrain == "fake":
        source = adapter or identity_adapter(base, folder / "no-op-adapter")
        handler = copy_adapter_handler(source)
    else:
        real = HANDLERS["retrain"]
        dataset = _training_set(live, folder / "dataset")

        def handler(payload: dict[str, Any]) -> dict[str, Any]:
            # A small, real fine-tune: the first call of a turn (the tools eval's target), a few steps.
            small = {"overrides": [f"train.max_steps={max_steps}", f"data.dataset={dataset}",
                                   "data.kinds=[tool_call, no_tool, clarify, refusal]"],
                     "eval_suites": ["tools"], "limit": 10}
            return real({**small, **payload})

    embedder = None
    if input_drift:
        from retrieval.embeddings import shared_embedder

        embedder = shared_embedder()
    config = SimConfig(days=days, seed=seed, inject_day=inject_day, drop=drop, conversations=conversations,
                       leads=leads, recovers=recovers, base=base)
    typer.echo(f"replaying {days} days into {folder} (drift from day {inject_day}: -{drop:.0%}; "
               f"retrain {retrain}; challenger {'recovers' if recovers else 'does not recover'})")
    typer.echo(f"{'day':>3} {'date':<10} {'conv':>5} {'base':>5} {'thr':>5} {'phase':<12} {'input p':>7} "
               f"{'champion':<18} {'challenger':<22} steps")

    def show(d: Any) -> None:
        def num(v: float | None) -> str:
            return f"{v:.2f}" if v is not None else "–"

        challenger = f"{d.challenger} {d.share:.0%}" if d.challenger else "–"
        steps = ", ".join(dict.fromkeys(k for k, _ in d.events))
        typer.echo(f"{d.index:>3} {d.day.isoformat():<10} {num(d.rate):>5} {num(d.baseline):>5} "
                   f"{num(d.threshold):>5} {d.phase:<12} {num(d.input_p):>7} {d.champion:<18} {challenger:<22} "
                   f"{steps}")

    result = simulate(config, handler=handler, embedder=embedder, on_day=show)
    typer.echo("")
    for d in result.days:
        for kind, text in d.events:
            if kind != "retrain_queued":
                typer.echo(f"day {d.index:>2} {kind:<15} {text}")
    with session_factory()() as session:
        state = drift_state(session, days=days)
    css = (Path(__file__).resolve().parents[1] / "api" / "web" / "static" / "crmind.css").read_text()
    page = folder / "drift-report.html"
    page.write_text(report.standalone(state, css), encoding="utf-8")
    detected = result.first("drift_detected")
    outcome = result.decisions[-1] if result.decisions else "no A/B decision within the replay"
    typer.echo(f"\ndrift detected on day {detected.index if detected else '–'}; {outcome}")
    typer.echo(f"report: {page}")
    typer.echo(f"drift page: CRMIND_DATA_DIR={folder} CRMIND_DATABASE_URL=sqlite:///{folder / 'crm.db'} "
               f"crmind serve --no-llm --port 8010, then open http://127.0.0.1:8010/drift#token={_admin_token()}")
    typer.echo("ledger: the same environment with `crmind ledger show` / `crmind ledger verify`")


@jobs_app.command("list")
def list_cmd(limit: Annotated[int, typer.Option(min=1, max=500)] = 20) -> None:
    """Recent background jobs, newest first."""
    from config.db import session_factory
    from modelops.jobs import list_jobs

    with session_factory()() as session:
        for j in list_jobs(session, limit=limit):
            result = (j.result or {}).get("model") or j.error[:80]
            typer.echo(f"{j.created_at:%Y-%m-%d %H:%M} {j.id} {j.kind:<8} {j.state:<8} "
                       f"{j.attempts}/{j.max_attempts} {result}")


@jobs_app.command("worker")
def worker(once: Annotated[bool, typer.Option("--once", help="Run what is queued now, then exit")] = False) -> None:
    """Run background jobs: from Redis when CRMIND_REDIS_URL is set, else from the database. Ctrl-C stops."""
    from config.settings import get_settings
    from modelops.jobs import JobQueue

    queue = JobQueue()
    where = f"Redis {get_settings().redis_url}" if queue.redis_url else "the database"
    if once:
        recovered = queue.recover()
        done = queue.run_pending()
        typer.echo(f"{len(recovered)} abandoned jobs queued again; ran {len(done)} jobs from {where}: "
                   + ", ".join(f"{j.id[:8]} {j.state}" for j in done))
        return
    typer.echo(f"worker {queue.worker} taking jobs from {where}")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: queue.stop(timeout=0))
    queue.work()
    typer.echo("worker stopped")
