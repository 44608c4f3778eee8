"""``crmind eval agent``: the agent task suite over a fresh small demo CRM (see ``eval/agent``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from serving.cli.common import fail


def eval_agent(
    model: Annotated[str | None, typer.Option(help="A configured model name (default: the configured LLM), or "
                                                   "'fake' for a scripted perfect run")] = None,
    quick: Annotated[bool, typer.Option(help="A stratified subset: --per-cell tasks per kind and language")] = False,
    per_cell: Annotated[int, typer.Option(min=1, help="Tasks per kind and language with --quick")] = 2,
    trials: Annotated[int, typer.Option(min=1, max=10, help="Runs of every task (pass^1 and pass^trials)")] = 3,
    out: Annotated[Path | None, typer.Option(help="Write the JSON report here")] = None,
    kinds: Annotated[str | None, typer.Option(help="Only these kinds, comma-separated (e.g. rag,ambiguous)")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N tasks (after --quick)")] = None,
    scale: Annotated[float, typer.Option(help="Demo CRM scale of the temp copy")] = 0.02,
    index: Annotated[str, typer.Option(help="search_notes over a real hybrid index of the demo (hybrid, as the "
                                            "product runs) or the keyword fallback (keyword)")] = "keyword",
    seed: Annotated[int, typer.Option(help="Seed of the first trial")] = 0,
    failures: Annotated[bool, typer.Option(help="Print each failed task and why")] = False,
) -> None:
    """Agent tasks graded by the database end state and the answer's citations and facts.

    Kinds: lookups, multi-hop, aggregations, notes (RAG), approvals, refusals, injected notes, ambiguous requests.
    """
    from config.settings import get_settings
    from crm.schema import migrate
    from eval.agent.harness import ScriptFor, gateway, run_suite, scripted_oracle, table
    from eval.agent.tasks import KINDS, load_tasks
    from eval.agent.tasks import quick as stratified

    tasks = load_tasks()
    if kinds:
        wanted = {k.strip() for k in kinds.split(",") if k.strip()}
        if unknown := wanted - set(KINDS):
            fail(f"unknown kind(s) {', '.join(sorted(unknown))}; the kinds are {', '.join(KINDS)}")
        tasks = [t for t in tasks if t.kind in wanted]
    if quick:
        tasks = stratified(tasks, per_cell)
    if limit:
        tasks = tasks[:limit]
    if not tasks:
        fail("no tasks to run")
    if index not in ("hybrid", "keyword"):
        fail(f"unknown index '{index}': use hybrid or keyword")
    migrate()  # the run's ledger row (and the gateway's model calls) go to the configured database
    handle = None
    factory: ScriptFor
    if model == "fake":
        factory, name = scripted_oracle, "fake-scripted"
    else:
        from inference.embedded import ensure_engine

        handle = ensure_engine()
        typer.echo(f"model engine: {handle.base_url} serving {', '.join(handle.models)}")
        factory, name = gateway(model), model or get_settings().llm_model
    try:
        rep = run_suite(tasks, model=factory, model_name=name, trials=trials, seed=seed, scale=scale,
                        index=index)
    finally:
        if handle is not None and handle.owned:
            handle.stop()
    typer.echo(table(rep))
    if failures:
        for f in rep["failures"]:
            typer.echo(f"  [{f['task']} trial {f['trial']}] {'; '.join(f['reasons'])}")
    if out:
        out.write_text(json.dumps(rep, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
        typer.echo(f"report -> {out}")
