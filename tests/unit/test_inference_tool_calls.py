"""Native tool calls: the grammar (checked token by token by llama.cpp's own grammar sampler), the parser of
``<tool_call>`` output, the gateway's bind_tools on llama.cpp and vLLM, streaming, and the ledger row."""

from __future__ import annotations

import ctypes
import json
import math
from collections.abc import Iterator
from functools import lru_cache
from typing import Any, Literal

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field

from inference.gateway import GatewayChatModel, _ToolCallSplitter, chat_model
from inference.ledger_callback import LedgerCallback
from inference.tool_calls import parse_tool_calls, tool_call_grammar


class get_record(BaseModel):  # noqa: N801 - the tool's name
    """Fetch one CRM record by type and id."""

    object_type: Literal["account", "contact"]
    id: int


class search_notes(BaseModel):  # noqa: N801
    """Search notes by meaning."""

    query: str = Field(description="what to look for")
    limit: int | None = None


TOOLS = [convert_to_openai_tool(t) for t in (get_record, search_notes)]
NAMES = ["get_record", "search_notes"]
CALL = '{"name": "get_record", "arguments": {"object_type": "account", "id": 42}}'


@lru_cache(maxsize=1)
def _vocab() -> Any:
    from llama_cpp import Llama

    from inference.bases import get_base

    return Llama(str(get_base("smollm2").gguf_path()), vocab_only=True, verbose=False)


@pytest.fixture(autouse=True, scope="module")
def _close_vocab() -> Iterator[None]:
    yield
    if _vocab.cache_info().currsize:
        _vocab().close()  # before interpreter exit, when llama.cpp's free functions are gone
        _vocab.cache_clear()


def admits(grammar: str, text: str) -> bool:
    """Whether llama.cpp's grammar sampler lets ``text`` through, token by token, and then lets it end."""
    import llama_cpp

    vocab = _vocab()
    sampler = llama_cpp.llama_sampler_init_grammar(vocab._model.vocab, grammar.encode(), b"root")
    assert sampler, "llama.cpp refused the grammar"
    try:
        for token in [*vocab.tokenize(text.encode(), add_bos=False, special=True), vocab.token_eos()]:
            cell = (llama_cpp.llama_token_data * 1)(llama_cpp.llama_token_data(token, 0.0, 0.0))
            candidates = llama_cpp.llama_token_data_array(cell, 1, -1, False)
            llama_cpp.llama_sampler_apply(sampler, ctypes.byref(candidates))
            if math.isinf(cell[0].logit):
                return False
            if token != vocab.token_eos():
                llama_cpp.llama_sampler_accept(sampler, token)
        return True
    finally:
        llama_cpp.llama_sampler_free(sampler)


@pytest.mark.parametrize("text", [
    f"<tool_call>\n{CALL}\n</tool_call>",
    f"```json\n{CALL}\n```",
    CALL,
    '{\n  "name": "search_notes",\n  "arguments": {\n    "query": "折扣 for Acme"\n  }\n}',
    "Account 42 is Acme Corp; its renewal is due in May.",
    "好的，客户 42 是 Acme。",
])
def test_auto_grammar_admits_a_valid_call_in_any_framing_and_plain_text(text: str) -> None:
    assert admits(tool_call_grammar(TOOLS), text)


@pytest.mark.parametrize("text", [
    '<tool_call>\n{"name": "delete_everything", "arguments": {}}\n</tool_call>',  # unknown tool
    '<tool_call>\n{"name": "get_record", "arguments": {"object_type": "deal", "id": 42}}\n</tool_call>',  # enum
    '<tool_call>\n{"name": "get_record", "arguments": {"object_type": "account", "id": "42"}}\n</tool_call>',
    '<tool_call>\n{"name": "get_record", "arguments": {"object_type": "account"}}\n</tool_call>',  # missing
    '<tool_call>\n{"name": "get_record", "arguments": {"object_type": "account", "id": 4, "x": 1}}\n</tool_call>',
    f"<tool_call>\n{CALL}",  # never closed
    '{"answer": "a JSON value that is not a call"}',
    " " + CALL,  # text may not start blank: a call can only come through the call branch
])
def test_auto_grammar_rejects_unknown_tools_bad_arguments_and_calls_in_disguise(text: str) -> None:
    assert not admits(tool_call_grammar(TOOLS), text)


def test_required_and_named_choices_force_a_call() -> None:
    required = tool_call_grammar(TOOLS, choice="required")
    assert admits(required, CALL) and not admits(required, "Sure, here it is.")
    named = tool_call_grammar(TOOLS, choice="search_notes")
    assert admits(named, '{"name": "search_notes", "arguments": {"query": "x"}}')
    assert not admits(named, CALL)
    with pytest.raises(ValueError, match="names no bound tool"):
        tool_call_grammar(TOOLS, choice="nope")


def test_none_admits_text_only_and_parallel_admits_several_calls() -> None:
    none = tool_call_grammar(TOOLS, choice="none")
    assert admits(none, "Just text.") and not admits(none, CALL)
    one = tool_call_grammar(TOOLS, choice="required")
    two = f"<tool_call>\n{CALL}\n</tool_call>\n<tool_call>\n{CALL}\n</tool_call>"
    assert not admits(one, two) and admits(tool_call_grammar(TOOLS, choice="required", parallel=True), two)


