"""peft -> GGUF-LoRA: tensor names from gguf's own maps, shapes checked, metadata llama.cpp expects."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from finetune.lora_gguf import convert_peft_to_gguf, write_peft_lora
from inference.bases import get_base
from inference.errors import AdapterConversionError

BASE = get_base("smollm2").gguf_path()


def _peft(tmp_path: Path, shapes: dict[str, tuple[int, int]], rank: int = 2) -> Path:
    tensors = {}
    for module, (n_in, n_out) in shapes.items():
        key = f"base_model.model.model.layers.0.self_attn.{module}"
        tensors[f"{key}.lora_A.weight"] = np.ones((rank, n_in), np.float32)
        tensors[f"{key}.lora_B.weight"] = np.arange(n_out * rank, dtype=np.float32).reshape(n_out, rank)
    return write_peft_lora(tmp_path / "peft", tensors, rank=rank, alpha=4.0, targets=list(shapes),
                           base_name="smollm2")


def test_names_shapes_and_metadata(tmp_path: Path) -> None:
    peft = _peft(tmp_path, {"q_proj": (576, 576), "v_proj": (576, 192)})
    out = convert_peft_to_gguf(peft, tmp_path / "a.gguf", base_gguf=BASE)
    reader = gguf.GGUFReader(str(out))
    tensors = {t.name: t for t in reader.tensors}
    assert set(tensors) == {"blk.0.attn_q.weight.lora_a", "blk.0.attn_q.weight.lora_b",
                            "blk.0.attn_v.weight.lora_a", "blk.0.attn_v.weight.lora_b"}
    assert list(tensors["blk.0.attn_v.weight.lora_a"].shape) == [576, 2]  # ne = (in, rank)
    assert list(tensors["blk.0.attn_v.weight.lora_b"].shape) == [2, 192]  # ne = (rank, out)
    assert reader.fields["general.type"].contents() == "adapter"
    assert reader.fields["adapter.type"].contents() == "lora"
    assert reader.fields["adapter.lora.alpha"].contents() == 4.0
    # v is not rotary: rows unchanged; q rows are permuted like llama.cpp's converter does.
    v_b = np.asarray(tensors["blk.0.attn_v.weight.lora_b"].data).reshape(192, 2)
    assert np.array_equal(v_b, np.arange(384, dtype=np.float32).reshape(192, 2))
    q_b = np.asarray(tensors["blk.0.attn_q.weight.lora_b"].data).reshape(576, 2)
    assert not np.array_equal(q_b, np.arange(1152, dtype=np.float32).reshape(576, 2))
    assert sorted(q_b[:, 0].tolist()) == sorted(np.arange(0, 1152, 2, dtype=np.float32).tolist())


def test_wrong_shape_is_a_clear_error(tmp_path: Path) -> None:
    peft = _peft(tmp_path, {"v_proj": (576, 999)})
    with pytest.raises(AdapterConversionError, match="does not fit"):
        convert_peft_to_gguf(peft, tmp_path / "a.gguf", base_gguf=BASE)


def test_not_a_peft_folder(tmp_path: Path) -> None:
    with pytest.raises(AdapterConversionError, match="not a peft adapter"):
        convert_peft_to_gguf(tmp_path, tmp_path / "a.gguf", base_gguf=BASE)
