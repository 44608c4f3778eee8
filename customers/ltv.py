"""Lifetime value: BG/NBD (how often, and for how long, a customer buys) times Gamma-Gamma (how much per purchase).

Both models come from ``pymc_marketing.clv`` and are fitted by MAP with flat priors, so the estimates are the
maximum-likelihood ones and comparable to the published CDNOW values (``validate_cdnow``). Time is in weeks.
For accounts, a purchase is a won deal (deals closed on one day count once); value is in USD.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from customers.errors import ScoringError
from customers.features import data_clock
from customers.rfm import won_deals
from customers.scoring import RunResult, ScoreRow, save_scores

# pytensor warns on every compile that pip's wheels come without BLAS; these two small models don't need it.
warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS installation")

LTV_VERSION = "ltv-bgnbd-gg-map-v1"
HORIZON_WEEKS = 52
# Fader, Hardie & Lee (2005) on the CDNOW 1/10 sample (2,357 customers, 39 + 39 weeks).
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "p": 6.25, "q": 3.74, "v": 15.44}


@dataclass
class Summary:
    """Per customer: repeat purchases, weeks from first to last purchase, weeks observed, mean repeat value."""

    ids: list[Any]
    frequency: list[int]
    recency: list[float]
    T: list[float]
    monetary: list[float]


def summarise(purchases: list[tuple[Any, date, float]], end: date) -> Summary:
    """Collapse (customer, day, value) purchases up to ``end`` into the BG/NBD / Gamma-Gamma summary."""
    days: dict[Any, dict[date, float]] = defaultdict(lambda: defaultdict(float))
    for cid, day, value in purchases:
        if day <= end:
            days[cid][day] += value
    out = Summary([], [], [], [], [])
    for cid in sorted(days, key=str):
        ordered = sorted(days[cid].items())
        first, last = ordered[0][0], ordered[-1][0]
        repeat = [v for _, v in ordered[1:]]
        out.ids.append(cid)
        out.frequency.append(len(repeat))
        out.recency.append((last - first).days / 7)
        out.T.append((end - first).days / 7)
        out.monetary.append(sum(repeat) / len(repeat) if repeat else 0.0)
    return out


@dataclass
class Fitted:
    """The two fitted models and their parameters."""

    bgnbd: Any
    gamma_gamma: Any | None
    params: dict[str, float]
    seconds: float


def fit(summary: Summary, *, flat_priors: bool = True) -> Fitted:
    """MAP fits of BG/NBD on everyone and Gamma-Gamma on customers with repeat purchases.

    Flat priors give the maximum-likelihood estimates (the CDNOW check). A small book of accounts with few
    repeat deals has no finite MLE (r and alpha run off together), so ``flat_priors=False`` keeps
    pymc-marketing's weakly informative default priors, which hold the estimates finite.
    """
    import pandas as pd
    from pymc_extras.prior import Prior
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel

    if len(summary.ids) < 10 or sum(f > 0 for f in summary.frequency) < 5:
        raise ScoringError(f"lifetime value needs at least 10 customers and 5 with repeat purchases; there are "
                           f"{len(summary.ids)} and {sum(f > 0 for f in summary.frequency)}")
    started = time.perf_counter()
    flat = Prior("HalfFlat")
    data = pd.DataFrame({"customer_id": range(len(summary.ids)), "frequency": summary.frequency,
                         "recency": summary.recency, "T": summary.T})
    bg = BetaGeoModel(model_config={"r": flat, "alpha": flat, "a": flat, "b": flat} if flat_priors else None)
    bg.fit(data=data, method="map", progressbar=False)
    params = {k: float(bg.fit_result[k].values.ravel()[0]) for k in ("r", "alpha", "a", "b")}
    repeaters = data.assign(monetary_value=summary.monetary).query("frequency > 0")
    gg = None
    if len(repeaters) >= 5:
        gg = GammaGammaModel(model_config={"p": flat, "q": flat, "v": flat} if flat_priors else None)
        gg.fit(data=repeaters[["customer_id", "frequency", "monetary_value"]], method="map", progressbar=False)
        params |= {k: float(gg.fit_result[k].values.ravel()[0]) for k in ("p", "q", "v")}
    return Fitted(bg, gg, params, time.perf_counter() - started)


def expected_purchases(fitted: Fitted, summary: Summary, weeks: float) -> list[float]:
    """Expected repeat purchases of each customer in the next ``weeks``."""
    import pandas as pd

    data = pd.DataFrame({"customer_id": range(len(summary.ids)), "frequency": summary.frequency,
                         "recency": summary.recency, "T": summary.T})
    return [float(x) for x in fitted.bgnbd.expected_purchases(data=data, future_t=weeks).values.ravel()]


def expected_spend(fitted: Fitted, summary: Summary) -> list[float]:
    """Expected value per future purchase (Gamma-Gamma; the population mean for one-time buyers)."""
    import pandas as pd

    if fitted.gamma_gamma is None:
        mean = [m for m, f in zip(summary.monetary, summary.frequency, strict=True) if f > 0]
        return [sum(mean) / max(1, len(mean))] * len(summary.ids)
    data = pd.DataFrame({"customer_id": range(len(summary.ids)), "frequency": summary.frequency,
                         "monetary_value": summary.monetary})
    return [float(x) for x in fitted.gamma_gamma.expected_customer_spend(data=data).values.ravel()]


def read_cdnow(path: Path) -> list[tuple[str, date, float]]:
    """The CDNOW transaction log (customer, day, dollars) from lifetimes' ``CDNOW_sample.txt`` or master file."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if not parts or not parts[0].isdigit():
            continue  # the master file's header
        day = next(p for p in parts[1:] if len(p) == 8 and p.isdigit())
        out.append((parts[0], date(int(day[:4]), int(day[4:6]), int(day[6:])), float(parts[-1])))
    return out


