"""The demo generator at a tiny scale on SQLite: determinism, consistency, planted facts and behaviours."""

from __future__ import annotations

import hashlib
import json
import stat
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from config.db import make_engine, session_factory
from crm.auth import hash_token
from crm.demo import build_demo, sizes
from crm.models import Account, Activity, Case, Contact, Event, Lead, Opportunity, User

SCALE = 0.02


def _engine(path: Path) -> Engine:
    return make_engine(f"sqlite:///{path}/crm.db")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, Any, Path]:
    path = tmp_path_factory.mktemp("demo")
    engine = _engine(path)
    result = build_demo(engine, scale=SCALE, seed=7, out_dir=path, progress=False)
    return engine, result, path


def _checksum(engine: Engine) -> str:
    digest = hashlib.sha256()
    queries = ("SELECT id, subject, body, occurred_at FROM activities ORDER BY id",
               "SELECT id, subject, description, resolution FROM cases ORDER BY id",
               "SELECT id, name, email, phone FROM contacts ORDER BY id",
               "SELECT id, name, description FROM accounts ORDER BY id",
               "SELECT id, visitor_id, page, duration_s, occurred_at FROM events ORDER BY id",
               "SELECT id, title, body FROM knowledge_articles ORDER BY id")
    with engine.connect() as conn:
        for q in queries:
            for row in conn.execute(text(q)):
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def test_same_seed_gives_identical_data_and_other_seed_differs(demo: Any, tmp_path: Path) -> None:
    engine, _, path = demo
    again = _engine(tmp_path / "a")
    build_demo(again, scale=SCALE, seed=7, out_dir=tmp_path / "a", progress=False)
    assert _checksum(again) == _checksum(engine)
    assert (tmp_path / "a" / "ground_truth.jsonl").read_bytes() == (path / "ground_truth.jsonl").read_bytes()
    other = _engine(tmp_path / "b")
    build_demo(other, scale=SCALE, seed=8, out_dir=tmp_path / "b", progress=False)
    assert _checksum(other) != _checksum(engine)


def test_counts_follow_scale(demo: Any) -> None:
    _, result, _ = demo
    expected = sizes(SCALE)
    for table, n in expected.items():
        assert result.counts[table] >= n, table
    assert result.counts["users"] == 29 and result.counts["teams"] == 4
    assert sizes(1.0)["activities"] == 20_000 and sizes(10)["events"] == 500_000


def test_owners_and_teams_are_consistent(demo: Any) -> None:
    engine, _, _ = demo
    with engine.connect() as conn:
        users = {r.id: r for r in conn.execute(select(User))}
        acct_team = dict(conn.execute(select(Account.id, Account.team_id)).all())
        for model in (Account, Contact, Opportunity, Activity, Case):
            for row in conn.execute(select(model.owner_id, model.team_id)):
                owner = users[row.owner_id]
                assert owner.team_id == row.team_id, model.__tablename__
                assert owner.role == ("support" if model is Case else "rep") or model is Activity
        for model in (Contact, Opportunity, Activity, Case):
            for acct, team in conn.execute(select(model.account_id, model.team_id)):
                assert acct_team[acct] == team
        known = conn.execute(select(Event.contact_id, Event.team_id, Contact.team_id)
                             .join(Contact, Contact.id == Event.contact_id)).all()
        assert known and all(e_team == c_team for _, e_team, c_team in known)
        # Without a contact, an event has a team only when it is a lead's visitor's (the lead's team) or an
        # account's product usage (the account's team); anonymous visitors have none.
        lead_team = {str(c["visitor_id"]): t for c, t in conn.execute(select(Lead.custom, Lead.team_id))}
        for vid, etype, acct, team in conn.execute(select(Event.visitor_id, Event.type, Event.account_id,
                                                          Event.team_id).where(Event.contact_id.is_(None),
                                                                               Event.team_id.is_not(None))):
            assert team == (acct_team[acct] if etype == "product_usage" else lead_team[vid])


def test_a_third_of_accounts_are_chinese_with_chinese_text(demo: Any) -> None:
    engine, _, _ = demo
    with engine.connect() as conn:
        langs = [r.language for r in conn.execute(select(Account.language))]
        assert abs(langs.count("zh") / len(langs) - 1 / 3) < 0.05
        zh_bodies = conn.scalars(select(Activity.body).where(Activity.language == "zh")).all()
        assert zh_bodies and all(any("\u4e00" <= ch <= "\u9fff" for ch in b) for b in zh_bodies)
        cny = conn.scalar(select(func.count()).select_from(Opportunity).join(Account)
                          .where(Account.language == "zh", Opportunity.currency == "CNY"))
        assert cny and cny > 0


