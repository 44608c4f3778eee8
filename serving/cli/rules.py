"""``crmind rules compile|create|backtest|approve|activate|list``: the rules page's steps at the command line."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from serving.cli.common import fail

app = typer.Typer(help="Rules in plain Chinese or English: compile, backtest, approve, activate.", no_args_is_help=True)
AsUser = Annotated[str, typer.Option("--as", help="User id or email acting (a manager or admin)")]
Answer = Annotated[list[str] | None, typer.Option("--answer", help="Answer a question: id=value (repeatable)")]


def _answers(answer: list[str] | None) -> dict[str, str]:
    out = {}
    for item in answer or []:
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"--answer takes id=value, not '{item}'")
        out[key] = value
    return out


@app.command("compile")
def compile_cmd(text: str, answer: Answer = None,
                model: Annotated[bool, typer.Option(help="Let the model try what the grammar misses")] = False,
                as_json: Annotated[bool, typer.Option("--json", help="Print the rule as JSON")] = False) -> None:
    """Compile rule text: print the explanation and compliance findings, or the questions to answer."""
    from agents.rule_author import compile_rule
    from agents.rule_author.context import Context
    from rules.compliance import check

    state = compile_rule(text, clarifications=_answers(answer), context=Context(use_model=model))
    if state.rule is None:
        for q in state.questions:
            options = ", ".join(f"{o.value} ({o.label})" for o in q.options if o.value)
            typer.echo(f"? {q.text}" + (f"\n  answer with --answer {q.id}=<{options}>" if options else ""))
        raise typer.Exit(2)
    typer.echo(state.rule.model_dump_json(indent=2) if as_json else state.explanation)
    for f in check(state.rule):
        typer.secho(f"! {f.message}", fg=typer.colors.RED)
    typer.echo(f"(compiled by the {state.path})", err=True)


@app.command("create")
def create_cmd(text: str, as_user: AsUser, answer: Answer = None) -> None:
    """Save rule text as a draft (version 1)."""
    from agents.rule_author import compile_rule
    from agents.rule_author.context import Context
    from config.db import transaction
    from crm.auth import principal_for_user
    from rules import lifecycle

    state = compile_rule(text, clarifications=_answers(answer), context=Context(use_model=False))
    if state.rule is None:
        fail("the rule needs answers first: " + " / ".join(q.text for q in state.questions))
    assert state.rule is not None
    with transaction() as session:
        rec = lifecycle.create(session, principal_for_user(session, as_user), text=text, rule=state.rule,
                               compiled_by=state.path)
        typer.echo(f"rule {rec.id} saved as draft v1")


@app.command("backtest")
def backtest_cmd(rule_id: int, as_user: AsUser) -> None:
    """Run the rule's latest version over every stored event."""
    from config.db import session_factory
    from crm.auth import principal_for_user
    from rules import lifecycle
    from rules.backtest import backtest
    from rules.language import Rule

    with session_factory()() as session:
        principal = principal_for_user(session, as_user)
        rec = lifecycle.get_rule(session, principal, rule_id)
        rule = Rule.model_validate(lifecycle.get_version(session, rule_id, rec.version).definition)
        others = [(r.id, r.name, x) for r, x in lifecycle.active_rules(session) if r.id != rule_id]
        result = backtest(session, principal, rule, others=others)
    if rule.trigger.kind == "event":
        typer.echo(f"{result.fires} firings for {result.customers} customers over {result.events_scanned} events "
                   f"in {result.seconds:.2f}s (mirrored {result.synced} new events)")
    else:
        typer.echo(f"{result.fires} firings on {result.customers} records in {result.seconds:.2f}s ({result.note})")
    for day, n in result.per_day[-14:]:
        typer.echo(f"  {day}  {'#' * min(n, 60)} {n}")
    for a in result.actions:
        typer.echo(f"  would: {a['text']} x {a['count']}")
    for o in result.overlaps:
        typer.echo(f"  overlaps rule {o.rule_id} on {o.shared_customer_days} customer-days"
                   + (f" (conflict: {', '.join(o.fields)})" if o.conflict else ""))
    typer.echo(json.dumps(result.sample[:3], ensure_ascii=False))


