"""CRM store benchmark: demo generation rate, permission-filtered reads, and proposal-apply throughput.

    python -m benchmarks.crm_store --scales 1,10 --postgres-url postgresql://postgres@127.0.0.1/crmind_bench

Reads run as a rep and a manager (permission-filtered) next to an admin (no row filter) in the same process,
so the permission cost reads as a ratio. Apply throughput runs propose + approve, one transaction each,
next to a plain ORM update of the same field as the baseline.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, select, text

from config.db import make_engine, session_factory
from crm.access import Principal, get_record
from crm.auth import principal_for
from crm.demo import build_demo
from crm.models import Opportunity, User
from crm.proposals import approve, propose

try:  # the lead's list API; fall back to the access module's readable() when absent
    from crm.queries import list_records
except ImportError:  # pragma: no cover
    list_records = None  # type: ignore[assignment]


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def timed(fn: Callable[[], Any], n: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def principals(engine: Engine) -> dict[str, Principal]:
    with session_factory(engine)() as s:
        users = {role: s.scalars(select(User).where(User.role == role).order_by(User.id)).first()
                 for role in ("rep", "manager", "admin")}
    return {role: principal_for(u) for role, u in users.items() if u is not None}


def list_page(session: Any, p: Principal) -> Any:
    if list_records is not None:
        return list_records(session, p, "opportunity", sort="close_date", limit=50)
    from crm.access import readable

    stmt = readable(p, "opportunity").order_by(Opportunity.close_date, Opportunity.id).limit(50)
    return list(session.scalars(stmt))


def read_latency(engine: Engine, n: int) -> dict[str, tuple[float, float]]:
    ps = principals(engine)
    out: dict[str, tuple[float, float]] = {}
    rng = random.Random(1)
    with session_factory(engine)() as s:
        rep_team = next(iter(ps["rep"].team_ids))
        ids = list(s.scalars(select(Opportunity.id).where(Opportunity.team_id == rep_team)))
        for role in ("rep", "manager", "admin"):
            p = ps[role]
            samples = timed(lambda p=p: list_page(s, p), n)
            out[f"list opp page=50 ({role})"] = (statistics.median(samples), pct(samples, 95))
        for role in ("rep", "admin"):
            p = ps[role]

            def get(p: Principal = p) -> None:
                get_record(s, p, "opportunity", rng.choice(ids))
                s.expunge_all()

            samples = timed(get, n)
            out[f"get_record opp ({role})"] = (statistics.median(samples), pct(samples, 95))
    return out


def apply_throughput(engine: Engine, n: int) -> tuple[float, float]:
    """(proposals/s via propose+approve, plain updates/s) on the rep's own team's opportunities."""
    rep = principals(engine)["rep"]
    factory = session_factory(engine)
    with factory() as s:
        ids = list(s.scalars(select(Opportunity.id).where(Opportunity.team_id.in_(rep.team_ids))
                             .order_by(Opportunity.id)))
    ids = (ids * (2 * n // max(1, len(ids)) + 1))[: 2 * n]
    t = time.perf_counter()
    for i, oid in enumerate(ids[:n]):
        with factory() as s, s.begin():
            opp = get_record(s, rep, "opportunity", oid)
            prop = propose(s, rep, object_type="opportunity", action="update", record_id=oid,
                           changes={"probability": (opp.probability + 1 + i % 98) % 100}, reason="benchmark")
            approve(s, rep, prop.id)
    proposals_s = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for i, oid in enumerate(ids[n:]):
        with factory() as s, s.begin():
            opp = s.get(Opportunity, oid)
            assert opp is not None
            opp.probability = (opp.probability + 3 + i) % 100
            opp.version += 1
    plain_s = n / (time.perf_counter() - t)
    return proposals_s, plain_s


def ensure_postgres(url: str) -> None:
    base, _, name = url.rpartition("/")
    admin = create_engine(("postgresql+psycopg://" + base.removeprefix("postgresql://")) + "/postgres",
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", default="1,10", help="demo scales to generate on SQLite")
    ap.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1/crmind_bench")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--samples", type=int, default=200)
    args = ap.parse_args()
    scales = [float(x) for x in args.scales.split(",")]
    rows: list[tuple[str, str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="crm_bench_"))
    print(f"working in {tmp}", flush=True)
    engines: dict[str, Engine] = {}
    for scale in scales:
        engine = make_engine(f"sqlite:///{tmp}/s{scale:g}/crm.db")
        r = build_demo(engine, scale=scale, seed=7, out_dir=tmp / f"s{scale:g}", progress=False)
        total = sum(r.counts.values())
        rows.append((f"demo generate scale {scale:g} ({total:,} rows)", "sqlite",
                     f"{r.seconds:.1f} s, {total / r.seconds:,.0f} rows/s"))
        engines["sqlite"] = engine
        print(rows[-1], flush=True)
    big = max(scales)
    if not args.no_postgres:
        ensure_postgres(args.postgres_url)
        engine = make_engine(args.postgres_url)
        r = build_demo(engine, scale=big, seed=7, out_dir=tmp / "pg", progress=False)
        total = sum(r.counts.values())
        rows.append((f"demo generate scale {big:g} ({total:,} rows)", "postgresql",
                     f"{r.seconds:.1f} s, {total / r.seconds:,.0f} rows/s"))
        engines["postgresql"] = engine
    for name, engine in engines.items():
        lat = read_latency(engine, args.samples)
        base = lat["list opp page=50 (admin)"][0]
        for label, (p50, p95) in lat.items():
            ratio = ""
            if label.startswith("list") and "admin" not in label:
                ratio = f"  x{p50 / base:.2f} vs admin"
            if label == "get_record opp (rep)":
                ratio = f"  x{p50 / lat['get_record opp (admin)'][0]:.2f} vs admin"
            rows.append((f"{label} @ scale {big:g}", name, f"p50 {p50:.2f} ms  p95 {p95:.2f} ms{ratio}"))
        prop_s, plain_s = apply_throughput(engine, args.samples)
        rows.append((f"propose+approve (1 txn each) @ scale {big:g}", name,
                     f"{prop_s:,.0f} proposals/s  (plain ORM update: {plain_s:,.0f}/s, x{plain_s / prop_s:.1f})"))
    w0, w1 = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    print(f"\n{'measurement':<{w0}}  {'engine':<{w1}}  result")
    print("-" * (w0 + w1 + 60))
    for a, b, c in rows:
        print(f"{a:<{w0}}  {b:<{w1}}  {c}")


if __name__ == "__main__":
    main()
