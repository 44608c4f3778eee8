"""The assistant's storage on SQLite and the real PostgreSQL: checkpoints across a restart, approve, erase scrub."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text

from agents import privacy
from agents.checkpointer import close_checkpointer, get_checkpointer, open_checkpointer
from config.db import session_factory
from config.settings import get_settings
from crm.models import Opportunity, Proposal
from ledger import verify
from tests.fixtures.assistant import assistant, drain, of_type
from tests.fixtures.fake_chat import FakeChatModel, block_real_models, call, say
from tests.world import World

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _no_real_model(monkeypatch: pytest.MonkeyPatch) -> None:
    block_real_models(monkeypatch)


def test_the_configured_checkpointer_follows_the_database(world: World) -> None:
    saver = get_checkpointer()
    postgres = world.engine.dialect.name == "postgresql"
    assert type(saver).__name__ == ("PostgresSaver" if postgres else "SqliteSaver")
    if not postgres:
        assert (get_settings().data_dir / "checkpoints.db").is_file()


def test_approve_after_a_restart_applies_once_with_ledger_and_outbox(world: World) -> None:
    w = world
    opp, rep = w.records["a"]["opportunity"], w.p("a", "rep")
    saver = open_checkpointer()
    first = FakeChatModel(script=[call("update_stage", opportunity=f"opportunity:{opp}", stage="negotiation")])
    proposal = of_type(drain(assistant(w.engine, first, saver).start_turn(
        rep, "deal", "Move the ESS-200 rollout deal to negotiation")), "proposal")[0]
    close_checkpointer(saver)

    saver = open_checkpointer()
    bot = assistant(w.engine, FakeChatModel(script=[say(f"Done [opportunity:{opp}].")]), saver)
    assert bot.pending(rep, "deal") == proposal
    answer = of_type(drain(bot.resume(rep, "deal", {"action": "approve"})), "answer")[0]
    assert answer.grounded
    with session_factory(w.engine)() as s:
        assert s.get(Opportunity, opp).stage == "negotiation"
        assert [p.status for p in s.scalars(select(Proposal))] == ["applied"]
        assert verify(s).ok
    assert bot.pending(rep, "deal") is None
    close_checkpointer(saver)


def _stored(world: World) -> str:
    """Everything the checkpoint store holds, as text."""
    saver: Any = get_checkpointer()
    if world.engine.dialect.name == "postgresql":
        with world.engine.connect() as conn:
            rows = conn.execute(text("SELECT checkpoint::text || metadata::text FROM checkpoints"))
            parts = [str(r[0]) for r in rows]
            for table in ("checkpoint_blobs", "checkpoint_writes"):
                parts += [bytes(r[0]).decode("utf-8", "ignore")
                          for r in conn.execute(text(f"SELECT blob FROM {table} WHERE blob IS NOT NULL"))]
        return "\n".join(parts)
    with saver.cursor() as cur:
        rows = cur.execute("SELECT checkpoint, metadata FROM checkpoints").fetchall()
        rows += cur.execute("SELECT value, '' FROM writes").fetchall()
    return "\n".join(bytes(a).decode("utf-8", "ignore") + str(b) for a, b in rows)


def test_erase_scrubs_stored_conversations(world: World) -> None:
    w = world
    contact, rep = w.records["a"]["contact"], w.p("a", "rep")
    bot = assistant(w.engine, FakeChatModel(script=[
        call("get_record", record=f"contact:{contact}"),
        say(f"Buyer a: {w.phones['a']}, {w.emails['a']} [contact:{contact}]."),
    ]), get_checkpointer())
    drain(bot.start_turn(rep, "who", "Who is Buyer a?"))
    assert w.phones["a"] in _stored(w)
    with session_factory(w.engine)() as s, s.begin():
        summary = privacy.erase_contact(s, w.p("a", "manager"), contact)
    assert summary["conversations_scrubbed"] == 1
    stored = _stored(w)
    for secret in (w.phones["a"], w.emails["a"], "Buyer a"):
        assert secret not in stored
    assert "[erased]" in bot.history(rep, "who")[1]["content"]


def test_pipeline_summary_groups_on_both_engines(world: World) -> None:
    from agents.assistant import tools
    from tests.fixtures.assistant import NOW

    spec = tools.TOOLS_BY_NAME["pipeline_summary"]
    with session_factory(world.engine)() as s:
        env = tools.ToolEnv(session=s, principal=world.p("a", "admin"), now=NOW, thread_id="t", turn_id=None,
                            tool_call_id="c", message="")
        by_month = spec.run(env, spec.args(group_by="month")).data["rows"]
        by_owner = spec.run(env, spec.args(group_by="owner", close_date="this quarter")).data["rows"]
    assert [(r["month"], r["currency"], r["count"], r["total"]) for r in by_month] == [
        ("2026-12", "CNY", 1, "CNY 250,000.00"), ("2026-12", "USD", 1, "USD 250,000.00")]
    assert len(by_owner) == 2 and all(r["largest"] and r["owner"].startswith("rep ") for r in by_owner)


def test_read_tools_run_the_same_on_both_engines(world: World) -> None:
    from agents.assistant import tools
    from tests.fixtures.assistant import NOW, stub_search

    rep, opp = world.p("a", "rep"), f"opportunity:{world.records['a']['opportunity']}"
    with session_factory(world.engine)() as s:
        env = tools.ToolEnv(session=s, principal=rep, now=NOW, thread_id="t", turn_id=None, tool_call_id="c",
                            message="", search=stub_search)

        def run(name: str, **args: Any) -> tools.ToolResult:
            spec = tools.TOOLS_BY_NAME[name]
            return spec.run(env, spec.args.model_validate(args))

        assert run("list_opportunities", owner="me", amount_min="200k", amount_max="¥300k", close_date="this quarter",
                   no_activity_days=1, account="Acme").refs == [opp]
        assert run("list_leads", status="new", no_activity_days=7).data["count"] == 1
        assert run("list_cases", priority="high", account="Acme East China").data["count"] == 1
        assert run("find_records", query="acme east").refs == [f"account:{world.records['a']['account']}"]
        timeline = run("account_timeline", account="Acme East China", period="2026-10-01..2026-10-04").data["timeline"]
        assert [t["ref"] for t in timeline] == [f"activity:{world.records['a']['activity']}"]
        assert run("get_record", record=opp).data["related"]["account"][0]["name"] == "Acme East China"


def test_a_turns_record_skips_the_disk_flush_and_its_decisions_do_not(world: World) -> None:
    """On PostgreSQL, the turn, read and answer rows commit without waiting for the WAL flush; a proposal and its
    approval (with the change they apply) wait for it. The chain and its anchor stay whole either way."""
    from sqlalchemy import event

    if world.engine.dialect.name != "postgresql":
        pytest.skip("SQLite commits are not flushed per commit in any case (WAL, synchronous=NORMAL)")
    w = world
    opp, rep = w.records["a"]["opportunity"], w.p("a", "rep")
    relaxed: dict[int, bool] = {}  # connection -> its open transaction skips the flush
    seen: list[tuple[str, bool]] = []  # (what was written, in a relaxed transaction)

    def on_begin(conn: Any) -> None:
        relaxed[id(conn)] = False

    def on_execute(conn: Any, _cursor: Any, statement: str, params: Any, _context: Any, many: bool) -> None:
        sql = " ".join(statement.split()).upper()
        if "SET_CONFIG('SYNCHRONOUS_COMMIT', 'OFF', TRUE)" in sql:
            relaxed[id(conn)] = True
        if sql.startswith("INSERT INTO DECISIONS"):
            for row in params if many else [params]:
                seen.append((str(row.get("kind")), relaxed.get(id(conn), False)))
        elif sql.startswith(("UPDATE OPPORTUNITIES", "INSERT INTO PROPOSALS", "UPDATE PROPOSALS")):
            seen.append((sql.split()[0] + " " + sql.split()[2 if sql.startswith("INSERT") else 1].lower(),
                         relaxed.get(id(conn), False)))

    event.listen(w.engine, "begin", on_begin)
    event.listen(w.engine, "before_cursor_execute", on_execute)
    try:
        saver = get_checkpointer()
        bot = assistant(w.engine, FakeChatModel(script=[
            call("get_record", record=f"opportunity:{opp}"),
            call("update_stage", opportunity=f"opportunity:{opp}", stage="negotiation"),
            say(f"Moved [opportunity:{opp}]."),
        ]), saver)
        drain(bot.start_turn(rep, "t", "Move the ESS-200 rollout deal to negotiation"))
        drain(bot.resume(rep, "t", {"action": "approve"}))
    finally:
        event.remove(w.engine, "begin", on_begin)
        event.remove(w.engine, "before_cursor_execute", on_execute)
    flushed = {what for what, skipped in seen if not skipped}
    skipped = {what for what, skipped in seen if skipped}
    assert {"agent_turn", "tool_call", "agent_answer"} <= skipped  # get_record: a read
    assert {"proposal", "approval", "apply", "INSERT proposals", "UPDATE opportunities"} <= flushed
    assert not skipped & {"proposal", "approval", "apply", "INSERT proposals", "UPDATE opportunities",
                          "UPDATE proposals"}
    with w.engine.connect() as conn:  # a local setting ends with its transaction: pooled connections stay durable
        assert conn.execute(text("SHOW synchronous_commit")).scalar_one() == "on"
    with session_factory(w.engine)() as s:
        result = verify(s)
        assert result.ok and result.anchored_seq == s.scalar(text("SELECT max(seq) FROM decisions"))
