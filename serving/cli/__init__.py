"""The ``crmind`` command line. Heavy imports stay inside commands so ``crmind --help`` is instant."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Annotated

import typer

from serving.cli.common import CrmindGroup, fail, port_is_free

app = typer.Typer(cls=CrmindGroup, help="crmind: an AI agent platform over your CRM.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
ledger_app = typer.Typer(help="The decision ledger.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")


@app.command()
def migrate() -> None:
    """Bring the database to the latest schema."""
    from crm.schema import migrate as run

    run()
    typer.echo("database is at the latest schema")


@app.command()
def demo(
    scale: Annotated[float, typer.Option(help="1 = 500 accounts, 20k activities, 50k events")] = 1.0,
    seed: Annotated[int, typer.Option(help="Same seed, same data")] = 7,
    reset: Annotated[bool, typer.Option(help="Delete existing data first")] = False,
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Do nothing if the CRM already has data")] = False,
    customers: Annotated[bool, typer.Option(help="Then resolve identities and compute scores (customer 360)")
                         ] = True,
) -> None:
    """Generate a realistic bilingual demo CRM and print one API token per role."""
    from sqlalchemy import func, select

    from config.db import get_engine, session_factory
    from config.settings import get_settings
    from crm.demo import build_demo
    from crm.models import Account
    from crm.schema import migrate as run_migrations

    settings = get_settings()
    engine = get_engine()
    run_migrations(engine)
    with session_factory(engine)() as session:
        has_data = (session.scalar(select(func.count()).select_from(Account)) or 0) > 0
    if has_data and if_empty:
        typer.echo(f"demo data already present; tokens are in {settings.data_dir / 'demo_tokens.json'}")
        return
    try:
        result = build_demo(engine, scale=scale, seed=seed, out_dir=settings.data_dir, progress=True, reset=reset)
    except ValueError as exc:
        fail(str(exc))
        return
    typer.echo(f"demo CRM built in {result.seconds:.1f}s: "
               + ", ".join(f"{n} {k}" for k, n in result.counts.items()))
    typer.echo(f"ground truth: {result.ground_truth_path}")
    if customers:
        _customer_360()
    typer.echo(f"API tokens (all users: {settings.data_dir / 'demo_tokens.json'}):")
    for role, (email, token) in result.tokens.items():
        typer.echo(f"  {role:<8} {email:<34} {token}")


def _customer_360() -> None:
    """Identity links and scores for the fresh demo, so the customer pages and duplicate queue have data."""
    from config.db import transaction
    from config.settings import get_settings
    from customers.identity import resolve_store
    from serving.cli.scores import compute

    with transaction() as session:
        r = resolve_store(session, engine=get_settings().identity_engine)
    typer.echo(f"identity: {r.records:,} contacts and leads -> {r.customers:,} customers, {r.duplicate_clusters:,} "
               f"duplicate clusters, {r.visitors_linked:,} web visitors linked ({r.seconds:.1f} s)")
    compute(min_conversions=None, ltv=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    llm: Annotated[bool, typer.Option(help="Start the embedded llama.cpp engine if no LLM URL is set")] = True,
    workers: Annotated[int, typer.Option(min=1, max=64, help="API worker processes; more than one needs the index "
                                         "in another process (CRMIND_INDEX_URL or CRMIND_QDRANT_URL)")] = 1,
    warm: Annotated[bool, typer.Option(help="Have the engine evaluate the assistant's fixed prompt at start, so the "
                                       "first question does not wait for it")] = True,
) -> None:
    """Run the API server (and the embedded model engine and index follower).

    SIGTERM and SIGINT both shut down gracefully: uvicorn drains requests and stops the index follower,
    then the engine crmind started is stopped, and the exit code says which signal it was (143, 130).
    With ``--workers N`` the index is another process's (``crmind index --follow --serve``, or a Qdrant server
    and ``crmind index --follow``), and the engine is started once here and shared by the workers.
    """
    import signal

    import uvicorn

    from config.settings import get_settings
    from crm.schema import migrate as run_migrations
    from serving.api.app import create_app

    settings = get_settings()
    host, port = host or settings.api_host, port or settings.api_port
    if workers > 1 and not (settings.index_url or settings.qdrant_url):
        # The embedded shard allows one opener: N workers would fight over it (all but one failing every search).
        fail(f"{workers} workers can't share the embedded search index in {settings.data_dir / 'qdrant'}: one "
             "process must own it. Run `crmind index --follow --serve` and set CRMIND_INDEX_URL to its URL "
             "(or point CRMIND_QDRANT_URL at a Qdrant server and run `crmind index --follow`), or use --workers 1.")
    port_is_free(host, port)  # before the engine starts, so a busy port costs nothing to report
    # uvicorn captures these signals while it serves and raises them again once it has shut down; with
    # Python's default SIGTERM action that killed the process before the `finally` below could stop the engine.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_on_signal)
    engine_handle = None
    warmer: threading.Thread | None = None
    stopping = threading.Event()
    try:
        run_migrations()
        if llm:
            from inference.embedded import ensure_engine

            engine_handle = ensure_engine(settings)
            typer.echo(f"model engine: {engine_handle.base_url} serving {', '.join(engine_handle.models)}")
            if warm:
                warmer = threading.Thread(target=_warm_assistant, args=(stopping,), name="warm-assistant",
                                          daemon=True)
                warmer.start()
        if workers == 1:
            # This process owns the index unless another one does.
            uvicorn.run(create_app(follow_index=not settings.index_url, open_assistant=True), host=host, port=port,
                        log_level="info")
        else:
            # Set the conversation store up once, before N workers would race to create its tables.
            from agents.checkpointer import close_checkpointer, open_checkpointer

            close_checkpointer(open_checkpointer())
            uvicorn.run("serving.api.app:worker_app", factory=True, workers=workers, host=host, port=port,
                        log_level="info")
    finally:
        stopping.set()
        if engine_handle is not None:
            engine_handle.stop()
        if warmer is not None:
            # Its request ends with the engine: let it finish before the interpreter does (a daemon thread still
            # running then can abort the exit).
            warmer.join(timeout=10)


def _warm_assistant(stopping: threading.Event) -> None:
    """Evaluate the assistant's fixed prompt in the engine while the server starts (see ``graph.warm_prefix``).

    A question asked meanwhile waits for it, as it would have waited for its own first evaluation. A failure
    only costs the first question its head start, so it is reported and the server goes on.
    """
    import time

    from agents.assistant.graph import warm_prefix
    from inference.gateway import chat_model
    from inference.router import live_config

    started = time.perf_counter()
    try:
        warm_prefix(chat_model(live_config().champion, record=False, max_tokens=1, timeout_s=1800))
    except Exception as exc:  # noqa: BLE001 - any failure: the server serves on, the first question is just slower
        if not stopping.is_set():  # a shutdown stops the engine under it: nothing to report
            typer.echo(f"assistant prompt not warmed ({type(exc).__name__}: {exc}); the first question evaluates it")
        return
    if not stopping.is_set():
        typer.echo(f"assistant prompt warmed in the model engine in {time.perf_counter() - started:.0f} s")


def _exit_on_signal(signum: int, _frame: object) -> None:
    """Turn SIGTERM / SIGINT into a normal exit, so cleanup in ``finally`` blocks runs."""
    raise SystemExit(128 + signum)


@app.command()
def export(
    contact_id: int,
    as_user: Annotated[str, typer.Option("--as", help="User id or email acting (manager or admin)")],
    out: Annotated[Path | None, typer.Option(help="Write JSON here instead of stdout")] = None,
) -> None:
    """Data-subject export of a contact as JSON."""
    from config.db import transaction
    from crm.auth import principal_for_user
    from crm.privacy import export_contact

    with transaction() as session:
        data = export_contact(session, principal_for_user(session, as_user), contact_id)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if out:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")
    else:
        typer.echo(text)


@app.command()
def erase(
    contact_id: int,
    as_user: Annotated[str, typer.Option("--as", help="User id or email acting (manager or admin)")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Erase a contact's personal data from the CRM, its text, the conversations, training sets and the index."""
    from agents.privacy import erase_contact
    from config.db import transaction
    from crm.auth import principal_for_user
    from finetune.erase import erase_scrubber

    if not yes and not typer.confirm(f"Erase contact {contact_id}'s personal data? This cannot be undone"):
        raise typer.Exit(1)
    with transaction() as session:
        result = erase_contact(session, principal_for_user(session, as_user), contact_id,
                               also={"training_examples_removed": erase_scrubber(session)})
    typer.echo(json.dumps(result))


