"""Load benchmark: a mixed rep workload at 10, 50 and 200 concurrent users on both deployment layouts.

    .venv/bin/python -m benchmarks.load                               # both layouts, 10/50/200 users
    .venv/bin/python -m benchmarks.load --layouts sqlite --users 10,50 --seconds 10

Layouts (each on its own fresh demo CRM, built here):
- ``sqlite``: ``crmind serve``, one worker, the index follower in the same process (the laptop default);
- ``postgres``: ``crmind index --follow --serve`` owning the index, and ``crmind serve --workers N`` on the
  local PostgreSQL (the multi-process layout of ``deploy/``).

Each virtual user is a rep (demo tokens, round-robin) in a closed loop with no think time: list opportunities,
open a record, list an account's activities, hybrid search, and propose a change then approve it. Reported
per level: requests/s, p50/p95/p99, server errors (5xx and transport failures), and 409s (two users changing
one record at once: the expected answer, not an error).

Baseline, side by side on the same database and worker count: ``benchmarks.load_baseline``, a plain FastAPI +
SQLAlchemy endpoint running the SELECT behind ``GET /v1/opportunities`` without crmind's layers; the ratio is
the cost of authentication, the permission filter, masking and response models.

Bounded and local: everything listens on 127.0.0.1, nothing else is reached, and the load generator shares the
machine with the servers (on 2 cores it takes a real share of one: read ratios, not absolute capacity).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from inference.engine_process import _pdeathsig_hook, free_port

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("CRMIND_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
QUERIES = ["battery warranty", "pricing objection", "inverter fault", "renewal discount", "储能 报价",
           "合同 续约", "heat pump", "site survey", "budget approved", "交付 延期"]
# Op mix, by weight: reads dominate, as in a rep's day.
MIX = {"list": 30, "get": 20, "activities": 15, "search": 15, "write": 20}


@dataclass
class Stats:
    """Latencies and outcomes of one measured level."""

    by_op: dict[str, list[float]] = field(default_factory=dict)
    codes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def record(self, started: float, outcome: str, op: str = "list") -> None:
        self.by_op.setdefault(op, []).append(time.perf_counter() - started)
        self.codes[outcome] += 1

    def row(self) -> dict[str, Any]:
        n = sum(len(v) for v in self.by_op.values())
        lat = sorted(x for v in self.by_op.values() for x in v) or [0.0]

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1)

        errors = sum(n for c, n in self.codes.items() if c.startswith("5") or c == "transport")
        return {"requests": n, "rps": round(n / self.seconds, 1),
                "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99), "errors": errors,
                "conflicts_409": self.codes.get("409", 0),
                "other_4xx": sum(n for c, n in self.codes.items() if c.startswith("4") and c != "409"),
                "codes": dict(self.codes),
                "p95_ms_by_op": {op: round(sorted(v)[int(0.95 * len(v))] * 1000, 1) for op, v in self.by_op.items()}}


class Proc:
    """A child process with a log, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as fh:
            # The servers go with the benchmark, even when it is killed.
            self.p = subprocess.Popen(args, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, preexec_fn=_pdeathsig_hook())

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def _wait(url: str, proc: Proc, timeout_s: float, ok: Callable[[httpx.Response], bool] = lambda r: r.status_code == 200,
          headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.p.poll() is not None:
            raise RuntimeError(f"{proc.log.name} exited:\n{proc.log.read_text()[-3000:]}")
        try:
            if ok(httpx.get(url, timeout=5, headers=headers)):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout_s:.0f} s:\n{proc.log.read_text()[-3000:]}")


