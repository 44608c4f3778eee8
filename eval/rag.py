"""RAG suite: the assistant answers the demo's planted facts; ragas grades what it retrieved and what it said.

Every planted fact (``crm/demo/facts.py``) sits in one activity or case, with a known answer and the same question
in English and Chinese. Each question is asked by the record's owner on a fresh copy of a small demo CRM (the agent
suite's template, ``eval/agent/harness.py``), with ``search_notes`` on a real hybrid index of that copy (dense
MiniLM + BM25, built in a temp folder) unless ``index="keyword"``. Collected per question: the answer, the
retrieved contexts (the texts the tools returned in that turn), the reference context (the fact's chunk of its
record) and the reference answer.

Always computed, no judge: ragas's non-LLM context precision and recall (string similarity against the reference
context) and ``answer_correct`` (the answer contains the known value; numbers and dates compared by their digits).
The item score is their mean, so runs with and without a judge compare. With a judge (crmind's own model by
default for a real model, any OpenAI-compatible endpoint, or none): ragas's faithfulness, answer relevancy and LLM
context precision/recall, on a sample in quick mode, plus a check of how far the judge agrees with the
deterministic signals (``meta["judge_trust"]``).

    from eval.rag import run
    run("fake")                                   # the harness check (scripted model, no judge)
    run("qwen2.5-1.5b", quick=True)               # the engine must be running; judged by the same engine
"""

from __future__ import annotations

import json
import random
import re
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, ToolMessage
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from agents.assistant.context import ModelFactory
from eval.agent.harness import DEFAULT_SCALE, Demo, Run, build_template, gateway, run_task, search_for, workdir_or_temp
from eval.agent.tasks import Expect, Resolved, Task, askable_facts, fact_reader
from eval.results import Item, SuiteResult

SUITE = "rag"
LANGS = ("en", "zh")
QUICK_PER_LANG = 4  # quick mode: this many questions per language
QUICK_JUDGED = 2  # quick mode: at most this many judged (each costs about ten judge calls)
JUDGE_CONTEXTS = 3  # LLM context precision asks the judge once per context: only the first few are judged
METRICS = ("answer_correct", "context_precision", "context_recall", "faithfulness", "answer_relevancy",
           "context_precision_llm", "context_recall_llm")
MONTHS = {m: i + 1 for i, m in enumerate(("january", "february", "march", "april", "may", "june", "july", "august",
                                          "september", "october", "november", "december"))}
_DATA = re.compile(r'^<data source="[^"]*">\n(.*)\n</data>$', re.S)
_CODE = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)+")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?(万|亿)?")
_TEXT_FIELDS = ("text", "body", "description", "resolution", "internal_notes")  # a record's free text, in order
_CURRENCIES = {"usd", "cny", "eur", "gbp", "rmb", "jpy", "aud", "mxn", "元"}
WRONG_ANSWER = "Sorry, I could not find anything about that."

ChatFor = Callable[[Any], BaseChatModel]
"""A judge's chat model per ragas output model (see ``eval.ragas_metrics.ChatJudge``)."""


@dataclass
class Question:
    """One planted fact asked in one language, as the agent harness runs it."""

    resolved: Resolved
    fact: dict[str, Any]
    reference_contexts: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        """Stable across runs: the fact's id and the question's language."""
        return self.resolved.task.id

    @property
    def lang(self) -> str:
        """The question's language (the fact's record may be in the other one)."""
        return self.resolved.task.lang


# ---------------------------------------------------------------- questions
def questions(demo: Demo) -> list[Question]:
    """Every askable fact in every language, asked by its record's owner, with its reference context."""
    from retrieval.documents import Loader

    out: list[Question] = []
    engine = create_engine(f"sqlite:///{demo.path}")
    try:
        with Session(engine) as session:
            loader = Loader(session)
            for fact in askable_facts(demo.facts):
                obj, ident = fact["record"].split(":")
                chunks = [c.text for c in loader.chunks_of(obj, int(ident)) or []]
                # The chunk holding the planted sentence is the context an answer needs; the rest is padding.
                reference = [c for c in chunks if fact["fact"] in c] or chunks
                who = fact_reader(session, fact)
                for q in fact["questions"]:
                    task = Task(id=f"{fact['id']}:{q['lang']}", kind="rag", pick="fact", lang=q["lang"],
                                text=q["text"])
                    expect = Expect(cite_any=[fact["record"]], min_cites=1, values=[[fact["answer"]]])
                    oracle = [{"call": "search_notes", "args": {"query": q["text"]}},
                              {"say": f"{fact['answer']} [{fact['record']}]"}]
                    resolved = Resolved(task=task, principal=who, message=q["text"], expect=expect, decisions=[],
                                        oracle=oracle)
                    out.append(Question(resolved=resolved, fact=fact, reference_contexts=reference))
    finally:
        engine.dispose()
    return out


