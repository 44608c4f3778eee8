"""The RAG suite: questions from the planted facts, the deterministic grading, the scripted right and wrong models,
a scripted judge through ragas's metric collections, and the judge-trust check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eval.agent.harness import build_template
from eval.rag import (
    LANGS,
    Question,
    answer_correct,
    contexts_of,
    questions,
    quick_slice,
    run,
    run_suite,
    wrong_model,
)
from eval.ragas_metrics import judge_trust, nonllm_context_scores, spearman
from eval.results import SuiteResult
from tests.fixtures.fake_chat import FakeChatModel, block_real_models

SCALE = 0.02


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    block_real_models(monkeypatch)
    monkeypatch.setenv("CRMIND_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CRMIND_EMBEDDING_BACKEND", "torch")  # no ONNX export per test folder
    from config.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def qs(tmp_path_factory: pytest.TempPathFactory) -> list[Question]:
    return questions(build_template(tmp_path_factory.mktemp("rag"), scale=SCALE))


def test_questions_cover_every_fact_in_both_languages(qs: list[Question]) -> None:
    assert qs and {q.lang for q in qs} == set(LANGS)
    assert len({q.id for q in qs}) == len(qs)
    for q in qs:
        assert q.reference_contexts and any(q.fact["fact"] in c for c in q.reference_contexts), q.id
        assert q.resolved.principal.role in ("rep", "manager", "support", "admin")
    quick = quick_slice(qs, per_lang=4, seed=0)
    assert [q.lang for q in quick[:4]] == ["en", "zh", "en", "zh"]
    assert sum(q.lang == "en" for q in quick) == 4 and sum(q.lang == "zh" for q in quick) == 4
    assert len({q.fact["kind"] for q in quick}) >= 3
    assert [q.id for q in quick] == [q.id for q in quick_slice(qs, per_lang=4, seed=0)]


@pytest.mark.parametrize(("answer", "expected", "ok"), [
    ("The decision is due on 2027-03-12 [activity:4].", "12 March 2027", True),
    ("决策日期是2027年3月12日。", "12 March 2027", True),
    ("The decision is due on 12 April 2027.", "12 March 2027", False),
    ("预算上限为125万元", "CNY 1,250,000", True),
    ("They want SOC 2 TYPE II report", "a SOC 2 Type II report", True),
    ("They want a SOC 1 report", "a SOC 2 Type II report", False),
    ("They want a soc 2 type ii report.", "a SOC 2 Type II report", True),
    ("Part HX-FAN-124 was replaced.", "HX-FAN-123", False),
    ("Part HX-FAN-123 was replaced.", "HX-FAN-123", True),
    ("40 units across 3 sites", "3个站点共40台", True),
    ("No idea.", "3个站点共40台", False),
])
def test_answer_correct(answer: str, expected: str, ok: bool) -> None:
    assert answer_correct(answer, expected) is ok


def test_contexts_are_the_texts_the_tools_returned() -> None:
    search = '<data source="search_notes">\n' + json.dumps(
        {"results": [{"ref": "activity:1", "text": "Budget is capped at 1M."},
                     {"ref": "case:2", "text": "Badge pickup at Gate 4."}], "count": 2}) + "\n</data>"
    record = '<data source="get_record">\n' + json.dumps(
        {"record": {"ref": "activity:1", "body": "Budget is capped at 1M."}, "related": {}}) + "\n</data>"
    error = '<error tool="get_record">not found</error>\nCorrect the call or ask the rep.'
    assert contexts_of([("search_notes", search), ("get_record", record), ("get_record", error)]) == [
        "Budget is capped at 1M.", "Badge pickup at Gate 4."]


def test_nonllm_context_scores_use_ragas_string_similarity() -> None:
    ref = ["Anna asked whether the warranty covers damage from grid surges."]
    assert nonllm_context_scores(ref, ref) == pytest.approx((1.0, 1.0), abs=1e-6)
    precision, recall = nonllm_context_scores(["Lunch menu for Friday.", ref[0]], ref)
    assert recall == 1.0 and 0.4 < precision < 0.6  # the relevant passage ranked second
    assert nonllm_context_scores(["Lunch menu for Friday."], ref) == (0.0, 0.0)
    assert nonllm_context_scores([], ref) == (0.0, 0.0)


def test_the_fake_run_scores_high_and_a_wrong_model_low(tmp_path: Path) -> None:
    good = run("fake", quick=True, progress=False, limit=4, workdir=tmp_path / "good")
    assert isinstance(good, SuiteResult) and good.suite == "rag" and len(good.items) == 4
    assert good.meta["index"] == "hybrid" and good.meta["judge"] is None and good.meta["judged"] == 0
    assert good.metrics["answer_correct"] == 1.0 and good.metrics["cited"] == 1.0
    assert good.metrics["context_recall"] >= 0.75 and good.metrics["score"] >= 0.85
    assert good.metrics["faithfulness"] is None
    assert {i.lang for i in good.items} == {"en", "zh"} and all(i.category for i in good.items)
    assert SuiteResult.from_json(json.loads(json.dumps(good.to_json()))).metrics == good.metrics
    bad = run_suite(wrong_model, model_name="wrong", quick=True, progress=False, limit=4, index="keyword",
                    workdir=tmp_path / "bad")
    assert bad.meta["index"].startswith("keyword")
    assert [i.id for i in bad.items] == [i.id for i in good.items]
    # The wrong model never looks anything up; crmind looks up the records a question names (grounding), so some
    # context still reaches it, but less than the right model's.
    assert bad.metrics["answer_correct"] == 0.0 and bad.metrics["context_recall"] < good.metrics["context_recall"]
    assert bad.metrics["score"] < good.metrics["score"] - 0.5


def _judge_reply(output: type[Any], prompt: str) -> dict[str, Any]:
    """What a perfect judge answers, per ragas output model (field names read from ragas 0.4's models)."""
    name = output.__name__
    if name == "StatementGeneratorOutput":
        return {"statements": ["The answer quotes the note."]}
    if name == "NLIStatementOutput":
        return {"statements": [{"statement": "The answer quotes the note.", "reason": "in context", "verdict": 1}]}
    if name == "ContextPrecisionOutput":
        return {"reason": "useful", "verdict": 1}
    if name == "ContextRecallOutput":
        return {"classifications": [{"statement": "s", "reason": "in context", "attributed": 1}]}
    if name == "AnswerRelevanceOutput":
        question = prompt.rsplit('"response":', 1)[-1]
        return {"question": question[:60], "noncommittal": 0}
    raise AssertionError(f"unexpected judge output {name}")


def _scripted_judge(output: type[Any]) -> FakeChatModel:
    from langchain_core.messages import AIMessage

    def reply(messages: list[Any]) -> AIMessage:
        return AIMessage(content=json.dumps(_judge_reply(output, str(messages[-1].content))))

    return FakeChatModel(script=[reply] * 3)


def test_a_scripted_judge_runs_the_llm_metrics_and_the_trust_check(tmp_path: Path) -> None:
    result = run("fake", quick=True, progress=False, limit=3, judge=_scripted_judge, judge_limit=2,
                 workdir=tmp_path)
    judged = [i for i in result.items if "faithfulness" in i.detail]
    assert len(judged) == 2 and result.meta["judged"] == 2 and result.meta["judge"] == "custom"
    for item in judged:
        assert item.detail["faithfulness"] == 1.0 and item.detail["context_recall_llm"] == 1.0
        assert item.detail["context_precision_llm"] == pytest.approx(1.0, abs=1e-6)
        assert 0.0 < item.detail["answer_relevancy"] <= 1.0
    assert result.metrics["faithfulness"] == 1.0
    assert result.meta["judge_failures"] == 0 and result.meta["judge_calls"] >= 2 * 4
    trust = result.meta["judge_trust"]
    assert trust["n"] == 2 and trust["faithfulness_vs_answer_correct"]["agreement"] == 1.0
    assert "too few" in trust["verdict"]


def test_judge_trust_from_given_numbers() -> None:
    rows = [{"answer_correct": c, "faithfulness": f, "context_recall_llm": a, "context_recall": b}
            for c, f, a, b in [(1, 1.0, 1.0, 1.0), (1, 0.8, 0.9, 1.0), (0, 0.0, 0.0, 0.0), (0, 0.2, 0.1, 0.0),
                               (1, 1.0, 1.0, 1.0), (0, 0.0, 0.0, 0.0), (1, 0.9, 1.0, 1.0), (0, 1.0, 1.0, 0.0)]]
    trust = judge_trust(rows)
    assert trust["n"] == 8
    assert trust["faithfulness_vs_answer_correct"] == {"n": 8, "agreement": 0.875}
    assert trust["context_recall_llm_vs_nonllm"]["agreement"] == 0.875
    assert trust["context_recall_llm_vs_nonllm"]["spearman"] > 0.6
    assert trust["verdict"].startswith("the judge mostly agrees")
    liar = [{**r, "faithfulness": 1.0 - r["faithfulness"], "context_recall_llm": 1.0 - r["context_recall_llm"]}
            for r in rows]
    assert judge_trust(liar)["verdict"].startswith("the judge often disagrees")
    assert judge_trust([])["verdict"].startswith("not assessed")
    assert spearman([1, 2, 3], [3, 2, 1]) == -1.0 and spearman([1, 1, 1], [1, 2, 3]) is None