def _crmind(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "serving.cli", *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def _pg_database(name: str) -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


class Layout:
    """One deployment layout on its own data: started, measured, stopped."""

    def __init__(self, name: str, work: Path, scale: float, workers: int, embedding: str) -> None:
        self.name, self.workers = name, workers
        self.dir = work / name
        self.dir.mkdir(parents=True)
        db = f"sqlite:///{self.dir}/crm.db" if name == "sqlite" else _pg_database("crmind_load")
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                    "CRMIND_DATA_DIR": str(self.dir / "data"), "CRMIND_DATABASE_URL": db,
                    "CRMIND_EMBEDDING_MODEL": embedding}
        for key in ("CRMIND_INDEX_URL", "CRMIND_QDRANT_URL", "CRMIND_LLM_BASE_URL"):
            self.env.pop(key, None)
        started = time.monotonic()
        _crmind(self.env, "demo", "--scale", str(scale))
        self.demo_s = time.monotonic() - started
        self.procs: list[Proc] = []
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.tokens = json.loads((self.dir / "data" / "demo_tokens.json").read_text())

    def start(self) -> None:
        env = dict(self.env)
        if self.name == "postgres":
            owner_port = free_port()
            owner = Proc([sys.executable, "-m", "serving.cli", "index", "--follow", "--serve", "--port",
                          str(owner_port)], env, self.dir / "owner.log")
            self.procs.append(owner)
            env["CRMIND_INDEX_URL"] = f"http://127.0.0.1:{owner_port}"
            _wait(f"{env['CRMIND_INDEX_URL']}/v1/index/info", owner, 1800,
                  lambda r: r.status_code == 200 and r.json()["status"]["state"] == "following")
        args = [sys.executable, "-m", "serving.cli", "serve", "--no-llm", "--port", str(self.port)]
        if self.workers > 1:
            args += ["--workers", str(self.workers)]
        server = Proc(args, env, self.dir / "serve.log")
        self.procs.append(server)
        admin = {"Authorization": f"Bearer {self.token('admin')['token']}"}
        _wait(f"{self.base}/v1/search/status", server, 1800,
              lambda r: r.status_code == 200 and r.json()["state"] == "following", headers=admin)

    def token(self, role: str) -> dict[str, Any]:
        return next(t for t in self.tokens if t["role"] == role)

    def start_baseline(self) -> Proc:
        self.baseline_port = free_port()
        db = self.env["CRMIND_DATABASE_URL"]
        proc = Proc([sys.executable, "-m", "uvicorn", "benchmarks.load_baseline:app", "--port",
                     str(self.baseline_port), "--workers", str(self.workers), "--log-level", "warning"],
                    {**self.env, "CRMIND_DATABASE_URL": db}, self.dir / "baseline.log")
        _wait(f"http://127.0.0.1:{self.baseline_port}/opportunities?team=1", proc, 120)
        return proc

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()


@dataclass
class Rep:
    """A rep's token, team and the records they can read, gathered once before the load."""

    headers: dict[str, str]
    team: int
    opportunities: list[int]
    accounts: list[int]


async def _reps(client: httpx.AsyncClient, layout: Layout) -> list[Rep]:
    reps = []
    for t in (t for t in layout.tokens if t["role"] == "rep"):
        h = {"Authorization": f"Bearer {t['token']}"}
        opps = (await client.get("/v1/opportunities", params={"limit": 200}, headers=h)).json()["items"]
        accts = (await client.get("/v1/accounts", params={"limit": 200}, headers=h)).json()["items"]
        if opps and accts:
            reps.append(Rep(h, opps[0]["team_id"], [o["id"] for o in opps], [a["id"] for a in accts]))
    if not reps:
        raise RuntimeError("the demo has no rep with opportunities")
    return reps


async def _user(client: httpx.AsyncClient, rep: Rep, rng: random.Random, stats: Stats, deadline: float,
                ops: dict[str, int]) -> None:
    names, weights = list(ops), list(ops.values())

    async def call(op: str, method: str, url: str, **kw: Any) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            resp = await client.request(method, url, headers=rep.headers, **kw)
        except httpx.HTTPError:
            stats.record(started, "transport", op)
            return None
        stats.record(started, str(resp.status_code), op)
        return resp

    while time.perf_counter() < deadline:
        op = rng.choices(names, weights)[0]
        if op == "list":
            await call(op, "GET", "/v1/opportunities", params={"limit": 50})
        elif op == "get":
            await call(op, "GET", f"/v1/opportunities/{rng.choice(rep.opportunities)}")
        elif op == "activities":
            await call(op, "GET", "/v1/activities", params={"account_id": rng.choice(rep.accounts), "limit": 20})
        elif op == "search":
            await call(op, "GET", "/v1/search", params={"q": rng.choice(QUERIES), "limit": 10})
        else:
            resp = await call("propose", "POST", "/v1/proposals", json={
                "object_type": "opportunity", "action": "update", "record_id": rng.choice(rep.opportunities),
                "changes": {"probability": rng.randint(5, 95)}})
            if resp is not None and resp.status_code == 201:
                await call("approve", "POST", f"/v1/proposals/{resp.json()['id']}/approve")


async def _level(base: str, reps: list[Rep], users: int, seconds: float, ops: dict[str, int], seed: int) -> Stats:
    stats = Stats()
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(_user(client, reps[i % len(reps)], random.Random(seed * 1000 + i), stats, deadline,
                                     ops) for i in range(users)))
        stats.seconds = time.perf_counter() - started
    return stats


