"""The fine-tuning config: a YAML file plus ``key=value`` overrides, validated, with every default stated.

``crmind finetune train --config finetune/configs/smollm2-cpu.yaml train.max_steps=40 lora.r=16`` reads the
file, applies the overrides by dotted path (values parse as YAML, so ``1e-4``, ``true`` and ``[q_proj]`` work),
and validates the result: an unknown key or a wrong type is an error that names it, never silently ignored.
The resolved config is logged and saved beside the adapter, so a run can always be repeated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from finetune.errors import ConfigError

CONFIG_DIR = Path(__file__).parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "smollm2-cpu.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoraSpec(_Strict):
    """The adapter: rank, scale and which projections it adapts (the converter maps these to GGUF names)."""

    r: int = Field(8, ge=1, le=256)
    alpha: float = 16.0
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj"]


class DataSpec(_Strict):
    """Where the examples come from: a built dataset folder, or a fresh build from the CRM and the ledger."""

    dataset: Path | None = None
    """A folder holding ``train.jsonl`` (``crmind finetune data``); None builds one now."""
    n_synthetic: int = Field(1200, ge=1)
    include_ledger: bool = True
    kinds: list[Literal["tool_call", "answer", "clarify", "refusal", "no_tool", "rule"]] | None = None
    """Train on these example kinds only (None: all). A CPU run can focus on the first call of a turn."""
    max_examples: int | None = Field(None, ge=1)
    """At most this many examples (a seeded sample, kinds kept in proportion); None: all."""
    validation_share: float = Field(0.05, ge=0.0, lt=0.5)
    """Held out of training for the validation loss (the eval suites are the real test)."""


class TrainSpec(_Strict):
    """Optimiser and loop. ``max_steps`` > 0 overrides ``epochs``."""

    epochs: float = Field(1.0, gt=0)
    max_steps: int = -1
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(1, ge=1)
    learning_rate: float = Field(2e-4, gt=0)
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(0.05, ge=0.0, lt=1.0)
    max_seq_len: int = Field(4096, ge=64)
    logging_steps: int = Field(5, ge=1)
    save_steps: int = Field(25, ge=1)
    prefix_gradient: bool = False
    """Backpropagate through the shared prompt prefix (exact; the GPU config) or freeze it (the CPU default, see
    ``finetune.trainer``)."""
    prefix_refresh_steps: int = Field(10, ge=1)
    """With a frozen prefix: recompute its key/values under the current adapter every this many steps."""
    threads: int | None = None
    """CPU threads for torch (None: torch's default, all cores)."""


class FinetuneConfig(_Strict):
    """One fine-tuning run."""

    base: str = "smollm2"
    name: str | None = None
    """The adapter's served model name; None: ``<base>-crm-<timestamp>``."""
    seed: int = 0
    output_dir: Path | None = None
    """None: ``<data_dir>/finetune/runs/<name>``."""
    model_dir: Path | None = None
    """An HF-format model folder to train instead of ``base``'s dequantised GGUF (tests train a tiny random
    Llama that shares SmolLM2's tokenizer); its adapter only converts to GGUF if its shapes are the base's."""
    export_gguf: bool = True
    """Also write the adapter as GGUF-LoRA for llama.cpp (vLLM serves the peft folder)."""
    lora: LoraSpec = LoraSpec()
    data: DataSpec = DataSpec()
    train: TrainSpec = TrainSpec()


def parse_override(text: str) -> tuple[list[str], Any]:
    """``train.max_steps=40`` -> (["train", "max_steps"], 40)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"An override is key=value (for example train.max_steps=40), not {text!r}.")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"The value of {key!r} is not valid YAML: {exc}") from exc
    return key.strip().split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """A copy of ``raw`` with each dotted override set (sections are created as needed)."""
    out: dict[str, Any] = yaml.safe_load(yaml.safe_dump(raw)) or {}
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{'.'.join(path)}: {part!r} is a value, not a section.")
            node = child
        node[path[-1]] = value
    return out


def load_config(path: Path | str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> FinetuneConfig:
    """The validated config from ``path`` (default: the SmolLM2 CPU config) with ``overrides`` applied."""
    source = Path(path) if path is not None else DEFAULT_CONFIG
    if not source.is_file():
        raise ConfigError(f"No fine-tuning config at {source}; the shipped ones are in {CONFIG_DIR}.")
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must hold a mapping of settings.")
    try:
        return FinetuneConfig.model_validate(apply_overrides(raw, overrides))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"Invalid fine-tuning config ({source}): {problems}") from exc


def dump_config(config: FinetuneConfig) -> str:
    """The resolved config as YAML (saved beside the adapter and logged at the start of a run)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
