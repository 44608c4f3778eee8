"""``crmind scores compute`` and ``crmind eval scores`` (mounted by ``serving.cli``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Customer scores: lead score, win probability, health, RFM, lifetime value.",
                  no_args_is_help=True)


@app.callback()
def _scores() -> None:
    """Customer scores."""


@app.command("compute")
def compute(
    min_conversions: Annotated[int | None, typer.Option(help="Outcomes a model needs before it replaces the "
                                                        "points score (default: CRMIND_SCORE_MIN_CONVERSIONS)")] = None,
    ltv: Annotated[bool, typer.Option(help="Also fit lifetime value (pymc-marketing, about 20 s)")] = True,
) -> None:
    """Compute every score kind, store them with their reasons, register the models; prints counts and seconds."""
    from config.db import transaction
    from config.settings import get_settings
    from customers.rfm import score_rfm
    from customers.scoring import score_deals, score_health, score_leads
    from inference.registry import register_scorer

    settings = get_settings()
    minimum = min_conversions or settings.score_min_conversions
    model_dir = settings.data_dir / "models" / "scores"
    started = time.perf_counter()
    with transaction() as session:
        runs = [score_leads(session, min_conversions=minimum, model_dir=model_dir),
                score_deals(session, min_conversions=minimum, model_dir=model_dir),
                score_health(session), score_rfm(session)]
        if ltv:
            from customers.ltv import score_ltv

            runs.append(score_ltv(session))
        for run in runs:
            if run.model is not None and run.model_path is not None:
                register_scorer(session, name=run.model_version, base=run.model.name, path=run.model_path,
                                actor="cli:scores", eval_results={"trained_on": run.model.trained_on,
                                                                  "positives": run.model.positives})
    for run in runs:
        note = " (points fallback: too few outcomes)" if run.fallback else ""
        typer.echo(f"{run.kind:<7} {run.count:>6} scored in {run.seconds:6.2f} s  {run.model_version}{note}")
    typer.echo(f"scores: {sum(r.count for r in runs)} rows in {time.perf_counter() - started:.1f} s")


def eval_scores(
    out: Annotated[Path | None, typer.Option(help="Write the report as JSON here "
                                             "(default: <data_dir>/eval/scores.json)")] = None,
    cdnow: Annotated[bool, typer.Option(help="Also check lifetime value on CDNOW (about 20 s)")] = True,
) -> None:
    """Lead score and win probability on a time split beside the points score; CDNOW lifetime-value check."""
    from config.db import session_factory
    from config.settings import get_settings
    from eval.scores import plot, run, table, write

    with session_factory()() as session:
        result = run(session, cdnow=cdnow)
    typer.echo(table(result))
    path = write(result, out or get_settings().data_dir / "eval" / "scores.json")
    png = plot(result, path.with_suffix(".png"))
    typer.echo(f"report: {path}" + (f", plot: {png}" if png else " (no matplotlib: no plot)"))
