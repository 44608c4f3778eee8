"""The assistant's one entry point for every interface (SSE ``/v1/chat``, ``/v1/chat/completions``, MCP, CLI).

``start_turn`` and ``resume`` check their arguments eagerly (raising ``agents.errors`` before anything streams),
then return an iterator of typed events:

- ``token``: a piece of the model's draft answer as it is generated (a draft: the ``answer`` event is final);
- ``tool_step``: a tool call and its outcome (``ok``, a one-line summary, the references it returned);
- ``proposal``: a proposed change waiting for the rep; the run stops there until ``resume``;
- ``citation``: a checked reference of the answer, with its API link;
- ``answer``: the final text (unknown citations stripped), its citations and the ``grounded`` flag;
- ``error``: the run could not go on (its message is written for the rep).

Threads belong to the user who started them: the stored key is scoped to the caller's user id, so another user's
``thread_id`` simply names a different, empty conversation.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.errors import GraphRecursionError
from langgraph.types import Command, Durability, StateSnapshot
from pydantic import ValidationError
from sqlalchemy import Engine

from agents.assistant.context import Context, ModelFactory, gateway_model, utcnow
from agents.assistant.graph import build_graph, text_of
from agents.assistant.state import Decision, without_controls
from agents.checkpointer import get_checkpointer
from agents.errors import (
    AgentError,
    ApprovalPending,
    InvalidDecision,
    InvalidRequest,
    NoPendingApproval,
    ThreadNotFound,
)
from config.errors import CrmindError
from crm.access import Principal

THREAD_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_MESSAGE_CHARS = 4000
# A backstop only: a turn ends on its own bounds (model calls, failed tools) long before this many steps.
RECURSION_LIMIT = 60


@dataclass(frozen=True)
class TokenEvent:
    """A piece of the draft answer."""

    text: str
    type: Literal["token"] = "token"


@dataclass(frozen=True)
class ToolStepEvent:
    """One tool call and its outcome."""

    tool: str
    args: dict[str, Any]
    ok: bool
    summary: str
    refs: list[str] = field(default_factory=list)
    type: Literal["tool_step"] = "tool_step"


@dataclass(frozen=True)
class ProposalEvent:
    """A change waiting for the rep: answer it with ``resume`` (approve, edit or reject)."""

    proposal: dict[str, Any]
    tool: str
    error: str | None = None
    type: Literal["proposal"] = "proposal"


@dataclass(frozen=True)
class CitationEvent:
    """A checked citation of the answer."""

    ref: str
    link: str | None
    type: Literal["citation"] = "citation"


@dataclass(frozen=True)
class AnswerEvent:
    """The final answer of the turn."""

    text: str
    citations: list[str]
    grounded: bool
    language: str
    stripped: list[str] = field(default_factory=list)
    turn_id: str | None = None
    decision_id: str | None = None
    type: Literal["answer"] = "answer"


@dataclass(frozen=True)
class ErrorEvent:
    """The run stopped; ``message`` is written for the rep."""

    message: str
    code: str
    type: Literal["error"] = "error"


Event = TokenEvent | ToolStepEvent | ProposalEvent | CitationEvent | AnswerEvent | ErrorEvent
_CUSTOM: dict[str, type[Any]] = {"token": TokenEvent, "tool_step": ToolStepEvent, "citation": CitationEvent,
                                 "answer": AnswerEvent}


def as_dict(event: Event) -> dict[str, Any]:
    """An event as JSON-ready data (``type`` names it), e.g. one SSE ``data:`` line."""
    return asdict(event)


class Assistant:
    """The compiled graph over one checkpointer, with the model, search and clock it runs with."""

    def __init__(self, *, checkpointer: BaseCheckpointSaver[Any] | None = None, model: ModelFactory | None = None,
                 search: Callable[..., Any] | None = None, engine: Engine | None = None,
                 now: Callable[[], datetime] | None = None, limits: dict[str, int] | None = None,
                 recursion_limit: int = RECURSION_LIMIT, durability: Durability = "exit") -> None:
        self.checkpointer = checkpointer or get_checkpointer()
        self.graph = build_graph(checkpointer=self.checkpointer)
        self.model: ModelFactory = model or gateway_model
        self.search, self.engine, self.now = search, engine, now or utcnow
        self.limits = dict(limits or {})
        self.recursion_limit = recursion_limit
        self.durability: Durability = durability

    # ------------------------------------------------------------ public API
    def start_turn(self, principal: Principal, thread_id: str, message: str) -> Iterator[Event]:
        """Send the rep's message; events until the answer, or until a proposal waits for the rep."""
        key = self._key(principal, thread_id)
        text = without_controls(message).strip()
        if not text:
            raise InvalidRequest("the message is empty")
        if len(text) > MAX_MESSAGE_CHARS:
            raise InvalidRequest(f"the message is longer than {MAX_MESSAGE_CHARS} characters")
        snapshot = self._snapshot(principal, key, must_exist=False)
        waiting = _waiting(snapshot)
        if waiting is not None:
            raise ApprovalPending(f"proposal {waiting.proposal['id']} is waiting for you: approve, edit or reject it "
                                  "first")
        return self._run({"messages": [HumanMessage(content=text)]}, principal, key)

    def resume(self, principal: Principal, thread_id: str, decision: Decision | dict[str, Any]) -> Iterator[Event]:
        """Answer the waiting proposal (``{"action": "approve"|"edit"|"reject", "edits": {...}, "reason": ...}``)."""
        key = self._key(principal, thread_id)
        waiting = _waiting(self._snapshot(principal, key, must_exist=True))
        if waiting is None:
            raise NoPendingApproval("no proposal is waiting in this conversation")
        try:
            checked = decision if isinstance(decision, Decision) else Decision.model_validate(decision)
        except ValidationError as exc:
            raise InvalidDecision("; ".join(str(e["msg"]) for e in exc.errors())) from None
        if checked.proposal_id not in (None, waiting.proposal["id"]):
            raise InvalidDecision(f"proposal {checked.proposal_id} is not the one waiting "
                                  f"(proposal {waiting.proposal['id']})")
        return self._run(Command(resume=checked.model_dump()), principal, key)

    def pending(self, principal: Principal, thread_id: str) -> ProposalEvent | None:
        """The proposal waiting in a conversation, if any."""
        return _waiting(self._snapshot(principal, self._key(principal, thread_id), must_exist=True))

    def history(self, principal: Principal, thread_id: str) -> list[dict[str, str]]:
        """The conversation as the rep saw it: their messages and the assistant's answers."""
        snapshot = self._snapshot(principal, self._key(principal, thread_id), must_exist=True)
        out: list[dict[str, str]] = []
        for m in snapshot.values.get("messages", []):
            if isinstance(m, HumanMessage):
                out.append({"role": "user", "content": text_of(m)})
            elif isinstance(m, AIMessage) and not m.tool_calls and text_of(m):
                out.append({"role": "assistant", "content": text_of(m)})
        return out

    # ------------------------------------------------------------ internals
    def _key(self, principal: Principal, thread_id: str) -> str:
        if not THREAD_ID.match(thread_id):
            raise InvalidRequest("a thread id is 1-64 letters, digits, '.', '_' or '-'")
        return f"user:{principal.user_id}/{thread_id}"

    def _config(self, key: str) -> RunnableConfig:
        return {"configurable": {"thread_id": key}, "recursion_limit": self.recursion_limit}

    def _snapshot(self, principal: Principal, key: str, *, must_exist: bool) -> StateSnapshot:
        snapshot = self.graph.get_state(self._config(key))
        owner = snapshot.values.get("owner_id") if snapshot.values else None
        if (must_exist and not snapshot.values) or owner not in (None, principal.user_id):
            raise ThreadNotFound("conversation not found")
        return snapshot

    def _run(self, payload: Any, principal: Principal, key: str) -> Iterator[Event]:
        context = Context(principal=principal, thread_id=key, model=self.model, search=self.search,
                          engine=self.engine, now=self.now, **self.limits)
        try:
            for mode, chunk in self.graph.stream(payload, self._config(key), context=context,
                                                 stream_mode=["custom", "updates"],
                                                 durability=self.durability):
                yield from _events(mode, chunk)
        except GraphRecursionError:
            yield ErrorEvent("this request took too many steps; please narrow it down", "recursion_limit")
        except CrmindError as exc:
            yield ErrorEvent(exc.message, type(exc).__name__)


