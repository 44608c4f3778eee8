"""The one LLM factory: a LangChain ``ChatOpenAI`` per model name, with budget, timeout and ledger row.

Every model call in crmind goes through :func:`chat_model`. Constraints (JSON schema or GBNF grammar)
are sent in the request body in the dialect of the engine behind the base URL.

Tools go one way on both engines: ``.bind_tools(tools, tool_choice=...)`` sends OpenAI ``tools``, the
engine's chat template renders them, and the model answers with text or ``<tool_call>`` blocks. vLLM parses
those itself (``--tool-call-parser hermes``); on llama.cpp a grammar built from the tools' schemas keeps
each call valid and :class:`GatewayChatModel` parses it into ``AIMessage.tool_calls``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI

from inference.config import EngineName, ServingConfig, serving_config
from inference.ledger_callback import AppendFn, LedgerCallback
from inference.tool_calls import (
    CALL_STARTS,
    ParsedReply,
    may_hold_calls,
    parse_tool_calls,
    tool_call_grammar,
    tool_name,
)


def base_url(cfg: ServingConfig) -> str:
    """The engine URL: ``llm_base_url`` if set, else the embedded llama.cpp server's."""
    return cfg.base_url or f"http://{cfg.host}:{cfg.port}/v1"


def constraint_body(
    engine: EngineName, *, json_schema: dict[str, Any] | None = None, grammar: str | None = None,
    schema_name: str = "output",
) -> dict[str, Any]:
    """Request-body fields that constrain decoding to ``json_schema`` or a GBNF ``grammar`` on ``engine``."""
    if json_schema is not None and grammar is not None:
        raise ValueError("Give a JSON schema or a grammar, not both.")
    if engine == "llamacpp":
        if grammar is not None:
            return {"grammar": grammar}
        if json_schema is not None:
            # llama-cpp-python's dialect: json_object with a schema, compiled to a grammar server-side.
            return {"response_format": {"type": "json_object", "schema": json_schema}}
        return {}
    if grammar is not None:
        return {"structured_outputs": {"grammar": grammar}}
    if json_schema is not None:
        spec = {"name": schema_name, "schema": json_schema, "strict": True}
        return {"response_format": {"type": "json_schema", "json_schema": spec}}
    return {}


def _choice(tool_choice: Any) -> str:
    """``tool_choice`` as ChatOpenAI.bind_tools normalised it, in tool_call_grammar's terms."""
    if tool_choice in (None, "auto"):
        return "auto"
    if isinstance(tool_choice, dict):
        return str(tool_choice["function"]["name"])
    return str(tool_choice)  # "none", "required"


