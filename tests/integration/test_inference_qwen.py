"""The default model (Qwen2.5-Coder, assembled from its part packages) through the real llama.cpp engine:
``bind_tools`` brings back a tool call for an English and a Chinese request."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Literal

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from config.settings import Settings
from inference.bases import get_base
from inference.config import ServingConfig, serving_config
from inference.engine_process import EngineHandle, free_port
from inference.gateway import chat_model
from inference.llamacpp import ServedModel, start_llamacpp
from inference.parts import missing_parts

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEFAULT = get_base(Settings.model_fields["llm_model"].default)  # the shipped default, whatever the env says


class get_record(BaseModel):  # noqa: N801 - the tool's name
    """Fetch one CRM record (account = customer company) by its type and numeric id."""

    object_type: Literal["account", "contact", "opportunity", "lead"]
    id: int


class search_notes(BaseModel):  # noqa: N801
    """Search notes, emails and call logs by meaning."""

    query: str = Field(description="What to look for.")


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> ServingConfig:
    return dataclasses.replace(serving_config(), data_dir=tmp_path_factory.mktemp("qwen"), port=free_port(),
                               threads=2, ctx=2048, engine="llamacpp", base_url=None, model=DEFAULT.name,
                               timeout_s=300.0, start_timeout_s=120.0)


@pytest.fixture(scope="module")
def engine(cfg: ServingConfig) -> Iterator[EngineHandle]:
    if DEFAULT.split is not None and (missing := missing_parts(DEFAULT.split)):
        pytest.skip(f"{DEFAULT.name}'s part packages are not installed: {', '.join(p.distribution for p in missing)}")
    with start_llamacpp([ServedModel.of_base(DEFAULT, data_dir=cfg.data_dir)], cfg=cfg) as handle:
        yield handle


@pytest.mark.parametrize(("request_text", "object_type", "record_id"), [
    ("Show me contact 77.", "contact", 77),
    ("查看客户 2048 的详细信息。", "account", 2048),
], ids=["en", "zh"])
def test_default_model_calls_a_tool_in_english_and_chinese(
        engine: EngineHandle, cfg: ServingConfig, request_text: str, object_type: str, record_id: int) -> None:
    chat = chat_model(DEFAULT.name, cfg=cfg, record=False, max_tokens=80).bind_tools([get_record, search_notes])
    reply = chat.invoke([SystemMessage(content="You are a CRM assistant. Use the tools for CRM data."),
                         HumanMessage(content=request_text)])
    assert reply.tool_calls, f"no tool call: {reply.content!r}"
    call = reply.tool_calls[0]
    assert call["name"] == "get_record" and call["id"]
    assert call["args"]["id"] == record_id and call["args"]["object_type"] == object_type