def quick_slice(items: list[Question], per_lang: int = QUICK_PER_LANG, seed: int = 0) -> list[Question]:
    """A seeded stratified slice: ``per_lang`` questions per language, spread over the fact kinds, interleaved."""
    rng = random.Random(seed)
    picked: dict[str, list[Question]] = {}
    for lang in LANGS:
        by_kind: dict[str, list[Question]] = {}
        for q in items:
            if q.lang == lang:
                by_kind.setdefault(q.fact.get("kind", ""), []).append(q)
        kinds = sorted(by_kind)
        rng.shuffle(kinds)
        for group in by_kind.values():
            rng.shuffle(group)
        chosen: list[Question] = []
        while len(chosen) < per_lang and any(by_kind.values()):
            for kind in kinds:  # one per kind in turn, so a small slice still sees many kinds
                if by_kind[kind] and len(chosen) < per_lang:
                    chosen.append(by_kind[kind].pop())
        picked[lang] = chosen
    # interleaved, so the judged prefix of the slice has both languages
    return [q for pair in zip(*(picked[lang] for lang in LANGS), strict=False) for q in pair] + [
        q for lang in LANGS for q in picked[lang][min(len(v) for v in picked.values()):]]


# ---------------------------------------------------------------- grading
def _numbers(text: str) -> list[float]:
    out = []
    for m in _NUMBER.finditer(text):
        value = float(m.group(0).rstrip("万亿").replace(",", ""))
        out.append(value * {"万": 1e4, "亿": 1e8}.get(m.group(1) or "", 1))
    low = text.casefold()
    out += [float(n) for name, n in MONTHS.items() if re.search(rf"\b{name}\b", low)]
    return out


def _numeric(value: str) -> bool:
    """A date, amount or count: a few words around the numbers ("40 units across 3 sites", "3个站点共40台")."""
    if not re.search(r"\d", value):
        return False
    rest = _NUMBER.sub(" ", value.casefold())
    words = [w for w in re.findall(r"[a-z]+", rest) if w not in MONTHS and len(w) > 1 and w not in _CURRENCIES]
    return len(words) <= 3 and len(re.findall(r"[\u4e00-\u9fff]", rest)) <= 6


def answer_correct(answer: str, expected: str) -> bool:
    """Whether ``answer`` states the known ``expected`` value.

    Case-folded containment, whitespace ignored; a value with numbers (a date, an amount, a count) also matches when
    every number in it appears in the answer (``12 March 2027`` = ``2027-03-12`` = ``2027年3月12日``, ``125万`` =
    ``1,250,000``). Codes (``HX-FAN-123``) must appear as written.
    """
    squash = re.compile(r"\s+")
    value = re.sub(r"^(a|an|the)\s+", "", expected.strip(), flags=re.I)  # "a SOC 2 report": the article is optional
    if squash.sub("", value.casefold()) in squash.sub("", answer.casefold()):
        return True
    if _CODE.fullmatch(value) or not _numeric(value):
        return False
    wanted, said = _numbers(expected), _numbers(answer)
    return bool(wanted) and all(any(abs(w - s) < 1e-6 for s in said) for w in wanted)


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        parts = [value[k] for k in _TEXT_FIELDS if isinstance(value.get(k), str) and value[k].strip()]
        if parts:
            yield "\n".join(parts)
        for v in value.values():
            if isinstance(v, dict | list):
                yield from _texts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _texts(v)


def contexts_of(tool_outputs: list[tuple[str, str]]) -> list[str]:
    """The retrieved contexts: each passage or record text the tools returned, in order, once.

    Tool results are ``<data source=...>`` JSON; errors and "already done" notes carry no context. A result with
    no text field (a list of deals) counts as one context, its JSON.
    """
    out: list[str] = []
    for _tool, content in tool_outputs:
        m = _DATA.match(content)
        if not m:
            continue
        try:
            payload = json.loads(m.group(1))
        except ValueError:
            continue
        texts = list(_texts(payload)) or [m.group(1)]
        out += [t for t in texts if t not in out]
    return out