async def _baseline_level(url: str, reps: list[Rep], users: int, seconds: float) -> Stats:
    stats = Stats()
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        started = time.perf_counter()
        deadline = started + seconds

        async def one(i: int) -> None:
            team = reps[i % len(reps)].team
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    resp = await client.get(f"{url}/opportunities", params={"team": team, "limit": 50})
                    stats.record(t0, str(resp.status_code))
                except httpx.HTTPError:
                    stats.record(t0, "transport")

        await asyncio.gather(*(one(i) for i in range(users)))
        stats.seconds = time.perf_counter() - started
    return stats


def _run(coro: Coroutine[Any, Any, Stats]) -> dict[str, Any]:
    return asyncio.run(coro).row()


def measure(layout: Layout, levels: list[int], seconds: float, seed: int) -> dict[str, Any]:
    """Warm up, run each mixed level, then the read-only route against the baseline at the middle level."""
    out: dict[str, Any] = {"layout": layout.name, "workers": layout.workers, "demo_s": round(layout.demo_s, 1),
                           "mixed": {}, "read_only": {}}
    reps = asyncio.run(_fetch_reps(layout))
    asyncio.run(_level(layout.base, reps, 5, 3, MIX, seed))  # warm caches and connection pools
    for users in levels:
        out["mixed"][users] = row = _run(_level(layout.base, reps, users, seconds, MIX, seed + users))
        print(f"  {layout.name:<8} {users:>4} users  mixed      {row['rps']:>7} req/s  p50 {row['p50_ms']:>7} ms  "
              f"p95 {row['p95_ms']:>7} ms  p99 {row['p99_ms']:>7} ms  errors {row['errors']}  "
              f"409 {row['conflicts_409']}  other 4xx {row['other_4xx']}", flush=True)
    users = levels[len(levels) // 2]
    out["read_only"]["users"] = users
    out["read_only"]["crmind"] = row = _run(_level(layout.base, reps, users, seconds, {"list": 1}, seed))
    print(f"  {layout.name:<8} {users:>4} users  list route {row['rps']:>7} req/s  p50 {row['p50_ms']:>7} ms  "
          f"p95 {row['p95_ms']:>7} ms", flush=True)
    layout.stop()  # the baseline gets the machine to itself, as crmind did
    baseline = layout.start_baseline()
    try:
        url = f"http://127.0.0.1:{layout.baseline_port}"
        out["read_only"]["baseline"] = base = _run(_baseline_level(url, reps, users, seconds))
    finally:
        baseline.stop()
    out["read_only"]["ratio_rps"] = round(row["rps"] / base["rps"], 2) if base["rps"] else None
    print(f"  {layout.name:<8} {users:>4} users  baseline   {base['rps']:>7} req/s  p50 {base['p50_ms']:>7} ms  "
          f"p95 {base['p95_ms']:>7} ms  (crmind/baseline throughput {out['read_only']['ratio_rps']})", flush=True)
    return out


async def _fetch_reps(layout: Layout) -> list[Rep]:
    async with httpx.AsyncClient(base_url=layout.base, timeout=120) as client:
        return await _reps(client, layout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layouts", default="sqlite,postgres", help="sqlite, postgres or both")
    ap.add_argument("--users", default="10,50,200", help="concurrent users per level")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per level")
    ap.add_argument("--scale", type=float, default=0.2, help="demo scale of each layout's CRM")
    ap.add_argument("--workers", type=int, default=3, help="API workers in the postgres layout")
    ap.add_argument("--embedding", default="minilm", help="embedding model of the index (minilm builds fastest)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (databases, server logs)")
    args = ap.parse_args()
    levels = [int(u) for u in args.users.split(",")]
    work = Path(tempfile.mkdtemp(prefix="crmind-load-"))
    results = []
    try:
        for name in args.layouts.split(","):
            print(f"{name}: building the demo CRM (scale {args.scale}) and starting the layout", flush=True)
            layout = Layout(name, work, args.scale, args.workers if name == "postgres" else 1, args.embedding)
            try:
                started = time.monotonic()
                layout.start()
                print(f"  ready in {time.monotonic() - started:.0f} s (index built)", flush=True)
                results.append(measure(layout, levels, args.seconds, args.seed))
            finally:
                layout.stop()
    finally:
        if args.keep:
            print(f"work folder kept: {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
