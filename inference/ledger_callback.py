"""A LangChain callback that writes one ledger row per model call (tokens, latency, time to first token)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult

import ledger

AppendFn = Callable[..., Any]


@dataclass
class _Call:
    started: float
    summary: str
    first_token: float | None = None
    chunks: int = 0


class LedgerCallback(BaseCallbackHandler):
    """Records each chat-model call as a ``model_call`` ledger row; failures are recorded too."""

    raise_error = True  # a call that cannot be recorded must not pass silently

    def __init__(
        self, *, model: str, actor: str, thread_id: str | None = None, prompt: str | None = None,
        variant: str | None = None, engine: str | None = None, parent_id: str | None = None,
        append: AppendFn | None = None,
    ) -> None:
        self.model, self.actor, self.thread_id, self.prompt = model, actor, thread_id, prompt
        self.variant, self.engine, self.parent_id = variant, engine, parent_id
        self._append = append or ledger.append_now
        self._calls: dict[UUID, _Call] = {}
        self.last_decision_id: str | None = None

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        """Remember when the call started and what it was asked."""
        last = messages[0][-1].content if messages and messages[0] else ""
        self._calls[run_id] = _Call(started=time.perf_counter(), summary=str(last)[:500])

    def on_llm_new_token(
        self, token: str | list[str | dict[str, Any]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        """Streaming: note the first token's time and count chunks (the fallback token count)."""
        call = self._calls.get(run_id)
        if call is None:
            return
        chunk = kwargs.get("chunk")
        message = getattr(chunk, "message", None)
        # An engine may send the role (an empty chunk) before it has a token: that is not the first token.
        if token or getattr(message, "tool_call_chunks", None):
            call.first_token = call.first_token or time.perf_counter()
            call.chunks += 1

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """Write the row: text, tool calls, finish reason, tokens in/out, latency and TTFT."""
        call = self._calls.pop(run_id, None) or _Call(started=time.perf_counter(), summary="")
        latency_ms = (time.perf_counter() - call.started) * 1000
        gen = response.generations[0][0] if response.generations and response.generations[0] else None
        text = gen.text if gen is not None else ""
        tokens_in, tokens_out = _usage(response, gen)
        output: dict[str, Any] = {"text": text[:4000], "engine": self.engine}
        if isinstance(gen, ChatGeneration) and isinstance(gen.message, AIMessage):
            if gen.message.tool_calls:
                output["tool_calls"] = [{"name": c["name"], "args": c["args"], "id": c.get("id")}
                                        for c in gen.message.tool_calls]
            if gen.message.invalid_tool_calls:
                output["invalid_tool_calls"] = [{"name": c.get("name"), "args": c.get("args"),
                                                 "error": c.get("error")} for c in gen.message.invalid_tool_calls]
        if gen is not None and gen.generation_info:
            output["finish_reason"] = gen.generation_info.get("finish_reason")
        if self.variant is not None:
            output["variant"] = self.variant
        if call.first_token is not None:
            output["ttft_ms"] = round((call.first_token - call.started) * 1000, 1)
        row = self._append(
            kind="model_call", actor=self.actor, thread_id=self.thread_id, model_id=self.model,
            prompt=self.prompt, parent_id=self.parent_id, input_summary=call.summary, output=output,
            latency_ms=latency_ms, tokens_in=tokens_in, tokens_out=tokens_out or call.chunks or None,
        )
        self.last_decision_id = getattr(row, "id", None)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """A failed call is a row too, so timeouts and engine errors show up next to their thread."""
        call = self._calls.pop(run_id, None) or _Call(started=time.perf_counter(), summary="")
        output: dict[str, Any] = {"error": f"{type(error).__name__}: {error}"[:2000], "engine": self.engine}
        if self.variant is not None:
            output["variant"] = self.variant
        self._append(kind="model_call", actor=self.actor, thread_id=self.thread_id, model_id=self.model,
                     prompt=self.prompt, parent_id=self.parent_id, input_summary=call.summary, output=output,
                     latency_ms=(time.perf_counter() - call.started) * 1000)


def _usage(response: LLMResult, gen: Any) -> tuple[int | None, int | None]:
    if isinstance(gen, ChatGeneration) and isinstance(gen.message, AIMessage) and gen.message.usage_metadata:
        meta = gen.message.usage_metadata
        return meta.get("input_tokens"), meta.get("output_tokens")
    usage = (response.llm_output or {}).get("token_usage") or {}
    return usage.get("prompt_tokens"), usage.get("completion_tokens")
