"""Real embedded Qdrant (qdrant-edge) and the real default embedder (e5) over a small bilingual CRM."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.db import make_engine, session_factory
from crm import outbox
from crm.access import Principal, get_record
from crm.auth import principal_for_user
from crm.errors import NotFound
from crm.schema import migrate
from retrieval.errors import IndexBusy
from retrieval.indexer import CONSUMER, build
from retrieval.search import search
from retrieval.store import ClientStore, EdgeStore
from tests.fixtures.retrieval_sample import ACTIVITIES, build_sample

pytestmark = pytest.mark.integration
SECRETS = ("13812345678", "13987654321", "li.wei@acme.example", "boss@globex.example")
USERS = ("rep1@x", "rep2@x", "mgr1@x", "sup1@x", "admin@x", "rep3@x")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from config.settings import get_settings
    from retrieval.embeddings import make_embedder

    tmp = tmp_path_factory.mktemp("retrieval")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRMIND_DATA_DIR", str(tmp))
        mp.setenv("CRMIND_DATABASE_URL", f"sqlite:///{tmp}/crm.db")
        get_settings.cache_clear()
        engine = make_engine(f"sqlite:///{tmp}/crm.db")
        migrate(engine)
        build_sample(engine)
        embedder = make_embedder("e5")  # the default: multilingual, so the cross-language leg runs
        store = EdgeStore(tmp / "qdrant" / "default", embedder.dim)
        summary = build(engine, store, embedder, progress=False)
        with session_factory(engine)() as s:
            principals = {u: principal_for_user(s, u) for u in USERS}
        yield {"engine": engine, "store": store, "embedder": embedder, "summary": summary, "p": principals,
               "tmp": tmp}
        store.close()
    get_settings.cache_clear()


def _search(env: dict[str, Any], who: str, q: str, **kw: Any) -> list[Any]:
    return search(env["p"][who], q, store=env["store"], embedder=env["embedder"], **kw)


def test_full_build_indexes_every_record_and_moves_the_cursor(env: dict[str, Any]) -> None:
    assert env["summary"].records == 3 + 2 + 1 + len(ACTIVITIES) + 1 + 1
    assert env["store"].count() == env["summary"].total_chunks >= env["summary"].records
    with session_factory(env["engine"])() as s:
        assert outbox.lag(s, CONSUMER) == 0


def test_hybrid_search_finds_the_english_and_chinese_notes(env: dict[str, Any]) -> None:
    assert _search(env, "rep1@x", "When must the ESS-200-7731 batteries arrive?")[0].record in (
        "activity:1", "case:1")
    assert _search(env, "rep1@x", "华东电力 储能设备 安装 时间")[0].record == "activity:3"
    assert _search(env, "rep1@x", "ESS-500-1024", mode="sparse")[0].record == "activity:3"


def test_best_match_in_another_team_is_never_returned(env: dict[str, Any]) -> None:
    query = "Globex plans to acquire Initech in June; the board meeting is on the 14th."
    assert _search(env, "rep2@x", query)[0].record == "activity:5"
    for who in ("rep1@x", "mgr1@x", "sup1@x", "rep3@x"):
        for mode in ("hybrid", "dense", "sparse"):
            records = {h.record for h in _search(env, who, query, mode=mode, limit=50)}
            assert not records & {"activity:5", "activity:6", "account:3", "contact:2"}, (who, mode)


def test_filters_by_account_type_and_date(env: dict[str, Any]) -> None:
    hits = _search(env, "admin@x", "price discount", account_id=2, limit=50)
    assert hits and {h.account_id for h in hits} == {2}
    hits = _search(env, "admin@x", "ESS-200", object_types=["case"], limit=50)
    assert [h.record for h in hits] == ["case:1"]
    hits = _search(env, "admin@x", "price", object_types=["activity"], date_from=date(2026, 3, 3),
                   date_to=date(2026, 3, 4), limit=50)
    assert {h.record for h in hits} == {"activity:2", "activity:3"}


def test_internal_notes_and_contact_details_never_enter_the_index(env: dict[str, Any]) -> None:
    hits = _search(env, "admin@x", "recall difficult customer", limit=50)
    assert all("recall" not in h.text for h in hits)
    contact = [h for h in _search(env, "admin@x", "Li Wei CTO", object_types=["contact"])]
    assert contact and "13812345678" not in contact[0].text and "@" not in contact[0].text


_words = st.sampled_from(["renewal", "price", "discount", "ESS-200-7731", "battery", "Globex", "merger", "储能",
                          "折扣", "续约", "手机", "phone", "call", "Li Wei", "收购", "inverter", "boss", "13812345678"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(who=st.sampled_from(USERS), words=st.lists(_words, min_size=1, max_size=4),
       mode=st.sampled_from(["hybrid", "dense", "sparse"]))
def test_property_no_unreadable_record_and_no_clear_personal_data(env: dict[str, Any], who: str,
                                                                   words: list[str], mode: str) -> None:
    principal: Principal = env["p"][who]
    hits = _search(env, who, " ".join(words), mode=mode, limit=20)
    with session_factory(env["engine"])() as s:
        for h in hits:
            try:
                get_record(s, principal, h.object_type, h.record_id)
            except NotFound:
                pytest.fail(f"{who} got {h.record}, which they may not read")
    if principal.role == "support":
        for h in hits:
            assert not any(secret in h.text for secret in SECRETS), h.text
            assert not re.search(r"\d{11}", h.text), h.text


def test_second_owner_of_the_index_folder_gets_a_clear_error(env: dict[str, Any]) -> None:
    with pytest.raises(IndexBusy, match="owned by another crmind process"):
        EdgeStore(env["tmp"] / "qdrant" / "default", env["embedder"].dim)


def test_client_local_mode_has_the_same_schema_and_results(env: dict[str, Any]) -> None:
    store = ClientStore(env["embedder"].dim, collection="crmind_test")
    try:
        build(env["engine"], store, env["embedder"], progress=False)
        assert store.count() == env["store"].count()
        for q in ("renewal price discount", "储能设备安装"):
            edge = [h.record for h in _search(env, "rep1@x", q, limit=3)]
            local = [h.record for h in search(env["p"]["rep1@x"], q, store=store, embedder=env["embedder"],
                                              limit=3)]
            assert edge[0] == local[0]
        secret = "Globex plans to acquire Initech"
        assert "activity:5" not in {h.record for h in search(env["p"]["rep1@x"], secret, store=store,
                                                              embedder=env["embedder"], limit=50)}
    finally:
        store.close()


def test_logged_search_writes_a_ledger_row_with_chunk_evidence(env: dict[str, Any]) -> None:
    from ledger import decisions_for
    from retrieval.search import search_logged

    with session_factory(env["engine"])() as s:
        hits, decision_id = search_logged(s, env["p"]["rep1@x"], "battery order", store=env["store"],
                                          embedder=env["embedder"], limit=3, thread_id="t-1")
        s.commit()
        row = decisions_for(s, thread_id="t-1")[0]
    assert row.id == decision_id and row.kind == "retrieval"
    assert f"chunk:{hits[0].chunk_id}" in row.evidence and hits[0].record in row.evidence
    assert row.output["question_language"] == "en" and row.output["fusion"]["sparse"] > 0


@pytest.mark.parametrize("q", ["When must the ESS-200-7731 batteries arrive?", "华东电力 储能设备 安装 时间",
                               "renewal price discount"])
def test_fusion_weights_reach_the_engine(env: dict[str, Any], q: str) -> None:
    from retrieval.store import Fusion

    def top(**kw: Any) -> list[str]:
        return [h.chunk_id for h in _search(env, "admin@x", q, limit=5, **kw)]

    # A leg weighted 0 drops out of the fusion: hybrid then ranks exactly like the other leg alone.
    assert top(fusion=Fusion(k=2, dense=1.0, sparse=0.0)) == top(mode="dense")
    assert top(fusion=Fusion(k=2, dense=0.0, sparse=1.0))[0] == top(mode="sparse")[0]
    # The configured default is what a plain search uses.
    from config.settings import get_settings
    from retrieval.search import configured_fusion
    s = get_settings()
    assert top() == top(fusion=Fusion(k=s.hybrid_rrf_k, sparse=s.hybrid_sparse_weight,
                                      cross=s.hybrid_cross_language_weights.get("zh" if "华" in q else "en", 0.0)))
    assert top() == top(fusion=configured_fusion(q))


def test_cross_language_leg_ranks_only_the_other_language_inside_the_permission_filter(env: dict[str, Any]) -> None:
    from retrieval.filters import Match, search_filter
    from retrieval.sparse import encode_query
    from retrieval.store import Fusion

    q = "续约价格折扣"
    dense, sparse = env["embedder"].embed_query(q), encode_query(q)
    cond = search_filter(env["p"]["rep1@x"])
    only_cross = Fusion(k=5, dense=0.0, sparse=0.0, cross=1.0)
    hits = env["store"].query(dense, sparse, cond, limit=50, candidates=50, fusion=only_cross,
                              cross_language=Match("language", ("en",)))
    scored = [h for h in hits if h.score > 0]  # legs weighted 0 still list their points, at score 0
    assert scored and {h.payload["language"] for h in scored} == {"en"}
    assert not {h.payload["record"] for h in hits} & {"activity:5", "account:3", "contact:2"}  # team 2's
    # With the leg weighted in, the fused ranking holds both languages.
    both = env["store"].query(dense, sparse, cond, limit=50, candidates=50, fusion=Fusion(k=5, cross=1.0),
                              cross_language=Match("language", ("en",)))
    assert {h.payload["language"] for h in both} == {"en", "zh"}
