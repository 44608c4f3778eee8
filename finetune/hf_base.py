"""An HF-format copy of a GGUF base (for vLLM and peft), built locally: no hub is reachable."""

from __future__ import annotations

import json
from pathlib import Path

from inference.bases import get_base


def build_hf_base(base: str, out_dir: Path) -> Path:
    """Dequantise ``base``'s GGUF into ``out_dir`` (safetensors + tokenizer); skipped if already there.

    ``from_pretrained(gguf_file=...)`` reads the GGUF; the weights are copied into a fresh
    ``from_config`` model so ``save_pretrained`` writes plain tensors (about a minute for SmolLM2).
    """
    if (out_dir / "config.json").exists() and any(out_dir.glob("*.safetensors")):
        return _drop_gguf_quantization(out_dir)
    return hf_from_gguf(get_base(base).gguf_path(), out_dir)


def hf_from_gguf(gguf: Path, out_dir: Path) -> Path:
    """Dequantise the GGUF file ``gguf`` into ``out_dir``; skipped if already there (no crmind package needed)."""
    if (out_dir / "config.json").exists() and any(out_dir.glob("*.safetensors")):
        return _drop_gguf_quantization(out_dir)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    fresh = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)  # type: ignore[no-untyped-call]
    fresh.load_state_dict(loaded.state_dict())
    out_dir.mkdir(parents=True, exist_ok=True)
    fresh.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return _drop_gguf_quantization(out_dir)


def _drop_gguf_quantization(out_dir: Path) -> Path:
    """The copy holds plain float weights; a leftover ``quantization_config: gguf`` makes vLLM refuse it."""
    path = out_dir / "config.json"
    config = json.loads(path.read_text())
    if config.pop("quantization_config", None) is not None:
        path.write_text(json.dumps(config, indent=2))
    return out_dir
