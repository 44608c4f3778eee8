"""The GPU half of a fine-tuning run: prepared groups in, a peft adapter and its loss curve out.

``finetune.train`` splits a run in three so the expensive middle can run on another machine:

1. **prepare** (``crmind finetune prepare``, where the CRM is): render and tokenise the examples, cut them into
   prefix-sharing groups, write ``<run>/config.yaml`` and ``<run>/prepared.json.gz``;
2. **fit** (this module): train the LoRA adapter on those groups and write ``<run>/adapter/``, ``loss.json``,
   ``loss.svg`` and ``fit.json``. It needs torch, transformers, peft, trl, datasets and pydantic, not the CRM,
   the database or the gateway, so a bare GPU box runs it: ``python -m finetune.fit <run> --gguf <base.gguf>``;
3. **finish** (``crmind finetune import <run>``, back where the CRM is): the GGUF-LoRA, ``metrics.json``, the
   ``finetune_run`` ledger row, the registry and the eval report.

``crmind finetune train`` runs all three in one process.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from finetune.batches import collate
from finetune.config import FinetuneConfig, load_config
from finetune.errors import FinetuneError

log = logging.getLogger(__name__)

PREPARED = "prepared.json.gz"
FIT = "fit.json"


@dataclass
class Prepared:
    """A run's tokenised groups (``Group.as_row()`` dicts) and what was dropped making them."""

    train: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    pad_id: int
    dataset: str
    examples: int
    validation_examples: int
    dropped_too_long: int

    def save(self, folder: Path) -> Path:
        """Write ``<folder>/prepared.json.gz``, each distinct prefix once (groups of a prompt kind share one)."""
        prefixes: dict[tuple[int, ...], int] = {}

        def packed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            out = []
            for row in rows:
                key = tuple(row["prefix_ids"])
                index = prefixes.setdefault(key, len(prefixes))
                out.append({"prefix": index, "tail_ids": row["tail_ids"], "tail_labels": row["tail_labels"]})
            return out

        body = asdict(self)
        body["train"], body["validation"] = packed(self.train), packed(self.validation)
        body["prefixes"] = [list(p) for p in prefixes]
        path = folder / PREPARED
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as out:
            json.dump(body, out, separators=(",", ":"))
        return path

    @classmethod
    def load(cls, folder: Path) -> Prepared:
        """Read what ``save`` wrote; a missing or damaged file is a clear error."""
        path = folder / PREPARED
        if not path.is_file():
            raise FinetuneError(f"No prepared groups at {path}; run `crmind finetune prepare` first.")
        try:
            with gzip.open(path, "rt", encoding="utf-8") as src:
                body = json.load(src)
            prefixes = body.pop("prefixes")
            for name in ("train", "validation"):
                body[name] = [{"prefix_ids": prefixes[r["prefix"]], "tail_ids": r["tail_ids"],
                               "tail_labels": r["tail_labels"]} for r in body[name]]
            return cls(**body)
        except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
            raise FinetuneError(f"{path} is unreadable ({exc!r}); prepare the run again.") from exc

    @staticmethod
    def tokens(rows: list[dict[str, Any]]) -> tuple[int, int]:
        """Tokens the model runs (each prefix once) and tokens as if each example ran in full."""
        run = unshared = 0
        for row in rows:
            prefix, tails = len(row["prefix_ids"]), sum(map(len, row["tail_ids"]))
            run += prefix + tails
            unshared += prefix * len(row["tail_ids"]) + tails
        return run, unshared


@dataclass
class FitResult:
    """What the training loop did: steps, time, losses, where it ran."""

    adapter_dir: str
    steps: int
    steps_run: int
    """Steps run by this process (a resumed run doesn't count the ones before its checkpoint)."""
    train_seconds: float
    seconds_per_step: float
    tokens_per_second: float
    example_tokens_per_second: float
    loss_first: float | None
    loss_last: float | None
    validation_loss_before: float | None
    validation_loss_after: float | None
    device: str
    resumed_from: str | None

    def save(self, folder: Path) -> None:
        """Write ``<folder>/fit.json``."""
        (folder / FIT).write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> FitResult:
        """Read ``<folder>/fit.json``; a run that was prepared but never trained is a clear error."""
        path = folder / FIT
        if not path.is_file():
            raise FinetuneError(f"{folder} has no {FIT}: the run was prepared but not trained; "
                                f"run `python -m finetune.fit {folder}` on the training machine.")
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def last_checkpoint(folder: Path) -> Path | None:
    """The newest ``checkpoint-N`` folder, if a run was interrupted."""
    found = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[-1]))
    return found[-1] if found else None


