"""ragas, offline: analytics off, our chat models and embedder behind its interfaces, and the metric calls.

ragas 0.4's metric collections (``ragas.metrics.collections``) take an ``InstructorBaseRagasLLM`` (``agenerate``
of a prompt into a pydantic model) and a ``BaseRagasEmbedding``. ``ChatJudge`` is the first over any LangChain chat
model, so the judge can be crmind's own gateway model (constrained to each answer's JSON schema), any
OpenAI-compatible endpoint, or a scripted fake in tests; ``RagasEmbeddings`` is the second over our offline
sentence-transformers embedder. None of the metric paths used here touch tiktoken (only ragas's testset
generation counts tokens), so nothing downloads encodings.

The string-similarity metrics (non-LLM context precision and recall) exist only in ragas's older metric API, which
``ragas.metrics`` still exports with a deprecation warning; they are imported from their modules directly.
"""

from __future__ import annotations

import os

# ragas posts usage events to its maintainers unless this is set before its first import.
os.environ["RAGAS_DO_NOT_TRACK"] = "true"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import math  # noqa: E402
import statistics  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

from langchain_core.language_models import BaseChatModel  # noqa: E402
from langchain_core.messages import HumanMessage  # noqa: E402
from pydantic import BaseModel  # noqa: E402
from ragas.embeddings.base import BaseRagasEmbedding  # noqa: E402
from ragas.llms.base import InstructorBaseRagasLLM  # noqa: E402

from inference.errors import InvalidModelOutput  # noqa: E402
from retrieval.embeddings import Embedder  # noqa: E402

T = TypeVar("T", bound=BaseModel)
ChatFor = Callable[[type[BaseModel]], BaseChatModel]
"""A chat model for one ragas output model (so a constrained engine can be given that model's schema)."""
JUDGE_KEY_ENV = "CRMIND_JUDGE_API_KEY"


def _json_part(text: str) -> str:
    """The JSON object in a reply (endpoints without constrained output wrap it in prose or code fences)."""
    start, end = text.find("{"), text.rfind("}")
    return text[start:end + 1] if 0 <= start < end else text


class ChatJudge(InstructorBaseRagasLLM):
    """ragas's structured-output LLM over LangChain chat models, with crmind's bounded repair loop."""

    def __init__(self, chat_for: ChatFor, *, name: str, attempts: int = 1) -> None:
        self.chat_for, self.name, self.attempts = chat_for, name, attempts
        self.calls = 0
        self.failures = 0

    def generate(self, prompt: str, response_model: type[T]) -> T:
        """One judge call: the prompt (ragas's, with the output schema) parsed into ``response_model``."""
        from inference.constrained import repair_loop

        self.calls += 1
        try:
            result: T = repair_loop(self.chat_for(response_model), [HumanMessage(content=prompt)],
                                    lambda text: response_model.model_validate_json(_json_part(text)),
                                    attempts=self.attempts)
        except InvalidModelOutput:
            self.failures += 1
            raise
        return result

    async def agenerate(self, prompt: str, response_model: type[T]) -> T:
        """``generate``, awaited: metrics run one at a time, so blocking the loop costs nothing."""
        return self.generate(prompt, response_model)


def embedded_judge(model: str, *, max_tokens: int = 768) -> ChatJudge:
    """Crmind's own gateway model as the judge, constrained to each ragas output schema; not recorded in the ledger."""
    from inference.constrained import inline_refs
    from inference.gateway import chat_model

    def chat_for(output: type[BaseModel]) -> BaseChatModel:
        return chat_model(model, actor="eval:rag-judge", json_schema=inline_refs(output.model_json_schema()),
                          max_tokens=max_tokens, record=False)

    return ChatJudge(chat_for, name=f"embedded:{model}", attempts=1)


def endpoint_judge(url: str, model: str, *, api_key: str | None = None, timeout_s: float = 120.0) -> ChatJudge:
    """Any OpenAI-compatible endpoint as the judge; the key comes from ``CRMIND_JUDGE_API_KEY`` unless given."""
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=url, model=model, api_key=api_key or os.environ.get(JUDGE_KEY_ENV) or "none",
                      temperature=0.0, timeout=timeout_s, max_retries=1)  # type: ignore[arg-type]
    return ChatJudge(lambda _output: chat, name=f"{url}:{model}", attempts=1)