def _events(mode: str, chunk: Any) -> Iterator[Event]:
    if mode == "custom" and isinstance(chunk, dict) and chunk.get("type") in _CUSTOM:
        data = {k: v for k, v in chunk.items() if k != "type"}
        yield _CUSTOM[chunk["type"]](**data)
    elif mode == "updates" and isinstance(chunk, dict) and "__interrupt__" in chunk:
        for item in chunk["__interrupt__"]:
            yield ProposalEvent(**item.value)


def _waiting(snapshot: StateSnapshot) -> ProposalEvent | None:
    for item in snapshot.interrupts:
        if isinstance(item.value, dict) and "proposal" in item.value:
            return ProposalEvent(**item.value)
    return None


_default: Assistant | None = None
_default_lock = threading.Lock()


def default_assistant() -> Assistant:
    """The process-wide assistant (configured checkpointer, gateway model, process-wide search index)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Assistant()
        return _default


def start_turn(principal: Principal, thread_id: str, message: str) -> Iterator[Event]:
    """``Assistant.start_turn`` on the process-wide assistant."""
    return default_assistant().start_turn(principal, thread_id, message)


def resume(principal: Principal, thread_id: str, decision: Decision | dict[str, Any]) -> Iterator[Event]:
    """``Assistant.resume`` on the process-wide assistant."""
    return default_assistant().resume(principal, thread_id, decision)


__all__ = ["Assistant", "Event", "TokenEvent", "ToolStepEvent", "ProposalEvent", "CitationEvent", "AnswerEvent",
           "ErrorEvent", "AgentError", "as_dict", "default_assistant", "start_turn", "resume"]
