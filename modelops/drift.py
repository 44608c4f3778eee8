"""The drift rule: a strategy drifts when its daily conversion stays more than 15% under its baseline for 7 days.

For each day d the baseline is the pooled conversion (all conversions over all units) of the ``baseline_days``
days that end where d's drift window starts, i.e. days [d - days - baseline_days + 1, d - days]. So none of the
days in a run of ``days`` is part of the baseline it is judged against. A day is *below* when its rate is under
(1 - drop) x baseline; a day with fewer than ``min_daily`` units, or whose baseline holds fewer than
``min_daily * days`` units, is not judged: it neither extends nor breaks a run (weekends and holidays are quiet
in sales). Drift is ``days`` judged days below in a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from modelops.strategies import Day


@dataclass(frozen=True, kw_only=True)
class DriftRule:
    """The rule's parameters (defaults from settings: ``CRMIND_DRIFT_*``)."""

    drop: float = 0.15
    days: int = 7
    baseline_days: int = 28
    min_daily: int = 20

    @classmethod
    def from_settings(cls) -> DriftRule:
        """The configured rule."""
        from config.settings import get_settings

        s = get_settings()
        return cls(drop=s.drift_drop, days=s.drift_days, baseline_days=s.drift_baseline_days,
                   min_daily=s.drift_min_daily)

    @property
    def lookback_days(self) -> int:
        """Days of history one judgement needs: the baseline and the drift window."""
        return self.days + self.baseline_days


@dataclass(frozen=True)
class Verdict:
    """One day judged against its baseline."""

    day: date
    n: int
    k: int
    rate: float | None
    baseline: float | None
    threshold: float | None
    below: bool | None
    """None: not judged (too few units that day or in its baseline)."""

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return {"day": self.day.isoformat(), "n": self.n, "k": self.k, "rate": self.rate, "baseline": self.baseline,
                "threshold": self.threshold, "below": self.below}


@dataclass(frozen=True)
class DriftStatus:
    """A strategy's days judged, and the run of days below that ends at the latest judged day."""

    verdicts: list[Verdict]
    run: list[Verdict] = field(default_factory=list)
    drifted: bool = False

    @property
    def last(self) -> Verdict | None:
        """The latest judged day."""
        judged = [v for v in self.verdicts if v.below is not None]
        return judged[-1] if judged else None

    def run_counts(self) -> tuple[int, int]:
        """Units and conversions over the run's days (the drifted rate the A/B test starts from)."""
        return sum(v.n for v in self.run), sum(v.k for v in self.run)


def judge(series: list[Day], rule: DriftRule) -> list[Verdict]:
    """Each day of ``series`` (consecutive days, oldest first) against its own baseline."""
    by_day = {d.day: d for d in series}
    out = []
    for d in series:
        first = d.day - timedelta(days=rule.days + rule.baseline_days - 1)
        base = [by_day[first + timedelta(days=i)] for i in range(rule.baseline_days)
                if first + timedelta(days=i) in by_day]
        n_base, k_base = sum(b.n for b in base), sum(b.k for b in base)
        baseline = k_base / n_base if n_base >= rule.min_daily * rule.days else None
        threshold = None if baseline is None else (1 - rule.drop) * baseline
        judged = baseline is not None and threshold is not None and d.n >= rule.min_daily
        below = (d.k / d.n < threshold) if judged and threshold is not None else None
        out.append(Verdict(d.day, d.n, d.k, d.rate, baseline, threshold, below))
    return out


def evaluate(series: list[Day], rule: DriftRule, *, after: date | None = None) -> DriftStatus:
    """Judge ``series`` and find the current run of days below; only days after ``after`` may form a run.

    ``after`` is the day the strategy's last drift incident closed: a new incident needs a new run.
    """
    verdicts = judge(series, rule)
    run: list[Verdict] = []
    for v in verdicts:
        if v.below is None or (after is not None and v.day <= after):
            continue
        run = [*run, v] if v.below else []
    return DriftStatus(verdicts, run, len(run) >= rule.days)
