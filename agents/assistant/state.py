"""The assistant's state: a narrow input (the conversation) extended by per-turn bookkeeping.

Per-turn fields are reset when a new rep message starts a turn; nodes run one after another, so each returns
the field's new value (no reducers besides ``add_messages``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.graph import add_messages
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agents.assistant.language import Language


@dataclass
class InputState:
    """What a caller sends: the new message(s) of the conversation."""

    messages: Annotated[Sequence[AnyMessage], add_messages] = field(default_factory=list)
    """The conversation: rep messages, crmind's turn notes, model replies and tool results."""


@dataclass
class State(InputState):
    """The full state kept in the checkpoint between turns and across approvals."""

    owner_id: int | None = None
    """The user the conversation belongs to; nobody else may read or resume it."""

    turn_id: str | None = None
    """Ledger id of the current turn's root row; every row of the turn hangs under it."""

    language: Language = "en"
    """The rep's language in this turn (the answer is written in it)."""

    allowed_writes: list[str] = field(default_factory=list)
    """Write tools the rep's own message asked for (checked in code; record text can never add to it)."""

    evidence: list[str] = field(default_factory=list)
    """Every record and chunk reference a tool returned in this turn: what an answer may cite."""

    pending: list[dict[str, Any]] = field(default_factory=list)
    """Proposals waiting for the rep: proposal id, the tool call that made it, tool name and target."""

    rejected: list[str] = field(default_factory=list)
    """Tool targets the rep rejected in this turn; the same change is refused until the next turn."""

    approval_error: str | None = None
    """Why the rep's last decision could not be applied (an invalid edit), shown when asking again."""

    failures: int = 0
    """Failed or refused tool calls in this turn (bounded: then an honest "I couldn't")."""

    model_calls: int = 0
    """Model calls in this turn (bounded)."""

    calls_done: list[str] = field(default_factory=list)
    """Tool calls run in this turn, as ``name {canonical args}``: a repeat is not run again."""

    answer_now: bool = False
    """The next model call gets no tools, so it must answer (set when the model repeats a call it has the
    result of, and before the last call the step limit allows)."""

    proposals_made: int = 0
    """Proposals made in this turn (bounded: no bulk changes through the assistant)."""

    stop_reason: str | None = None
    """Set when the turn must end without a model answer (step limit, model unavailable)."""

    model_id: str | None = None
    """The model that answered in this turn (recorded with the answer)."""

    grounded: bool | None = None
    """Whether the final answer cites something retrieved in this turn."""

    citations: list[str] = field(default_factory=list)
    """The checked citations of the final answer."""


class Decision(BaseModel):
    """The rep's answer to a proposal: ``Command(resume=Decision(...).model_dump())``."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["approve", "edit", "reject"]
    edits: dict[str, Any] = Field(default_factory=dict, description="New values of proposed fields (action edit)")
    reason: str = Field("", max_length=1000, description="Why (rejections are told to the model)")
    proposal_id: int | None = Field(None, description="The proposal decided on; refused if another is pending")

    @field_validator("reason")
    @classmethod
    def _visible_text(cls, reason: str) -> str:
        return without_controls(reason)  # as the rep's message; edited values are cleaned by crm.fields

    @model_validator(mode="after")
    def _edits_go_with_edit(self) -> Decision:
        if self.action == "edit" and not self.edits:
            raise ValueError("an edit needs the new values in 'edits'")
        if self.action != "edit" and self.edits:
            raise ValueError("edits go with action 'edit'")
        return self


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # C0 controls and DEL; tab and newlines stay


def without_controls(text: str) -> str:
    """``text`` without invisible control characters (a NUL pasted from a PDF).

    PostgreSQL stores no NUL in text, and the rep could not see them to take them out.
    """
    return _CONTROL.sub("", text)


def message_text(message: AnyMessage) -> str:
    """A message's text (content blocks joined)."""
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content)


def this_turn(messages: Sequence[AnyMessage]) -> Sequence[AnyMessage]:
    """The messages after the rep's last one: this turn's calls, tool results and replies."""
    start = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
    return messages[start + 1:]
