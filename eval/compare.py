"""Champion vs challenger: per-suite score deltas with paired bootstrap confidence intervals, and a verdict.

Both runs grade the same items (same ids), so the comparison resamples item ids with replacement and recomputes
the mean difference each time (a paired bootstrap): the item-to-item variation both models share cancels, and
the interval is much tighter than comparing two independent means. The verdict is "better" or "worse" only when
the whole 95% interval is on one side of zero; otherwise "no difference" (the data can't tell them apart).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from eval.results import EvalRun, SuiteResult

RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass
class SuiteDelta:
    """One suite's comparison: B minus A on the items both graded."""

    suite: str
    n: int
    a: float | None
    b: float | None
    delta: float | None
    low: float | None
    high: float | None
    verdict: str
    """'better', 'worse', 'no difference', or 'not comparable' (no shared items)."""
    a_only: int = 0
    b_only: int = 0


def paired_bootstrap(a: np.ndarray, b: np.ndarray, *, resamples: int = RESAMPLES, confidence: float = CONFIDENCE,
                     seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``b - a`` and its percentile confidence interval over resampled item indices."""
    diff = b - a
    rng = np.random.default_rng(seed)  # seeded: the same two runs always give the same interval
    idx = rng.integers(0, len(diff), size=(resamples, len(diff)))
    means = diff[idx].mean(axis=1)
    tail = (1 - confidence) / 2
    return float(diff.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def compare_suite(a: SuiteResult, b: SuiteResult, *, seed: int = 0) -> SuiteDelta:
    """Pair the two results' items by id and bootstrap the difference of their scores."""
    sa = {i.id: i.score for i in a.items}
    sb = {i.id: i.score for i in b.items}
    shared = sorted(sa.keys() & sb.keys())
    if not shared:
        return SuiteDelta(a.suite, 0, None, None, None, None, None, "not comparable", len(sa), len(sb))
    va = np.array([sa[k] for k in shared], dtype=float)
    vb = np.array([sb[k] for k in shared], dtype=float)
    delta, low, high = paired_bootstrap(va, vb, seed=seed)
    verdict = "better" if low > 0 else "worse" if high < 0 else "no difference"
    return SuiteDelta(a.suite, len(shared), round(float(va.mean()), 4), round(float(vb.mean()), 4), round(delta, 4),
                      round(low, 4), round(high, 4), verdict, len(sa.keys() - sb.keys()), len(sb.keys() - sa.keys()))


def compare_runs(a: EvalRun, b: EvalRun) -> list[SuiteDelta]:
    """Every suite both runs have, in the runs' order."""
    return [compare_suite(a.suites[name], b.suites[name]) for name in a.suites if name in b.suites]


def as_json(a: EvalRun, b: EvalRun, deltas: list[SuiteDelta]) -> dict[str, Any]:
    """The comparison as saved beside the report."""
    return {"a": {"run_id": a.run_id, "model": a.model}, "b": {"run_id": b.run_id, "model": b.model},
            "confidence": CONFIDENCE, "resamples": RESAMPLES, "suites": [asdict(d) for d in deltas]}


def table(a: EvalRun, b: EvalRun, deltas: list[SuiteDelta]) -> str:
    """A text table for the terminal."""
    head = f"{'suite':<11}{'items':>6}{a.model[:14]:>16}{b.model[:14]:>16}{'delta':>9}   95% CI            verdict"
    lines = [f"A = {a.run_id}", f"B = {b.run_id}", head, "-" * len(head)]
    for d in deltas:
        if d.delta is None:
            lines.append(f"{d.suite:<11}{0:>6}{'-':>16}{'-':>16}{'-':>9}   {'-':<17} {d.verdict}")
            continue
        ci = f"[{d.low:+.3f}, {d.high:+.3f}]"
        lines.append(f"{d.suite:<11}{d.n:>6}{d.a:>16.3f}{d.b:>16.3f}{d.delta:>+9.3f}   {ci:<17} {d.verdict}")
    return "\n".join(lines)
