"""The embedded engine: llama-cpp-python's OpenAI server, base and adapters under their own model names.

The server's multi-model config file lists one entry per served name (``model_alias``); an adapter is
the base GGUF plus ``lora_path``. The server keeps one model loaded and swaps on demand (about 0.3 s
for SmolLM2), so A/B traffic between base and adapter pays a swap per switch. It runs through
``inference.llamacpp_server``, which adds crmind's chat templates for bases that need one (SmolLM2).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

import inference
from inference.bases import BaseModel, available_bases, get_base
from inference.config import ServingConfig, serving_config
from inference.engine_process import EngineHandle, reuse_or_refuse, spawn
from inference.llamacpp_server import chat_format_name


@dataclass(frozen=True, kw_only=True)
class ServedModel:
    """One name the engine answers to: a base GGUF, optionally with a GGUF-LoRA applied."""

    name: str
    gguf_path: Path
    lora_path: Path | None = None
    chat_format: str | None = None
    """llama-cpp-python chat format; None = the GGUF's own chat template."""

    @classmethod
    def of_base(cls, base: BaseModel, *, name: str | None = None, data_dir: Path | None = None,
                lora_path: Path | None = None) -> ServedModel:
        """``base`` (or an adapter on it, under ``name``), with the chat template it is served with."""
        return cls(name=name or base.name, gguf_path=base.gguf_path(data_dir), lora_path=lora_path,
                   chat_format=chat_format_name(base.chat_template) if base.chat_template else None)


def base_models(*, default: str | None = None, data_dir: Path | None = None) -> list[ServedModel]:
    """Every installed base under its own name, ``default`` first (the one the server loads at start).

    ``default`` is served even if only some of its part packages are installed, so that a missing part is
    a clear error naming it rather than a model that silently is not there.
    """
    bases = available_bases()
    if default is not None:
        first = get_base(default)
        bases = [first, *(b for b in bases if b.name != first.name)]
    return [ServedModel.of_base(b, data_dir=data_dir) for b in bases]


def models_from_registry(*, default: str | None = None, data_dir: Path | None = None) -> list[ServedModel]:
    """Installed bases plus every registered adapter with a GGUF-LoRA; bases only if there is no DB yet."""
    from config.db import session_factory
    from inference import registry

    models = base_models(default=default, data_dir=data_dir)
    try:
        with session_factory()() as session:
            adapters = [m for m in registry.list_models(session) if m.kind == "adapter" and m.gguf_lora_path]
    except SQLAlchemyError:
        return models
    for adapter in adapters:
        models.append(ServedModel.of_base(get_base(adapter.base), name=adapter.name, data_dir=data_dir,
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
        if m.chat_format is not None:
            entry["chat_format"] = m.chat_format
        entries.append(entry)
    # llama-cpp-python's server ends a streaming answer early ("[DONE]") as soon as another request waits for the
    # model by default: with two reps chatting (or the warm-up beside the first question) one got a cut or empty
    # answer. One model, one request at a time: the next one waits its turn instead.
    config: dict[str, Any] = {"host": host, "port": port, "models": entries, "interrupt_requests": False}
    if api_key and api_key != "not-needed":
        config["api_key"] = api_key
    return config


def start_llamacpp(
    models: list[ServedModel] | None = None, *, cfg: ServingConfig | None = None, port: int | None = None,
    reuse: bool = True,
) -> EngineHandle:
    """Start (or reuse, if already healthy on the port) the llama.cpp server for ``models``.

    ``models`` defaults to every installed base (the configured one first, assembled on first use) plus the
    registered adapters; an engine already on the port is reused if it serves ``models`` (by default: if it
    serves the configured model).
    """
    cfg = cfg or serving_config()
    port = cfg.port if port is None else port
    if reuse:
        wanted = [m.name for m in models] if models is not None else [cfg.model]
        existing = reuse_or_refuse(engine="llamacpp", host=cfg.host, port=port, models=wanted)
        if existing is not None:
            return existing
    models = models if models is not None else models_from_registry(default=cfg.model, data_dir=cfg.data_dir)
    names = [m.name for m in models]
    cfg.engine_dir.mkdir(parents=True, exist_ok=True)
    config_path = cfg.engine_dir / f"llamacpp-{port}.json"
    config = server_config(models, host=cfg.host, port=port, threads=cfg.threads, ctx=cfg.ctx,
                           api_key=cfg.api_key)
    config_path.write_text(json.dumps(config, indent=2))
    cmd = [sys.executable, "-m", "inference.llamacpp_server", "--config_file", str(config_path)]
    # The child imports this very crmind (an editable install elsewhere must not win).
    root = str(Path(next(iter(inference.__path__))).parent)
    pythonpath = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return spawn(engine="llamacpp", cmd=cmd, host=cfg.host, port=port, models=names, env={"PYTHONPATH": pythonpath},
                 log_path=cfg.engine_dir / f"llamacpp-{port}.log", timeout_s=cfg.start_timeout_s)
