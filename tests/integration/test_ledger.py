"""The ledger: hash chain, tamper detection, "what happened to this record", trace trees."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import pytest
from sqlalchemy import delete, insert, select, text
from typer.testing import CliRunner

import ledger
from config.db import session_factory
from crm import proposals as ops
from ledger.models import Decision, DecisionRef
from tests.world import World

pytestmark = pytest.mark.integration


def _approve_one(world: World) -> int:
    rep = world.p("a", "rep")
    with session_factory(world.engine)() as s, s.begin():
        p = ops.propose(s, rep, object_type="opportunity", action="update",
                        record_id=world.records["a"]["opportunity"], changes={"probability": 70}, reason="demo done")
        ops.approve(s, rep, p.id)
        return p.id


def test_chain_verifies_and_each_row_links_to_the_previous(world: World) -> None:
    _approve_one(world)
    with session_factory(world.engine)() as s:
        result = ledger.verify(s)
    assert result.ok and result.rows >= 4


@pytest.mark.parametrize("tamper", [
    "UPDATE decisions SET input_summary = 'nothing to see' WHERE seq = 2",
    "DELETE FROM decision_refs WHERE decision_seq = 2; DELETE FROM decisions WHERE seq = 2",
])
def test_verify_detects_an_edited_or_removed_row(world: World, tamper: str) -> None:
    _approve_one(world)
    with world.engine.begin() as conn:
        for stmt in tamper.split("; "):
            conn.execute(text(stmt))
    with session_factory(world.engine)() as s:
        result = ledger.verify(s)
    assert not result.ok and result.first_bad_seq in (2, 3)


def test_cli_verify_exits_nonzero_on_tampering(world: World) -> None:
    from serving.cli import app

    _approve_one(world)
    runner = CliRunner()
    ok = runner.invoke(app, ["ledger", "verify"])
    assert ok.exit_code == 0 and "hash chain intact" in ok.output
    with world.engine.begin() as conn:
        conn.execute(text("UPDATE decisions SET actor = 'user:999' WHERE seq = 1"))
    bad = runner.invoke(app, ["ledger", "verify"])
    assert bad.exit_code == 1 and "seq=1" in bad.output


def test_record_history_answers_what_happened_and_why(world: World) -> None:
    pid = _approve_one(world)
    record = f"opportunity:{world.records['a']['opportunity']}"
    with session_factory(world.engine)() as s:
        kinds = [d.kind for d in ledger.decisions_for(s, record=record)]
        assert {"proposal", "approval", "apply"} <= set(kinds)
        proposal_row = ledger.decisions_for(s, record=f"proposal:{pid}", kind="proposal")[0]
        assert proposal_row.outcome == "accepted" and "demo done" in proposal_row.input_summary
        tree = ledger.trace(s, proposal_row.id)
    assert [d.kind for d in tree][:3] == ["proposal", "approval", "apply"]
    assert all(d.parent_id in {t.id for t in tree} for d in tree[1:])


# --- the anchored head: a removed tail, a restored older copy and a replaced chain are detected too ---

def _snapshot(world: World) -> dict[str, list[dict[str, Any]]]:
    with world.engine.connect() as conn:
        return {m.__tablename__: [dict(r._mapping) for r in conn.execute(select(m.__table__))]
                for m in (Decision, DecisionRef)}


def _restore(world: World, snapshot: dict[str, list[dict[str, Any]]]) -> None:
    """What restoring an older backup does to the ledger tables."""
    with world.engine.begin() as conn:
        conn.execute(delete(DecisionRef))
        conn.execute(delete(Decision))
        for table, model in (("decisions", Decision), ("decision_refs", DecisionRef)):
            if snapshot[table]:
                conn.execute(insert(model), snapshot[table])


def _verify(world: World) -> ledger.query.VerifyResult:
    with session_factory(world.engine)() as s:
        return ledger.verify(s)


def _last_seq(world: World) -> int:
    with world.engine.connect() as conn:
        return int(conn.execute(text("SELECT max(seq) FROM decisions")).scalar_one())


def test_the_head_is_anchored_after_every_commit(world: World) -> None:
    _approve_one(world)
    first = _verify(world)
    assert first.ok and first.anchored_seq == _last_seq(world)
    _approve_one_more(world)
    second = _verify(world)
    assert second.ok and second.anchored_seq == _last_seq(world) > first.anchored_seq


def _approve_one_more(world: World, probability: int = 71) -> None:
    rep = world.p("a", "rep")
    with session_factory(world.engine)() as s, s.begin():
        p = ops.propose(s, rep, object_type="opportunity", action="update",
                        record_id=world.records["a"]["opportunity"], changes={"probability": probability})
        ops.approve(s, rep, p.id)


@pytest.mark.parametrize("tamper", ["edit", "delete_middle", "delete_tail", "restore_older_copy",
                                    "restore_older_copy_then_write", "replace_chain"])
def test_verify_detects_every_kind_of_tampering(world: World, tamper: str) -> None:
    _approve_one(world)
    older = _snapshot(world)
    _approve_one_more(world)
    last = _last_seq(world)
    assert _verify(world).ok
    if tamper == "edit":
        with world.engine.begin() as conn:
            conn.execute(text("UPDATE decisions SET kind = 'nothing' WHERE seq = 3"))
    elif tamper == "delete_middle":
        with world.engine.begin() as conn:
            conn.execute(text("DELETE FROM decision_refs WHERE decision_seq = 3"))
            conn.execute(text("DELETE FROM decisions WHERE seq = 3"))
    elif tamper == "delete_tail":
        with world.engine.begin() as conn:
            conn.execute(text(f"DELETE FROM decision_refs WHERE decision_seq >= {last - 1}"))
            conn.execute(text(f"DELETE FROM decisions WHERE seq >= {last - 1}"))
    elif tamper.startswith("restore_older_copy"):
        _restore(world, older)
        if tamper.endswith("then_write"):
            _approve_one_more(world, 90)  # the restored chain links up; the anchor stays on the lost head
            from ledger.anchor import read_anchor

            anchor = read_anchor(world.engine)
            assert anchor is not None and anchor.seq == last
    elif tamper == "replace_chain":
        _forge_whole_chain(world)
    result = _verify(world)
    assert not result.ok, tamper
    assert result.reason


def _forge_whole_chain(world: World) -> None:
    """Someone with database access rewrites a row and recomputes every hash after it."""
    from ledger.record import GENESIS, row_hash

    with session_factory(world.engine)() as s, s.begin():
        prev = GENESIS
        for row in s.scalars(select(Decision).order_by(Decision.seq)):
            if row.seq == 2:
                row.actor = "user:999"
            row.prev_hash = prev
            row.hash = row_hash(row)
            prev = row.hash
    with session_factory(world.engine)() as s:
        assert ledger.verify(s, check_anchor=False).ok  # the chain alone cannot tell


def test_a_missing_or_altered_anchor_fails_verify_and_the_cli_re_anchors(world: World) -> None:
    import json

    from ledger.anchor import anchor_path
    from serving.cli import app

    _approve_one(world)
    path = anchor_path(world.engine)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "seq": data["seq"] - 1}))
    assert "MAC" in _verify(world).reason
    path.unlink()
    assert "no anchor" in _verify(world).reason
    runner = CliRunner()
    assert runner.invoke(app, ["ledger", "verify"]).exit_code == 1
    anchored = runner.invoke(app, ["ledger", "anchor", "--yes"])
    assert anchored.exit_code == 0 and f"seq {_last_seq(world)}" in anchored.output
    ok = runner.invoke(app, ["ledger", "verify"])
    assert ok.exit_code == 0 and "head anchored" in ok.output


def test_an_anchor_left_behind_by_a_crash_still_verifies_and_catches_up(world: World) -> None:
    from ledger.anchor import advance

    _approve_one(world)
    behind = _verify(world).anchored_seq
    with patch("ledger.anchor.advance"):  # killed between the commit and the anchor write
        _approve_one_more(world)
    lagging = _verify(world)
    assert lagging.ok and lagging.anchored_seq == behind < _last_seq(world)
    advance(world.engine)
    assert _verify(world).anchored_seq == _last_seq(world)


def test_a_rolled_back_transaction_does_not_move_the_anchor(world: World) -> None:
    _approve_one(world)
    anchored = _verify(world).anchored_seq
    with pytest.raises(RuntimeError), session_factory(world.engine)() as s, s.begin():
        ledger.append(s, kind="note", actor="user:1", input_summary="never committed")
        raise RuntimeError("rolled back")
    assert _verify(world).anchored_seq == anchored


def test_appends_around_savepoints_keep_the_chain(world: World) -> None:
    """A transaction's later appends link to its own last row; one rolled back inside a savepoint is not it."""
    with session_factory(world.engine)() as s, s.begin():
        ledger.append(s, kind="note", actor="user:1", input_summary="first")
        with pytest.raises(RuntimeError), s.begin_nested():
            ledger.append(s, kind="note", actor="user:1", input_summary="rolled back with its savepoint")
            raise RuntimeError("undo the savepoint")
        ledger.append(s, kind="note", actor="user:1", input_summary="second")
        with s.begin_nested():
            ledger.append(s, kind="note", actor="user:1", input_summary="kept by a released savepoint")
        ledger.append(s, kind="note", actor="user:1", input_summary="third")
    result = _verify(world)
    assert result.ok and result.anchored_seq == _last_seq(world)
    with session_factory(world.engine)() as s:
        notes = select(Decision).where(Decision.kind == "note").order_by(Decision.seq)
        summaries = [d.input_summary for d in s.scalars(notes)]
    assert summaries == ["first", "second", "kept by a released savepoint", "third"]


