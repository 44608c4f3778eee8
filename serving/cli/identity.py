"""``crmind identity resolve`` (the CRM store or any people CSV) and ``crmind eval identity``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from serving.cli.common import fail

app = typer.Typer(help="Customer identity: who is the same person across contacts, leads and web visitors.",
                  no_args_is_help=True)
Engine = Annotated[str | None, typer.Option(help="duckdb or spark (default: CRMIND_IDENTITY_ENGINE)")]


@app.callback()
def _identity_group() -> None:
    """Customer identity resolution."""


@app.command("resolve")
def resolve_cmd(
    input_csv: Annotated[Path | None, typer.Option("--input", help="Resolve this CSV (record_id, name, company, "
                                                   "email, phone, city, wechat_id) instead of the CRM")] = None,
    output_csv: Annotated[Path | None, typer.Option("--output", help="With --input: where to write "
                                                    "record_id,cluster_id")] = None,
    engine: Engine = None,
) -> None:
    """Resolve identities: rebuild the link table from the CRM store, or cluster a CSV of people."""
    from config.settings import get_settings

    settings = get_settings()
    chosen = engine or settings.identity_engine
    if chosen not in ("duckdb", "spark"):
        fail(f"unknown engine '{chosen}': use duckdb or spark")
    if input_csv is not None:
        if output_csv is None:
            fail("--input needs --output (where to write record_id,cluster_id)")
        from customers.csv_resolve import resolve_csv

        s = resolve_csv(input_csv, output_csv, engine=chosen, spark_master=settings.spark_master)
        typer.echo(f"identity: {s.records:,} records -> {s.clusters:,} clusters ({s.duplicate_clusters:,} with "
                   f"duplicates) in {s.seconds:.1f} s; written to {output_csv}")
        return
    if output_csv is not None:
        fail("--output goes with --input; a store resolve writes the link table")
    from config.db import transaction
    from crm.schema import migrate
    from customers.identity import resolve_store

    migrate()
    with transaction() as session:
        r = resolve_store(session, engine=chosen)
    typer.echo(f"identity: {r.records:,} records -> {r.customers:,} customers, {r.duplicate_clusters:,} duplicate "
               f"clusters ({r.linked_records:,} records); {r.accounts:,} accounts ({r.account_clusters:,} clusters); "
               f"{r.visitors_linked:,} visitors linked, {r.weak_links:,} weak links; {r.seconds:.1f} s on "
               f"{r.engine} (model {r.model_hash})")


def eval_identity(
    datasets: Annotated[str, typer.Option(help="Comma-separated: demo, febrl3, febrl4")] = "demo,febrl3,febrl4",
    demo_scale: Annotated[float, typer.Option(help="Scale of the temporary demo CRM")] = 1.0,
    database_url: Annotated[str | None, typer.Option(help="Resolve this demo database instead (its link table "
                                                     "is replaced); give --truth too")] = None,
    truth: Annotated[Path | None, typer.Option(help="identity_truth.jsonl of --database-url")] = None,
    febrl_limit: Annotated[int | None, typer.Option(help="Keep only this many FEBRL originals (quick runs)")]
    = None,
    engine: Engine = None,
    out: Annotated[Path | None, typer.Option(help="Write the report as JSON here (default: "
                                             "<data dir>/eval/identity.json)")] = None,
) -> None:
    """Identity resolution: pairwise and B-cubed P/R/F1 on the demo and FEBRL 3/4, beside an exact-match baseline."""
    from config.settings import get_settings
    from eval.identity import run, table

    try:
        results = run([d.strip() for d in datasets.split(",") if d.strip()],
                      engine=engine or get_settings().identity_engine, demo_scale=demo_scale,
                      database_url=database_url, truth_path=truth, febrl_limit=febrl_limit)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    typer.echo(table(results))
    out = out or get_settings().data_dir / "eval" / "identity.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    typer.echo(f"report written to {out}")
