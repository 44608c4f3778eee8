"""The one LLM factory: a LangChain ``ChatOpenAI`` per model name, with budget, timeout and ledger row.

Every model call in crmind goes through :func:`chat_model`. Constraints (JSON schema or GBNF grammar)
are sent in the request body in the dialect of the engine behind the base URL.
"""

from __future__ import annotations

from typing import Any

from langchain_openai import ChatOpenAI

from inference.config import EngineName, ServingConfig, serving_config
from inference.ledger_callback import AppendFn, LedgerCallback


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
) -> ChatOpenAI:
    """A chat model for ``model`` (default: ``llm_model``) that records each call in the ledger.

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
    return ChatOpenAI(
        model=name,
        base_url=base_url(cfg),
        api_key=cfg.api_key,
        timeout=timeout_s or cfg.timeout_s,
        max_retries=kwargs.pop("max_retries", 1),
        max_tokens=budget,
        temperature=temperature,
        stream_usage=True,
        extra_body=extra_body,
        callbacks=callbacks,
        **({"streaming": True} if streaming else {}),  # an explicit False would disable .stream()
        **kwargs,
    )