@pytest.mark.parametrize("text", [
    f"<tool_call>\n{CALL}\n</tool_call>", f"```json\n{CALL}\n```", CALL, f"\n  <tool_call>{CALL}</tool_call>  ",
])
def test_parser_turns_every_framing_into_one_tool_call_with_an_id(text: str) -> None:
    reply = parse_tool_calls(text, NAMES)
    assert reply.content == "" and not reply.invalid_tool_calls
    [call] = reply.tool_calls
    assert (call["name"], call["args"]) == ("get_record", {"object_type": "account", "id": 42})
    assert call["id"] and call["id"].startswith("call_")


def test_parser_keeps_text_and_gives_each_call_its_own_id() -> None:
    assert parse_tool_calls("Plain answer.", NAMES).content == "Plain answer."
    assert parse_tool_calls('```python\nprint("hi")\n```', NAMES).tool_calls == []  # code, not a call
    assert parse_tool_calls('{"total": 3}', NAMES).content == '{"total": 3}'  # JSON, not a call
    two = parse_tool_calls(f"<tool_call>{CALL}</tool_call>\n<tool_call>{CALL}</tool_call>", NAMES)
    assert len({c["id"] for c in two.tool_calls}) == 2
    mixed = parse_tool_calls(f"Let me look. <tool_call>{CALL}</tool_call>", NAMES)
    assert mixed.content == "Let me look." and mixed.tool_calls[0]["name"] == "get_record"
    stringy = parse_tool_calls('<tool_call>{"name": "search_notes", "arguments": "{\\"query\\": \\"x\\"}"}'
                               "</tool_call>", NAMES)
    assert stringy.tool_calls[0]["args"] == {"query": "x"}


@pytest.mark.parametrize(("text", "error"), [
    ('<tool_call>{"name": "drop_table", "arguments": {}}</tool_call>', "No tool called 'drop_table'"),
    ("<tool_call>{not json}</tool_call>", "Not a tool call"),
    ('<tool_call>\n{"name": "get_record", "argum', "cut off"),
])
def test_parser_reports_unusable_calls_as_invalid_with_the_reason(text: str, error: str) -> None:
    reply = parse_tool_calls(text, NAMES)
    assert not reply.tool_calls
    [bad] = reply.invalid_tool_calls
    assert error in (bad["error"] or "") and bad["id"]


# --- the gateway ------------------------------------------------------------------------------------------


@tool
def find_account(name: str) -> str:
    """Find an account by name."""
    return name


def test_bind_tools_on_llamacpp_sends_tools_and_the_grammar_but_no_tool_choice() -> None:
    chat = chat_model("qwen2.5-0.5b", engine="llamacpp", record=False, max_tokens=50, json_schema={"type": "object"})
    bound = chat.bind_tools([find_account, get_record], tool_choice="get_record")
    kwargs = bound.kwargs  # type: ignore[attr-defined]
    assert [t["function"]["name"] for t in kwargs["tools"]] == ["find_account", "get_record"]
    assert "tool_choice" not in kwargs  # llama-cpp-python would run its own function-call path
    body = kwargs["extra_body"]
    assert body["max_tokens"] == 50 and "response_format" not in body
    assert admits(body["grammar"], '{"name": "get_record", "arguments": {"object_type": "contact", "id": 1}}')
    assert not admits(body["grammar"], '{"name": "find_account", "arguments": {"name": "Acme"}}')


def test_bind_tools_on_vllm_is_openai_native() -> None:
    bound = chat_model("qwen2.5-0.5b", engine="vllm", record=False).bind_tools([find_account], tool_choice="any")
    kwargs = bound.kwargs  # type: ignore[attr-defined]
    assert kwargs["tool_choice"] == "required" and "grammar" not in (kwargs.get("extra_body") or {})


class ScriptedEngine(GatewayChatModel):
    """The gateway model with the HTTP call replaced by a scripted reply (text, streamed token by token)."""

    reply: str = ""

    def _scripted(self) -> Iterator[ChatGenerationChunk]:
        for i in range(0, len(self.reply), 3):
            yield ChatGenerationChunk(message=AIMessageChunk(content=self.reply[i:i + 3]))
        yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata={
            "input_tokens": 90, "output_tokens": 20, "total_tokens": 110}))


