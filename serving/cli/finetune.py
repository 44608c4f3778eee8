"""``crmind finetune ...``: build training data (``data``); the trainer's commands join this group.

Example: ``crmind finetune data [--out DIR] [--seed N] [--n N] [--no-ledger]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from serving.cli.common import fail

app = typer.Typer(help="Fine-tune the vertical model: training data, training, adapters.", no_args_is_help=True)


@app.command("data")
def data(
    out: Annotated[Path | None, typer.Option(help="Folder to write (default: <data_dir>/finetune/datasets/<id>/)")
                   ] = None,
    seed: Annotated[int, typer.Option(help="Same seed and database, same examples")] = 0,
    n: Annotated[int | None, typer.Option("--n", min=1, help="Synthetic examples (assistant turns and rules)")] = None,
    ledger: Annotated[bool, typer.Option("--ledger/--no-ledger", help="Add the reps' decisions from the ledger")
                      ] = True,
    zh_only: Annotated[bool, typer.Option("--zh-only", help="Chinese examples only")] = False,
    en_only: Annotated[bool, typer.Option("--en-only", help="English examples only")] = False,
) -> None:
    """Build a training set from the CRM (synthetic tool-use turns and rules) and the ledger; print its manifest."""
    from sqlalchemy import func, select

    from config.db import get_engine, session_factory
    from crm.models import Account
    from finetune.dataset import DEFAULT_N, build_dataset

    if zh_only and en_only:
        fail("choose at most one of --zh-only and --en-only")
    engine = get_engine()
    with session_factory(engine)() as session:
        if not session.scalar(select(func.count()).select_from(Account)):
            fail("the CRM is empty; run `crmind demo` first (synthetic examples are made from its records)")
    languages = ("zh",) if zh_only else ("en",) if en_only else ("en", "zh")
    manifest = build_dataset(engine, out_dir=out, seed=seed, n_synthetic=n or DEFAULT_N, languages=languages,
                             include_ledger=ledger, progress=True)
    typer.echo(manifest.summary())
