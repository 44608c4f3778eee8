"""A/B router: sticky per conversation, honours the share, forced variants, variant in the ledger."""

from __future__ import annotations

import math
from typing import Any

import pytest

from inference.router import ABConfig, assign, bucket, routed_chat_model

CFG = ABConfig(champion="smollm2", challenger="smollm2-crm", share=0.2)


def test_same_conversation_always_gets_the_same_variant() -> None:
    for i in range(200):
        first = assign(CFG, f"thread-{i}")
        assert all(assign(CFG, f"thread-{i}") == first for _ in range(5))


@pytest.mark.parametrize("share", [0.0, 0.05, 0.2, 0.5, 0.9, 1.0])
def test_challenger_share_within_statistical_bounds(share: float) -> None:
    n = 20_000
    cfg = ABConfig(champion="a", challenger="b", share=share)
    hits = sum(assign(cfg, f"conv-{i}").variant == "challenger" for i in range(n))
    # Binomial: mean n*p, sd sqrt(n p (1-p)); 5 sd leaves a 1-in-3-million false alarm.
    sd = math.sqrt(n * share * (1 - share))
    assert abs(hits - n * share) <= 5 * sd + 1


def test_without_challenger_everyone_gets_the_champion() -> None:
    cfg = ABConfig(champion="a", share=0.5)
    assert {assign(cfg, f"t{i}").model for i in range(100)} == {"a"}


def test_bucket_is_uniform_and_salt_reshuffles() -> None:
    values = [bucket(f"t{i}") for i in range(10_000)]
    assert all(0 <= v < 1 for v in values)
    assert abs(sum(values) / len(values) - 0.5) < 0.02
    moved = sum((bucket(f"t{i}", "ab") < 0.5) != (bucket(f"t{i}", "exp2") < 0.5) for i in range(2000))
    assert 800 < moved < 1200


def test_force_overrides_the_hash_for_admins_and_evals() -> None:
    thread = next(f"t{i}" for i in range(1000) if assign(CFG, f"t{i}").variant == "champion")
    forced = assign(CFG, thread, force="challenger")
    assert (forced.variant, forced.model, forced.forced) == ("challenger", "smollm2-crm", True)
    assert assign(CFG, thread, force="champion").model == "smollm2"
    with pytest.raises(ValueError):
        assign(ABConfig(champion="a"), thread, force="challenger")


def test_share_outside_unit_interval_is_refused() -> None:
    with pytest.raises(ValueError):
        ABConfig(champion="a", challenger="b", share=1.5)


def test_routed_model_records_the_variant_in_each_ledger_row() -> None:
    rows: list[dict[str, Any]] = []
    thread = next(f"t{i}" for i in range(1000) if assign(CFG, f"t{i}").variant == "challenger")
    chat, chosen = routed_chat_model(CFG, thread_id=thread, append=lambda **kw: rows.append(kw))
    assert chat.model_name == "smollm2-crm" and chosen.variant == "challenger"
    callback = next(c for c in chat.callbacks if hasattr(c, "variant"))  # type: ignore[union-attr]
    assert callback.variant == "challenger" and callback.thread_id == thread