def test_ground_truth_answers_appear_in_their_records(demo: Any) -> None:
    engine, result, _ = demo
    facts = [json.loads(line) for line in result.ground_truth_path.read_text(encoding="utf-8").splitlines()]
    assert len(facts) >= 20
    assert {f["lang"] for f in facts} == {"en", "zh"}
    seen: set[tuple[int, str]] = set()
    with engine.connect() as conn:
        for f in facts:
            kind, rid = f["record"].split(":")
            if kind == "activity":
                row = conn.execute(select(Activity.subject, Activity.body, Activity.account_id)
                                   .where(Activity.id == int(rid))).one()
            else:
                row = conn.execute(select(Case.subject, Case.description, Case.resolution, Case.internal_notes,
                                          Case.account_id).where(Case.id == int(rid))).one()
            record_text = " ".join(str(x) for x in row[:-1])
            assert f["answer"] in record_text and f["fact"] in record_text
            assert row[-1] == f["account_id"]
            assert {q["lang"] for q in f["questions"]} == {"en", "zh"}
            assert all(f["fact"] not in q["text"] for q in f["questions"])
            assert (f["account_id"], f["kind"]) not in seen
            seen.add((f["account_id"], f["kind"]))


def test_duplicate_contacts_exist_on_the_same_account(demo: Any) -> None:
    engine, _, _ = demo
    with engine.connect() as conn:
        rows = conn.execute(select(Contact.account_id, Contact.name, Contact.phone, Contact.email)).all()
    by_acct: dict[int, list[Any]] = defaultdict(list)
    for r in rows:
        by_acct[r.account_id].append(r)

    def digits(p: str | None) -> str:
        return "".join(c for c in p or "" if c.isdigit())

    dups = 0
    for people in by_acct.values():
        for i, a in enumerate(people):
            for b in people[i + 1:]:
                same_mail = a.email and b.email and a.email.lower() == b.email.lower()
                same_phone = a.phone and b.phone and digits(a.phone) == digits(b.phone)
                if (same_mail or same_phone) and a.name != b.name:
                    dups += 1
    assert dups >= 1


def test_events_include_high_intent_and_bounce_sessions(demo: Any) -> None:
    engine, _, _ = demo
    with engine.connect() as conn:
        rows = conn.execute(select(Event.properties, Event.type, Event.duration_s)).all()
    sessions: dict[str, list[Any]] = defaultdict(list)
    for props, etype, dur in rows:
        sessions[props["session"]].append((etype, dur))
    high = [s for s in sessions.values()
            if sum(d for _, d in s) > 180 and sum(t == "pricing_view" for t, _ in s) >= 2]
    bounces = [s for s in sessions.values() if len(s) == 1 and s[0][1] < 15]
    assert len(high) >= 5 and len(bounces) >= 5


def test_tokens_file_is_private_and_tokens_resolve(demo: Any) -> None:
    engine, result, path = demo
    token_file = path / "demo_tokens.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    tokens = json.loads(token_file.read_text(encoding="utf-8"))
    assert len(tokens) == 29 and set(result.tokens) == {"rep", "manager", "support", "admin"}
    with engine.connect() as conn:
        for entry in tokens:
            stmt = select(User.email).where(User.token_hash == hash_token(entry["token"]))
            assert conn.scalar(stmt) == entry["email"]


def test_refuses_non_empty_database_unless_reset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 request: pytest.FixtureRequest) -> None:
    from config.settings import get_settings

    monkeypatch.setenv("CRMIND_DATA_DIR", str(tmp_path / "data"))  # the ledger anchor's folder
    get_settings.cache_clear()
    request.addfinalizer(get_settings.cache_clear)  # later tests read their own settings
    engine = _engine(tmp_path)
    build_demo(engine, scale=SCALE, seed=7, out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="reset=True"):
        build_demo(engine, scale=SCALE, seed=7, out_dir=tmp_path, progress=False)
    result = build_demo(engine, scale=SCALE, seed=9, out_dir=tmp_path, progress=False, reset=True)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Account)) == result.counts["accounts"]
        assert conn.scalar(text("SELECT count(*) FROM decisions WHERE kind = 'demo_load'")) == 1
        assert conn.scalar(text("SELECT count(*) FROM outbox")) == 0
    # The reset replaced the ledger, so its anchor starts afresh (the old one is kept beside it): the chain verifies
    # with its anchor, and later commits move the anchor on.
    import ledger
    from ledger.anchor import anchor_dir, read_anchor
    from ledger.query import verify

    with session_factory(engine)() as s, s.begin():
        ledger.append(s, kind="note", actor="user:1", input_summary="after the reset")
    with session_factory(engine)() as s:
        result_check = verify(s)
        assert result_check.ok, result_check.reason
    anchor = read_anchor(engine)
    assert anchor is not None and anchor.seq == result_check.rows
    assert anchor_dir() == tmp_path / "data" / "ledger-anchor"
    assert len(list(anchor_dir().glob("*.replaced-*.json"))) == 1
