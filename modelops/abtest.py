"""The A/B decision: promote the retrained challenger or roll it back, by one test at a horizon fixed in advance.

The test is a one-sided two-proportion z-test (statsmodels ``proportions_ztest``, alternative "larger") of the
challenger's conversion against the champion's, on conversations that started after the challenger went live.
It is run once, when both arms have reached the sample sizes that a power analysis fixed at the start
(statsmodels ``NormalIndPower`` on Cohen's h), and never peeked at before: a test looked at every day until it
says "better" would promote far more often than alpha says.

- Effect: the minimal detectable effect is an absolute lift ``mde`` over the champion's drifted conversion p0
  (measured over the drift window), as Cohen's h = 2 asin(sqrt(p0 + mde)) - 2 asin(sqrt(p0)).
- Sizes: the variance of 2 asin(sqrt(p_hat)) is 1/n, so with the challenger on ``share`` of the traffic
  (ratio = champion conversations per challenger one) the challenger arm needs
  n1 = ((z_(1-alpha) + z_power) / h)^2 * (1 + 1/ratio) conversations and the champion arm ratio * n1. For
  p0 = 0.5 and mde = 0.1 with an even split, alpha 0.05 and power 0.8: h = 0.2014 and
  n1 = n2 = 2 * ((1.6449 + 0.8416) / 0.2014)^2 = 305 (the unit test checks this by hand).
- Decision: promote when the challenger is better (p < alpha), else roll it back. Superiority, not
  non-inferiority: the challenger exists because the champion drifted, and a retrain that does not measurably
  win back conversion is not worth a model change (the champion is the model we know).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal


@dataclass(frozen=True, kw_only=True)
class ABDesign:
    """The test fixed before any A/B outcome is seen."""

    p0: float
    mde: float
    alpha: float
    power: float
    share: float
    effect_h: float
    n_challenger: int
    n_champion: int

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the ledger."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ABDesign:
        """Back from a ledger row."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def design(p0: float, *, mde: float, alpha: float = 0.05, power: float = 0.8, share: float = 0.5) -> ABDesign:
    """The horizon: conversations per arm to detect a lift of ``mde`` over ``p0`` (one-sided)."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    p0 = min(max(p0, 0.001), 0.998)
    p1 = min(p0 + mde, 0.999)
    h = float(proportion_effectsize(p1, p0))
    ratio = (1 - share) / share  # champion conversations per challenger conversation
    n1 = float(NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=ratio,
                                            alternative="larger"))
    return ABDesign(p0=p0, mde=mde, alpha=alpha, power=power, share=share, effect_h=h,
                    n_challenger=math.ceil(n1), n_champion=math.ceil(n1 * ratio))


@dataclass(frozen=True, kw_only=True)
class ABResult:
    """Where the test stands, and its verdict once at the horizon."""

    n_champion: int
    k_champion: int
    n_challenger: int
    k_challenger: int
    z: float | None = None
    p_value: float | None = None
    decision: Literal["promote", "rollback"] | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the ledger."""
        return asdict(self)


def decide(plan: ABDesign, *, champion: tuple[int, int], challenger: tuple[int, int]) -> ABResult:
    """Test once both arms (conversions, conversations) reached their size; before that, no verdict."""
    (k_cp, n_cp), (k_ch, n_ch) = champion, challenger
    if n_ch < plan.n_challenger or n_cp < plan.n_champion:
        return ABResult(n_champion=n_cp, k_champion=k_cp, n_challenger=n_ch, k_challenger=k_ch,
                        reason=f"collecting: {n_ch}/{plan.n_challenger} challenger, "
                               f"{n_cp}/{plan.n_champion} champion conversations")
    from statsmodels.stats.proportion import proportions_ztest

    z, p = proportions_ztest([k_ch, k_cp], [n_ch, n_cp], alternative="larger")
    z, p = float(z), float(p)
    if math.isnan(p):  # both arms all-converted or none-converted: no evidence the challenger is better
        z, p = 0.0, 1.0
    better = p < plan.alpha
    rates = f"challenger {k_ch / n_ch:.3f} vs champion {k_cp / n_cp:.3f}"
    return ABResult(n_champion=n_cp, k_champion=k_cp, n_challenger=n_ch, k_challenger=k_ch, z=z, p_value=p,
                    decision="promote" if better else "rollback",
                    reason=f"{rates}, z={z:.2f}, one-sided p={p:.4f} {'<' if better else '>='} alpha {plan.alpha}")
