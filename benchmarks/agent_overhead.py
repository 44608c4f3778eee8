"""Assistant engine overhead per turn: graph, tools, retrieval stub, checkpoint, ledger, next to the bare model calls.

    python -m benchmarks.agent_overhead --turns 40
    python -m benchmarks.agent_overhead --turns 40 --postgres-url postgresql://postgres@127.0.0.1/crmind_bench

The model is the scripted fake (tests/fixtures/fake_chat.py), so a turn's time is crmind's own work: the
LangGraph loop, permission-filtered tool queries on the demo CRM (scale 1: 1,500 deals, 20,000 activities),
the ledger rows, and a checkpoint write per step. The baseline is the same number of bare calls of the same
fake model (bind_tools + invoke on the same messages), run in the same process. Retrieval is a stub that returns
fixed hits and writes the retrieval ledger row (the index itself is benchmarked in benchmarks/retrieval.py).
Overhead = turn time - baseline; the target is p95 < 50 ms. "cpu" is the process's CPU time per turn (all its
threads): on a shared, loaded machine it is the steadier measure of the engine's own work. A turn that asks for
approval is two runs (until the proposal, then after the rep's decision); both are shown. On PostgreSQL only the
proposal and approval transactions wait for the WAL flush; the turn's record does not (config.db.transaction).
"in-memory checkpoints" runs the same turns with the checkpointer's share taken out.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage
from sqlalchemy import Engine, select

import ledger
from agents.assistant.graph import SYSTEM_MESSAGE
from agents.assistant.runner import Assistant
from agents.assistant.tools import TOOL_SCHEMAS
from agents.checkpointer import close_checkpointer, open_checkpointer
from config.db import make_engine, session_factory
from crm.access import Principal
from crm.auth import principal_for
from crm.demo import build_demo
from crm.models import Activity, Opportunity, User
from retrieval.search import Hit
from tests.fixtures.fake_chat import FakeChatModel, call, say

TURNS_PER_THREAD = 5  # conversations grow; a new thread every few turns keeps them realistic


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def fixed_search(hits: list[Hit]) -> Callable[..., tuple[list[Hit], str]]:
    def search(session: Any, principal: Principal, query: str, *, ledger_parent: str | None = None,
               thread_id: str | None = None, **_: Any) -> tuple[list[Hit], str]:
        row = ledger.append(session, kind="retrieval", actor=principal.actor, input_summary=query,
                            output={"hits": [h.chunk_id for h in hits]}, parent_id=ledger_parent,
                            thread_id=thread_id, evidence=[h.record for h in hits])
        return hits, row.id

    return search


def scenarios(engine: Engine) -> tuple[Principal, dict[str, tuple[str, list[AIMessage], bool]], list[Hit]]:
    """A rep with deals, and per scenario: the rep's message, the model's script, and whether it asks approval."""
    with session_factory(engine)() as s:
        opp = s.scalars(select(Opportunity).where(Opportunity.stage == "proposal").order_by(Opportunity.id)).first()
        assert opp is not None and opp.owner_id is not None
        rep = principal_for(s.get(User, opp.owner_id))
        acts = list(s.scalars(select(Activity).where(Activity.account_id == opp.account_id).limit(5)))
    hits = [Hit(chunk_id=f"activity:{a.id}#0", record=f"activity:{a.id}", object_type="activity", record_id=a.id,
                account_id=a.account_id, score=1.0, text=a.body[:400], title=a.subject,
                timestamp=a.occurred_at.isoformat()) for a in acts]
    ref = f"opportunity:{opp.id}"
    return rep, {
        "read (find, get)": ("How is the deal going?", [
            call("find_records", query=opp.name[:20], object_type="opportunity"), call("get_record", record=ref),
            say(f"It is in proposal [{ref}].")], False),
        "lists (deals, summary)": ("My deals this quarter, and my pipeline?", [
            call("list_opportunities", owner="me", close_date="this quarter"),
            call("pipeline_summary", group_by="stage", owner="me"), say(f"Mostly proposals [{ref}].")], False),
        "search notes": ("What did they say about pricing?", [
            call("search_notes", query="pricing discount"),
            say(f"They asked for a discount [chunk:{hits[0].chunk_id}].")], False),
        "proposal + approve": (f"Move {opp.name} to negotiation", [  # named: a change needs its record named
            call("update_stage", opportunity=ref, stage="negotiation"), say(f"Moved [{ref}].")], True),
    }, hits


def run_scenario(bot: Assistant, holder: dict[str, FakeChatModel], rep: Principal, name: str, message: str,
                 script: list[AIMessage], approval: bool, turns: int, engine: Engine) -> dict[str, list[float]]:
    """Per turn: the whole turn, its two runs when it asks for approval (until the proposal; after the decision),
    and the bare model calls."""
    # Fresh threads every call: a PostgreSQL database outlives the run, and a thread continued from an earlier
    # run would be measured with hundreds of messages (its checkpoint load grows with the conversation).
    run = uuid.uuid4().hex[:8]
    turn_ms: list[float] = []
    bare_ms: list[float] = []
    first_ms: list[float] = []
    cpu_ms: list[float] = []
    for i in range(turns):
        if approval:  # put the deal back, so every turn proposes the same change
            with session_factory(engine)() as s, s.begin():
                opp = s.get(Opportunity, int(script[0].tool_calls[0]["args"]["opportunity"].split(":")[1]))
                opp.stage = "proposal"
        holder["fake"] = FakeChatModel(script=list(script))
        thread = f"{run}-{name.split()[0]}-{i // TURNS_PER_THREAD}"
        started, cpu = time.perf_counter(), time.process_time()
        events = list(bot.start_turn(rep, thread, message))
        first_ms.append((time.perf_counter() - started) * 1000)
        if approval:
            events += list(bot.resume(rep, thread, {"action": "approve"}))
        turn_ms.append((time.perf_counter() - started) * 1000)
        cpu_ms.append((time.process_time() - cpu) * 1000)
        assert events[-1].type == "answer", events[-1]
        # the baseline: the same model calls, bare, on the messages this turn actually sent
        sent = holder["fake"].requests
        bare = FakeChatModel(script=list(script))
        started = time.perf_counter()
        for messages in sent:
            bare.bind_tools(list(TOOL_SCHEMAS), tool_choice="auto").invoke(messages)
        bare_ms.append((time.perf_counter() - started) * 1000)
    return {"turn": turn_ms, "bare": bare_ms, "first": first_ms, "cpu": cpu_ms,
            "second": [t - f for t, f in zip(turn_ms, first_ms, strict=True)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", type=int, default=40, help="turns per scenario (after warm-up)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--postgres-url", default=None, help="also run with CRM, ledger and checkpoints on PostgreSQL")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="crmind-agent-bench-"))
    setups: list[tuple[str, Engine, Any]] = []
    sqlite = make_engine(f"sqlite:///{tmp}/crm.db")
    build_demo(sqlite, scale=1, out_dir=tmp, progress=False)
    setups.append(("sqlite", sqlite, tmp / "checkpoints.db"))
    from langgraph.checkpoint.memory import InMemorySaver

    setups.append(("sqlite, in-memory checkpoints", sqlite, InMemorySaver()))
    if args.postgres_url:
        pg = make_engine(args.postgres_url)
        build_demo(pg, scale=1, out_dir=tmp / "pg", progress=False, reset=True)
        setups.append(("postgresql", pg, args.postgres_url))
        setups.append(("postgresql, in-memory checkpoints", pg, InMemorySaver()))  # the checkpointer's share

    print(f"{'storage':<34} {'scenario':<24} {'calls':>5} {'turn p50':>9} {'p95':>7} {'bare p50':>9} {'p95':>6} "
          f"{'overhead p50':>13} {'p95':>7} {'ratio':>7} {'cpu p50':>8} {'p95':>6}")
    for label, engine, target in setups:
        saver = target if isinstance(target, InMemorySaver) else open_checkpointer(target)
        holder: dict[str, FakeChatModel] = {}
        rep, cases, hits = scenarios(engine)
        bot = Assistant(checkpointer=saver, model=lambda _h=holder, **_: _h["fake"],  # type: ignore[misc]
                        search=fixed_search(hits), engine=engine)
        for name, (message, script, approval) in cases.items():
            run_scenario(bot, holder, rep, name, message, script, approval, args.warmup, engine)
            r = run_scenario(bot, holder, rep, name, message, script, approval, args.turns, engine)
            bare_mean = statistics.mean(r["bare"])
            over = [t - bare_mean for t in r["turn"]]
            calls = len(script)
            print(f"{label:<34} {name:<24} {calls:>5} {pct(r['turn'], 50):>8.1f}ms {pct(r['turn'], 95):>6.1f} "
                  f"{pct(r['bare'], 50):>8.2f}ms {pct(r['bare'], 95):>6.2f} {pct(over, 50):>12.1f}ms "
                  f"{pct(over, 95):>7.1f} {pct(r['turn'], 50) / max(pct(r['bare'], 50), 1e-6):>6.0f}x "
                  f"{pct(r['cpu'], 50):>7.1f}ms {pct(r['cpu'], 95):>6.1f}")
            if approval:
                for part, key in (("  run 1: to the proposal", "first"), ("  run 2: approve, answer", "second")):
                    print(f"{'':<34} {part:<24} {'':>5} {pct(r[key], 50):>8.1f}ms {pct(r[key], 95):>6.1f}")
        if not isinstance(saver, InMemorySaver):
            close_checkpointer(saver)
    print(f"\nbare = the same scripted model calls without the graph (prefix: {len(str(SYSTEM_MESSAGE.content))} "
          f"chars of system prompt + {len(TOOL_SCHEMAS)} tool schemas); overhead = turn - mean(bare).")

if __name__ == "__main__":
    main()