def _scripted(reply: str, **kwargs: Any) -> ScriptedEngine:
    model = ScriptedEngine(model="qwen2.5-0.5b", api_key="x", base_url="http://127.0.0.1:9/v1", reply=reply,  # type: ignore[arg-type]
                           **kwargs)
    return model


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_openai import ChatOpenAI

    def generate(self: ScriptedEngine, messages: Any, stop: Any = None, run_manager: Any = None,
                 **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.reply))])

    def stream(self: ScriptedEngine, messages: Any, stop: Any = None, run_manager: Any = None,
               **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for chunk in self._scripted():
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    monkeypatch.setattr(ChatOpenAI, "_generate", generate)
    monkeypatch.setattr(ChatOpenAI, "_stream", stream)


@pytest.mark.usefixtures("scripted")
def test_invoke_and_stream_return_tool_calls_from_the_reply_text() -> None:
    chat = _scripted(f"<tool_call>\n{CALL}\n</tool_call>").bind_tools([get_record, search_notes])
    reply = chat.invoke("Open account 42")
    assert reply.content == "" and reply.tool_calls[0]["args"] == {"object_type": "account", "id": 42}
    chunks = list(chat.stream("Open account 42"))
    merged = sum(chunks[1:], chunks[0])
    assert merged.tool_calls[0]["name"] == "get_record" and merged.tool_calls[0]["id"]
    assert merged.content == "" and merged.usage_metadata is not None  # metadata survives the hold


@pytest.mark.usefixtures("scripted")
def test_plain_text_streams_through_chunk_by_chunk_with_tools_bound() -> None:
    text = "Acme's renewal is due in May, and the champion is Dana."
    chunks = list(_scripted(text).bind_tools([get_record]).stream("When is Acme's renewal?"))
    assert len(chunks) > 10 and "".join(str(c.content) for c in chunks) == text
    assert not sum(chunks[1:], chunks[0]).tool_calls


@pytest.mark.usefixtures("scripted")
def test_without_tools_a_json_looking_answer_stays_text() -> None:
    assert _scripted(CALL).invoke("x").content == CALL


def test_splitter_decides_on_the_first_visible_character() -> None:
    splitter = _ToolCallSplitter(NAMES)
    assert splitter.feed(ChatGenerationChunk(message=AIMessageChunk(content="\n "))) == []
    assert splitter.feed(ChatGenerationChunk(message=AIMessageChunk(content="``"))) == []
    splitter.feed(ChatGenerationChunk(message=AIMessageChunk(content=f"`json\n{CALL}\n```")))
    out = splitter.finish()
    assert [c.message.content for c in out[:-1]] == ["", "", ""]
    assert out[-1].message.tool_call_chunks[0]["name"] == "get_record"  # type: ignore[attr-defined]


@pytest.mark.usefixtures("scripted")
def test_the_ledger_row_of_a_tool_call_turn_holds_model_prompt_and_calls() -> None:
    rows: list[dict[str, Any]] = []
    callback = LedgerCallback(model="qwen2.5-0.5b", actor="assistant", thread_id="t1", prompt="assistant@abc",
                              engine="llamacpp", append=lambda **kw: rows.append(kw))
    chat = _scripted(f"<tool_call>\n{CALL}\n</tool_call>", callbacks=[callback]).bind_tools([get_record])
    chat.invoke("Open account 42")
    list(chat.stream("Open account 42"))
    assert len(rows) == 2
    for row in rows:
        assert row["model_id"] == "qwen2.5-0.5b" and row["prompt"] == "assistant@abc"
        [call] = row["output"]["tool_calls"]
        assert call["name"] == "get_record" and call["args"]["id"] == 42 and call["id"]
    assert rows[1]["output"]["ttft_ms"] >= 0 and json.dumps(rows[1]["output"])


def test_a_tool_calling_turn_is_sent_to_llamacpp_with_empty_text_not_null() -> None:
    from langchain_core.messages import HumanMessage, ToolMessage

    call = {"name": "get_record", "args": {"object_type": "account", "id": 42}, "id": "call_1", "type": "tool_call"}
    history = [HumanMessage(content="Open account 42"), AIMessage(content="", tool_calls=[call]),  # type: ignore[list-item]
               ToolMessage(content='{"name": "Acme"}', tool_call_id="call_1")]
    sent = chat_model("qwen2.5-0.5b", engine="llamacpp", record=False)._get_request_payload(history)
    assert sent["messages"][1]["content"] == "" and sent["messages"][1]["tool_calls"][0]["id"] == "call_1"
    assert chat_model("m", engine="vllm", record=False)._get_request_payload(history)["messages"][1]["content"] is None


def test_async_invoke_and_stream_parse_tool_calls_too(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from langchain_openai import ChatOpenAI

    async def agenerate(self: ScriptedEngine, messages: Any, stop: Any = None, run_manager: Any = None,
                        **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.reply))])

    async def astream(self: ScriptedEngine, messages: Any, stop: Any = None, run_manager: Any = None,
                      **kwargs: Any) -> Any:
        for chunk in self._scripted():
            yield chunk

    monkeypatch.setattr(ChatOpenAI, "_agenerate", agenerate)
    monkeypatch.setattr(ChatOpenAI, "_astream", astream)
    chat = _scripted(f"```json\n{CALL}\n```").bind_tools([get_record])

    async def run() -> tuple[AIMessage, list[Any]]:
        return await chat.ainvoke("Open account 42"), [c async for c in chat.astream("Open account 42")]

    reply, chunks = asyncio.run(run())
    assert reply.tool_calls[0]["name"] == "get_record"
    assert sum(chunks[1:], chunks[0]).tool_calls[0]["args"]["id"] == 42
