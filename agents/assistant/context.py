"""Per-run settings of the assistant: who is asking and what the run may use. Never stored in a checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel
from sqlalchemy import Engine

from crm.access import Principal


class ModelFactory(Protocol):
    """Makes the chat model for one call of a turn (the gateway's, the A/B router's, or a test's fake)."""

    def __call__(self, *, thread_id: str, parent_id: str | None, prompt: str) -> BaseChatModel:
        """A LangChain chat model that supports ``bind_tools``."""
        ...


def gateway_model(*, thread_id: str, parent_id: str | None, prompt: str) -> BaseChatModel:
    """The configured base's champion through the LLM gateway, or its challenger in the challenger's share.

    The split is sticky per conversation; each call's ledger row names the model and the variant.
    """
    from inference.router import live_config, routed_chat_model

    chat, _ = routed_chat_model(live_config(), thread_id=thread_id, actor="assistant", parent_id=parent_id,
                                prompt=prompt, streaming=True)
    return chat


def ab_model(config: Any) -> ModelFactory:
    """A factory that serves each conversation from its sticky A/B variant (``inference.router.ABConfig``)."""

    def make(*, thread_id: str, parent_id: str | None, prompt: str) -> BaseChatModel:
        from inference.router import routed_chat_model

        chat, _ = routed_chat_model(config, thread_id=thread_id, actor="assistant", parent_id=parent_id,
                                    prompt=prompt, streaming=True)
        return chat

    return make


def utcnow() -> datetime:
    """Naive UTC now, as the CRM stores times."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(kw_only=True)
class Context:
    """Run context: the caller's principal (tools act as it), the model, search and limits."""

    principal: Principal
    """Who is asking; every tool reads and proposes as this principal, never as anything the model says."""

    thread_id: str = ""
    """The conversation's stored key (the runner scopes it to the principal's user)."""

    model: ModelFactory = gateway_model
    """Makes the chat model (tests pass a scripted fake)."""

    search: Callable[..., Any] | None = None
    """``retrieval.search.search_as``-shaped search (None: the process-wide index)."""

    engine: Engine | None = None
    """CRM database (None: the configured one)."""

    now: Callable[[], datetime] = field(default=utcnow)
    """The clock relative dates are resolved against."""

    max_model_calls: int = 8
    """Model calls per turn before an honest "I couldn't"."""

    max_failed_calls: int = 3
    """Failed or refused tool calls per turn before an honest "I couldn't"."""

    max_proposals: int = 3
    """Proposals per turn: the assistant makes no bulk changes."""

    max_calls_per_step: int = 4
    """Tool calls taken from one model reply; more are refused."""

    _models: dict[str | None, BaseChatModel] = field(default_factory=dict, init=False, repr=False)

    def chat_model(self, turn_id: str | None, prompt: str) -> BaseChatModel:
        """The turn's chat model, made once per run and turn (building a client per call costs milliseconds)."""
        model = self._models.get(turn_id)
        if model is None:
            model = self._models[turn_id] = self.model(thread_id=self.thread_id, parent_id=turn_id, prompt=prompt)
        return model
