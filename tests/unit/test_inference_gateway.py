"""Gateway: one factory, engine dialects for constraints, budget and timeout, one ledger row per call."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from inference.config import serving_config
from inference.gateway import chat_model, constraint_body
from inference.ledger_callback import LedgerCallback

SCHEMA = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}


def test_llamacpp_gets_json_object_with_schema_and_vllm_gets_json_schema() -> None:
    assert constraint_body("llamacpp", json_schema=SCHEMA) == {
        "response_format": {"type": "json_object", "schema": SCHEMA}}
    vllm = constraint_body("vllm", json_schema=SCHEMA)
    assert vllm["response_format"]["type"] == "json_schema"
    assert vllm["response_format"]["json_schema"]["schema"] == SCHEMA
    assert constraint_body("llamacpp", grammar="root ::= \"a\"") == {"grammar": "root ::= \"a\""}
    assert constraint_body("vllm", grammar="g") == {"structured_outputs": {"grammar": "g"}}
    assert constraint_body("vllm") == {}


def test_chat_model_carries_budget_timeout_and_base_url() -> None:
    cfg = serving_config()
    chat = chat_model("smollm2-crm", max_tokens=77, timeout_s=3.5, json_schema=SCHEMA, record=False,
                      engine="llamacpp")
    assert chat.model_name == "smollm2-crm"
    assert chat.max_tokens == 77 and chat.request_timeout == 3.5
    assert chat.extra_body is not None and chat.extra_body["max_tokens"] == 77
    assert chat.extra_body["response_format"]["schema"] == SCHEMA
    assert chat.openai_api_base == f"http://{cfg.host}:{cfg.port}/v1"
    assert not chat.callbacks


def test_ledger_callback_writes_one_row_per_call_with_tokens_and_latency() -> None:
    rows: list[dict[str, Any]] = []
    callback = LedgerCallback(model="smollm2", actor="assistant", thread_id="t1", prompt="answer@abc",
                              variant="champion", engine="llamacpp", append=lambda **kw: rows.append(kw))
    fake = FakeListChatModel(responses=["hello there", "second"], callbacks=[callback])
    fake.invoke("hi")
    fake.invoke("again")
    assert len(rows) == 2
    row = rows[0]
    assert row["kind"] == "model_call" and row["model_id"] == "smollm2" and row["prompt"] == "answer@abc"
    assert row["thread_id"] == "t1" and row["output"]["variant"] == "champion"
    assert row["output"]["text"] == "hello there" and row["input_summary"] == "hi"
    assert row["latency_ms"] > 0 and row["latency_ms"] < 60_000  # a measured duration, in milliseconds


def test_failed_call_is_recorded_too() -> None:
    rows: list[dict[str, Any]] = []
    callback = LedgerCallback(model="m", actor="a", append=lambda **kw: rows.append(kw))

    class Boom(FakeListChatModel):
        def _call(self, *args: Any, **kwargs: Any) -> str:
            raise TimeoutError("engine too slow")

    with pytest.raises(TimeoutError):
        Boom(responses=["x"], callbacks=[callback]).invoke("hi")
    assert len(rows) == 1 and "engine too slow" in rows[0]["output"]["error"]