def cdnow_path() -> Path:
    """The CDNOW sample shipped in the lifetimes wheel (its data only; its model code breaks on new pandas)."""
    import importlib.util

    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise ScoringError("the CDNOW check needs the lifetimes package (its data files): pip install lifetimes")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "CDNOW_sample.txt"


def validate_cdnow(path: Path | None = None) -> dict[str, Any]:
    """Fit on weeks 1-39 of CDNOW, compare with the published parameters and with repeat buys in weeks 40-78."""
    log = read_cdnow(path or cdnow_path())
    calibration_end, holdout_end = date(1997, 9, 30), date(1998, 6, 30)
    summary = summarise(log, calibration_end)
    fitted = fit(summary)
    holdout_weeks = (holdout_end - calibration_end).days / 7
    predicted = expected_purchases(fitted, summary, holdout_weeks)
    # Actual repeat purchases in the holdout: purchase days of calibration-period customers after the cut.
    known = set(summary.ids)
    actual_days = {(c, d) for c, d, _ in log if c in known and calibration_end < d <= holdout_end}
    return {"customers": len(summary.ids), "params": {k: round(v, 3) for k, v in fitted.params.items()},
            "published": PUBLISHED, "holdout_weeks": round(holdout_weeks, 1),
            "holdout_predicted": round(sum(predicted), 1), "holdout_actual": len(actual_days),
            "fit_seconds": round(fitted.seconds, 2)}


def score_ltv(session: Session, *, now: datetime | None = None, weeks: int = HORIZON_WEEKS) -> RunResult:
    """12-month expected value of every account with won deals: purchases (BG/NBD) x value (Gamma-Gamma)."""
    started = time.perf_counter()
    end = (now or data_clock(session)).date()
    summary = summarise(won_deals(session), end)
    fitted = fit(summary, flat_priors=False)
    purchases = expected_purchases(fitted, summary, weeks)
    spend = expected_spend(fitted, summary)
    if not all(math.isfinite(x) for x in purchases + spend):
        raise ScoringError(f"the lifetime-value fit did not converge ({fitted.params}); too few repeat purchases?")
    rows = []
    for i, acct in enumerate(summary.ids):
        feats = {"frequency": summary.frequency[i], "recency_weeks": round(summary.recency[i], 1),
                 "T_weeks": round(summary.T[i], 1), "mean_repeat_usd": round(summary.monetary[i], 2),
                 "expected_purchases": round(purchases[i], 3), "expected_spend_usd": round(spend[i], 2)}
        why = [{"feature": "expected_purchases", "value": feats["expected_purchases"], "contribution": purchases[i],
                "en": f"about {purchases[i]:.2f} more won deals expected in {weeks} weeks",
                "zh": f"预计{weeks}周内再成交约{purchases[i]:.2f}单"},
               {"feature": "expected_spend_usd", "value": feats["expected_spend_usd"], "contribution": spend[i],
                "en": f"about {spend[i]:,.0f} USD per deal", "zh": f"每单约{spend[i]:,.0f}美元"}]
        value = purchases[i] * spend[i]
        label = "high" if value >= 500_000 else "medium" if value >= 100_000 else "low"
        rows.append(ScoreRow(int(acct), value, label, why, feats))
    version = f"{LTV_VERSION}:" + ",".join(f"{k}={v:.3g}" for k, v in fitted.params.items())
    ledger_id, size = save_scores(session, kind="ltv", object_type="account", rows=rows, model_version=version[:120],
                                  columns=tuple(rows[0].features) if rows else ())
    return RunResult("ltv", len(rows), version[:120], False, None, None, ledger_id, size,
                     time.perf_counter() - started)
