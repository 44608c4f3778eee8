"""One LoRA SFT run: config -> dataset -> prefix-shared trl training -> peft adapter + GGUF-LoRA + metrics.

Seeded (data order, LoRA init, dropout) and resumable: checkpoints go to ``<run>/checkpoints`` every
``train.save_steps`` steps, and running the same config again continues from the newest one. The resolved config,
the loss curve (JSON and SVG) and the speed (seconds per step, tokens per second) are written beside the adapter,
and the run is a ``finetune_run`` ledger row. Registering and evaluating the adapter is ``modelops.retrain``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from config.settings import get_settings
from finetune.batches import Group, Tokenised, collate, group, tokenise
from finetune.config import FinetuneConfig, dump_config
from finetune.errors import FinetuneError
from finetune.render import chat_template, render

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a run produced and how fast it went."""

    name: str
    base: str
    run_dir: str
    adapter_dir: str
    gguf_path: str | None
    dataset: str
    examples: int
    validation_examples: int
    dropped_too_long: int
    steps: int
    train_seconds: float
    seconds_per_step: float
    tokens_per_second: float
    """Tokens the model actually ran per second (each shared prefix once)."""
    example_tokens_per_second: float
    """Tokens of the examples trained per second, as if each ran in full (what sharing buys)."""
    loss_first: float | None
    loss_last: float | None
    validation_loss_before: float | None
    validation_loss_after: float | None
    device: str
    resumed_from: str | None

    def to_json(self) -> dict[str, Any]:
        """A plain dict (for the ledger, metrics.json and the CLI)."""
        return asdict(self)


def run_name(config: FinetuneConfig) -> str:
    """The adapter's name: the configured one, or ``<base>-crm-<UTC timestamp>``."""
    return config.name or f"{config.base}-crm-{datetime.now(UTC):%Y%m%d-%H%M%S}"


def run_dir(config: FinetuneConfig, name: str) -> Path:
    """Where the run writes (``output_dir`` or ``<data_dir>/finetune/runs/<name>``)."""
    return Path(config.output_dir) if config.output_dir else get_settings().data_dir / "finetune" / "runs" / name


def load_examples(config: FinetuneConfig, folder: Path) -> tuple[list[dict[str, Any]], Path]:
    """The training examples of the configured kinds, at most ``data.max_examples`` of them (a seeded sample).

    They come from the configured dataset, or from one built now into ``folder/dataset``.
    """
    dataset = Path(config.data.dataset) if config.data.dataset else None
    if dataset is None:
        from config.db import get_engine
        from finetune.dataset import build_dataset

        dataset = folder / "dataset"
        if not (dataset / "train.jsonl").exists():
            build_dataset(get_engine(), out_dir=dataset, seed=config.seed, n_synthetic=config.data.n_synthetic,
                          include_ledger=config.data.include_ledger)
    path = dataset / "train.jsonl"
    if not path.is_file():
        raise FinetuneError(f"No training set at {path}; build one with `crmind finetune data`.")
    examples = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if config.data.kinds is not None:
        examples = [e for e in examples if e.get("kind") in config.data.kinds]
    if config.data.max_examples is not None and len(examples) > config.data.max_examples:
        # Sorted by a seeded hash of the id: a stable sample that keeps every kind in rough proportion.
        examples = sorted(examples, key=lambda e: hashlib.sha256(f"{config.seed}/{e.get('id')}".encode()).digest())
        examples = examples[:config.data.max_examples]
    if not examples:
        raise FinetuneError(f"{path} holds no examples of the configured kinds.")
    return examples, dataset


def _held_out(example_id: str, share: float, seed: int) -> bool:
    """A stable, seeded validation split by example id."""
    digest = hashlib.sha256(f"{seed}:{example_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def tokenised_sets(examples: list[dict[str, Any]], tokenizer: Any, template: str,
                   config: FinetuneConfig) -> tuple[list[Tokenised], list[Tokenised], int]:
    """Train and validation rows, and how many examples were longer than ``train.max_seq_len``."""
    train_rows, validation_rows, too_long = [], [], 0
    for example in examples:
        row = tokenise(render(example, tokenizer=tokenizer, template=template), tokenizer,
                       kind=example.get("prompt", "assistant"))
        if len(row.ids) > config.train.max_seq_len:
            too_long += 1
            continue
        held = _held_out(str(example.get("id", len(train_rows))), config.data.validation_share, config.seed)
        (validation_rows if held else train_rows).append(row)
    if not train_rows:
        raise FinetuneError("No example fits train.max_seq_len; raise it or check the dataset.")
    return train_rows, validation_rows, too_long


def _last_checkpoint(folder: Path) -> Path | None:
    """The newest ``checkpoint-N`` folder, if a run was interrupted."""
    found = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[-1]))
    return found[-1] if found else None


def _check_same_config(folder: Path, resolved: str) -> None:
    """Resuming with a different config would mix two runs: refuse and say how to start fresh."""
    saved = folder / "config.yaml"
    if saved.exists() and saved.read_text(encoding="utf-8") != resolved and (folder / "checkpoints").exists():
        raise FinetuneError(f"{folder} holds a run with another config; give this run another name "
                            f"(name=...) or output_dir, or delete the folder to start over.")


