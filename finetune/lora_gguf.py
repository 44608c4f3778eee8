"""Convert a peft LoRA adapter to GGUF-LoRA for llama.cpp, naming tensors with ``gguf``'s own maps.

peft key ``base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight`` becomes
``blk.3.attn_q.weight.lora_a`` via ``gguf.get_tensor_name_map``; the adapter's metadata
(``general.type=adapter``, ``adapter.type=lora``, ``adapter.lora.alpha``) follows llama.cpp's loader.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inference.errors import AdapterConversionError

_PREFIX = "base_model.model."
_PARTS = {".lora_A.weight": "lora_a", ".lora_B.weight": "lora_b"}


def _base_info(base_gguf: Path) -> dict[str, Any]:
    import gguf

    reader = gguf.GGUFReader(str(base_gguf))
    arch = str(reader.fields["general.architecture"].contents())

    def meta(key: str) -> Any:
        field = reader.fields.get(f"{arch}.{key}")
        return None if field is None else field.contents()

    return {
        "arch": arch,
        "blocks": int(meta("block_count")),
        "heads": meta("attention.head_count"),
        "kv_heads": meta("attention.head_count_kv"),
        # GGUF shapes are (in, out): ne[0] is the input dimension.
        "shapes": {t.name: tuple(int(d) for d in t.shape) for t in reader.tensors},
    }


def _permute_rows(weight: Any, heads: int) -> Any:
    """The row order llama.cpp's converter gives Llama's q/k projections (rotary halves interleaved)."""
    return (weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))


def convert_peft_to_gguf(peft_dir: Path, out_path: Path, *, base_gguf: Path) -> Path:
    """Write ``peft_dir``'s LoRA as GGUF-LoRA at ``out_path`` for the base model in ``base_gguf``."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    config_path, weights_path = peft_dir / "adapter_config.json", peft_dir / "adapter_model.safetensors"
    if not config_path.exists() or not weights_path.exists():
        raise AdapterConversionError(f"{peft_dir} is not a peft adapter (adapter_config.json + safetensors).")
    config = json.loads(config_path.read_text())
    if config.get("peft_type", "LORA") != "LORA":
        raise AdapterConversionError(f"Only LoRA adapters convert; {peft_dir} is {config.get('peft_type')}.")
    info = _base_info(base_gguf)
    arch_by_name = {name: arch for arch, name in gguf.MODEL_ARCH_NAMES.items()}
    if info["arch"] not in arch_by_name:
        raise AdapterConversionError(f"gguf does not know the architecture {info['arch']!r}.")
    names = gguf.get_tensor_name_map(arch_by_name[info["arch"]], info["blocks"])

    writer = gguf.GGUFWriter(str(out_path), info["arch"])
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config.get("lora_alpha", config.get("r", 8))))
    count = 0
    for key, tensor in sorted(load_file(str(weights_path)).items()):
        suffix = next((s for s in _PARTS if key.endswith(s)), None)
        if suffix is None:
            continue
        hf_module = key.removeprefix(_PREFIX).removesuffix(suffix)
        target = names.get_name(hf_module + ".weight", try_suffixes=(".weight",))
        if target is None or target not in info["shapes"]:
            raise AdapterConversionError(f"No tensor in the base model matches the adapter's {hf_module}.")
        n_in, n_out = info["shapes"][target][:2]
        weight = tensor.astype(np.float32)
        if suffix == ".lora_A.weight" and weight.shape[1] != n_in:
            raise AdapterConversionError(f"{key}: shape {weight.shape} does not fit {target} (in={n_in}).")
        if suffix == ".lora_B.weight":
            if weight.shape[0] != n_out:
                raise AdapterConversionError(f"{key}: {weight.shape} does not fit {target} (out={n_out}).")
            if info["arch"] == "llama" and target.endswith(("attn_q.weight", "attn_k.weight")):
                heads = info["heads"] if target.endswith("attn_q.weight") else info["kv_heads"]
                weight = _permute_rows(weight, int(heads))
        writer.add_tensor(f"{target}.{_PARTS[suffix]}", np.ascontiguousarray(weight))
        count += 1
    if count == 0:
        raise AdapterConversionError(f"{peft_dir} holds no LoRA tensors.")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out_path


def write_peft_lora(
    out_dir: Path, tensors: dict[str, Any], *, rank: int, alpha: float, targets: list[str], base_name: str
) -> Path:
    """Write LoRA tensors (peft key -> array) as a peft adapter folder that peft and vLLM load."""
    from safetensors.numpy import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out_dir / "adapter_model.safetensors"))
    (out_dir / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": alpha, "lora_dropout": 0.0,
        "target_modules": targets, "bias": "none", "base_model_name_or_path": base_name,
        "fan_in_fan_out": False, "inference_mode": True,
    }, indent=2))
    return out_dir
