"""One LoRA SFT run: config -> dataset -> prefix-shared trl training -> peft adapter + GGUF-LoRA + metrics.

Seeded (data order, LoRA init, dropout) and resumable: checkpoints go to ``<run>/checkpoints`` every
``train.save_steps`` steps, and running the same config again continues from the newest one. The resolved config,
the loss curve (JSON and SVG) and the speed (seconds per step, tokens per second) are written beside the adapter,
and the run is a ``finetune_run`` ledger row. Registering and evaluating the adapter is ``modelops.retrain``.

A run is three steps, ``prepare`` -> ``finetune.fit.fit`` -> ``finish``, so the middle one can run on a GPU
machine that has neither the CRM nor crmind's serving stack (``crmind finetune prepare``, then
``python -m finetune.fit`` there, then ``crmind finetune import`` here).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config.settings import get_settings
from finetune.batches import Tokenised, group, tokenise
from finetune.config import FinetuneConfig, dump_config, load_config
from finetune.errors import FinetuneError
from finetune.fit import FitResult, Prepared, fit
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
    """"cpu", or the GPU's name."""
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


def _check_same_config(folder: Path, resolved: str) -> None:
    """Resuming with a different config would mix two runs: refuse and say how to start fresh."""
    saved = folder / "config.yaml"
    if saved.exists() and saved.read_text(encoding="utf-8") != resolved and (folder / "checkpoints").exists():
        raise FinetuneError(f"{folder} holds a run with another config; give this run another name "
                            f"(name=...) or output_dir, or delete the folder to start over.")


def prepare(config: FinetuneConfig, *, say: Callable[[str], None] = log.info) -> tuple[Path, Path]:
    """Write a run folder ready to train: the resolved config and the prefix-sharing groups (``finetune.fit``).

    Returns the folder and the HF-format base its tokenizer came from.
    """
    from transformers import AutoTokenizer, set_seed

    from finetune.hf_base import build_hf_base

    name = run_name(config)
    folder = run_dir(config, name)
    resolved = dump_config(config.model_copy(update={"name": name}))
    _check_same_config(folder, resolved)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(resolved, encoding="utf-8")
    say(f"fine-tuning {name} on {config.base}; resolved config:\n{resolved}")

    set_seed(config.seed)
    hf_dir = Path(config.model_dir) if config.model_dir else build_hf_base(
        config.base, get_settings().data_dir / "models" / "hf" / config.base)
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    template = chat_template(config.base, tokenizer)
    examples, dataset = load_examples(config, folder)
    train_rows, validation_rows, too_long = tokenised_sets(examples, tokenizer, template, config)
    groups = group(train_rows, batch_size=config.train.batch_size, seed=config.seed)
    held_groups = group(validation_rows, batch_size=config.train.batch_size, seed=config.seed)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    Prepared(train=[g.as_row() for g in groups], validation=[g.as_row() for g in held_groups], pad_id=pad_id,
             dataset=str(dataset), examples=len(train_rows), validation_examples=len(validation_rows),
             dropped_too_long=too_long).save(folder)
    say(f"{len(train_rows)} training examples in {len(groups)} prefix-sharing groups, "
        f"{len(validation_rows)} held out, {too_long} longer than {config.train.max_seq_len} tokens dropped")
    return folder, hf_dir


def finish(folder: Path) -> TrainResult:
    """After ``fit``: the GGUF-LoRA, ``metrics.json`` and the ``finetune_run`` ledger row.

    ``folder`` may have been trained on another machine; its ``fit.json`` and ``adapter/`` are all it needs.
    """
    from finetune.lora_gguf import convert_peft_to_gguf
    from inference.bases import get_base

    config = load_config(folder / "config.yaml")
    fitted, prepared = FitResult.load(folder), Prepared.load(folder)
    adapter_dir = folder / "adapter"
    if not (adapter_dir / "adapter_config.json").is_file():
        raise FinetuneError(f"{folder} has no trained adapter (adapter/adapter_config.json).")
    gguf_path = (convert_peft_to_gguf(adapter_dir, folder / "adapter.gguf", base_gguf=get_base(config.base).gguf_path())
                 if config.export_gguf else None)
    assert config.name is not None  # prepare() writes the resolved name
    fit_fields = {k: v for k, v in asdict(fitted).items() if k not in ("adapter_dir", "steps_run")}
    result = TrainResult(
        name=config.name, base=config.base, run_dir=str(folder), adapter_dir=str(adapter_dir),
        gguf_path=str(gguf_path) if gguf_path else None, dataset=prepared.dataset, examples=prepared.examples,
        validation_examples=prepared.validation_examples, dropped_too_long=prepared.dropped_too_long, **fit_fields)
    (folder / "metrics.json").write_text(json.dumps(result.to_json(), indent=2), encoding="utf-8")
    _record(result)
    return result


def train(config: FinetuneConfig, *, progress: bool = True, say: Callable[[str], None] = log.info) -> TrainResult:
    """Prepare, fit and finish in this process; see the module docstring and ``finetune.fit``."""
    folder, hf_dir = prepare(config, say=say)
    fit(load_config(folder / "config.yaml"), folder, hf_dir, Prepared.load(folder), progress=progress, say=say)
    return finish(folder)


def _record(result: TrainResult) -> None:
    """The run's ledger row: config, data, speed and loss, so any adapter can be traced to how it was made."""
    import ledger
    from config.db import transaction

    with transaction() as session:
        ledger.append(session, kind="finetune_run", actor="finetune", model_id=result.name,
                      refs=[f"model:{result.name}"], input_summary=f"LoRA SFT of {result.name} on {result.base}",
                      output=result.to_json())
