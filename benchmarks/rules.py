"""Rules benchmark: engine throughput with 10/100/1000 rules, p99 event -> proposal, durable-rules side by side,
and backtest time over 50k and 500k events.

    PYTHONPATH=. python -m benchmarks.rules            # a few minutes on 2 cores

Both engines get the same stateless rule set (event type + per-event duration threshold), the only shape
durable-rules expresses directly; crmind is also timed on windowed rules (count and duration over a day)
that durable-rules has no operator for.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from rules.backtest import limited, rule_sql
from rules.engine import Engine, Ev, compile_rule
from rules.language import EVENT_TYPES, ApprovalPolicy, Rule

T0 = datetime(2026, 6, 1).timestamp()


def events(n: int, customers: int, seed: int = 1) -> list[Ev]:
    """``n`` events over ``customers`` customers, time-ordered, shaped like the demo's web sessions."""
    rng = random.Random(seed)
    weights = [40, 14, 3, 4, 6, 4, 1]
    types = rng.choices(EVENT_TYPES, weights, k=n)
    ts = T0
    out = []
    for i in range(n):
        ts += rng.random() * 2
        out.append(
            Ev(
                key=f"e{i}",
                customer=f"c{rng.randrange(customers)}",
                type=types[i],
                ts=ts,
                duration_s=rng.randrange(2, 300),
            )
        )
    return out


def stateless_rules(n: int, seed: int = 2) -> list[Rule]:
    """Event type + duration threshold -> notify; ``max_fires_per_customer_per_day`` high so every match fires."""
    rng = random.Random(seed)
    return [
        Rule.model_validate(
            {
                "trigger": {
                    "kind": "event",
                    "filter": {"types": [rng.choice(EVENT_TYPES)], "min_duration_s": rng.randrange(60, 600)},
                },
                "actions": [{"type": "notify", "recipient": "owner"}],
                "limits": {"max_fires_per_customer_per_day": 1000, "max_fires_per_hour": 1_000_000},
            }
        )
        for _ in range(n)
    ]


def windowed_rules(n: int, seed: int = 3) -> list[Rule]:
    """The Chinese example's shape with varied thresholds: total time and a per-type count over a day."""
    rng = random.Random(seed)
    return [
        Rule.model_validate(
            {
                "trigger": {"kind": "event", "filter": {"types": [t]}},
                "conditions": [
                    {
                        "kind": "aggregate",
                        "fn": "sum_duration",
                        "op": "gt",
                        "value": rng.randrange(120, 900),
                        "window_minutes": 1440,
                    },
                    {
                        "kind": "aggregate",
                        "fn": "count",
                        "filter": {"types": [t]},
                        "op": "ge",
                        "value": rng.randrange(2, 5),
                        "window_minutes": 1440,
                    },
                ],
                "actions": [{"type": "create_lead", "pool": "vip"}],
            }
        )
        for t in (rng.choice(EVENT_TYPES) for _ in range(n))
    ]


def crmind_rate(rules: list[Rule], evs: list[Ev]) -> tuple[float, int]:
    """Events/s through the engine, and how many events fired at least one rule."""
    engine = Engine([c for i, r in enumerate(rules) if (c := compile_rule(i + 1, 1, r))])
    started = time.perf_counter()
    fired = sum(1 for e in evs if engine.process(e))
    return len(evs) / (time.perf_counter() - started), fired


def durable_rate(rules: list[Rule], evs: list[Ev]) -> tuple[float, int]:
    """Events/s through durable-rules (Rete, C core). An event is consumed by the first rule it matches there,
    so both sides count events that fired at least one rule."""
    from durable.engine import MessageNotHandledException
    from durable.lang import m, post, ruleset, when_all

    name = f"bench{len(rules)}_{time.time_ns()}"
    fired = [0]
    with ruleset(name):
        for i, r in enumerate(rules):
            f = r.trigger.filter  # type: ignore[union-attr]

            def act(c):  # noqa: ANN001, ANN202
                fired[0] += 1

            # durable-rules names a rule after its function: one name for all would keep only the last rule.
            act.__name__ = f"r{i}"
            when_all((m.type == f.types[0]) & (m.duration_s >= f.min_duration_s))(act)

    started = time.perf_counter()
    for e in evs:
        try:  # durable-rules raises when no rule matches an event
            post(name, {"id": e.key, "type": e.type, "duration_s": e.duration_s, "customer": e.customer})
        except MessageNotHandledException:
            pass
    return len(evs) / (time.perf_counter() - started), fired[0]