def test_the_anchor_is_rewritten_in_place_and_a_torn_one_is_reported(world: World) -> None:
    from ledger.anchor import anchor_path

    _approve_one(world)
    path = anchor_path(world.engine)
    inode = path.stat().st_ino
    _approve_one_more(world)
    assert path.stat().st_ino == inode and path.stat().st_size == 512  # one sector, no rename per commit
    assert _verify(world).anchored_seq == _last_seq(world)
    path.write_bytes(path.read_bytes()[:100].ljust(512))  # a write that landed half
    bad = _verify(world)
    assert not bad.ok and "unreadable" in bad.reason


def test_the_anchor_is_flushed_only_as_durably_as_the_commit_it_follows(world: World) -> None:
    """A durable PostgreSQL commit flushes the anchor (fdatasync); a relaxed one (``durable=False``) and every
    SQLite commit do not, so the anchor never names rows the database could lose. Both move it forward."""
    from config.db import transaction

    _approve_one(world)  # the anchor file exists, so later writes go in place
    postgres = world.engine.dialect.name == "postgresql"
    for durable in (False, True):
        with patch("ledger.anchor.os.fdatasync") as flush:
            with transaction(world.engine, durable=durable) as s:
                ledger.append(s, kind="agent_turn", actor="user:1", input_summary=f"durable={durable}")
                setting = s.execute(text("SHOW synchronous_commit")).scalar_one() if postgres else None
        assert flush.called == (durable and postgres)
        assert setting == (None if not postgres else "on" if durable else "off")
        assert _verify(world).anchored_seq == _last_seq(world)


