"""Serving settings, read from the one ``Settings`` object."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from config.settings import Settings, get_settings

EngineName = Literal["llamacpp", "vllm"]

@dataclass(frozen=True, kw_only=True)
class ServingConfig:
    """The serving knobs of ``Settings`` in one place (``llm_*`` and ``vllm_*`` fields)."""

    base_url: str | None
    host: str
    port: int
    api_key: str
    timeout_s: float
    max_tokens: int
    data_dir: Path
    engine: EngineName
    model: str
    threads: int
    ctx: int
    repair_attempts: int
    start_timeout_s: float
    vllm_python: str
    vllm_tensor_parallel: int
    vllm_max_loras: int
    vllm_max_lora_rank: int
    vllm_gpu_memory_utilization: float
    vllm_max_model_len: int

    @property
    def engine_dir(self) -> Path:
        """Where engine config files and logs go."""
        return self.data_dir / "engines"


def serving_config(settings: Settings | None = None) -> ServingConfig:
    """Serving config from ``settings`` (default: the process-wide settings)."""
    s = settings or get_settings()
    threads = int(s.llm_threads) or (os.cpu_count() or 1)
    return ServingConfig(
        base_url=s.llm_base_url,
        host=s.llm_host,
        port=s.llm_port,
        api_key=s.llm_api_key,
        timeout_s=s.llm_timeout_s,
        max_tokens=s.llm_max_tokens,
        data_dir=Path(s.data_dir),
        engine=s.llm_engine,
        model=s.llm_model,
        threads=threads,
        ctx=int(s.llm_ctx),
        repair_attempts=int(s.llm_repair_attempts),
        start_timeout_s=float(s.llm_start_timeout_s),
        vllm_python=str(s.vllm_python),
        vllm_tensor_parallel=int(s.vllm_tensor_parallel),
        vllm_max_loras=int(s.vllm_max_loras),
        vllm_max_lora_rank=int(s.vllm_max_lora_rank),
        vllm_gpu_memory_utilization=float(s.vllm_gpu_memory_utilization),
        vllm_max_model_len=int(s.vllm_max_model_len),
    )