def loss_plot(history: list[dict[str, Any]], path: Path) -> None:
    """The training loss per step as an SVG (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(h["step"], h["loss"]) for h in history if "loss" in h and "step" in h]
    fig, ax = plt.subplots(figsize=(6, 3))
    if points:
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=".")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)


def fit(config: FinetuneConfig, folder: Path, hf_dir: Path, prepared: Prepared, *, progress: bool = True,
        say: Callable[[str], None] = log.info) -> FitResult:
    """Train the LoRA adapter ``config`` describes on ``prepared``; seeded, and resumable from ``folder``."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import SFTConfig

    from finetune.trainer import PrefixSharedSFTTrainer, validation_loss

    set_seed(config.seed)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    cuda = torch.cuda.is_available()
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.bfloat16 if cuda else torch.float32)
    model = get_peft_model(model, LoraConfig(
        r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
        target_modules=config.lora.target_modules, bias="none", task_type="CAUSAL_LM"))
    collator = partial(collate, pad_id=prepared.pad_id)
    if cuda:
        model = model.to("cuda")
    before = validation_loss(model, prepared.validation, collator)

    args = SFTConfig(
        output_dir=str(folder / "checkpoints"), seed=config.seed, data_seed=config.seed,
        num_train_epochs=config.train.epochs, max_steps=config.train.max_steps,
        per_device_train_batch_size=1, gradient_accumulation_steps=config.train.grad_accum,
        learning_rate=config.train.learning_rate, lr_scheduler_type=config.train.scheduler,
        warmup_steps=config.train.warmup_ratio, logging_steps=config.train.logging_steps,
        save_steps=config.train.save_steps, save_total_limit=2, report_to=[], disable_tqdm=not progress,
        remove_unused_columns=False, dataset_kwargs={"skip_prepare_dataset": True},
        dataloader_num_workers=0, bf16=cuda, use_cpu=not cuda,
        # The prefix-shared step runs the tails on a key/value cache, which gradient checkpointing switches off.
        gradient_checkpointing=False,
    )
    trainer = PrefixSharedSFTTrainer(model=model, args=args, prefix_gradient=config.train.prefix_gradient,
                                     prefix_refresh_steps=config.train.prefix_refresh_steps,
                                     processing_class=AutoTokenizer.from_pretrained(hf_dir),
                                     data_collator=collator, train_dataset=Dataset.from_list(prepared.train))
    resume = last_checkpoint(folder / "checkpoints")
    if resume is not None:
        say(f"resuming from {resume}")
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - started
    after = validation_loss(model, prepared.validation, collator)

    adapter_dir = folder / "adapter"
    model.save_pretrained(adapter_dir)
    history = trainer.state.log_history
    (folder / "loss.json").write_text(json.dumps(history, indent=1), encoding="utf-8")
    loss_plot(history, folder / "loss.svg")

    steps = output.global_step
    ran = max(steps - (int(resume.name.rsplit("-", 1)[-1]) if resume else 0), 1)
    # Throughput over the groups the steps ran (each step is grad_accum groups).
    run_tokens, unshared_tokens = Prepared.tokens(prepared.train)
    groups_run = ran * config.train.grad_accum
    per_group, per_group_unshared = run_tokens / len(prepared.train), unshared_tokens / len(prepared.train)
    losses = [h["loss"] for h in history if "loss" in h]
    result = FitResult(
        adapter_dir=str(adapter_dir), steps=steps, steps_run=ran, train_seconds=round(seconds, 1),
        seconds_per_step=round(seconds / ran, 3), tokens_per_second=round(per_group * groups_run / seconds, 1),
        example_tokens_per_second=round(per_group_unshared * groups_run / seconds, 1),
        loss_first=losses[0] if losses else None, loss_last=losses[-1] if losses else None,
        validation_loss_before=before, validation_loss_after=after,
        device=torch.cuda.get_device_name(0) if cuda else "cpu", resumed_from=str(resume) if resume else None)
    result.save(folder)
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m finetune.fit RUN (--model-dir DIR | --gguf FILE)``: train a prepared run."""
    parser = argparse.ArgumentParser(prog="python -m finetune.fit", description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the folder `crmind finetune prepare` wrote")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-dir", type=Path, help="the base in HF format (safetensors + tokenizer)")
    source.add_argument("--gguf", type=Path, help="the base's GGUF; dequantised into RUN/base-hf first")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        config = load_config(args.run / "config.yaml")
        prepared = Prepared.load(args.run)
        if args.model_dir:
            hf_dir = args.model_dir
        else:
            from finetune.hf_base import hf_from_gguf

            hf_dir = hf_from_gguf(args.gguf, args.run / "base-hf")
        result = fit(config, args.run, hf_dir, prepared, progress=not args.no_progress, say=log.info)
    except FinetuneError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
