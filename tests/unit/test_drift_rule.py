"""The drift rule on crafted series: more than 15% under the baseline for 7 judged days in a row is drift."""

from __future__ import annotations

from datetime import date, timedelta

from modelops.drift import DriftRule, evaluate, judge
from modelops.strategies import Day

RULE = DriftRule(drop=0.15, days=7, baseline_days=28, min_daily=20)
START = date(2026, 3, 1)


def series(tail: list[float], *, n: int = 100, base: float = 0.6, baseline_days: int = 35) -> list[Day]:
    """``baseline_days`` days at ``base``, then one day per rate in ``tail`` (n units a day)."""
    rates = [base] * baseline_days + tail
    return [Day(START + timedelta(days=i), n, round(r * n)) for i, r in enumerate(rates)]


def test_six_days_below_is_not_drift_seven_is() -> None:
    six = evaluate(series([0.40] * 6), RULE)
    seven = evaluate(series([0.40] * 7), RULE)
    assert (len(six.run), six.drifted) == (6, False)
    assert (len(seven.run), seven.drifted) == (7, True)
    assert seven.run[0].day == START + timedelta(days=35)
    assert seven.last is not None and seven.last.baseline == 0.6


def test_a_drop_of_fourteen_percent_is_not_below_sixteen_is() -> None:
    fourteen = evaluate(series([0.6 * 0.86] * 10), RULE)
    sixteen = evaluate(series([0.6 * 0.84] * 10), RULE)
    assert not fourteen.drifted and not fourteen.run
    assert sixteen.drifted


def test_a_day_back_above_the_threshold_breaks_the_run() -> None:
    status = evaluate(series([0.4, 0.4, 0.4, 0.6, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4]), RULE)
    assert (len(status.run), status.drifted) == (6, False)


def test_quiet_days_are_skipped_neither_breaking_nor_extending_a_run() -> None:
    days = series([0.4] * 4)
    quiet = Day(days[-1].day + timedelta(days=1), 5, 0)  # 5 units: below min_daily, not judged
    more = [Day(quiet.day + timedelta(days=1 + i), 100, 40) for i in range(3)]
    status = evaluate([*days, quiet, *more], RULE)
    assert [v.below for v in judge([*days, quiet], RULE)][-1] is None
    assert (len(status.run), status.drifted) == (7, True)


def test_the_baseline_leaves_out_the_drift_window_and_needs_a_weeks_data() -> None:
    verdicts = judge(series([0.4] * 7, baseline_days=10), RULE)
    assert all(v.below is None for v in verdicts[:8])  # day 7's baseline is day 0 alone: 100 < 20 * 7 units
    last = verdicts[-1]
    assert last.baseline == 0.6  # the six 0.4 days before it are inside its window, not its baseline


def test_after_a_closed_incident_only_later_days_form_a_run() -> None:
    s = series([0.4] * 9)
    closed = s[-3].day
    status = evaluate(s, RULE, after=closed)
    assert (len(status.run), status.drifted) == (2, False)
