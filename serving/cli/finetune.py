"""``crmind finetune ...``: training data (``data``), fine-tuning a registered challenger (``train``).

A run also splits across machines: ``prepare`` here, ``python -m finetune.fit`` on a GPU box, ``import`` back.

Example: ``crmind finetune data [--out DIR] [--seed N] [--n N] [--no-ledger]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from serving.cli.common import fail

if TYPE_CHECKING:
    from modelops.retrain import RetrainResult

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


# The challenger and its eval report: the same options for a run trained here (train) or elsewhere (import).
Share = Annotated[float, typer.Option(min=0.0, max=1.0, help="The challenger's share of conversations")]
Suites = Annotated[str, typer.Option(help="Eval suites to attach (comma-separated); '' skips the eval")]
Quick = Annotated[bool, typer.Option("--quick/--full", help="The quick slice of each suite, or all of it")]
Limit = Annotated[int | None, typer.Option(help="At most this many items per suite")]
DEFAULT_SUITES = "tools,agent,rules,bfcl,safety"


def _suites(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


@app.command("train", context_settings={"allow_extra_args": False})
def train(
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides of the config, e.g. "
                                                               "train.max_steps=40 lora.r=16")] = None,
    config: Annotated[Path | None, typer.Option(help="The YAML config (default: finetune/configs/smollm2-cpu.yaml)")
                      ] = None,
    share: Share = 0.2,
    suites: Suites = DEFAULT_SUITES,
    quick: Quick = True,
    limit: Limit = None,
) -> None:
    """Fine-tune a LoRA adapter, register it as its base's challenger, and attach its eval report."""
    from finetune.errors import FinetuneError
    from modelops.retrain import retrain

    try:
        result = retrain(reason="crmind finetune train", config=config, overrides=overrides or [], share=share,
                         suites=_suites(suites), quick=quick, limit=limit, actor="cli", echo=typer.echo)
    except FinetuneError as exc:
        fail(exc.message)
        return
    _report(result)


@app.command("prepare", context_settings={"allow_extra_args": False})
def prepare(
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides of the config")] = None,
    config: Annotated[Path | None, typer.Option(help="The YAML config (default: finetune/configs/smollm2-cpu.yaml)")
                      ] = None,
) -> None:
    """Prepare a run to train on another machine (a GPU box): the config and the tokenised groups, in one folder."""
    from finetune.config import load_config
    from finetune.errors import FinetuneError
    from finetune.train import prepare as prepare_run
    from inference.bases import get_base

    try:
        cfg = load_config(config, overrides or [])
        folder, _ = prepare_run(cfg, say=typer.echo)
        gguf = get_base(cfg.base).gguf_path()
    except FinetuneError as exc:
        fail(exc.message)
        return
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    typer.echo(f"prepared:   {folder} ({size / 1e6:.1f} MB)")
    typer.echo(f"train it:   copy it and {gguf} to the training machine (torch, transformers, peft, trl,\n"
               f"            datasets, pydantic-settings and this checkout); there run\n"
               f"            python -m finetune.fit <run> --gguf <base.gguf>")
    typer.echo(f"then:       copy the folder back and run `crmind finetune import {folder}`")


@app.command("import")
def import_(
    run: Annotated[Path, typer.Argument(help="A run folder trained by `python -m finetune.fit`")],
    share: Share = 0.2,
    suites: Suites = DEFAULT_SUITES,
    quick: Quick = True,
    limit: Limit = None,
) -> None:
    """Adopt a run trained elsewhere: GGUF-LoRA, ledger row, challenger, eval report."""
    from finetune.errors import FinetuneError
    from modelops.retrain import import_run

    try:
        result = import_run(run.resolve(), share=share, suites=_suites(suites), quick=quick, limit=limit, actor="cli",
                            echo=typer.echo)
    except FinetuneError as exc:
        fail(exc.message)
        return
    _report(result)


def _report(result: RetrainResult) -> None:
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
