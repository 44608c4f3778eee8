"""``crmind eval all|rag|tools|bfcl|safety`` and ``crmind eval compare`` (mounted by ``serving.cli``).

Each runs through ``eval.runner``: results.json and a self-contained report.html under
``<data_dir>/eval/runs/<run_id>/``, one ledger row per run, and the scores on a registered model's record.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from serving.cli.common import fail

Model = Annotated[str | None, typer.Option(help="A served model name (a base or an adapter; default: the configured "
                                                "LLM), or 'fake' for the scripted harness check")]
Quick = Annotated[bool, typer.Option(help="A small stratified slice of every suite (minutes, not hours)")]
Limit = Annotated[int | None, typer.Option(help="At most this many items per suite (or per category)")]
Out = Annotated[Path | None, typer.Option(help="Also copy results.json here")]
Judge = Annotated[str | None, typer.Option(help="The rag judge: 'embedded' (crmind's own engine; the default with a "
                                                "real model) or 'none' (string metrics only)")]
JudgeUrl = Annotated[str | None, typer.Option(help="Judge on any OpenAI-compatible endpoint instead (key: "
                                                   "CRMIND_JUDGE_API_KEY)")]
JudgeModel = Annotated[str | None, typer.Option(help="The judge's model name (default: the configured LLM)")]


def _run(suites: list[str], model: str | None, quick: bool, limit: int | None, out: Path | None,
         options: dict[str, dict[str, Any]] | None = None) -> None:
    """Start the engine if a real model is asked for, run the suites, print one line each, write the report."""
    from config.settings import get_settings
    from crm.schema import migrate
    from eval.runner import dumps, run_eval, summary_line
    from eval.suites import FAKE

    migrate()  # the run's ledger row and the model calls go to the configured database
    name = model or get_settings().llm_model
    handle = None
    if name != FAKE and any(s != "retrieval" for s in suites):
        from inference.embedded import ensure_engine

        handle = ensure_engine()
        if name not in handle.models:
            if handle.owned:
                handle.stop()
            fail(f"the model engine does not serve {name!r}; it serves {', '.join(handle.models)} "
                 "(see `crmind models list`)")
        typer.echo(f"model engine: {handle.base_url} serving {', '.join(handle.models)}")
    from serving.api.app import create_app

    # The safety suite attacks the API too; eval sits below serving, so the app factory is handed down.
    extra: dict[str, dict[str, Any]] = {"safety": {"app": create_app}}
    opts = {s: {**({"limit": limit} if limit else {}), **extra.get(s, {}), **(options or {}).get(s, {})}
            for s in suites}
    try:
        outcome = run_eval(suites, name, quick=quick, options=opts,
                           on_suite=lambda r: typer.echo(summary_line(r)))
    finally:
        if handle is not None and handle.owned:
            handle.stop()
    if outcome.deltas:
        from eval.compare import table

        assert outcome.champion is not None
        typer.echo(table(outcome.champion, outcome.run, outcome.deltas))
    typer.echo(f"results: {outcome.folder / 'results.json'}")
    typer.echo(f"report:  {outcome.report}")
    typer.echo(f"ledger:  eval_run row {outcome.run.ledger_id}")
    if out:
        out.write_text(dumps(outcome.run.to_json()), encoding="utf-8")
        typer.echo(f"copied to {out}")
    if outcome.failed:
        fail(f"suite(s) failed to run: {', '.join(outcome.failed)} (see the report)")


def eval_all(
    model: Model = None, quick: Quick = False, limit: Limit = None, out: Out = None,
    suites: Annotated[str | None, typer.Option(help="Comma-separated subset, e.g. tools,bfcl,safety")] = None,
    judge: Judge = None, judge_url: JudgeUrl = None, judge_model: JudgeModel = None,
) -> None:
    """Every suite for one model: retrieval, rag, agent, tools, bfcl, rules, safety; one report."""
    from eval.suites import ALL

    chosen = [s.strip() for s in suites.split(",") if s.strip()] if suites else list(ALL)
    unknown = [s for s in chosen if s not in ALL]
    if unknown:
        fail(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(ALL)}")
    _run(chosen, model, quick, limit, out, options={"rag": _judge_options(judge, judge_url, judge_model)})


def _judge_options(judge: str | None, judge_url: str | None, judge_model: str | None) -> dict[str, Any]:
    if judge_url and not judge_model:
        fail("--judge-url needs --judge-model (the model name that endpoint serves)")
    given = {"judge": judge, "judge_url": judge_url, "judge_model": judge_model}
    return {k: v for k, v in given.items() if v is not None}


def _one(suite: str, doc: str) -> Callable[..., None]:
    def command(model: Model = None, quick: Quick = False, limit: Limit = None, out: Out = None) -> None:
        _run([suite], model, quick, limit, out)
    command.__doc__ = doc
    return command


def eval_rag(
    model: Model = None, quick: Quick = False, limit: Limit = None, out: Out = None,
    judge: Judge = None, judge_url: JudgeUrl = None, judge_model: JudgeModel = None,
) -> None:
    """RAG quality with ragas: context precision and recall, faithfulness, answer relevancy, per language."""
    _run(["rag"], model, quick, limit, out, options={"rag": _judge_options(judge, judge_url, judge_model)})


def eval_compare(
    a: Annotated[str, typer.Argument(help="Champion: a run folder, a run id or a model name (its latest run)")],
    b: Annotated[str, typer.Argument(help="Challenger: the same forms")],
    quick: Annotated[bool | None, typer.Option("--quick/--full", help="With model names: compare their quick "
                                               "(or full) runs; default the latest of either")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the comparison as JSON here")] = None,
) -> None:
    """Per-suite deltas (B − A) with paired bootstrap 95% intervals and a verdict: better, worse, no difference."""
    from eval import report
    from eval.compare import as_json, compare_runs, table
    from eval.runner import dumps, find_run, runs_dir

    run_a, run_b = find_run(a, quick=quick), find_run(b, quick=quick)
    deltas = compare_runs(run_a, run_b)
    if not deltas:
        fail(f"the two runs share no suite ({', '.join(run_a.suites)} vs {', '.join(run_b.suites)})")
    typer.echo(table(run_a, run_b, deltas))
    folder = runs_dir() / run_b.run_id
    folder.mkdir(parents=True, exist_ok=True)
    path = report.write(run_b, folder, champion=run_a, deltas=deltas, name=f"compare-{run_a.run_id}.html")
    (folder / f"compare-{run_a.run_id}.json").write_text(dumps(as_json(run_a, run_b, deltas)), encoding="utf-8")
    typer.echo(f"report: {path}")
    if out:
        out.write_text(dumps(as_json(run_a, run_b, deltas)), encoding="utf-8")
        typer.echo(f"comparison -> {out}")


eval_tools = _one("tools", "CRM tool-call accuracy on held-out requests (right tool, right arguments), en and zh.")
eval_bfcl = _one("bfcl", "The Berkeley Function Calling Leaderboard yardstick: simple, multiple, irrelevance.")
eval_safety = _one("safety", "Attacks on the assistant and the API: attack success rate per category.")


def mount(eval_app: typer.Typer) -> None:
    """Add the commands to ``crmind eval``."""
    eval_app.command("all")(eval_all)
    eval_app.command("rag")(eval_rag)
    eval_app.command("tools")(eval_tools)
    eval_app.command("bfcl")(eval_bfcl)
    eval_app.command("safety")(eval_safety)
    eval_app.command("compare")(eval_compare)
