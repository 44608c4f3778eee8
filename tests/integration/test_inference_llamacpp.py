"""Real llama.cpp server, real SmolLM2 (the fast test model): chat, streaming, constrained tool call, native
bind_tools through crmind's SmolLM2 tool template, adapter by model name."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from pydantic import BaseModel
from sqlalchemy import Engine

import ledger
from config.db import make_engine, session_factory
from crm.schema import migrate
from inference.bases import get_base
from inference.config import ServingConfig, serving_config
from inference.constrained import ToolSpec, call_tool, generate_typed, tool_chat, typed_chat
from inference.engine_process import EngineHandle, free_port
from inference.errors import PortInUse
from inference.gateway import chat_model
from inference.llamacpp import ServedModel, start_llamacpp
from tests.fixtures.tiny_adapter import make_tiny_adapter

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> ServingConfig:
    root = tmp_path_factory.mktemp("llm")
    return dataclasses.replace(serving_config(), data_dir=root, port=free_port(), threads=2, ctx=2048,
                               engine="llamacpp", base_url=None, model="smollm2")


@pytest.fixture(scope="module")
def engine(cfg: ServingConfig) -> Iterator[EngineHandle]:
    _, gguf_lora = make_tiny_adapter(cfg.data_dir / "adapter")
    smollm2 = get_base("smollm2")
    models = [ServedModel.of_base(smollm2), ServedModel.of_base(smollm2, name="smollm2-crm", lora_path=gguf_lora)]
    with start_llamacpp(models, cfg=cfg) as handle:
        yield handle


@pytest.fixture(scope="module")
def db(cfg: ServingConfig) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{cfg.data_dir / 'ledger.db'}")
    migrate(eng)
    yield eng
    eng.dispose()


def _recorder(db: Engine):  # type: ignore[no-untyped-def]
    def append(**kwargs):  # type: ignore[no-untyped-def]
        with session_factory(db)() as s, s.begin():
            return ledger.append(s, **kwargs)
    return append


def test_engine_serves_base_and_adapter_by_name(engine: EngineHandle) -> None:
    assert set(engine.models) == {"smollm2", "smollm2-crm"} and engine.healthy()


def test_chat_through_the_gateway_writes_a_ledger_row(engine: EngineHandle, cfg: ServingConfig,
                                                      db: Engine) -> None:
    chat = chat_model("smollm2", cfg=cfg, thread_id="it-1", prompt="smoke@1", max_tokens=24,
                      append=_recorder(db))
    reply = chat.invoke("What is the capital of France?")
    assert isinstance(reply.content, str) and reply.content.strip()
    assert reply.usage_metadata is not None and 0 < reply.usage_metadata["output_tokens"] <= 24
    with session_factory(db)() as s:
        row = ledger.decisions_for(s, thread_id="it-1", kind="model_call")[0]
    assert row.model_id == "smollm2" and row.prompt == "smoke@1"
    assert row.tokens_in and row.tokens_out and row.latency_ms and row.latency_ms > 0


def test_streaming_yields_many_chunks(engine: EngineHandle, cfg: ServingConfig) -> None:
    chat = chat_model("smollm2", cfg=cfg, record=False, max_tokens=20)
    chunks = list(chat.stream("Count from one to ten."))
    assert len(chunks) > 3 and "".join(str(c.content) for c in chunks).strip()


def test_a_streaming_answer_is_not_cut_short_by_a_request_waiting_behind_it(engine: EngineHandle,
                                                                              cfg: ServingConfig) -> None:
    from concurrent.futures import ThreadPoolExecutor

    chat = chat_model("smollm2", cfg=cfg, record=False, max_tokens=48)
    ask = "Write a short paragraph about the sea."
    alone = "".join(str(c.content) for c in chat.stream(ask))
    with ThreadPoolExecutor(2) as pool:  # the second waits for the model while the first streams
        both = list(pool.map(lambda _: "".join(str(c.content) for c in chat.stream(ask)), range(2)))
    assert len(alone) > 40 and both == [alone, alone]


class FindAccount(BaseModel):
    name: str


class CreateTask(BaseModel):
    subject: str
    due_in_days: int


TOOLS = [ToolSpec("find_account", "Find an account by name", FindAccount),
         ToolSpec("create_task", "Create a follow-up task", CreateTask)]
ASK = [SystemMessage(content='Answer with a tool call as JSON: {"tool": ..., "arguments": {...}}.'),
       HumanMessage(content="Remind me to call Acme in 3 days.")]


@pytest.mark.parametrize("use_grammar", [False, True], ids=["json-schema", "gbnf"])
def test_constrained_tool_call_parses(engine: EngineHandle, cfg: ServingConfig, use_grammar: bool) -> None:
    chat = tool_chat(TOOLS, use_grammar=use_grammar, cfg=cfg, record=False, max_tokens=80)
    call = call_tool(chat, ASK, TOOLS, attempts=0)  # no repair needed: the grammar admits only valid calls
    assert call.tool in {"find_account", "create_task"}
    assert isinstance(call.arguments, (FindAccount, CreateTask))


def test_bind_tools_gives_a_valid_tool_call_with_an_id(engine: EngineHandle, cfg: ServingConfig,
                                                      db: Engine) -> None:
    chat = chat_model("smollm2", cfg=cfg, thread_id="it-tools", prompt="tools@1", max_tokens=80,
                      append=_recorder(db))
    reply = chat.bind_tools([FindAccount, CreateTask], tool_choice="required").invoke(
        "Remind me to call Acme in 3 days.")
    [call] = reply.tool_calls  # the grammar admits one call of a bound tool with valid arguments
    assert call["name"] in {"FindAccount", "CreateTask"} and call["id"]
    {"FindAccount": FindAccount, "CreateTask": CreateTask}[call["name"]].model_validate(call["args"])
    with session_factory(db)() as s:
        row = ledger.decisions_for(s, thread_id="it-tools", kind="model_call")[0]
    assert row.model_id == "smollm2" and row.prompt == "tools@1"
    assert row.output["tool_calls"][0]["name"] == call["name"]


def test_bind_tools_still_streams_a_plain_answer(engine: EngineHandle, cfg: ServingConfig) -> None:
    chat = chat_model("smollm2", cfg=cfg, record=False, max_tokens=24).bind_tools([FindAccount])
    chunks = list(chat.stream("Say hello to the sales team."))
    text = "".join(str(c.content) for c in chunks)
    assert len(chunks) > 3 and text.strip() and text.lstrip()[0] not in "<`{"
    assert not sum(chunks[1:], chunks[0]).tool_calls


def test_a_tool_turn_round_trips_through_the_template(engine: EngineHandle, cfg: ServingConfig) -> None:
    from langchain_core.messages import ToolMessage

    chat = chat_model("smollm2", cfg=cfg, record=False, max_tokens=40).bind_tools([FindAccount])
    call = {"name": "FindAccount", "args": {"name": "Acme"}, "id": "call_1", "type": "tool_call"}
    history = [HumanMessage(content="Who is Acme's owner?"), AIMessage(content="", tool_calls=[call]),
               ToolMessage(content='{"owner": "Dana Lee"}', tool_call_id="call_1")]
    reply = chat.invoke(history)  # the template renders the call and its result; the engine accepts it
    assert isinstance(reply.content, str) and (reply.content.strip() or reply.tool_calls)


def test_typed_output_on_the_adapter(engine: EngineHandle, cfg: ServingConfig) -> None:
    chat = typed_chat(CreateTask, model="smollm2-crm", cfg=cfg, record=False, max_tokens=60)
    out = generate_typed(chat, [HumanMessage(content="Task: send the Acme quote, due in 2 days. As JSON.")],
                         CreateTask, attempts=0)
    assert isinstance(out.due_in_days, int)


def test_switching_to_the_adapter_by_model_name_changes_the_output(engine: EngineHandle,
                                                                   cfg: ServingConfig) -> None:
    ask = "Name three colours."
    base = chat_model("smollm2", cfg=cfg, record=False, max_tokens=20).invoke(ask).content
    adapted = chat_model("smollm2-crm", cfg=cfg, record=False, max_tokens=20).invoke(ask)
    assert adapted.response_metadata["model_name"] == "smollm2-crm"
    assert adapted.content != base  # the random LoRA shifts greedy decoding
    again = chat_model("smollm2", cfg=cfg, record=False, max_tokens=20).invoke(ask).content
    assert again == base  # and switching back restores the base exactly


def test_second_start_reuses_the_healthy_engine(engine: EngineHandle, cfg: ServingConfig) -> None:
    again = start_llamacpp([ServedModel.of_base(get_base("smollm2"))], cfg=cfg)
    assert not again.owned and again.base_url == engine.base_url
    again.stop()  # a no-op: the engine is not ours
    assert engine.healthy()


def test_port_held_by_something_else_is_a_clear_error(cfg: ServingConfig, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(PortInUse, match="taken by something that is no engine"):
            start_llamacpp([], cfg=dataclasses.replace(cfg, port=port))


def test_json_is_valid_json(engine: EngineHandle, cfg: ServingConfig) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    reply = chat_model(cfg=cfg, record=False, json_schema=schema, max_tokens=20).invoke("Is water wet? JSON.")
    assert isinstance(json.loads(str(reply.content))["ok"], bool)


def test_crmind_chat_reuses_the_running_engine_and_records_the_call(
        engine: EngineHandle, cfg: ServingConfig, db: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from config.db import get_engine
    from config.settings import get_settings
    from serving.cli import app

    monkeypatch.setenv("CRMIND_DATABASE_URL", str(db.url))
    monkeypatch.setenv("CRMIND_DATA_DIR", str(cfg.data_dir))
    monkeypatch.setenv("CRMIND_LLM_PORT", str(cfg.port))
    monkeypatch.setenv("CRMIND_LLM_MODEL", "smollm2")  # the fast test model, whatever the default is
    monkeypatch.delenv("CRMIND_LLM_BASE_URL", raising=False)
    get_settings.cache_clear()
    get_engine.cache_clear()
    try:
        result = CliRunner().invoke(app, ["chat", "Say hello to the sales team.", "--thread", "cli-t1",
                                          "--max-tokens", "12"])
        assert result.exit_code == 0, result.output
        assert "[smollm2 · champion · thread cli-t1]" in result.output
        assert len(result.output.splitlines()[1].strip()) > 0  # the streamed reply
        assert engine.healthy()  # a reused engine is not stopped by the command
        with session_factory(db)() as s:
            row = ledger.decisions_for(s, thread_id="cli-t1", kind="model_call")[0]
        assert row.model_id == "smollm2" and row.output["variant"] == "champion" and row.tokens_out
    finally:
        get_settings.cache_clear()
        get_engine.cache_clear()


@pytest.mark.parametrize("choice", ["required", "auto"])
def test_grammar_last_sampling_picks_the_same_tokens_as_grammar_first(choice: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_core.utils.function_calling import convert_to_openai_tool
    from llama_cpp import Llama, llama
    from llama_cpp.llama_grammar import LlamaGrammar

    from inference.llamacpp_server import check_grammar_last
    from inference.tool_calls import parse_tool_calls, tool_call_grammar

    grammar = tool_call_grammar([convert_to_openai_tool(t) for t in (FindAccount, CreateTask)], choice=choice)
    llm = Llama(str(get_base("smollm2").gguf_path()), n_threads=2, n_ctx=512, verbose=False)
    messages = [{"role": "user", "content": "Remind me to call Acme in 3 days."}]

    def answer() -> str:
        out = llm.create_chat_completion(messages=messages, grammar=LlamaGrammar.from_string(grammar, verbose=False),  # type: ignore[arg-type]
                                         temperature=0.0, max_tokens=96)
        return str(out["choices"][0]["message"]["content"])  # type: ignore[index]

    try:
        first = answer()
        monkeypatch.setattr(llama.Llama, "_init_sampler", llama.Llama._init_sampler)  # restored after the test
        check_grammar_last()
        assert answer() == first
    finally:
        llm.close()
    if choice == "required":
        assert parse_tool_calls(first, ["FindAccount", "CreateTask"]).tool_calls
