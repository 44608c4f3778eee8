"""The load benchmark's baseline: a plain FastAPI + SQLAlchemy endpoint on the query crmind's list route runs.

    uvicorn benchmarks.load_baseline:app --workers N   (CRMIND_DATABASE_URL says which database)

No authentication, no permission filter, no field masking, no ledger: one indexed SELECT of a team's
opportunities and its rows as JSON. crmind's ``GET /v1/opportunities`` for a rep runs the same SELECT
(the rep's team, ordered by id, 50 rows) plus all of that, so the ratio is what those layers cost.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Query
from sqlalchemy import create_engine, text

_url = os.environ.get("CRMIND_DATABASE_URL", "sqlite:///data/crm.db")
# The same pool sizes as crmind's engine (config/db.py), so only the layers above differ.
_engine = create_engine(_url, pool_size=10, max_overflow=10) if _url.startswith("postgresql") \
    else create_engine(_url, connect_args={"check_same_thread": False}, pool_size=10, max_overflow=20)
_QUERY = text("SELECT id, account_id, name, stage, amount, currency, probability, close_date, owner_id, team_id "
              "FROM opportunities WHERE team_id = :team ORDER BY id LIMIT :limit")

app = FastAPI()


@app.get("/opportunities")
def opportunities(team: int = Query(ge=1), limit: int = Query(50, ge=1, le=200)) -> dict[str, Any]:
    """A team's first ``limit`` opportunities by id."""
    with _engine.connect() as conn:
        rows = conn.execute(_QUERY, {"team": team, "limit": limit}).mappings().all()
    return {"items": [{k: (str(v) if v is not None and not isinstance(v, (int, float, str)) else v)
                       for k, v in r.items()} for r in rows]}