def _step(name: str, rule_id: int, as_user: str) -> None:
    from config.db import transaction
    from crm.auth import principal_for_user
    from rules import lifecycle

    with transaction() as session:
        rec = getattr(lifecycle, name)(session, principal_for_user(session, as_user), rule_id)
        typer.echo(f"rule {rec.id}: {rec.status} (latest v{rec.version}, running v{rec.active_version or '-'})")


@app.command("approve")
def approve_cmd(rule_id: int, as_user: AsUser) -> None:
    """Approve the latest draft (a manager other than its author)."""
    _step("approve", rule_id, as_user)


@app.command("activate")
def activate_cmd(rule_id: int, as_user: AsUser) -> None:
    """Run the latest approved version."""
    _step("activate", rule_id, as_user)


@app.command("list")
def list_cmd(as_user: AsUser) -> None:
    """Rules of the user's team."""
    from config.db import session_factory
    from crm.auth import principal_for_user
    from rules import lifecycle

    with session_factory()() as session:
        for r in lifecycle.list_rules(session, principal_for_user(session, as_user)):
            typer.echo(f"{r.id:>4}  {r.status:<9} v{r.version:<3} running v{r.active_version or '-':<3} {r.name[:80]}")


def eval_rules(
    modes: Annotated[str, typer.Option(help="grammar, model, few_shot, combined")] = "grammar,combined",
    limit: Annotated[int | None, typer.Option(help="Score an even spread of this many texts (the model is slow)")]
    = None,
    failures: Annotated[bool, typer.Option(help="Print the texts each mode got wrong")] = False,
) -> None:
    """Rule compilation: semantic equality of compiled rules, per language and shape, per compile path."""
    from eval.rules import MODES, run, table

    chosen = [m.strip() for m in modes.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in MODES]
    if unknown:
        fail(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")
    handle = None
    if any(MODES[m].get("use_model") for m in chosen):
        from crm.schema import migrate

        migrate()  # the model's calls are recorded in the ledger
        from inference.embedded import ensure_engine

        handle = ensure_engine()
        typer.echo(f"model engine: {handle.base_url} serving {', '.join(handle.models)}")
    try:
        results = run(chosen, limit=limit)
    finally:
        if handle is not None and handle.owned:
            handle.stop()
    typer.echo(table(results))
    if failures:
        for r in results:
            for text in r.failures:
                typer.echo(f"  [{r.mode}] {text}")
    typer.echo(" · ".join(f"{r.mode}: {r.ok}/{r.n} ({100 * r.ok / max(r.n, 1):.0f}%)" for r in results))


@app.command("tick")
def tick_cmd(
    now: Annotated[str | None, typer.Option(help="Run the schedules as of this UTC time (ISO 8601); default now")]
    = None,
) -> None:
    """Run the record rules once: CRM changes since the last tick, then the schedules that have come due."""
    from datetime import datetime

    from config.db import transaction
    from rules.runner import runner_for

    try:
        when = datetime.fromisoformat(now) if now else None
    except ValueError:
        fail(f"--now takes an ISO 8601 time like 2026-12-03T09:00:00, not '{now}'")
    with transaction() as session:
        result = runner_for(session).tick(session, when)
    typer.echo(f"{result.changes_seen} changes seen, {result.firings} firings"
               + (f", {result.skipped_by_limits} held back by rate limits" if result.skipped_by_limits else ""))


@app.command("run")
def run_cmd(
    interval: Annotated[float, typer.Option(help="Seconds between passes over the outbox")] = 1.0,
    schedule_every: Annotated[float, typer.Option(help="Seconds between schedule checks")] = 60.0,
) -> None:
    """Run record rules until stopped (what the server's rule worker does, as a process of its own)."""
    import signal
    import threading

    from rules.worker import RuleWorker

    worker = RuleWorker(interval=interval, schedule_every=schedule_every)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    worker.start()
    typer.echo("rule worker running (Ctrl-C stops it)")
    done.wait()
    worker.stop()
    typer.echo(f"stopped: {worker.status.ticks} passes, {worker.status.firings} firings")