class GatewayChatModel(ChatOpenAI):
    """``ChatOpenAI`` whose ``bind_tools`` works the same on llama.cpp as on vLLM (see the module doc)."""

    engine: EngineName = "llamacpp"
    """The engine's request dialect: llama.cpp gets a tool-call grammar, vLLM does tool calls natively."""

    def bind_tools(
        self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | Any], *,
        tool_choice: dict[str, Any] | str | bool | None = None, strict: bool | None = None,
        parallel_tool_calls: bool | None = None, **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind ``tools`` (LangChain tools, pydantic models, functions, OpenAI dicts) for native tool calls.

        ``tool_choice``: ``"auto"``/None (text or a call), ``"none"``, ``"required"``/``"any"``/True, or a tool
        name. One call per turn unless ``parallel_tool_calls=True`` (small models repeat calls otherwise).
        """
        bound = super().bind_tools(tools, tool_choice=tool_choice, strict=strict,
                                   parallel_tool_calls=parallel_tool_calls, **kwargs)
        if self.engine != "llamacpp":
            return bound
        params = dict(bound.kwargs)  # type: ignore[attr-defined]
        # llama-cpp-python runs its own function-call path for a dict tool_choice (and knows no
        # parallel_tool_calls): the grammar below is how we choose instead.
        choice = _choice(params.pop("tool_choice", None))
        params.pop("parallel_tool_calls", None)
        grammar = tool_call_grammar(params["tools"], choice=choice, parallel=bool(parallel_tool_calls))
        extra_body = {k: v for k, v in (self.extra_body or {}).items() if k not in ("grammar", "response_format")}
        params["extra_body"] = {**extra_body, "grammar": grammar}
        return self.bind(**params)

    def _get_request_payload(self, input_: LanguageModelInput, *, stop: list[str] | None = None,
                             **kwargs: Any) -> dict[str, Any]:
        payload: dict[str, Any] = super()._get_request_payload(input_, stop=stop, **kwargs)
        if self.engine == "llamacpp":
            # OpenAI sends a tool-calling assistant turn with content null; llama-cpp-python's server
            # refuses that (its schema wants a string), which would break every turn after a tool call.
            for message in payload.get("messages", []):
                if message.get("role") == "assistant" and message.get("content") is None:
                    message["content"] = ""
        return payload

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        return _with_tool_calls(super()._generate(messages, stop, run_manager, **kwargs), kwargs)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return _with_tool_calls(await super()._agenerate(messages, stop, run_manager, **kwargs), kwargs)

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        chunks = super()._stream(messages, stop, run_manager, **kwargs)
        if not kwargs.get("tools"):
            yield from chunks
            return
        splitter = _ToolCallSplitter(_names(kwargs))
        for chunk in chunks:
            yield from splitter.feed(chunk)
        yield from splitter.finish()

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        chunks = super()._astream(messages, stop, run_manager, **kwargs)
        splitter = _ToolCallSplitter(_names(kwargs)) if kwargs.get("tools") else None
        async for chunk in chunks:
            for out in splitter.feed(chunk) if splitter else [chunk]:
                yield out
        for out in splitter.finish() if splitter else []:
            yield out


def _names(kwargs: dict[str, Any]) -> list[str]:
    return [tool_name(t) for t in kwargs.get("tools") or [] if "function" in t]


def _with_tool_calls(result: ChatResult, kwargs: dict[str, Any]) -> ChatResult:
    """``result`` with ``<tool_call>`` blocks in its text moved into ``tool_calls`` (tools bound only)."""
    if not kwargs.get("tools"):
        return result
    for gen in result.generations:
        msg = gen.message
        if (isinstance(msg, AIMessage) and not msg.tool_calls and isinstance(msg.content, str)
                and may_hold_calls(msg.content)):
            parsed = parse_tool_calls(msg.content, _names(kwargs))
            gen.message = msg.model_copy(update={"content": parsed.content, "tool_calls": parsed.tool_calls,
                                                 "invalid_tool_calls": parsed.invalid_tool_calls})
            gen.text = parsed.content
    return result


class _ToolCallSplitter:
    """Streams text through as it comes; an answer that opens like a tool call is held and parsed at the end.

    With the grammar, plain text cannot start like a call, so the first visible character decides.
    """

    def __init__(self, names: list[str]) -> None:
        self.names, self.mode, self.text = names, "undecided", ""
        self.held: list[ChatGenerationChunk] = []

    def feed(self, chunk: ChatGenerationChunk) -> list[ChatGenerationChunk]:
        """The chunks to pass on now (none while the answer may still be a tool call)."""
        if self.mode == "text":
            return [chunk]
        content = chunk.message.content
        if isinstance(content, str) and content:
            self.text += content
            if self.mode == "undecided" and self.text.strip():
                self.mode = "call" if self.text.lstrip()[0] in CALL_STARTS else "text"
        if self.mode == "text":
            out, self.held = [*self.held, chunk], []
            return out
        self.held.append(chunk)
        return []

    def finish(self) -> list[ChatGenerationChunk]:
        """What is still held: as it came, or (a tool call) as metadata plus one parsed chunk."""
        if self.mode != "call":
            out, self.held = self.held, []
            return out
        parsed: ParsedReply = parse_tool_calls(self.text, self.names)
        # The held chunks keep their metadata (id, usage, finish reason); their text comes back parsed.
        out = [ChatGenerationChunk(message=c.message.model_copy(update={"content": ""}),
                                   generation_info=c.generation_info) for c in self.held]
        call_chunks = [{"name": c["name"], "args": _dumps(c["args"]), "id": c["id"], "index": i,
                        "type": "tool_call_chunk"} for i, c in enumerate(parsed.tool_calls)]
        call_chunks += [{"name": c.get("name"), "args": c.get("args"), "id": c.get("id"),
                         "index": len(call_chunks) + i, "type": "tool_call_chunk"}
                        for i, c in enumerate(parsed.invalid_tool_calls)]
        out.append(ChatGenerationChunk(message=AIMessageChunk(content=parsed.content,
                                                              tool_call_chunks=call_chunks)))  # type: ignore[arg-type]
        return out


def _dumps(args: dict[str, Any]) -> str:
    import json

    return json.dumps(args, ensure_ascii=False)


def chat_model(
    model: str | None = None,
    *,
    actor: str = "assistant",
    thread_id: str | None = None,
    prompt: str | None = None,
    variant: str | None = None,
    parent_id: str | None = None,
    max_tokens: int | None = None,
    timeout_s: float | None = None,
    temperature: float = 0.0,
    streaming: bool = False,
    json_schema: dict[str, Any] | None = None,
    grammar: str | None = None,
    engine: EngineName | None = None,
    cfg: ServingConfig | None = None,
    record: bool = True,
    append: AppendFn | None = None,
    **kwargs: Any,
) -> GatewayChatModel:
    """A chat model for ``model`` (default: ``llm_model``) that records each call in the ledger.

    ``.bind_tools(tools, tool_choice=...)`` gives native tool calls on both engines: the reply is an
    ``AIMessage`` with ``.tool_calls`` (name, args, id) or plain ``.content``.

    Args:
        model: served model name (a base or an adapter); the A/B router picks it per thread.
        actor: who is calling, for the ledger row.
        thread_id: the conversation, for the ledger row.
        prompt: ``name@version`` of the prompt file in use.
        variant: the A/B variant ("champion"/"challenger") that chose ``model``.
        parent_id: the ledger row this call belongs under.
        max_tokens: token budget of one call (default ``llm_max_tokens``).
        timeout_s: per-call timeout (default ``llm_timeout_s``).
        temperature: sampling temperature; 0 by default so tool calls are repeatable.
        streaming: stream tokens (``.stream()`` works either way; this makes ``.invoke()`` stream too).
        json_schema: constrain the output to this JSON schema.
        grammar: constrain the output to this GBNF grammar (llama.cpp) / grammar (vLLM).
        engine: the engine's request dialect (default ``llm_engine``).
        cfg: serving config (default: from settings).
        record: write a ledger row per call (turn off only in benchmarks).
        append: ledger writer (default ``ledger.append_now``); tests pass a fake.
        **kwargs: passed on to ``ChatOpenAI``.
    """
    cfg = cfg or serving_config()
    engine = engine or cfg.engine
    name = model or cfg.model
    budget = max_tokens or cfg.max_tokens
    extra_body: dict[str, Any] = dict(kwargs.pop("extra_body", None) or {})
    # langchain-openai sends max_completion_tokens, which llama-cpp-python ignores: send max_tokens too.
    extra_body["max_tokens"] = budget
    extra_body.update(constraint_body(engine, json_schema=json_schema, grammar=grammar))
    callbacks = list(kwargs.pop("callbacks", None) or [])
    if record:
        callbacks.append(LedgerCallback(model=name, actor=actor, thread_id=thread_id, prompt=prompt,
                                        variant=variant, engine=engine, parent_id=parent_id, append=append))
    return GatewayChatModel(
        engine=engine,
        model=name,
        base_url=base_url(cfg),
        api_key=cfg.api_key,
        timeout=timeout_s or cfg.timeout_s,
        # llama.cpp serves one request at a time: a retry after a timeout queues behind the abandoned call.
        max_retries=kwargs.pop("max_retries", 0 if engine == "llamacpp" else 1),
        max_tokens=budget,
        temperature=temperature,
        stream_usage=True,
        extra_body=extra_body,
        callbacks=callbacks,
        **({"streaming": True} if streaming else {}),  # an explicit False would disable .stream()
        **kwargs,
    )
