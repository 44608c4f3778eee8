"""Conversations survive a restart with their pending approval, and a data-subject erase scrubs them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from agents import privacy
from agents.checkpointer import close_checkpointer, open_checkpointer, scrub_threads
from config.db import session_factory
from crm.models import Opportunity, Proposal
from tests.fixtures.assistant import assistant, drain, of_type
from tests.fixtures.fake_chat import FakeChatModel, block_real_models, call, say
from tests.world import World


@pytest.fixture(autouse=True)
def _no_real_model(monkeypatch: pytest.MonkeyPatch) -> None:
    block_real_models(monkeypatch)


def test_a_pending_approval_survives_a_restart_and_resumes(sqlite_world: World, tmp_path: Path) -> None:
    w = sqlite_world
    opp, rep = w.records["a"]["opportunity"], w.p("a", "rep")
    path = tmp_path / "checkpoints.db"
    saver = open_checkpointer(path)
    before = FakeChatModel(script=[call("update_stage", opportunity=f"opportunity:{opp}", stage="negotiation")])
    proposal = of_type(drain(assistant(w.engine, before, saver).start_turn(
        rep, "t", "Move ESS-200 rollout a to negotiation")), "proposal")[0]
    close_checkpointer(saver)  # the process stops: graph, checkpointer and model are gone
    del saver, before

    saver = open_checkpointer(path)
    after = FakeChatModel(script=[say(f"Done [opportunity:{opp}].")])
    bot = assistant(w.engine, after, saver)
    assert bot.pending(rep, "t") == proposal
    answer = of_type(drain(bot.resume(rep, "t", {"action": "approve"})), "answer")[0]
    assert answer.grounded and answer.citations == [f"opportunity:{opp}"]
    with session_factory(w.engine)() as s:
        assert s.get(Opportunity, opp).stage == "negotiation"
    assert [m["role"] for m in bot.history(rep, "t")] == ["user", "assistant"]
    close_checkpointer(saver)


def _stored_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_erase_scrubs_conversations_and_checkpoints(sqlite_world: World, tmp_path: Path) -> None:
    w = sqlite_world
    rep, contact = w.p("a", "rep"), w.records["a"]["contact"]
    path = tmp_path / "checkpoints.db"
    saver = open_checkpointer(path)
    fake = FakeChatModel(script=[
        call("get_record", record=f"contact:{contact}"),
        say(f"Buyer a, phone {w.phones['a']}, email {w.emails['a']} [contact:{contact}]."),
        call("create_contact", name="Buyer a", account=f"account:{w.records['a']['account']}",
             phone=w.phones["a"]),
        say("Unrelated answer."),
    ])
    bot = assistant(w.engine, fake, saver)
    drain(bot.start_turn(rep, "about-buyer", "Who is Buyer a?"))
    drain(bot.start_turn(rep, "about-buyer", "Add Buyer a again as a new contact at Acme"))  # pending, mentions her
    drain(bot.start_turn(w.p("b", "rep"), "unrelated", "hello"))
    raw = _stored_bytes(path)
    assert w.phones["a"].encode() in raw and w.emails["a"].encode() in raw

    with session_factory(w.engine)() as s, s.begin():
        summary = privacy.erase_contact(s, w.p("a", "manager"), contact, saver=saver)
    assert summary["conversations_scrubbed"] == 1
    with session_factory(w.engine)() as s:  # the assistant's pending "create contact" is scrubbed in the CRM too
        pending = s.scalar(select(Proposal).where(Proposal.object_type == "contact", Proposal.action == "create"))
        assert pending.changes["name"]["after"] == "[erased]" and pending.changes["phone"]["after"] == "[erased]"

    raw = _stored_bytes(path)
    for secret in (w.phones["a"], w.emails["a"], "Buyer a", "138****5678", "l***@acme-energy.cn"):
        assert secret.encode() not in raw, secret
    # the conversation is still readable and resumable, with the subject erased
    history = bot.history(rep, "about-buyer")
    assert "[erased]" in history[1]["content"]
    waiting = bot.pending(rep, "about-buyer")
    assert waiting is not None and waiting.proposal["changes"]["name"]["after"] == "[erased]"
    fake.script.append(say("Left it."))
    assert of_type(drain(bot.resume(rep, "about-buyer", {"action": "reject"})), "answer")
    assert scrub_threads(__import__("re").compile("Buyer a"), "[erased]", saver=saver) == 0
    close_checkpointer(saver)


def test_the_default_checkpointer_is_a_file_under_the_data_dir(sqlite_world: World, tmp_path: Path) -> None:
    from agents.checkpointer import close_all, get_checkpointer
    from config.settings import get_settings

    saver = get_checkpointer()
    assert get_checkpointer() is saver
    assert (get_settings().data_dir / "checkpoints.db").is_file()
    close_all()
    with session_factory(sqlite_world.engine)() as s:  # the CRM database is untouched by it
        assert s.scalar(select(Opportunity.id).limit(1)) is not None
