"""Scale-out: the same runner consuming a NATS JetStream stream whose subjects are partitioned by customer.

Subjects are ``crmind.events.<p>`` with ``p = crc32(customer) % partitions``, so one customer's events stay in
order on one partition. Each partition has one durable pull consumer; a worker owns some partitions, and
acks a message only after the transaction holding the event, its firings, proposals and ledger rows has
committed. A worker killed mid-stream leaves its unacked messages to be redelivered to the worker that takes
its partitions over; the event key makes a redelivered, already-committed event a no-op, and the new owner
rebuilds each customer's window from stored events.

Run a worker: ``python -m rules.stream worker --partitions 0,1 --url nats://127.0.0.1:4222``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import zlib
from collections.abc import Sequence
from typing import Any

from config.db import session_factory
from rules.runner import EventIn, Runner, ingest

STREAM = "CRMIND_EVENTS"
SUBJECT = "crmind.events"
DEFAULT_PARTITIONS = 8


def partition(customer: str, partitions: int = DEFAULT_PARTITIONS) -> int:
    """The partition of a customer's events (stable across processes)."""
    return zlib.crc32(customer.encode()) % partitions


async def connect(url: str) -> tuple[Any, Any]:
    """A NATS connection and its JetStream context."""
    import nats

    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=3)
    return nc, nc.jetstream()


async def ensure_stream(js: Any, *, stream: str = STREAM, subject: str = SUBJECT) -> None:
    """Create the stream if it is missing (file storage, dedup window by event id)."""
    from nats.js.api import StreamConfig
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(StreamConfig(name=stream, subjects=[f"{subject}.*"], duplicate_window=120))


async def publish(url: str, events: Sequence[EventIn], *, partitions: int = DEFAULT_PARTITIONS,
                  stream: str = STREAM, subject: str = SUBJECT) -> int:
    """Publish events to their customers' partitions; JetStream drops a repeated event id (Nats-Msg-Id)."""
    nc, js = await connect(url)
    try:
        await ensure_stream(js, stream=stream, subject=subject)
        for e in events:
            await js.publish(f"{subject}.{partition(e.visitor_id, partitions)}", e.model_dump_json().encode(),
                             headers={"Nats-Msg-Id": e.event_id})
        return len(events)
    finally:
        await nc.close()


async def run_worker(url: str, parts: Sequence[int], *, stream: str = STREAM, subject: str = SUBJECT,
                     idle_exit_s: float | None = None, delay_s: float = 0.0, ack_wait_s: float = 5.0) -> int:
    """Consume ``parts`` until idle for ``idle_exit_s`` (forever if None); returns messages handled."""
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.api import AckPolicy, ConsumerConfig

    nc, js = await connect(url)
    await ensure_stream(js, stream=stream, subject=subject)
    subs = []
    for p in parts:
        config = ConsumerConfig(durable_name=f"rules-{stream}-p{p}", ack_policy=AckPolicy.EXPLICIT,
                                ack_wait=ack_wait_s, max_ack_pending=1, filter_subject=f"{subject}.{p}")
        subs.append(await js.pull_subscribe(f"{subject}.{p}", durable=config.durable_name, stream=stream,
                                            config=config))
    runner, sessions = Runner(), session_factory()
    handled, last = 0, time.monotonic()
    try:
        while idle_exit_s is None or time.monotonic() - last < idle_exit_s:
            got = False
            for sub in subs:
                try:
                    msgs = await sub.fetch(1, timeout=0.2)
                except NatsTimeout:
                    continue
                for msg in msgs:
                    event = EventIn.model_validate_json(msg.data)
                    with sessions() as session, session.begin():
                        ingest(session, [event], runner)
                    if delay_s:
                        await asyncio.sleep(delay_s)
                    await msg.ack()
                    handled += 1
                    got = True
            if got:
                last = time.monotonic()
    finally:
        await nc.close()
    return handled


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m rules.stream worker --partitions 0,1``."""
    parser = argparse.ArgumentParser(prog="python -m rules.stream")
    sub = parser.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("worker", help="consume partitions and run the rules")
    w.add_argument("--url", default="nats://127.0.0.1:4222")
    w.add_argument("--partitions", required=True, help="comma-separated partition numbers")
    w.add_argument("--stream", default=STREAM)
    w.add_argument("--subject", default=SUBJECT)
    w.add_argument("--idle-exit", type=float, default=None, help="exit after this many idle seconds")
    w.add_argument("--delay", type=float, default=0.0, help="seconds to wait per message (tests)")
    w.add_argument("--ack-wait", type=float, default=5.0, help="redelivery delay of an unacked message")
    args = parser.parse_args(argv)
    parts = [int(p) for p in args.partitions.split(",") if p]
    n = asyncio.run(run_worker(args.url, parts, stream=args.stream, subject=args.subject,
                               idle_exit_s=args.idle_exit, delay_s=args.delay, ack_wait_s=args.ack_wait))
    print(json.dumps({"handled": n, "partitions": parts}), flush=True)


if __name__ == "__main__":
    main()
