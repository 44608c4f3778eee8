"""The ledger: hash chain, tamper detection, "what happened to this record", trace trees."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

import ledger
from config.db import session_factory
from crm import proposals as ops
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
