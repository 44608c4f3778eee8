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


_SERVED: dict[str, tuple[float, list[str] | None]] = {}
_SERVED_TTL_S = 30.0


def _served(base_url: str, api_key: str) -> list[str] | None:
    """The engine's model names, cached briefly (one HTTP call per half minute, not per turn)."""
    import time

    from inference.engine_process import served_models

    now = time.monotonic()
    hit = _SERVED.get(base_url)
    if hit is None or now - hit[0] > _SERVED_TTL_S:
        hit = (now, served_models(base_url, api_key=api_key, timeout_s=1.0))
        _SERVED[base_url] = hit
    return hit[1]


def live_config(base: str | None = None) -> ABConfig:
    """The A/B config live conversations use: the registry's champion and challenger of the configured base.

    Only models the engine serves take part: an adapter registered after the engine started (a retrain in a
    running server) joins at the engine's next start, so its share of conversations never hits a missing model.
    Without a registry or an answering engine it is the base alone, as before any model was registered.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from config.db import transaction
    from inference.config import serving_config
    from inference.errors import UnknownModel

    cfg = serving_config()
    name = base or cfg.model
    try:
        with transaction() as session:
            config = config_for_base(session, name)
    except (SQLAlchemyError, UnknownModel):
        return ABConfig(champion=name)
    served = _served(cfg.base_url or f"http://{cfg.host}:{cfg.port}/v1", cfg.api_key)
    if served is None:
        return config
    champion = config.champion if config.champion in served else name
    challenger = config.challenger if config.challenger in served and config.challenger != champion else None
    return ABConfig(champion=champion, challenger=challenger, share=config.share if challenger else 0.0)
