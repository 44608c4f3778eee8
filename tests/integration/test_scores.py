"""Lifetime value on real data: pymc-marketing's BG/NBD and Gamma-Gamma recover the published CDNOW parameters."""

from __future__ import annotations

import pytest

from customers.ltv import PUBLISHED, validate_cdnow

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # pytensor compiles the models: about 20 s


def test_cdnow_parameters_match_the_published_ones() -> None:
    result = validate_cdnow()
    assert result["customers"] == 2357
    for name, published in PUBLISHED.items():
        assert result["params"][name] == pytest.approx(published, rel=0.02), name
    # The holdout weeks: predicted repeat purchases within 15% of the actual ones.
    assert result["holdout_predicted"] == pytest.approx(result["holdout_actual"], rel=0.15)