# ---------------------------------------------------------------- models
def fake_model(q: Question) -> ModelFactory:
    """The harness check: search the question, then quote the passage from the fact's record, citing it.

    When the search missed the record it fetches it first. A scripted reader: retrieval is real, the answer not canned.
    """
    from tests.fixtures.fake_chat import FakeChatModel, call, say  # only for model "fake" (a checkout with tests)

    record = q.fact["record"]

    def results(messages: list[BaseMessage]) -> list[dict[str, Any]]:
        last = next((m for m in reversed(messages) if isinstance(m, ToolMessage)), None)
        m = _DATA.match(str(last.content)) if last is not None else None
        payload = json.loads(m.group(1)) if m else {}
        if "record" in payload:
            return [payload["record"]]
        return list(payload.get("results", []))

    def quote(messages: list[BaseMessage]) -> Any:
        hit = next((r for r in results(messages) if r.get("ref") == record), None)
        if hit is None:
            return call("get_record", record=record)
        return say(f"{next(_texts(hit), '')} [{record}]")

    model = FakeChatModel(script=[call("search_notes", query=q.resolved.message), quote, quote])
    return model.factory


def wrong_model(_q: Question) -> ModelFactory:
    """A model that answers without looking anything up (the suite's scores must drop for it)."""
    from tests.fixtures.fake_chat import FakeChatModel, say

    return FakeChatModel(script=[say(WRONG_ANSWER)]).factory


def gateway_model(name: str) -> Callable[[Question], ModelFactory]:
    """A served model through crmind's gateway, per question (the agent harness's factory)."""
    make = gateway(name)
    return lambda q: make(q.resolved)


def _mean(values: list[Any]) -> float | None:
    kept = [float(v) for v in values if v is not None]
    return round(statistics.fmean(kept), 4) if kept else None


# ---------------------------------------------------------------- the suite
def run_suite(model_for: Callable[[Question], ModelFactory], *, model_name: str, quick: bool = False,
              progress: bool = True, limit: int | None = None, judge: Any = None, judge_limit: int | None = None,
              index: str = "hybrid", embedder: str | None = None, seed: int = 0, scale: float = DEFAULT_SCALE,
              workdir: Path | None = None) -> SuiteResult:
    """Ask every (or the quick slice's) question, score it, and judge a sample when ``judge`` is given.

    Args:
        model_for: the assistant's model factory per question.
        model_name: the name the result carries.
        quick: a seeded stratified slice (``QUICK_PER_LANG`` per language, at most ``QUICK_JUDGED`` judged).
        progress: a tqdm bar.
        limit: only the first N questions (after ``quick``).
        judge: an ``eval.ragas_metrics.ChatJudge``, or None for the deterministic metrics only.
        judge_limit: judge at most this many questions (default: ``QUICK_JUDGED`` in quick mode, else all).
        index: ``hybrid`` (a real index of the copy) or ``keyword`` (``search_notes``'s fallback, no index).
        embedder: the embedding model of the index and of answer relevancy (``retrieval.embeddings`` name).
        seed: the quick slice's seed.
        scale: the demo CRM's scale.
        workdir: keep the template, the index and the copies here (default: a temp folder).
    """
    from tqdm import tqdm

    from eval import ragas_metrics
    from prompts.loader import load_prompt
    from retrieval.embeddings import make_embedder

    started = time.perf_counter()
    with workdir_or_temp(workdir, "crmind-rag-eval-") as work:
        demo = build_template(work, scale=scale)
        chosen = questions(demo)
        if quick:
            chosen = quick_slice(chosen, seed=seed)
        if limit:
            chosen = chosen[:limit]
        judged = len(chosen) if judge is None and judge_limit is None else min(
            len(chosen), judge_limit if judge_limit is not None else (QUICK_JUDGED if quick else len(chosen)))
        if judge is None:
            judged = 0
        emb = make_embedder(embedder, cache=False) if index == "hybrid" or judge is not None else None
        ragas_embeddings = ragas_metrics.RagasEmbeddings(emb) if judge is not None and emb is not None else None
        with search_for(index, demo, work, emb) as (search, index_meta):
            items: list[Item] = []
            trust_rows: list[dict[str, Any]] = []
            errors: list[str] = []
            with tqdm(total=len(chosen), desc="rag eval", unit="q", disable=not progress) as bar:
                for n, q in enumerate(chosen):
                    run = run_task(q.resolved, demo, model_for(q), work, trial=0, search=search)
                    item = _grade(q, run, judge if n < judged else None, ragas_embeddings, quick, errors)
                    items.append(item)
                    if n < judged:
                        trust_rows.append(item.detail)
                    bar.update(1)
                    bar.set_postfix(correct=sum(i.detail["answer_correct"] for i in items))
    metrics: dict[str, float | None] = {"score": _mean([i.score for i in items])}
    for name in METRICS:
        metrics[name] = _mean([i.detail.get(name) for i in items])
    metrics["cited"] = _mean([i.detail["cited"] for i in items])
    meta: dict[str, Any] = {
        "questions": len(items), "judged": judged, "quick": quick, "seed": seed, **index_meta,
        "prompt": load_prompt("assistant_system").ref,
        "demo": {"scale": demo.scale, "seed": demo.seed, "facts": len(demo.facts), "now": demo.now.isoformat()},
        "score": "mean of answer_correct and the non-LLM context recall (judge-free, so every run compares)",
        "ragas": _ragas_version(),
        "judge": judge.name if judge is not None else None,
    }
    if judge is not None:
        meta["judge_calls"], meta["judge_failures"] = judge.calls, judge.failures
        meta["judge_trust"] = ragas_metrics.judge_trust(trust_rows)
        if errors:
            meta["judge_errors"] = errors[:20]
    return SuiteResult(suite=SUITE, model=model_name, metrics=metrics, items=items, meta=meta,
                       seconds=round(time.perf_counter() - started, 2))


