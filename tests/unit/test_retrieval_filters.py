"""The Qdrant permission filter must select exactly the rows ``crm.access.row_filter`` selects."""

import itertools
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from crm.access import Principal, row_filter
from crm.models import Activity, KnowledgeArticle, Lead, Team, User
from retrieval.filters import All, AnyOf, Match, Range, matches, permission_filter, search_filter
from retrieval.store import EdgeStore

ROLES = ("rep", "manager", "support", "admin")


@pytest.fixture(scope="module")
def rows() -> Any:
    from config.db import Base

    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine, tables=[User.__table__, Team.__table__, Activity.__table__,
                                             Lead.__table__, KnowledgeArticle.__table__])
    with Session(engine) as s:
        s.add_all([Team(id=t, name=f"t{t}") for t in (1, 2)])
        s.add_all([User(id=u, name=f"u{u}", email=f"u{u}@x", role="rep") for u in (1, 2, 3)])
        s.flush()
        i = 0
        for owner, team in itertools.product((1, 2, 3, None), (1, 2, None)):
            i += 1
            s.add(Activity(id=i, kind="note", owner_id=owner, team_id=team, occurred_at=datetime(2026, 1, 1)))
            s.add(Lead(id=i, name="l", owner_id=owner, team_id=team))
        s.add(KnowledgeArticle(id=1, title="t", body="b"))
        s.commit()
    return engine


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("teams", [frozenset(), frozenset({1}), frozenset({1, 2})])
@pytest.mark.parametrize("obj", ["activity", "lead", "article"])
def test_permission_filter_selects_exactly_the_sql_rows(rows: Any, role: str, teams: frozenset[int], obj: str) -> None:
    principal = Principal(user_id=1, role=role, team_ids=teams)  # type: ignore[arg-type]
    model = {"activity": Activity, "lead": Lead, "article": KnowledgeArticle}[obj]
    with Session(rows) as s:
        allowed = set(s.scalars(select(model.id).where(row_filter(principal, obj))))
        every = list(s.scalars(select(model)))
    cond = permission_filter(principal)
    got = {r.id for r in every if matches(cond, {"object_type": obj, "owner_id": getattr(r, "owner_id", None),
                                                 "team_id": getattr(r, "team_id", None)})}
    assert got == allowed


def test_a_role_with_no_readable_rows_gets_a_filter_that_matches_nothing() -> None:
    cond = permission_filter(Principal(user_id=9, role="manager", team_ids=frozenset()))
    assert not matches(cond, {"object_type": "activity", "team_id": None, "owner_id": 9})
    assert matches(cond, {"object_type": "article"})


def test_support_never_matches_opportunities_or_leads() -> None:
    cond = permission_filter(Principal(user_id=1, role="support", team_ids=frozenset({1})))
    for obj in ("opportunity", "lead"):
        assert not matches(cond, {"object_type": obj, "team_id": 1, "owner_id": 1})
    assert matches(cond, {"object_type": "case", "team_id": 1, "owner_id": 5})


def test_search_filter_adds_account_type_and_dates() -> None:
    from datetime import date
    p = Principal(user_id=1, role="admin")
    cond = search_filter(p, account_id=7, object_types=["activity"], date_from=date(2026, 3, 1),
                         date_to=date(2026, 3, 31))
    assert isinstance(cond, All) and Match("account_id", (7,)) in cond.conditions
    rng = next(c for c in cond.conditions if isinstance(c, Range))
    base = {"object_type": "activity", "account_id": 7}
    assert matches(cond, {**base, "ts": rng.gte})
    assert matches(cond, {**base, "ts": rng.lte})
    assert not matches(cond, {**base, "ts": rng.lte + 1})
    assert not matches(cond, {**base, "ts": rng.gte, "account_id": 8})


def test_edge_translation_builds_nested_filters(tmp_path: Any) -> None:
    import qdrant_edge as qe
    store = EdgeStore(tmp_path / "s", 4)
    try:
        built = store._to_filter(permission_filter(Principal(user_id=1, role="rep", team_ids=frozenset({2}))))
        assert isinstance(built, qe.Filter) and built.should
        nothing = store._to_filter(AnyOf(()))
        assert isinstance(nothing, qe.Filter) and nothing.must
    finally:
        store.close()


def test_the_default_store_answers_a_reps_filtered_query_exactly(tmp_path: Any) -> None:
    """The int8 copies only pick candidates: after rescoring, a filtered top 10 equals exact float search."""
    import numpy as np

    from retrieval.documents import Chunk
    from retrieval.sparse import SparseVec
    from retrieval.store import DEFAULT_TUNING

    assert DEFAULT_TUNING.quantize
    rng = np.random.default_rng(0)
    n, dim = 3000, 32
    centers = rng.normal(size=(30, dim))
    vecs = (centers[rng.integers(0, 30, n)] + rng.normal(scale=0.4, size=(n, dim))).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    chunks = [Chunk(f"activity:{i}#0", "", {"record": f"activity:{i}", "object_type": "activity", "record_id": i,
                                             "chunk_no": 0, "team_id": int(i % 8) + 1, "owner_id": int(i % 50) + 1,
                                             "language": "en"}) for i in range(n)]
    store = EdgeStore(tmp_path / "s", dim)
    try:
        store.upsert(chunks, vecs, [SparseVec([i % 97], [1.0]) for i in range(n)])
        store.flush()
        store.optimize()
        rep = search_filter(Principal(user_id=3, role="rep", team_ids=frozenset({2})), object_types=["activity"])
        for q in rng.normal(size=(20, dim)).astype(np.float32):
            q /= np.linalg.norm(q)
            got = store.query(q, None, rep, limit=10, candidates=50, mode="dense")
            want = store.query(q, None, rep, limit=10, candidates=50, mode="dense", exact=True)
            assert [h.point_id for h in got] == [h.point_id for h in want]
            assert all(h.payload["team_id"] == 2 or h.payload["owner_id"] == 3 for h in got)
    finally:
        store.close()
