"""Transparent points scores (BANT-like): the fallback while there are too few outcomes, and every report's baseline.

Each component's points are its contribution, so the reasons of a points score are exactly its arithmetic.
"""

from __future__ import annotations

from typing import Any

POINTS_VERSION = "points-v1"


def lead_points(row: dict[str, Any]) -> dict[str, float]:
    """Points per feature of a lead (sums to 0..100): budget 25, authority 25, need 20, timing 30."""
    size = row["company_size"]
    timing = 15 * bool(row["demo_requests"]) + 5 * min(row["pricing_views"], 3)
    return {
        "company_size": 25 if size >= 1000 else 15 if size >= 250 else 8 if size >= 50 else 0,  # budget
        "seniority": {"c_level": 25, "vp_director": 20, "manager": 10, "individual": 3}.get(row["seniority"], 0),
        "downloads": 5 * min(row["downloads"], 2),  # need
        "sessions": 2.5 * min(row["sessions"], 4),
        "demo_requests": 15 if row["demo_requests"] else 0,  # timing
        "pricing_views": float(min(timing, 30) - 15 * bool(row["demo_requests"])),
        "recency_days": 0.0 if timing >= 30 else min(5.0, 30 - timing) if row["recency_days"] <= 7 else 0.0,
    }


def deal_points(row: dict[str, Any]) -> dict[str, float]:
    """Points per feature of a deal (sums to 0..100)."""
    return {"budget_confirmed": 20 * row["budget_confirmed"], "exec_sponsor": 20 * row["exec_sponsor"],
            "champion": 20 * row["champion"], "pilot_done": 15 * row["pilot_done"],
            "stakeholders": 3 * min(row["stakeholders"], 5), "has_competitor": 0 if row["has_competitor"] else 10}


def total(points: dict[str, float]) -> float:
    """The 0..100 score of a points breakdown."""
    return float(max(0.0, min(100.0, sum(points.values()))))