@ledger_app.command("verify")
def ledger_verify() -> None:
    """Walk the hash chain; exit 1 and name the first bad row if anything was tampered with."""
    from config.db import session_factory
    from ledger import verify

    with session_factory()() as session:
        result = verify(session)
    if result.ok:
        anchored = f", head anchored at seq {result.anchored_seq}" if result.anchored_seq else ""
        typer.echo(f"ledger ok: {result.rows} rows, hash chain intact{anchored}")
        return
    where = f" at row seq={result.first_bad_seq}" if result.first_bad_seq is not None else ""
    fail(f"ledger check failed{where}: {result.reason}")


@ledger_app.command("anchor")
def ledger_anchor(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Anchor the current head (a ledger from before anchoring, or after a deliberate restore)."""
    from config.db import get_engine, session_factory
    from ledger import reanchor, verify

    with session_factory()() as session:
        chain = verify(session, check_anchor=False)
    if not chain.ok:
        fail(f"not anchoring: the chain is broken at row seq={chain.first_bad_seq}: {chain.reason}")
    if not yes and not typer.confirm(f"Anchor the ledger's current head ({chain.rows} rows)? Rows removed from its "
                                     "end before now can no longer be detected"):
        raise typer.Exit(1)
    anchor = reanchor(get_engine())
    typer.echo(f"ledger anchored at seq {anchor.seq}" if anchor else "the ledger is empty; nothing to anchor")


@ledger_app.command("show")
def ledger_show(
    record: Annotated[str | None, typer.Option(help="e.g. contact:42")] = None,
    limit: Annotated[int, typer.Option()] = 20,
) -> None:
    """Print recent decisions, optionally about one record."""
    from config.db import session_factory
    from ledger import decisions_for

    with session_factory()() as session:
        for d in decisions_for(session, record=record, limit=limit):
            typer.echo(f"{d.ts:%Y-%m-%d %H:%M:%S} {d.kind:<12} {d.actor:<18} {d.input_summary[:90]}"
                       + (f"  [{d.outcome}]" if d.outcome else ""))


def _mount() -> None:
    """Sub-commands that live in their own modules (search index, evals, models)."""
    from serving.cli.agent_eval import eval_agent
    from serving.cli.drift import drift_app, jobs_app
    from serving.cli.evals import mount as mount_evals
    from serving.cli.finetune import app as finetune_app
    from serving.cli.identity import app as identity_app
    from serving.cli.identity import eval_identity
    from serving.cli.models import chat, models_app, serve_model
    from serving.cli.retrieval import app as retrieval_app
    from serving.cli.retrieval import eval_app
    from serving.cli.rules import app as rules_app
    from serving.cli.rules import eval_rules
    from serving.cli.scores import app as scores_app
    from serving.cli.scores import eval_scores

    for command in retrieval_app.registered_commands:
        app.registered_commands.append(command)
    app.add_typer(eval_app, name="eval")
    app.add_typer(models_app, name="models")
    app.add_typer(rules_app, name="rules")
    app.add_typer(identity_app, name="identity")
    app.add_typer(drift_app, name="drift")
    app.add_typer(jobs_app, name="jobs")
    eval_app.command("rules")(eval_rules)
    eval_app.command("identity")(eval_identity)
    eval_app.command("agent")(eval_agent)
    eval_app.command("scores")(eval_scores)
    mount_evals(eval_app)
    app.add_typer(scores_app, name="scores")
    app.add_typer(finetune_app, name="finetune")
    app.command("serve-model")(serve_model)
    app.command("chat")(chat)


_mount()


def main() -> None:
    """Entry point (``crmind``)."""
    app()


if __name__ == "__main__":
    main()