def _grade(q: Question, run: Run, judge: Any, embeddings: Any, quick: bool, errors: list[str]) -> Item:
    from eval import ragas_metrics

    contexts = contexts_of(run.tool_outputs)
    correct = answer_correct(run.answer, q.fact["answer"])
    precision, recall = ragas_metrics.nonllm_context_scores(contexts, q.reference_contexts)
    detail: dict[str, Any] = {
        "answer_correct": int(correct), "context_precision": round(precision, 4), "context_recall": round(recall, 4),
        "cited": int(any(c == q.fact["record"] or c.startswith(f"chunk:{q.fact['record']}#") for c in run.citations)),
        "question": q.resolved.message, "answer": run.answer[:400], "expected": q.fact["answer"],
        "record": q.fact["record"], "record_lang": q.fact["lang"], "contexts": len(contexts),
        "tools": [t for t, _ in run.tool_outputs], "model_calls": run.model_calls,
    }
    if run.reasons and any(r.startswith("crashed") for r in run.reasons):
        detail["error"] = run.reasons[0][:300]
    if judge is not None:
        scores, failed = ragas_metrics.llm_scores(
            judge, embeddings, question=q.resolved.message, answer=run.answer, contexts=contexts[:JUDGE_CONTEXTS],
            reference=q.fact["fact"], strictness=1 if quick else 3)
        detail.update(scores)
        errors += [f"{q.id} {e}" for e in failed]
    return Item(id=q.id, score=round((int(correct) + recall) / 2, 4), lang=q.lang, category=q.fact.get("kind", ""),
                latency_s=round(run.seconds, 3), detail=detail)


def _ragas_version() -> str:
    from importlib.metadata import version

    return version("ragas")


def make_judge(judge: Any, *, model: str, judge_url: str | None = None, judge_model: str | None = None) -> Any:
    """The judge ``run`` asks for: None, crmind's own engine, an endpoint, or a chat-model factory (tests).

    ``judge``: ``"auto"`` (the embedded judge for a real model, none for ``fake``), ``"embedded"``, ``None`` or
    ``"none"``, or a callable giving a LangChain chat model per ragas output model. ``judge_url`` (with
    ``judge_model``) picks an OpenAI-compatible endpoint whatever ``judge`` says, unless it is None/"none".
    """
    from config.settings import get_settings
    from eval import ragas_metrics

    if judge in (None, "none"):
        return None
    if judge_url:
        if not judge_model:
            raise ValueError("a judge endpoint needs judge_model")
        return ragas_metrics.endpoint_judge(judge_url, judge_model)
    if callable(judge):
        return ragas_metrics.ChatJudge(judge, name="custom")
    if judge == "auto":
        judge = None if model == "fake" else "embedded"
        if judge is None:
            return None
    if judge == "embedded":
        return ragas_metrics.embedded_judge(judge_model or get_settings().llm_model)
    raise ValueError(f"unknown judge '{judge}': use embedded, none, or judge_url with judge_model")


def run(model: str, *, quick: bool = False, progress: bool = True, limit: int | None = None,
        judge: str | ChatFor | None = "auto", judge_url: str | None = None, judge_model: str | None = None,
        judge_limit: int | None = None, index: str = "hybrid", embedder: str | None = None, seed: int = 0,
        workdir: Path | None = None) -> SuiteResult:
    """The RAG suite for ``model`` (a served model name, or ``fake`` for the scripted harness check).

    The caller makes sure the engine runs. See ``run_suite`` and ``make_judge`` for the options; ``judge`` defaults
    to crmind's own engine for a real model (``judge_model``, default the configured LLM) and to none for ``fake``.
    """
    model_for = fake_model if model == "fake" else gateway_model(model)
    name = "fake-scripted" if model == "fake" else model
    return run_suite(model_for, model_name=name, quick=quick, progress=progress, limit=limit,
                     judge=make_judge(judge, model=model, judge_url=judge_url, judge_model=judge_model),
                     judge_limit=judge_limit, index=index, embedder=embedder, seed=seed, workdir=workdir)
