"""Real SmolLM2: LoRA SFT on all seven projections, GGUF-LoRA conversion, and llama.cpp serving what was learned.

The adapter is trained to overfit one answer the base model would never give; served by llama.cpp on the
quantised base, it must give it. 40 steps at 1e-3: at 3e-3 the loss oscillated (0.05 to 1.1 at the last step,
by seed) and the served answer survived or not with the random trajectory; at 1e-3 it ends near 0.03.
That checks training, the peft -> GGUF tensor names and row order (q/k
permutation), and the engine's adapter loading together, on real weights.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from finetune.config import load_config
from finetune.train import train
from inference.bases import get_base
from inference.config import serving_config
from inference.engine_process import free_port
from inference.gateway import chat_model
from inference.llamacpp import ServedModel, start_llamacpp

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUESTION = "What is the vault code?"
ANSWER = "The vault code is ZEBRA-42."


def test_trained_adapter_serves_what_it_learned_on_llamacpp(tmp_path: Path, sqlite_engine: Engine) -> None:
    data = tmp_path / "set"
    data.mkdir()
    examples = [{"id": f"z{i}", "source": "synthetic", "kind": "no_tool", "language": "en", "prompt": "rule_author",
                 "messages": [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": ANSWER}],
                 "contact_ids": []} for i in range(4)]
    (data / "train.jsonl").write_text("\n".join(json.dumps(e) for e in examples))
    config = load_config(None, [f"data.dataset={data}", "name=smollm2-vault", f"output_dir={tmp_path / 'run'}",
                                "data.validation_share=0", "train.max_steps=40", "train.batch_size=4",
                                "train.grad_accum=1", "train.learning_rate=1e-3", "train.warmup_ratio=0",
                                "train.scheduler=constant", "train.save_steps=100", "lora.dropout=0"])
    result = train(config, progress=False)
    assert result.gguf_path is not None and result.loss_last is not None and result.loss_last < 0.2

    cfg = dataclasses.replace(serving_config(), data_dir=tmp_path / "llm", port=free_port(), threads=2, ctx=1024,
                              engine="llamacpp", base_url=None, model="smollm2")
    smollm2 = get_base("smollm2")
    models = [ServedModel.of_base(smollm2),
              ServedModel.of_base(smollm2, name="smollm2-vault", lora_path=Path(result.gguf_path))]
    with start_llamacpp(models, cfg=cfg):
        adapted = chat_model("smollm2-vault", cfg=cfg, record=False, max_tokens=16).invoke(QUESTION).content
        base = chat_model("smollm2", cfg=cfg, record=False, max_tokens=16).invoke(QUESTION).content
    assert "ZEBRA-42" in str(adapted)
    assert "ZEBRA" not in str(base)
