from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from retrieval.embeddings import CachedEmbedder, Matrix
from retrieval.search import Hit, search
from retrieval.store import StoredHit


class CountingEmbedder:
    name = "fake"
    dim = 8
    multilingual = True

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        self.embedded.extend(texts)
        rng = [np.random.default_rng(abs(hash(t)) % 2**32).random(self.dim, dtype=np.float32) for t in texts]
        return np.stack(rng) if rng else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text: str) -> Matrix:
        return self.embed_documents([text])[0]


def test_cache_never_embeds_the_same_text_twice(tmp_path: Path) -> None:
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, tmp_path / "cache.sqlite")
    first = cached.embed_documents(["a", "b", "a"])
    second = cached.embed_documents(["b", "c", "a"])
    assert inner.embedded == ["a", "b", "c"]
    assert np.array_equal(first[0], second[2]) and np.array_equal(first[1], second[0])
    assert (cached.hits, cached.misses) == (3, 3)
    cached.close()
    reopened = CachedEmbedder(CountingEmbedder(), tmp_path / "cache.sqlite")
    reopened.embed_documents(["a", "b", "c"])
    assert reopened.misses == 0 and isinstance(reopened.inner, CountingEmbedder) and not reopened.inner.embedded


def test_cache_keys_include_the_model_name(tmp_path: Path) -> None:
    one, other = CountingEmbedder(), CountingEmbedder()
    other.name = "other"
    CachedEmbedder(one, tmp_path / "c.sqlite").embed_documents(["x"])
    CachedEmbedder(other, tmp_path / "c.sqlite").embed_documents(["x"])
    assert other.embedded == ["x"]


class FakeStore:
    def __init__(self, payloads: list[dict[str, object]]) -> None:
        self.payloads = payloads
        self.calls: list[dict[str, object]] = []

    def query(self, dense: object, sparse: object, cond: object, *, limit: int, candidates: int,
              mode: str = "hybrid", exact: bool = False, fusion: object = None,
              cross_language: object = None) -> list[StoredHit]:
        self.calls.append({"limit": limit, "candidates": candidates, "mode": mode, "cond": cond, "fusion": fusion,
                           "cross_language": cross_language})
        return [StoredHit(str(i), 1.0 / (i + 1), p) for i, p in enumerate(self.payloads[:limit])]


def _payload(i: int, text: str) -> dict[str, object]:
    return {"record": f"activity:{i}", "object_type": "activity", "record_id": i, "chunk_no": 0, "text": text}


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A randomly initialised 2-layer BERT cross-encoder with a 40-word vocabulary: no download."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-ce")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(30)] + [
        "battery", "price", "renewal", "order", "discount"]
    (folder / "vocab.txt").write_text("\n".join(words))
    tok = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    config = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def test_reranker_hook_reorders_candidates_with_a_tiny_random_cross_encoder(tiny_cross_encoder: str) -> None:
    from crm.access import Principal
    from retrieval.search import CrossEncoderReranker

    reranker = CrossEncoderReranker(tiny_cross_encoder)
    store = FakeStore([_payload(i, f"battery order w{i}") for i in range(12)])
    p = Principal(user_id=1, role="admin")
    hits = search(p, "battery price", store=store, embedder=CountingEmbedder(), limit=5,  # type: ignore[arg-type]
                  reranker=reranker, candidates=12)
    expected = reranker.score("battery price", [f"battery order w{i}" for i in range(12)])
    assert len(hits) == 5
    assert store.calls[0]["limit"] == 12  # the reranker sees the whole candidate pool
    assert store.calls[0]["fusion"] is not None  # the configured fusion travels into the engine query
    best = sorted(range(12), key=lambda i: -expected[i])[:5]
    assert [h.record_id for h in hits] == best
    assert all(isinstance(h, Hit) for h in hits)


def test_support_role_gets_masked_text_from_search() -> None:
    from crm.access import Principal

    store = FakeStore([_payload(1, "Call 13812345678 or li.wei@acme.example"),
                       _payload(2, "张经理的手机是13987654321。")])
    support = Principal(user_id=1, role="support", team_ids=frozenset({1}))
    texts = [h.text for h in search(support, "call", store=store, embedder=CountingEmbedder())]  # type: ignore[arg-type]
    assert texts == ["Call 138****5678 or l***@acme.example", "张经理的手机是139****4321。"]
    rep = Principal(user_id=1, role="rep", team_ids=frozenset({1}))
    assert "13812345678" in search(rep, "call", store=store, embedder=CountingEmbedder())[0].text  # type: ignore[arg-type]


@pytest.mark.parametrize(("query", "other"), [("What warranty concern did the CTO raise?", ("zh",)),
                                              ("Acme Energy的试点安排在哪里？", ("en",)),
                                              ("华东电力 储能设备 安装 时间", ("en",))])
def test_hybrid_search_asks_for_a_leg_over_the_other_language(query: str, other: tuple[str, ...]) -> None:
    from crm.access import Principal
    from retrieval.filters import Match

    store = FakeStore([_payload(1, "x")])
    search(Principal(user_id=1, role="admin"), query, store=store, embedder=CountingEmbedder())  # type: ignore[arg-type]
    assert store.calls[0]["cross_language"] == Match("language", other)


def test_cross_language_leg_weight_follows_the_question_language(monkeypatch: pytest.MonkeyPatch) -> None:
    from config.settings import get_settings
    from retrieval.search import configured_fusion

    monkeypatch.setenv("CRMIND_HYBRID_CROSS_LANGUAGE_WEIGHTS", '{"zh": 3.5}')
    get_settings.cache_clear()
    try:
        assert configured_fusion("Acme Energy的试点安排在哪里？").cross == 3.5
        assert configured_fusion("Where is the Acme Energy pilot?").cross == 0.0  # absent language: leg off
    finally:
        get_settings.cache_clear()
