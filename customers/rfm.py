"""RFM segments over won deals per account, computed in DuckDB SQL (NTILE quintiles) and stored as ``rfm`` scores.

Amounts are compared in USD (``customers.features.USD_PER``). Quintile 5 is always the best: the most recent,
the most frequent, the largest spend. The segment rules are the classic RFM grid, checked in order.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.models import Account, Opportunity
from customers.features import USD_PER, data_clock
from customers.reasons import phrase
from customers.scoring import RunResult, ScoreRow, save_scores

RFM_VERSION = "rfm-ntile5-v1"
# key -> (English, Chinese)
SEGMENTS = {
    "champions": ("Champions", "重要价值客户"),
    "loyal": ("Loyal", "重要保持客户"),
    "potential_loyalist": ("Potential loyalist", "潜力客户"),
    "new_customers": ("New customers", "新客户"),
    "promising": ("Promising", "一般发展客户"),
    "need_attention": ("Need attention", "需关注客户"),
    "at_risk": ("At risk", "重要挽留客户"),
    "cant_lose": ("Can't lose them", "重要唤回客户"),
    "hibernating": ("Hibernating", "沉睡客户"),
    "lost": ("Lost", "流失客户"),
}
# The classic grid on (r, f, m) quintiles, first match wins.
_SEGMENT_SQL = """
CASE
  WHEN r >= 4 AND f >= 4 AND m >= 4 THEN 'champions'
  WHEN r <= 2 AND f >= 4 AND m >= 4 THEN 'cant_lose'
  WHEN r <= 2 AND (f >= 3 OR m >= 4) THEN 'at_risk'
  WHEN r >= 3 AND f >= 4 THEN 'loyal'
  WHEN r >= 4 AND f <= 1 THEN 'new_customers'
  WHEN r >= 4 AND f >= 2 THEN 'potential_loyalist'
  WHEN r = 3 AND f <= 2 AND m >= 3 THEN 'promising'
  WHEN r = 3 THEN 'need_attention'
  WHEN r = 2 THEN 'hibernating'
  ELSE 'lost'
END"""
_RFM_SQL = f"""
WITH per_account AS (
  SELECT account_id,
         date_diff('day', max(close_date), $as_of) AS recency_days,
         count(*) AS frequency,
         sum(amount_usd) AS monetary
  FROM won GROUP BY account_id
), q AS (
  SELECT *,
         ntile(5) OVER (ORDER BY recency_days DESC, account_id) AS r,
         ntile(5) OVER (ORDER BY frequency, account_id) AS f,
         ntile(5) OVER (ORDER BY monetary, account_id) AS m
  FROM per_account
)
SELECT account_id, recency_days, frequency, monetary, r, f, m, {_SEGMENT_SQL} AS segment
FROM q ORDER BY account_id
"""


def won_deals(session: Session) -> list[tuple[int, date, float]]:
    """(account id, close date, amount in USD) of every won deal on an unmerged account."""
    rows = session.execute(select(Opportunity.account_id, Opportunity.close_date, Opportunity.amount,
                                  Opportunity.currency).join(Account, Account.id == Opportunity.account_id)
                           .where(Opportunity.stage == "closed_won", Account.merged_into_id.is_(None)))
    return [(a, d, float(amt or 0) * USD_PER.get(cur, 1.0)) for a, d, amt, cur in rows]


def rfm_table(deals: list[tuple[int, date, float]], as_of: date) -> list[dict[str, Any]]:
    """Per account: recency, frequency, monetary, their quintiles and the segment key (DuckDB)."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        con.execute("CREATE TABLE won (account_id INTEGER, close_date DATE, amount_usd DOUBLE)")
        if deals:
            con.executemany("INSERT INTO won VALUES (?, ?, ?)", deals)
        cur = con.execute(_RFM_SQL, {"as_of": as_of})
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def score_rfm(session: Session, *, now: datetime | None = None) -> RunResult:
    """Segment every account with won deals and store the ``rfm`` scores (value = r+f+m scaled to 0..100)."""
    started = time.perf_counter()
    as_of = (now or data_clock(session)).date()
    rows = []
    for rec in rfm_table(won_deals(session), as_of):
        features = {"recency_days": int(rec["recency_days"]), "frequency": int(rec["frequency"]),
                    "monetary_usd": round(float(rec["monetary"]), 2), "recency_quintile": int(rec["r"]),
                    "frequency_quintile": int(rec["f"]), "monetary_quintile": int(rec["m"])}
        why = []
        for name in ("recency", "frequency", "monetary"):
            q = features[f"{name}_quintile"]
            en, zh = phrase(f"{name}_quintile", q)
            why.append({"feature": f"{name}_quintile", "value": q, "contribution": float(q - 3), "en": en, "zh": zh})
        why.sort(key=lambda r: -abs(r["contribution"]))
        value = (rec["r"] + rec["f"] + rec["m"] - 3) / 12 * 100
        rows.append(ScoreRow(int(rec["account_id"]), value, str(rec["segment"]), why, features))
    columns = ("recency_days", "frequency", "monetary_usd", "recency_quintile", "frequency_quintile",
               "monetary_quintile")
    ledger_id, size = save_scores(session, kind="rfm", object_type="account", rows=rows, model_version=RFM_VERSION,
                                  columns=columns)
    return RunResult("rfm", len(rows), RFM_VERSION, False, None, None, ledger_id, size,
                     time.perf_counter() - started)
