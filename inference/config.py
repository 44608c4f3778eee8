"""Serving settings: read from the one ``Settings`` object, with defaults for fields it does not have yet."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from config.settings import Settings, get_settings

EngineName = Literal["llamacpp", "vllm"]

# The serving fields of Settings and their defaults (kept for documentation and tests).
DEFAULTS: dict[str, Any] = {
    "llm_engine": "llamacpp",
    "llm_model": "qwen2.5-0.5b",
    "llm_threads": 0,  # 0 = all cores
    "llm_ctx": 4096,
    "llm_repair_attempts": 2,
    "llm_start_timeout_s": 60.0,
    "vllm_python": ".venv-vllm/bin/python",
    "vllm_tensor_parallel": 1,
    "vllm_max_loras": 4,
    "vllm_max_lora_rank": 16,
    "vllm_gpu_memory_utilization": 0.9,
    "vllm_max_model_len": 4096,
}


@dataclass(frozen=True, kw_only=True)
class ServingConfig:
    """The serving knobs in one place (see DEFAULTS for the settings fields they come from)."""

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


def _field(settings: Settings, name: str) -> Any:
    return getattr(settings, name)


def serving_config(settings: Settings | None = None) -> ServingConfig:
    """Serving config from ``settings`` (default: the process-wide settings)."""
    s = settings or get_settings()
    threads = int(_field(s, "llm_threads")) or (os.cpu_count() or 1)
    return ServingConfig(
        base_url=s.llm_base_url,
        host=s.llm_host,
        port=s.llm_port,
        api_key=s.llm_api_key,
        timeout_s=s.llm_timeout_s,
        max_tokens=s.llm_max_tokens,
        data_dir=Path(s.data_dir),
        engine=_field(s, "llm_engine"),
        model=_field(s, "llm_model"),
        threads=threads,
        ctx=int(_field(s, "llm_ctx")),
        repair_attempts=int(_field(s, "llm_repair_attempts")),
        start_timeout_s=float(_field(s, "llm_start_timeout_s")),
        vllm_python=str(_field(s, "vllm_python")),
        vllm_tensor_parallel=int(_field(s, "vllm_tensor_parallel")),
        vllm_max_loras=int(_field(s, "vllm_max_loras")),
        vllm_max_lora_rank=int(_field(s, "vllm_max_lora_rank")),
        vllm_gpu_memory_utilization=float(_field(s, "vllm_gpu_memory_utilization")),
        vllm_max_model_len=int(_field(s, "vllm_max_model_len")),
    )
