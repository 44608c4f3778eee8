"""A tiny random LoRA adapter for SmolLM2 (tests, benchmarks): peft format, then converted to GGUF-LoRA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from serving.llm.bases import get_base
from serving.llm.lora_gguf import convert_peft_to_gguf, write_peft_lora

# SmolLM2-135M: hidden 576, 9 query heads and 3 kv heads of 64 -> q_proj 576->576, v_proj 576->192.
SHAPES = {"q_proj": (576, 576), "v_proj": (576, 192)}


def make_tiny_adapter(
    out_dir: Path, *, rank: int = 4, scale: float = 0.05, seed: int = 0
) -> tuple[Path, Path]:
    """Random rank-``rank`` LoRA on q/v of every layer; returns (peft dir, gguf path)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    tensors: dict[str, Any] = {}
    for layer in range(30):
        for module, (n_in, n_out) in SHAPES.items():
            key = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{key}.lora_A.weight"] = (rng.standard_normal((rank, n_in)) * scale).astype(np.float32)
            tensors[f"{key}.lora_B.weight"] = (rng.standard_normal((n_out, rank)) * scale).astype(np.float32)
    peft_dir = write_peft_lora(out_dir / "peft", tensors, rank=rank, alpha=float(rank),
                               targets=list(SHAPES), base_name="smollm2")
    base_gguf = get_base("smollm2").gguf_path()
    gguf_path = convert_peft_to_gguf(peft_dir, out_dir / "adapter.gguf", base_gguf=base_gguf)
    return peft_dir, gguf_path
