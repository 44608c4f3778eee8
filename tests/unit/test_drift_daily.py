"""The server's daily drift tick: yesterday is judged once, a restart does not judge it again, the next day is."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine

import ledger
from config.db import session_factory
from modelops.daily import DailyDriftCheck, last_checked_day
from modelops.jobs import JobQueue


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def checked_days(engine: Engine) -> list[str]:
    with session_factory(engine)() as s:
        rows = reversed(ledger.decisions_for(s, actor="drift-monitor", limit=50))
        return [d.output["day"] for d in rows if d.kind == "drift_check"]


def test_yesterday_is_judged_once_across_restarts_and_the_next_day_again(sqlite_engine: Engine) -> None:
    clock = Clock(datetime(2026, 5, 10, 3, 0, tzinfo=UTC))
    queue = JobQueue(sqlite_engine, redis_url=None, use_settings=False, worker="w1")
    daily = DailyDriftCheck(sqlite_engine, queue=queue, clock=clock)
    report = daily.run_once()
    assert report is not None and report.as_of == date(2026, 5, 9)
    assert daily.run_once() is None  # the ledger says the day was judged
    restarted = DailyDriftCheck(sqlite_engine, queue=queue, clock=clock)
    assert restarted.run_once() is None  # so does a restarted server, or a second one
    clock.now += timedelta(days=1)
    later = restarted.run_once()
    assert later is not None and later.as_of == date(2026, 5, 10)
    assert checked_days(sqlite_engine) == ["2026-05-09", "2026-05-10"]
    with session_factory(sqlite_engine)() as s:
        assert last_checked_day(s) == date(2026, 5, 10)


def test_the_thread_ticks_after_its_delay_and_stops(sqlite_engine: Engine) -> None:
    clock = Clock(datetime(2026, 5, 10, 3, 0, tzinfo=UTC))
    queue = JobQueue(sqlite_engine, redis_url=None, use_settings=False, worker="w1")

    def broken_embedder() -> None:
        raise RuntimeError("no encoder here")  # input drift is skipped; conversion is still judged

    daily = DailyDriftCheck(sqlite_engine, queue=queue, clock=clock, first_delay_s=0.01, interval_s=3600,
                            embedder=broken_embedder)
    daily.start()
    try:
        for _ in range(200):
            if checked_days(sqlite_engine):
                break
            time.sleep(0.05)
    finally:
        daily.stop()
    assert checked_days(sqlite_engine) == ["2026-05-09"] and daily.last_error == ""
