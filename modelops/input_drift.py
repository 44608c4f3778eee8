"""Input drift: are this week's rep questions unlike the baseline weeks'? A kernel two-sample test on embeddings.

Questions come from ``agent_turn`` rows (their text as the ledger keeps it, personal values masked). Both windows
follow the conversion rule's: the last ``days`` days against the ``baseline_days`` before them. Each question is
embedded with the configured embedder; the distance between the windows is the squared maximum mean discrepancy
(MMD², unbiased estimate) under a Gaussian kernel whose bandwidth is the median pairwise distance, and its p-value
comes from a permutation test (``scipy.stats.permutation_test``) that reshuffles which window each question came
from. The kernel matrix is computed once; a permutation only re-indexes it, so a test costs milliseconds.

Input drift is reported beside conversion drift; it triggers nothing by itself (new kinds of questions are not
worse answers), but it tells a person reading a conversion drop where to look.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.models import Decision
from modelops.drift import DriftRule
from modelops.strategies import Scope, day_bounds

MAX_TEXTS = 150  # questions per window: MMD's error shrinks as 1/sqrt(n); 150 a side takes ~20 ms with 200 shuffles
PERMUTATIONS = 200


@dataclass(frozen=True, kw_only=True)
class InputDrift:
    """The distance between the current and the baseline window's questions, with its p-value."""

    day: str
    mmd2: float
    p_value: float
    drifted: bool
    n_current: int
    n_baseline: int
    embedder: str

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the ledger."""
        return asdict(self)


def mmd_test(x: npt.NDArray[np.floating[Any]], y: npt.NDArray[np.floating[Any]], *,
             permutations: int = PERMUTATIONS, seed: int = 0) -> tuple[float, float]:
    """Unbiased MMD² between samples ``x`` and ``y`` (rows) and its permutation p-value."""
    from scipy.stats import permutation_test

    data = np.vstack([x, y]).astype(np.float64)
    sq = np.sum(data * data, axis=1)
    dist2 = np.maximum(sq[:, None] + sq[None, :] - 2 * data @ data.T, 0.0)
    off_diagonal = dist2[~np.eye(len(data), dtype=bool)]
    bandwidth2 = float(np.median(off_diagonal)) or 1.0
    kernel = np.exp(-dist2 / bandwidth2)
    np.fill_diagonal(kernel, 0.0)  # the unbiased estimate leaves out each point's kernel with itself

    def mmd2(a: npt.NDArray[np.int64], b: npt.NDArray[np.int64], axis: int = -1) -> Any:
        # Each resample as 0/1 membership vectors: a'Ka sums the kernel within a window, a'Kb across, so a whole
        # batch of resamples is two matrix products instead of a Python loop.
        a2, b2 = np.atleast_2d(a).astype(np.int64), np.atleast_2d(b).astype(np.int64)
        m, n = a2.shape[1], b2.shape[1]
        in_a = np.zeros((len(a2), len(data)))
        np.put_along_axis(in_a, a2, 1.0, axis=1)
        in_b = 1.0 - in_a
        ka = in_a @ kernel
        within_a = np.einsum("ij,ij->i", ka, in_a) / (m * (m - 1))
        across = np.einsum("ij,ij->i", ka, in_b) / (m * n)
        within_b = np.einsum("ij,ij->i", in_b @ kernel, in_b) / (n * (n - 1))
        out = within_a + within_b - 2 * across
        return out if np.ndim(a) > 1 else out[0]

    ix, iy = np.arange(len(x)), np.arange(len(x), len(data))
    result = permutation_test((ix, iy), mmd2, permutation_type="independent", alternative="greater",
                              n_resamples=permutations, vectorized=True, random_state=seed)
    return float(result.statistic), float(result.pvalue)


def questions(session: Session, scope: Scope, first: date, last: date) -> list[str]:
    """The reps' questions (masked text of ``agent_turn`` rows) asked from ``first`` to ``last``."""
    start, end = day_bounds(first, last)
    rows = session.execute(select(Decision.actor, Decision.input_summary)
                           .where(Decision.kind == "agent_turn", Decision.ts >= start, Decision.ts < end)
                           .order_by(Decision.seq))
    return [text for actor, text in rows if scope.owns(actor) and text]


def check_input(session: Session, scope: Scope, as_of: date, rule: DriftRule, embedder: Any, *,
                alpha: float = 0.05, max_texts: int = MAX_TEXTS, seed: int = 0) -> InputDrift | None:
    """This window's questions against the baseline window's; None when either has fewer than 10."""
    current = questions(session, scope, as_of - timedelta(days=rule.days - 1), as_of)
    baseline = questions(session, scope, as_of - timedelta(days=rule.lookback_days - 1),
                         as_of - timedelta(days=rule.days))
    if min(len(current), len(baseline)) < 10:
        return None
    picker = random.Random(f"{seed}:{as_of.isoformat()}")  # the same day always samples the same questions
    current = picker.sample(current, min(len(current), max_texts))
    baseline = picker.sample(baseline, min(len(baseline), max_texts))
    vectors = np.asarray(embedder.embed_documents(current + baseline))
    stat, p = mmd_test(vectors[:len(current)], vectors[len(current):], seed=seed)
    return InputDrift(day=as_of.isoformat(), mmd2=stat, p_value=p, drifted=p < alpha, n_current=len(current),
                      n_baseline=len(baseline), embedder=str(getattr(embedder, "name", type(embedder).__name__)))
