"""A data-subject erase leaves no trace in the ledger, whoever wrote the row, and the chain still verifies."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from sqlalchemy import text

import ledger
from config.db import session_factory
from crm import proposals as ops
from crm.privacy import erase_contact, export_contact
from inference.ledger_callback import LedgerCallback
from retrieval.search import search_logged
from retrieval.store import ClientStore
from tests.world import World

pytestmark = pytest.mark.integration


class _NoDenseEmbedder:
    """Sparse-only search never embeds; the ledger row is what this test is about."""

    name = "none"
    dim = 8
    multilingual = False

    def embed_query(self, text: str) -> Any:
        return np.zeros(self.dim, dtype=np.float32)


def _ledger_text(world: World) -> str:
    with world.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM decisions")).fetchall() + conn.execute(
            text("SELECT * FROM decision_refs")).fetchall()
    return "\n".join(str(tuple(r)) for r in rows)


def test_erase_removes_name_phone_and_email_from_every_ledger_row(world: World) -> None:
    manager, contact_id = world.p("a", "manager"), world.records["a"]["contact"]
    name, phone, email = "Buyer a", world.phones["a"], world.emails["a"]
    question = f"what did {name} say? call {phone} or {email}"
    with session_factory(world.engine)() as s, s.begin():
        # a search, a model call, a proposal and an export, each mentioning the person
        search_logged(s, manager, question, store=ClientStore(8, collection="t"), embedder=_NoDenseEmbedder(),
                      mode="sparse")
        ops.propose(s, manager, object_type="contact", action="update", record_id=contact_id,
                    changes={"title": "CEO"}, reason=f"{name} was promoted; confirmed on {phone}")
        export_contact(s, manager, contact_id)
    chat = FakeListChatModel(responses=[f"{name} asked to be called on {phone} and mailed at {email}."])
    chat.invoke(question, config={"callbacks": [LedgerCallback(model="fake", actor=manager.actor)]})

    before = _ledger_text(world)
    assert name in before  # names are kept until an erase: they answer "why" for everyone else
    assert phone not in before and email not in before  # phones and emails never enter the ledger raw

    with session_factory(world.engine)() as s, s.begin():
        result = erase_contact(s, manager, contact_id)
    assert result["ledger_rows_scrubbed"] >= 3

    after = _ledger_text(world)
    for value in (name, phone, email, "138****5678", "l***@acme-energy.cn"):
        assert value not in after, value
    with session_factory(world.engine)() as s:
        assert ledger.verify(s).ok
        erased = s.scalars(ledger.Decision.__table__.select().where(  # type: ignore[arg-type]
            ledger.Decision.erased_at.is_not(None))).all()
    assert erased


def test_verify_still_catches_an_edited_payload_and_a_dropped_salt(world: World) -> None:
    with session_factory(world.engine)() as s, s.begin():
        ledger.append(s, kind="note", actor="user:1", input_summary="hello", output={"a": 1})
        ledger.append(s, kind="note", actor="user:1", input_summary="world", output={"a": 2})
    with world.engine.begin() as conn:
        conn.execute(text("UPDATE decisions SET payload_salt = NULL WHERE seq = 2"))
    with session_factory(world.engine)() as s:
        result = ledger.verify(s)
    assert not result.ok and result.first_bad_seq == 2 and "salt" in result.reason
