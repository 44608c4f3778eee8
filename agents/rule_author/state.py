"""State of the rule_author graph: the manager's text in, a rule or questions out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rules.language import Rule
from rules.parser import Question

Path = Literal["grammar", "model", "none"]


@dataclass(kw_only=True)
class InputState:
    """What the manager gives."""

    text: str
    """The rule as the manager wrote it (Chinese or English)."""
    clarifications: dict[str, str] = field(default_factory=dict)
    """Answers to earlier questions, by question id (e.g. ``{"duration_scope": "total"}``)."""


@dataclass(kw_only=True)
class State(InputState):
    """The full state."""

    language: str = "en"
    """The text's language ("zh" or "en"); questions and the explanation use it."""
    rule: Rule | None = None
    """The compiled rule, once there is one with nothing left open."""
    questions: list[Question] = field(default_factory=list)
    """What must be answered before the rule can be compiled."""
    path: Path = "none"
    """Which step produced the rule: the grammar, or the model."""
    grammar_error: str = ""
    """Why the grammar did not cover the text (then the model tries)."""
    model_attempts: int = 0
    """Model calls made, repairs included."""
    explanation: str = ""
    """The deterministic explanation of ``rule`` in ``language``."""
