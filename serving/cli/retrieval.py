"""``crmind index``, ``crmind search`` and ``crmind eval retrieval`` (mounted by ``serving.cli``)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from config.objects import INDEXED_ORDER as OBJECT_TYPES
from serving.cli.common import fail

if TYPE_CHECKING:
    from retrieval.service import IndexService

app = typer.Typer(help="Search index commands.", no_args_is_help=True)



@app.command()
def index(
    follow: Annotated[bool, typer.Option("--follow", help="Keep following the outbox after the build")] = False,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Drop the index and build it from scratch")] = False,
    model: Annotated[str | None, typer.Option(help="Embedding model: minilm, e5 or a local folder")] = None,
    serve: Annotated[bool, typer.Option("--serve", help="Own the index for API workers: build, follow the outbox "
                                        "and answer their queries over HTTP (set CRMIND_INDEX_URL there)")] = False,
    host: Annotated[str, typer.Option(help="With --serve: bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="With --serve: port")] = 8100,
) -> None:
    """Build the search index from the CRM (progress bar, summary line), then optionally follow changes."""
    if serve:
        _serve_index(host, port, model)
        return
    from config.db import get_engine
    from retrieval.errors import RetrievalError
    from retrieval.indexer import build
    from retrieval.indexer import follow as follow_outbox
    from retrieval.service import open_service

    try:
        service = open_service(model)
    except RetrievalError as exc:
        if rebuild and "--rebuild" in exc.message:
            service = _open_for_rebuild(model)
        else:
            raise
    try:
        summary = build(get_engine(), service.store, service.embedder, rebuild=rebuild, progress=True)
        service.write_meta()
        typer.echo(summary.line())
        if follow:
            typer.echo("following the outbox (Ctrl-C to stop)")
            try:
                follow_outbox(get_engine(), service.store, service.embedder,
                              on_batch=lambda s: typer.echo(f"{datetime.now():%H:%M:%S} {s.line()}"))
            except KeyboardInterrupt:
                typer.echo("stopped")
    finally:
        service.close()


def _serve_index(host: str, port: int, model: str | None) -> None:
    """The index owner process for several API workers (``serving.api.index_owner``)."""
    import os

    import uvicorn

    from config.settings import get_settings
    from serving.api.index_owner import owner_app
    from serving.cli.common import port_is_free

    settings = get_settings()
    if settings.index_url or settings.qdrant_url:
        fail("this process would own the embedded index, but CRMIND_INDEX_URL or CRMIND_QDRANT_URL says another "
             "process or server holds it; unset them here (with a Qdrant server, run `crmind index --follow`)")
    if not settings.index_api_key and host not in ("127.0.0.1", "localhost", "::1"):
        # The owner answers any filter it is sent (workers put the caller's permissions in it): off this host,
        # only a holder of the shared key may ask, or anyone on the network could read every team's text.
        fail(f"the index owner would listen on {host} without a key; set CRMIND_INDEX_API_KEY here and on the "
             "API workers, or bind to 127.0.0.1")
    if model:
        os.environ["CRMIND_EMBEDDING_MODEL"] = model
        get_settings.cache_clear()
    port_is_free(host, port)
    typer.echo(f"index owner on http://{host}:{port}: building if needed, then following the outbox")
    uvicorn.run(owner_app(settings.index_api_key), host=host, port=port, log_level="info")


def _open_for_rebuild(model: str | None) -> IndexService:
    """Open an index built with another model, only to rebuild it."""
    from retrieval.embeddings import make_embedder
    from retrieval.service import IndexService
    from retrieval.store import open_store

    embedder = make_embedder(model)
    return IndexService(open_store(embedder.dim), embedder, None)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in Chinese or English")],
    as_user: Annotated[str, typer.Option("--as", help="User id or email whose permissions apply")],
    account: Annotated[int | None, typer.Option(help="Only this account id")] = None,
    type_: Annotated[list[str] | None,
                     typer.Option("--type", help=f"Object type(s): {', '.join(OBJECT_TYPES)}")] = None,
    date_from: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="From this day")] = None,
    date_to: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Up to this day")] = None,
    limit: Annotated[int, typer.Option(min=1, max=50)] = 10,
    mode: Annotated[str, typer.Option(help="hybrid | dense | sparse")] = "hybrid",
) -> None:
    """Search as a user: ranked hits with record links and scores, text masked for their role."""
    from config.db import session_factory
    from crm.auth import principal_for_user
    from retrieval.search import search as run_search
    from retrieval.service import open_service

    if mode not in ("hybrid", "dense", "sparse"):
        fail("--mode must be hybrid, dense or sparse")
    for t in type_ or []:
        if t not in OBJECT_TYPES:
            fail(f"unknown --type '{t}': use {', '.join(OBJECT_TYPES)}")
    with session_factory()() as session:
        principal = principal_for_user(session, as_user)
    service = open_service()
    try:
        hits = run_search(principal, query, store=service.store, embedder=service.embedder, account_id=account,
                          object_types=type_ or None, date_from=_day(date_from), date_to=_day(date_to),
                          limit=limit, mode=mode)  # type: ignore[arg-type]
    finally:
        service.close()
    if not hits:
        typer.echo("no results you may see")
    for rank, hit in enumerate(hits, start=1):
        when = (hit.timestamp or "")[:10]
        typer.secho(f"{rank:>2}. {hit.link:<22} score {hit.score:.4f}  {when}  {hit.title[:60]}", bold=True)
        typer.echo("    " + hit.text.replace("\n", " ")[:220])


def _day(value: datetime | None) -> date | None:
    return value.date() if value else None


def eval_retrieval(
    ground_truth: Annotated[Path | None,
                            typer.Option(help="Ground-truth JSONL (default: data/ground_truth.jsonl)")] = None,
    models: Annotated[str, typer.Option(help="Comma-separated embedding models to compare")] = "minilm,e5",
    out: Annotated[Path | None, typer.Option(help="Write the report as JSON here")] = None,
    max_questions: Annotated[int | None, typer.Option(help="Evaluate at most this many questions")] = None,
    distractors: Annotated[int | None, typer.Option(
        help="Index only the answer records plus this many random others (faster); default: the whole CRM")] = None,
) -> None:
    """Retrieval quality on the bilingual set: recall@5/@10 and MRR for dense, sparse and hybrid, per model."""
    import json

    from eval.retrieval import print_report, run_retrieval_eval

    report = run_retrieval_eval(ground_truth=ground_truth, models=[m for m in models.split(",") if m],
                                max_questions=max_questions, distractors=distractors, progress=True)
    print_report(report)
    if out:
        out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
        typer.echo(f"report written to {out}")


eval_app = typer.Typer(help="Evaluation suites.", no_args_is_help=True)


@eval_app.callback()
def _eval_group() -> None:
    """Evaluation suites (``crmind eval retrieval``)."""


eval_app.command("retrieval")(eval_retrieval)
