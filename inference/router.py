"""A/B router: champion and optional challenger, sticky per conversation by hash, choice in the ledger."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from langchain_openai import ChatOpenAI
from sqlalchemy.orm import Session

Variant = Literal["champion", "challenger"]


@dataclass(frozen=True, kw_only=True)
class ABConfig:
    """Which model is champion, which (if any) challenger, and the challenger's share of conversations."""

    champion: str
    challenger: str | None = None
    share: float = 0.0
    salt: str = "ab"
    """Change it to reshuffle which conversations see the challenger (e.g. for a new experiment)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"share must be in [0, 1], not {self.share}")


@dataclass(frozen=True)
class Assignment:
    """The variant a conversation is on, and the model name that serves it."""

    variant: Variant
    model: str
    forced: bool = False


def bucket(thread_id: str, salt: str = "ab") -> float:
    """A stable number in [0, 1) for ``thread_id``: the same conversation always lands in the same place."""
    digest = hashlib.sha256(f"{salt}:{thread_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(config: ABConfig, thread_id: str, *, force: Variant | None = None) -> Assignment:
    """The variant for ``thread_id``; ``force`` (admins, evals) overrides the hash."""
    if force is not None:
        if force == "challenger" and config.challenger is None:
            raise ValueError("No challenger is configured to force.")
        model = config.challenger if force == "challenger" and config.challenger else config.champion
        return Assignment(force, model, forced=True)
    if config.challenger is not None and bucket(thread_id, config.salt) < config.share:
        return Assignment("challenger", config.challenger)
    return Assignment("champion", config.champion)


def config_for_base(session: Session, base: str) -> ABConfig:
    """The A/B config of ``base`` as the registry holds it."""
    from inference.registry import get_deployment

    dep = get_deployment(session, base)
    return ABConfig(champion=dep.champion, challenger=dep.challenger, share=dep.challenger_share)


def routed_chat_model(
    config: ABConfig, *, thread_id: str, force: Variant | None = None, **gateway_kwargs: Any
) -> tuple[ChatOpenAI, Assignment]:
    """A gateway chat model for the conversation's variant; each call's ledger row names the variant."""
    from inference.gateway import chat_model

    chosen = assign(config, thread_id, force=force)
    chat = chat_model(chosen.model, thread_id=thread_id, variant=chosen.variant, **gateway_kwargs)
    return chat, chosen