class RagasEmbeddings(BaseRagasEmbedding):
    """Our offline embedder (``retrieval.embeddings``) as ragas embeddings, for answer relevancy."""

    def __init__(self, embedder: Embedder) -> None:
        super().__init__()
        self.embedder = embedder

    def embed_text(self, text: str, **_: Any) -> list[float]:
        """One text's vector."""
        return [float(x) for x in self.embedder.embed_query(text)]

    async def aembed_text(self, text: str, **_: Any) -> list[float]:
        """``embed_text``, awaited."""
        return self.embed_text(text)

    def embed_texts(self, texts: list[str], **_: Any) -> list[list[float]]:
        """Several texts in one batch."""
        return [[float(x) for x in row] for row in self.embedder.embed_documents(texts)]

    async def aembed_texts(self, texts: list[str], **_: Any) -> list[list[float]]:
        """``embed_texts``, awaited."""
        return self.embed_texts(texts)


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):  # ties share their mean rank
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (None for fewer than 3 pairs or a constant side, where it is undefined)."""
    if len(xs) != len(ys) or len(xs) < 3:
        return None
    rx, ry = _ranks(xs), _ranks(ys)
    if len(set(rx)) < 2 or len(set(ry)) < 2:
        return None
    return round(statistics.correlation(rx, ry), 4)


def judge_trust(rows: Sequence[dict[str, Any]], *, min_n: int = 8) -> dict[str, Any]:
    """How far the judge agrees with the deterministic signals on the items it judged.

    ``rows`` hold ``answer_correct`` (0/1), ``faithfulness``, ``context_recall_llm`` and ``context_recall`` (the
    non-LLM one), any of them None or NaN where not computed. Agreement: (faithfulness >= 0.5) == answer_correct
    (a correct answer here quotes its context, a wrong one does not). Correlation: Spearman of the LLM and the
    non-LLM context recall.
    """
    def ok(v: Any) -> bool:
        return v is not None and not (isinstance(v, float) and math.isnan(v))

    agree = [(r["faithfulness"] >= 0.5) == bool(r["answer_correct"]) for r in rows
             if ok(r.get("faithfulness")) and ok(r.get("answer_correct"))]
    pairs = [(r["context_recall_llm"], r["context_recall"]) for r in rows
             if ok(r.get("context_recall_llm")) and ok(r.get("context_recall"))]
    rho = spearman([p[0] for p in pairs], [p[1] for p in pairs])
    recall_agree = [(a >= 0.5) == (b >= 0.5) for a, b in pairs]
    out: dict[str, Any] = {
        "n": len(rows),
        "faithfulness_vs_answer_correct": {"n": len(agree),
                                           "agreement": round(sum(agree) / len(agree), 4) if agree else None},
        "context_recall_llm_vs_nonllm": {"n": len(pairs), "spearman": rho,
                                         "agreement": round(sum(recall_agree) / len(recall_agree), 4)
                                         if recall_agree else None},
    }
    out["verdict"] = _verdict(out, min_n)
    return out


def _verdict(t: dict[str, Any], min_n: int) -> str:
    faith, recall = t["faithfulness_vs_answer_correct"], t["context_recall_llm_vs_nonllm"]
    n = max(faith["n"], recall["n"])
    if n == 0:
        return "not assessed: the judge scored no item (it failed or was not run)"
    parts = [f"faithfulness agrees with answer correctness on {faith['agreement']:.0%} of {faith['n']}"
             if faith["agreement"] is not None else "faithfulness was not scored",
             f"LLM vs string context recall agree on {recall['agreement']:.0%} of {recall['n']}"
             + (f" (Spearman {recall['spearman']:+.2f})" if recall["spearman"] is not None else "")
             if recall["agreement"] is not None else "LLM context recall was not scored"]
    scores = [v for v in (faith["agreement"], recall["agreement"]) if v is not None]
    worst = min(scores) if scores else 0.0
    if n < min_n:
        lead = f"too few judged items (n={n}) to trust the judge; read its scores as indicative only"
    elif worst >= 0.8:
        lead = "the judge mostly agrees with the deterministic checks: its scores can be used for comparisons"
    elif worst >= 0.6:
        lead = "the judge agrees only partly with the deterministic checks: use its scores with care"
    else:
        lead = "the judge often disagrees with the deterministic checks: do not rely on its scores"
    return f"{lead}; " + "; ".join(parts)


async def _nonllm(retrieved: list[str], references: list[str]) -> tuple[float, float]:
    from ragas.dataset_schema import SingleTurnSample
    from ragas.metrics._context_precision import NonLLMContextPrecisionWithReference
    from ragas.metrics._context_recall import NonLLMContextRecall

    sample = SingleTurnSample(retrieved_contexts=retrieved, reference_contexts=references)
    precision = await NonLLMContextPrecisionWithReference().single_turn_ascore(sample)
    recall = await NonLLMContextRecall().single_turn_ascore(sample)
    return float(precision), float(recall)


def nonllm_context_scores(retrieved: list[str], references: list[str]) -> tuple[float, float]:
    """Ragas's non-LLM context precision (with reference) and recall: Levenshtein similarity, threshold 0.5.

    Nothing retrieved scores 0 for both (ragas itself has no answer for an empty list).
    """
    if not retrieved or not references:
        return 0.0, 0.0
    import asyncio

    return asyncio.run(_nonllm(retrieved, references))


async def _llm(judge: ChatJudge, embeddings: BaseRagasEmbedding | None, *, question: str, answer: str,
               contexts: list[str], reference: str, strictness: int) -> tuple[dict[str, float | None], list[str]]:
    from ragas.metrics.collections import AnswerRelevancy, ContextPrecisionWithReference, ContextRecall, Faithfulness

    scores: dict[str, float | None] = {}
    errors: list[str] = []

    async def one(name: str, make: Callable[[], Any], **kwargs: Any) -> None:
        try:
            value = (await make().ascore(**kwargs)).value
            scores[name] = None if value is None or math.isnan(float(value)) else round(float(value), 4)
        except Exception as exc:  # a judge that fails on one metric leaves it unscored, not the run failed
            scores[name] = None
            errors.append(f"{name}: {type(exc).__name__}: {str(exc)[:160]}")

    if contexts:
        await one("faithfulness", lambda: Faithfulness(llm=judge), user_input=question, response=answer or "-",
                  retrieved_contexts=contexts)
        await one("context_precision_llm", lambda: ContextPrecisionWithReference(llm=judge), user_input=question,
                  reference=reference, retrieved_contexts=contexts)
        await one("context_recall_llm", lambda: ContextRecall(llm=judge), user_input=question, reference=reference,
                  retrieved_contexts=contexts)
    else:  # nothing retrieved: nothing to be faithful to, nothing precise, nothing recalled
        scores.update(faithfulness=None, context_precision_llm=0.0, context_recall_llm=0.0)
    if embeddings is not None and answer:
        await one("answer_relevancy", lambda: AnswerRelevancy(llm=judge, embeddings=embeddings,
                                                              strictness=strictness),
                  user_input=question, response=answer)
    else:
        scores["answer_relevancy"] = 0.0 if embeddings is not None else None
    return scores, errors


def llm_scores(judge: ChatJudge, embeddings: BaseRagasEmbedding | None, *, question: str, answer: str,
               contexts: list[str], reference: str, strictness: int = 3) -> tuple[dict[str, float | None], list[str]]:
    """The judge's faithfulness, answer relevancy and context precision/recall (ragas 0.4 metric collections).

    Returns the scores (None where the judge failed or the metric is undefined) and the failures.
    """
    import asyncio

    return asyncio.run(_llm(judge, embeddings, question=question, answer=answer, contexts=contexts,
                            reference=reference, strictness=strictness))
