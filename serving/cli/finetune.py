"""``crmind finetune ...``: build training data (``data``), fine-tune and register a challenger (``train``).

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


@app.command("train", context_settings={"allow_extra_args": False})
def train(
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides of the config, e.g. "
                                                               "train.max_steps=40 lora.r=16")] = None,
    config: Annotated[Path | None, typer.Option(help="The YAML config (default: finetune/configs/smollm2-cpu.yaml)")
                      ] = None,
    share: Annotated[float, typer.Option(min=0.0, max=1.0, help="The challenger's share of conversations")] = 0.2,
    suites: Annotated[str, typer.Option(help="Eval suites to attach (comma-separated); '' skips the eval")
                      ] = "tools,agent,rules,bfcl,safety",
    quick: Annotated[bool, typer.Option("--quick/--full", help="The quick slice of each suite, or all of it")
                     ] = True,
    limit: Annotated[int | None, typer.Option(help="At most this many items per suite")] = None,
) -> None:
    """Fine-tune a LoRA adapter, register it as its base's challenger, and attach its eval report."""
    from finetune.errors import FinetuneError
    from modelops.retrain import retrain

    chosen = [s.strip() for s in suites.split(",") if s.strip()]
    try:
        result = retrain(reason="crmind finetune train", config=config, overrides=overrides or [], share=share,
                         suites=chosen, quick=quick, limit=limit, actor="cli", echo=typer.echo)
    except FinetuneError as exc:
        fail(exc.message)
        return
    trained = result.train
    typer.echo(f"adapter:    {trained['adapter_dir']} (peft) and {trained['gguf_path'] or 'no GGUF'} (GGUF-LoRA)")
    typer.echo(f"speed:      {trained['seconds_per_step']} s/step, {trained['tokens_per_second']} tokens/s run, "
               f"{trained['example_tokens_per_second']} example tokens/s ({trained['device']})")
    typer.echo(f"challenger: {result.model} on {result.base} at {result.share:.0%} of conversations")
    if result.eval_report:
        typer.echo(f"eval:       {result.eval_report}")
        typer.echo("            " + ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} –"
                                              for k, v in result.eval_scores.items()))
    elif result.eval_error:
        typer.echo(f"eval:       failed ({result.eval_error})")
    typer.echo(f"next:       crmind eval compare {result.base} {result.model}   then   "
               f"crmind models promote --base {result.base}")