def test_a_commit_that_follows_the_anchor_advances_it_without_a_head_query(world: World) -> None:
    """The usual commit links its first row to the anchored head, so the anchor moves with no query; a commit
    whose rows do not follow the anchor (a savepoint, or another writer's rows in between) takes the query."""
    from config.db import transaction
    from ledger import anchor

    _approve_one(world)
    with patch("ledger.anchor._head", wraps=anchor._head) as head:
        with transaction(world.engine) as s:
            ledger.append(s, kind="agent_turn", actor="user:1", input_summary="one")
            ledger.append(s, kind="agent_answer", actor="assistant", input_summary="two")
        assert head.call_count == 0 and _verify(world).anchored_seq == _last_seq(world)
        with transaction(world.engine) as s, s.begin_nested():
            ledger.append(s, kind="agent_turn", actor="user:1", input_summary="in a savepoint")
        assert head.call_count == 1 and _verify(world).anchored_seq == _last_seq(world)
        with patch("ledger.anchor._write", wraps=anchor._write) as write:
            with transaction(world.engine) as s:  # rows appended behind the anchor's back, then a commit
                ledger.append(s, kind="agent_turn", actor="user:1", input_summary="unanchored")
                s.info.pop("ledger_anchor")  # as if its anchor update was lost in a crash
            with transaction(world.engine) as s:
                ledger.append(s, kind="agent_turn", actor="user:1", input_summary="after the crash")
        assert head.call_count == 2 and write.call_count == 1
    assert _verify(world).anchored_seq == _last_seq(world)
