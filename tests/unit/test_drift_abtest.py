"""The A/B test: its horizon fixed by a power analysis (checked by hand), then promote or roll back once."""

from __future__ import annotations

import math

from modelops.abtest import decide, design


def test_horizon_matches_the_hand_computed_sample_size() -> None:
    # Cohen's h for 0.5 -> 0.6: 2 asin(sqrt(0.6)) - 2 asin(sqrt(0.5)) = 1.770796 - 1.570796 = 0.2013579.
    # One-sided alpha 0.05 (z = 1.644854), power 0.8 (z = 0.841621), even split (1 + 1/ratio = 2):
    # n = 2 * ((1.644854 + 0.841621) / 0.2013579)^2 = 2 * 152.486 = 304.97 -> 305 per arm.
    plan = design(0.5, mde=0.1, alpha=0.05, power=0.8, share=0.5)
    assert math.isclose(plan.effect_h, 0.2013579, abs_tol=1e-6)
    assert (plan.n_challenger, plan.n_champion) == (305, 305)


def test_a_smaller_challenger_share_needs_more_champion_conversations() -> None:
    # ratio = 0.8 / 0.2 = 4: n1 = 152.486 * (1 + 1/4) = 190.6 -> 191 challenger, 4 * 190.6 = 762.4 -> 763 champion.
    plan = design(0.5, mde=0.1, alpha=0.05, power=0.8, share=0.2)
    assert (plan.n_challenger, plan.n_champion) == (191, 763)


def test_no_verdict_before_the_horizon_even_with_a_large_gap() -> None:
    plan = design(0.4, mde=0.1)
    early = decide(plan, champion=(40, 100), challenger=(90, 100))
    assert early.decision is None and "collecting" in early.reason


def test_promotes_a_better_challenger_at_the_horizon() -> None:
    plan = design(0.4, mde=0.1)
    n = plan.n_challenger
    result = decide(plan, champion=(round(0.40 * n), n), challenger=(round(0.55 * n), n))
    assert result.decision == "promote" and result.p_value is not None and result.p_value < 0.05


def test_rolls_back_a_challenger_that_is_not_better_at_the_horizon() -> None:
    plan = design(0.4, mde=0.1)
    n = plan.n_challenger
    same = decide(plan, champion=(round(0.40 * n), n), challenger=(round(0.41 * n), n))
    worse = decide(plan, champion=(round(0.40 * n), n), challenger=(round(0.30 * n), n))
    assert same.decision == "rollback" and worse.decision == "rollback"
    assert same.p_value is not None and same.p_value > 0.05