def _loss_plot(history: list[dict[str, Any]], path: Path) -> None:
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


def train(config: FinetuneConfig, *, progress: bool = True, say: Callable[[str], None] = log.info) -> TrainResult:
    """Run the fine-tuning ``config`` describes; see the module docstring."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import SFTConfig

    from finetune.hf_base import build_hf_base
    from finetune.lora_gguf import convert_peft_to_gguf
    from finetune.trainer import PrefixSharedSFTTrainer, validation_loss
    from inference.bases import get_base

    name = run_name(config)
    folder = run_dir(config, name)
    resolved = dump_config(config.model_copy(update={"name": name}))
    _check_same_config(folder, resolved)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(resolved, encoding="utf-8")
    say(f"fine-tuning {name} on {config.base}; resolved config:\n{resolved}")

    set_seed(config.seed)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    settings = get_settings()
    hf_dir = Path(config.model_dir) if config.model_dir else build_hf_base(
        config.base, settings.data_dir / "models" / "hf" / config.base)
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    template = chat_template(config.base, tokenizer)
    examples, dataset = load_examples(config, folder)
    train_rows, validation_rows, too_long = tokenised_sets(examples, tokenizer, template, config)
    groups = group(train_rows, batch_size=config.train.batch_size, seed=config.seed)
    held_groups = group(validation_rows, batch_size=config.train.batch_size, seed=config.seed)
    say(f"{len(train_rows)} training examples in {len(groups)} prefix-sharing groups, "
        f"{len(validation_rows)} held out, {too_long} longer than {config.train.max_seq_len} tokens dropped")

    cuda = torch.cuda.is_available()
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.bfloat16 if cuda else torch.float32)
    model = get_peft_model(model, LoraConfig(
        r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
        target_modules=config.lora.target_modules, bias="none", task_type="CAUSAL_LM"))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    collator = partial(collate, pad_id=pad_id)
    held = [g.as_row() for g in held_groups]
    if cuda:
        model = model.to("cuda")
    before = validation_loss(model, held, collator)

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
                                     processing_class=tokenizer, data_collator=collator,
                                     train_dataset=Dataset.from_list([g.as_row() for g in groups]))
    resume = _last_checkpoint(folder / "checkpoints")
    if resume is not None:
        say(f"resuming from {resume}")
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - started
    after = validation_loss(model, held, collator)

    adapter_dir = folder / "adapter"
    model.save_pretrained(adapter_dir)
    gguf_path = (convert_peft_to_gguf(adapter_dir, folder / "adapter.gguf", base_gguf=get_base(config.base).gguf_path())
                 if config.export_gguf else None)
    history = trainer.state.log_history
    (folder / "loss.json").write_text(json.dumps(history, indent=1), encoding="utf-8")
    _loss_plot(history, folder / "loss.svg")
    result = _result(config, name, folder, adapter_dir, gguf_path, dataset, groups, train_rows, validation_rows,
                     too_long, output.global_step, seconds, history, before, after, cuda, resume, trainer)
    (folder / "metrics.json").write_text(json.dumps(result.to_json(), indent=2), encoding="utf-8")
    _record(result)
    return result


def _result(config: FinetuneConfig, name: str, folder: Path, adapter_dir: Path, gguf_path: Path | None, dataset: Path,
            groups: list[Group], train_rows: list[Tokenised], validation_rows: list[Tokenised], too_long: int,
            steps: int, seconds: float, history: list[dict[str, Any]], before: float | None, after: float | None,
            cuda: bool, resume: Path | None, trainer: Any) -> TrainResult:
    # Steps run in this process (a resumed run only counts the ones it ran itself).
    ran = max(steps - (int(resume.name.rsplit("-", 1)[-1]) if resume else 0), 1)
    per_group = sum(g.tokens for g in groups) / len(groups)
    per_group_unshared = sum(g.unshared_tokens for g in groups) / len(groups)
    groups_run = ran * config.train.grad_accum
    losses = [h["loss"] for h in history if "loss" in h]
    return TrainResult(
        name=name, base=config.base, run_dir=str(folder), adapter_dir=str(adapter_dir),
        gguf_path=str(gguf_path) if gguf_path else None,
        dataset=str(dataset), examples=len(train_rows), validation_examples=len(validation_rows),
        dropped_too_long=too_long, steps=steps, train_seconds=round(seconds, 1),
        seconds_per_step=round(seconds / ran, 3), tokens_per_second=round(per_group * groups_run / seconds, 1),
        example_tokens_per_second=round(per_group_unshared * groups_run / seconds, 1),
        loss_first=losses[0] if losses else None, loss_last=losses[-1] if losses else None,
        validation_loss_before=before, validation_loss_after=after,
        device="cuda" if cuda else "cpu", resumed_from=str(resume) if resume else None,
    )


def _record(result: TrainResult) -> None:
    """The run's ledger row: config, data, speed and loss, so any adapter can be traced to how it was made."""
    import ledger
    from config.db import transaction

    with transaction() as session:
        ledger.append(session, kind="finetune_run", actor="finetune", model_id=result.name,
                      refs=[f"model:{result.name}"], input_summary=f"LoRA SFT of {result.name} on {result.base}",
                      output=result.to_json())
