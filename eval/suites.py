"""Every suite behind one call: ``run_suite(name, model, quick=...)`` returns a ``SuiteResult``.

The agent, rules and retrieval suites keep their own modules and commands; this wraps them into items. The
newer suites (rag, tools, bfcl, safety) return ``SuiteResult`` themselves. ``model == "fake"`` runs each suite's
harness check with a scripted model (CI), any other name goes through the gateway to a served model.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eval.results import Item, SuiteResult, mean_score

FAKE = "fake"
ALL = ("retrieval", "rag", "agent", "tools", "bfcl", "rules", "safety")
Runner = Callable[..., SuiteResult]


def one_per_kind(tasks: list[Any]) -> list[Any]:
    """One task of each kind, the language alternating by kind: every behaviour is touched in a few minutes."""
    from eval.agent.tasks import KINDS

    out = []
    for i, kind in enumerate(KINDS):
        same = [t for t in tasks if t.kind == kind]
        lang = ("en", "zh")[i % 2]
        pick = next((t for t in same if t.lang == lang), same[0] if same else None)
        if pick is not None:
            out.append(pick)
    return out


def agent_suite(model: str, *, quick: bool = False, progress: bool = True, limit: int | None = None,
                trials: int = 1) -> SuiteResult:
    """The agent tasks (``eval/agent``), one item per task and trial; score = passed."""
    from eval.agent.harness import ScriptFor, gateway, run_suite, scripted_oracle
    from eval.agent.tasks import load_tasks

    tasks = load_tasks()
    if quick:
        tasks = one_per_kind(tasks)
    if limit:
        tasks = tasks[:limit]
    factory: ScriptFor = scripted_oracle if model == FAKE else gateway(model)
    name = "fake-scripted" if model == FAKE else model
    started = time.perf_counter()
    rep = run_suite(tasks, model=factory, model_name=name, trials=trials, progress=progress)
    items = [Item(id=f"{r['task']}#{r['trial'] - rep['seeds'][0]}", score=float(r["passed"]), lang=r["lang"],
                  category=r["kind"], latency_s=r["seconds"], detail={"reasons": r["reasons"]} if r["reasons"]
                  else {}) for r in rep["runs"]]
    metrics: dict[str, float | None] = {"score": mean_score(items), "pass1": rep["pass1"],
                                        "tool_call_validity": rep["tool_call_validity"],
                                        "mean_model_calls": rep["mean_model_calls"]}
    if trials > 1:
        metrics[f"pass{trials}"] = rep[f"pass{trials}"]
    return SuiteResult("agent", model, metrics, items, meta={"prompt": rep["prompt"], "demo": rep["demo"],
                                                             "trials": trials, "ledger_id": rep.get("ledger_id")},
                       seconds=time.perf_counter() - started)


def rules_suite(model: str, *, quick: bool = False, progress: bool = True, limit: int | None = None
                ) -> SuiteResult:
    """Rule compilation (``eval/rules``): the model few-shot (headline) and grammar-then-model (what users get).

    With the fake model only the grammar path runs: it checks the harness and the grammar, not a model.
    """
    from eval.rules import run

    if quick and limit is None:
        limit = 8
    chat_factory = None
    if model == FAKE:
        modes = ["grammar"]
    else:
        from inference.constrained import typed_chat
        from prompts.loader import load_prompt
        from rules.language import Rule

        ref = load_prompt("rule_author").ref
        modes = ["few_shot", "combined"]

        def chat_factory() -> Any:
            return typed_chat(Rule, model=model, actor="eval:rules", prompt=ref)
    started = time.perf_counter()
    results = run(modes, limit=limit, chat_factory=chat_factory, progress=progress)
    head = results[0]
    items = [Item(id=f"rule:{r.key}", score=float(r.ok), lang=r.lang, category=r.shape, latency_s=r.seconds,
                  detail={} if r.ok else {"text": r.text[:200]}) for r in head.items]
    metrics: dict[str, float | None] = {"score": mean_score(items)}
    for res in results:
        metrics[res.mode] = round(res.ok / res.n, 4) if res.n else None
    return SuiteResult("rules", model, metrics, items, meta={"modes": modes, "headline": head.mode},
                       seconds=time.perf_counter() - started)


def retrieval_suite(model: str, *, quick: bool = False, progress: bool = True, limit: int | None = None,
                    embedder: str | None = None) -> SuiteResult:
    """Hybrid retrieval over a fresh small demo CRM; score = reciprocal rank of the answer record (MRR@10).

    Retrieval doesn't use the chat model, so its result is the same for every model: it is in the report so a
    change of embedder, index or fusion shows up beside the model's scores.
    """
    from sqlalchemy import create_engine

    from config.settings import get_settings
    from eval.agent.harness import build_template
    from eval.retrieval import evaluate_model, load_questions

    name = embedder or get_settings().embedding_model
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="crmind-eval-retrieval-") as tmp:
        demo = build_template(Path(tmp))
        questions = load_questions(Path(tmp) / "ground_truth.jsonl")
        if quick:
            questions = questions[::max(1, len(questions) // 24)][:24]
        if limit:
            questions = questions[:limit]
        engine = create_engine(f"sqlite:///{demo.path}")
        try:
            res = evaluate_model(engine, name, questions, progress=progress, workdir=Path(tmp))
        finally:
            engine.dispose()
    items = [Item(id=f"q:{q['id']}:{q['lang']}:{q['n']}", score=1 / q["rank"] if q["rank"] else 0.0, lang=q["lang"],
                  category=q["bucket"], detail={} if q["rank"] == 1 else {"rank": q["rank"], "text": q["text"][:120]})
             for q in res["per_question"]]
    hybrid = res["results"]["hybrid"]["all"]
    metrics: dict[str, float | None] = {"score": mean_score(items), "recall@5": round(hybrid["recall@5"], 4),
                                        "recall@10": round(hybrid["recall@10"], 4),
                                        "query_p50_ms": res["query_p50_ms"]}
    return SuiteResult("retrieval", model, metrics, items,
                       meta={"embedder": name, "index": res["index"], "demo_scale": demo.scale},
                       seconds=time.perf_counter() - started)


def _module_suite(module: str) -> Runner:
    """A suite whose module returns ``SuiteResult`` itself (imported when it runs: some pull in heavy libraries)."""
    def run(model: str, **kwargs: Any) -> SuiteResult:
        import importlib

        result: SuiteResult = importlib.import_module(module).run(model, **kwargs)
        return result
    return run


RUNNERS: dict[str, Runner] = {
    "retrieval": retrieval_suite,
    "rag": _module_suite("eval.rag"),
    "agent": agent_suite,
    "tools": _module_suite("eval.tools"),
    "bfcl": _module_suite("eval.bfcl"),
    "rules": rules_suite,
    "safety": _module_suite("eval.safety"),
}


def run_suite(name: str, model: str, **kwargs: Any) -> SuiteResult:
    """Run one suite by name."""
    return RUNNERS[name](model, **kwargs)
