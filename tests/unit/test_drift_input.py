"""Input drift: the MMD permutation test flags a shifted set of questions and not one from the same distribution."""

from __future__ import annotations

import numpy as np

from modelops.input_drift import mmd_test


def test_same_distribution_is_not_drift() -> None:
    rng = np.random.default_rng(1)
    stat, p = mmd_test(rng.normal(size=(120, 32)), rng.normal(size=(120, 32)), seed=1)
    assert p > 0.05
    assert abs(stat) < 0.01


def test_a_shifted_set_is_drift() -> None:
    rng = np.random.default_rng(2)
    shifted = rng.normal(size=(120, 32))
    shifted[:, :4] += 0.8  # a new topic moves questions along a few directions
    stat, p = mmd_test(rng.normal(size=(120, 32)), shifted, seed=2)
    assert p < 0.01
    assert stat > 0.01