def e2e_latency(n_rules: int = 100, n_events: int = 400) -> tuple[float, float, float, int]:
    """Event -> committed proposal through the real runner on SQLite (one event per transaction)."""
    import os

    tmp = Path(tempfile.mkdtemp())
    os.environ["CRMIND_DATABASE_URL"] = f"sqlite:///{tmp / 'b.db'}"
    os.environ["CRMIND_DATA_DIR"] = str(tmp)
    from config.db import get_engine, session_factory
    from config.settings import get_settings
    from crm.auth import principal_for
    from crm.models import Team, User
    from crm.schema import migrate
    from rules import lifecycle
    from rules.runner import EventIn, Runner, ingest

    get_settings.cache_clear()
    get_engine.cache_clear()
    migrate()
    with session_factory()() as s, s.begin():
        team = Team(name="t")
        s.add(team)
        s.flush()
        author, admin = (
            User(name="m", email="m@x", role="manager", team_id=team.id),
            User(name="a", email="a@x", role="admin"),
        )
        s.add_all([author, admin])
        s.flush()
        for r in windowed_rules(n_rules):
            auto = r.model_copy(update={"approval": ApprovalPolicy(auto_approve=True)})
            rec = lifecycle.create(s, principal_for(author), text="bench", rule=auto)
            lifecycle.approve(s, principal_for(admin), rec.id)
            lifecycle.activate(s, principal_for(admin), rec.id)
    runner, lat, lat_fire = Runner(), [], []
    evs = events(n_events, 20, seed=9)
    for e in evs:
        body = EventIn(
            event_id=e.key,
            visitor_id=e.customer,
            type=e.type,
            duration_s=e.duration_s,
            occurred_at=datetime.fromtimestamp(e.ts),
        )
        started = time.perf_counter()
        with session_factory()() as s, s.begin():
            fired = ingest(s, [body], runner).firings
        ms = (time.perf_counter() - started) * 1000
        (lat_fire if fired else lat).append(ms)
    allv = sorted(lat + lat_fire)
    p99 = allv[int(0.99 * (len(allv) - 1))]
    p99_fire = sorted(lat_fire)[int(0.99 * (len(lat_fire) - 1))] if lat_fire else float("nan")
    return statistics.median(allv), p99, p99_fire, len(lat_fire)


def backtest_time(n: int) -> tuple[float, int]:
    import duckdb

    evs = events(n, max(1000, n // 10), seed=4)
    con = duckdb.connect()
    con.register(
        "src",
        {
            "id": np.arange(n, dtype=np.int64),
            "customer": np.array([e.customer for e in evs], dtype=object),
            "type": np.array([e.type for e in evs], dtype=object),
            "page": np.array(["/x"] * n, dtype=object),
            "duration_s": np.array([e.duration_s for e in evs], dtype=np.int32),
            "ts": np.array([e.ts for e in evs]),
            "contact_id": np.full(n, -1, dtype=np.int64),
            "account_id": np.full(n, -1, dtype=np.int64),
        },
    )
    con.execute(
        "CREATE TABLE ev AS SELECT id, customer, type, page, duration_s, ts, nullif(contact_id, -1) AS contact_id, "
        "nullif(account_id, -1) AS account_id, '{}'::JSON AS properties FROM src"
    ).fetchall()
    rule = windowed_rules(1, seed=7)[0]
    started = time.perf_counter()
    fires = limited(rule, con.execute(rule_sql(rule)).fetchall())
    return time.perf_counter() - started, len(fires)


def main() -> None:
    evs = events(100_000, 5_000)
    rows = []
    for n in (10, 100, 1000):
        # Best of three runs each, over the same 20,000-event slice: a shared machine's noise only slows a run.
        k = 20_000
        ours, fired_check = max(crmind_rate(stateless_rules(n), evs[:k]) for _ in range(3))
        try:
            theirs, fired_d = max(durable_rate(stateless_rules(n), evs[:k]) for _ in range(3))
        except Exception as exc:  # durable-rules' C core refuses large rule sets (error 303 at 1,000 rules here)
            print(f"  durable-rules failed with {n} rules: {exc}", file=sys.stderr)
            theirs, fired_d = float("nan"), -1
        win, _ = crmind_rate(windowed_rules(n), evs[:50_000])
        rows.append((n, ours, theirs, ours / theirs, win, f"{fired_check}/{fired_d}"))
        print(f"  {n} rules done", file=sys.stderr)
    print(
        f"{'rules':>6} {'crmind ev/s':>12} {'durable-rules ev/s':>19} {'ratio':>7} {'crmind windowed ev/s':>21} "
        f"{'matched events (crmind/durable, same slice)':>44}"
    )
    for n, ours, theirs, ratio, win, same in rows:
        print(f"{n:>6} {ours:>12,.0f} {theirs:>19,.0f} {ratio:>6.0f}x {win:>21,.0f} {same:>44}")
    p50, p99, p99f, nf = e2e_latency()
    print(
        f"\nevent -> proposal (SQLite, 100 windowed rules, one event per transaction): p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms; p99 of the {nf} events that created a proposal {p99f:.1f} ms"
    )
    for n in (50_000, 500_000):
        secs, fires = backtest_time(n)
        print(f"backtest over {n:,} events (DuckDB, warm mirror): {secs:.2f} s, {fires} firings")


if __name__ == "__main__":
    main()
