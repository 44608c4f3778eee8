"""The embedded engine: llama-cpp-python's OpenAI server, base and adapters under their own model names.

The server's multi-model config file lists one entry per served name (``model_alias``); an adapter is
the base GGUF plus ``lora_path``. The server keeps one model loaded and swaps on demand (about 0.3 s
for SmolLM2), so A/B traffic between base and adapter pays a swap per switch.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from inference.bases import available_bases, get_base
from inference.config import ServingConfig, serving_config
from inference.engine_process import EngineHandle, reuse_or_refuse, spawn


@dataclass(frozen=True, kw_only=True)
class ServedModel:
    """One name the engine answers to: a base GGUF, optionally with a GGUF-LoRA applied."""

    name: str
    gguf_path: Path
    lora_path: Path | None = None


def base_models() -> list[ServedModel]:
    """Every installed base under its own name."""
    return [ServedModel(name=b.name, gguf_path=b.gguf_path()) for b in available_bases()]


def models_from_registry() -> list[ServedModel]:
    """Installed bases plus every registered adapter with a GGUF-LoRA; bases only if there is no DB yet."""
    from config.db import session_factory
    from inference import registry

    models = base_models()
    try:
        with session_factory()() as session:
            adapters = [m for m in registry.list_models(session) if m.kind == "adapter" and m.gguf_lora_path]
    except SQLAlchemyError:
        return models
    for adapter in adapters:
        models.append(ServedModel(name=adapter.name, gguf_path=get_base(adapter.base).gguf_path(),
                                  lora_path=Path(adapter.gguf_lora_path or "")))
    return models


def server_config(models: list[ServedModel], *, host: str, port: int, threads: int, ctx: int,
                  api_key: str | None = None) -> dict[str, Any]:
    """The ``--config_file`` content for ``llama_cpp.server``; the first model is the default."""
    entries = []
    for m in models:
        entry: dict[str, Any] = {"model": str(m.gguf_path), "model_alias": m.name, "n_threads": threads,
                                 "n_threads_batch": threads, "n_ctx": ctx, "verbose": False}
        if m.lora_path is not None:
            entry["lora_path"] = str(m.lora_path)
        entries.append(entry)
    config: dict[str, Any] = {"host": host, "port": port, "models": entries}
    if api_key and api_key != "not-needed":
        config["api_key"] = api_key
    return config


def start_llamacpp(
    models: list[ServedModel] | None = None, *, cfg: ServingConfig | None = None, port: int | None = None,
    reuse: bool = True,
) -> EngineHandle:
    """Start (or reuse, if already healthy on the port) the llama.cpp server for ``models``."""
    cfg = cfg or serving_config()
    models = models if models is not None else models_from_registry()
    port = cfg.port if port is None else port
    names = [m.name for m in models]
    if reuse:
        existing = reuse_or_refuse(engine="llamacpp", host=cfg.host, port=port, models=names)
        if existing is not None:
            return existing
    cfg.engine_dir.mkdir(parents=True, exist_ok=True)
    config_path = cfg.engine_dir / f"llamacpp-{port}.json"
    config = server_config(models, host=cfg.host, port=port, threads=cfg.threads, ctx=cfg.ctx,
                           api_key=cfg.api_key)
    config_path.write_text(json.dumps(config, indent=2))
    cmd = [sys.executable, "-m", "llama_cpp.server", "--config_file", str(config_path)]
    return spawn(engine="llamacpp", cmd=cmd, host=cfg.host, port=port, models=names,
                 log_path=cfg.engine_dir / f"llamacpp-{port}.log", timeout_s=cfg.start_timeout_s)
