"""The BFCL yardstick: the Berkeley Function Calling Leaderboard's simple, multiple and irrelevance cases.

Not CRM data: a public, widely reported measure of plain tool calling, so a model's CRM tool scores can be read
next to a number others publish. Each case's functions are bound as tools (``tool_choice="auto"``, the same
constrained decoding the assistant gets) and the reply is graded by ``eval.bfcl_check``: simple and multiple
need exactly one right call, irrelevance needs no call. The data is read from the pinned ``bfcl-eval`` wheel.

    crmind eval bfcl --model qwen2.5-1.5b [--quick]
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage

from eval.bfcl_check import call_mismatch, first_answer, openai_tool, tool_name
from eval.corpora import WHEELS, open_corpus, read_text
from eval.results import Item, SuiteResult

SUITE = "bfcl"
CATEGORIES = {"simple": "simple_python", "multiple": "multiple", "irrelevance": "irrelevance"}
DATA = "bfcl_eval/data/BFCL_v4_{file}.json"
ANSWERS = "bfcl_eval/data/possible_answer/BFCL_v4_{file}.json"
SEED = 11
QUICK_N, FULL_N = 8, 100  # cases per category


@dataclass(frozen=True)
class Case:
    """One BFCL case: the user's turn, the functions on offer and the possible answers (none: irrelevance)."""

    id: str
    category: str
    messages: list[dict[str, str]]
    functions: list[dict[str, Any]]
    answer: dict[str, dict[str, list[Any]]] | None

    @property
    def tools(self) -> list[dict[str, Any]]:
        """The functions as OpenAI tools."""
        return [openai_tool(f) for f in self.functions]

    @property
    def names(self) -> dict[str, str]:
        """Tool name -> BFCL function name (dots become underscores for the model, and back for the check)."""
        return {tool_name(f["name"]): f["name"] for f in self.functions}


def _lines(archive: Any, member: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in read_text(archive, member).splitlines() if line.strip()]


def load_cases(category: str) -> list[Case]:
    """Every case of a category (``simple``, ``multiple``, ``irrelevance``), read from the pinned wheel."""
    file = CATEGORIES[category]
    with open_corpus("bfcl-eval") as archive:
        rows = _lines(archive, DATA.format(file=file))
        answers = {} if category == "irrelevance" else {
            a["id"]: a["ground_truth"][0] for a in _lines(archive, ANSWERS.format(file=file))}
    # Single-turn categories: the question is one turn of messages.
    return [Case(id=r["id"], category=category, messages=r["question"][0], functions=r["function"],
                 answer=answers.get(r["id"])) for r in rows]


def sample(cases: Sequence[Case], n: int) -> list[Case]:
    """A fixed, seeded sample of ``n`` cases, in the corpus's order (the same for every model and run)."""
    if n >= len(cases):
        return list(cases)
    picked = set(random.Random(f"{SEED}:{cases[0].category}").sample(range(len(cases)), n)) if cases else set()
    return [c for i, c in enumerate(cases) if i in picked]


def _messages(case: Case) -> list[AnyMessage]:
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m["role"]](content=m["content"]) for m in case.messages]


def grade(case: Case, reply: AIMessage) -> tuple[float, dict[str, Any]]:
    """1 for a right reply: no call for irrelevance, otherwise exactly one call that the AST checker accepts."""
    calls: list[dict[str, Any]] = [{"name": case.names.get(c["name"], c["name"]), "args": c.get("args") or {}}
                                   for c in reply.tool_calls]
    calls += [{"name": c.get("name") or "?", "args": None} for c in reply.invalid_tool_calls]
    if case.answer is None:
        return (1.0, {}) if not calls else (0.0, {"reason": "called a function where none fits", "called": calls})
    if len(calls) != 1:
        return 0.0, {"reason": f"{len(calls)} calls, expected 1", "called": calls, "expected": case.answer}
    call = calls[0]
    why = ("arguments are not valid JSON" if call["args"] is None
           else call_mismatch(call["name"], call["args"], case.answer, case.functions))
    return (1.0, {}) if why is None else (0.0, {"reason": why, "called": calls, "expected": case.answer})


def evaluate(cases: Sequence[Case], chat_for: Callable[[Case], BaseChatModel], *, model: str,
             progress: bool = True, meta: dict[str, Any] | None = None) -> SuiteResult:
    """Ask each case with its functions bound, grade the reply; metrics overall and per category."""
    from tqdm import tqdm

    started = time.perf_counter()
    items: list[Item] = []
    for case in tqdm(cases, desc=SUITE, disable=not progress):
        t0 = time.perf_counter()
        try:  # binding builds the tool-call grammar, which can fail on a schema too
            bound = chat_for(case).bind_tools(case.tools, tool_choice="auto")
            score, detail = grade(case, bound.invoke(_messages(case)))
        except Exception as exc:  # a grammar, engine or timeout error fails this case, not the run
            score, detail = 0.0, {"reason": f"model call failed: {type(exc).__name__}: {str(exc)[:200]}"}
        items.append(Item(id=case.id, score=score, lang="en", category=case.category,
                          latency_s=round(time.perf_counter() - t0, 3), detail=detail))
    metrics: dict[str, float | None] = {"score": _mean([i.score for i in items])}
    for category in CATEGORIES:
        metrics[f"{category}_accuracy"] = _mean([i.score for i in items if i.category == category])
    wheel = WHEELS["bfcl-eval"]
    info = {"corpus": f"{wheel.distribution}=={wheel.version}", "seed": SEED,
            "n": {c: sum(i.category == c for i in items) for c in CATEGORIES}, **(meta or {})}
    return SuiteResult(suite=SUITE, model=model, metrics=metrics, items=items, meta=info,
                       seconds=round(time.perf_counter() - started, 2))


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def perfect_fake(case: Case) -> BaseChatModel:
    """The harness check's model for one case: the first possible answer as its call, no call for irrelevance."""
    from tests.fixtures.fake_chat import FakeChatModel, call, say

    if case.answer is None:
        return FakeChatModel(script=[say("None of these functions can answer that.")])
    (want,) = case.answer
    doc = next(f for f in case.functions if f["name"] == want)
    name, args = first_answer(case.answer, doc.get("parameters", {}).get("required", []))
    return FakeChatModel(script=[call(tool_name(name), **args)])


def run(model: str, *, quick: bool = False, progress: bool = True, limit: int | None = None) -> SuiteResult:
    """The BFCL suite for ``model`` (``"fake"``: the scripted harness check, which scores 1.0).

    Args:
        model: a model name the gateway serves, or ``"fake"``.
        quick: a seeded sample of 8 cases per category.
        progress: show a progress bar.
        limit: cases per category (overrides ``quick``); default a seeded sample of 100 per category.
    """
    n = limit if limit is not None else QUICK_N if quick else FULL_N
    cases = [c for category in CATEGORIES for c in sample(load_cases(category), n)]
    chat_for: Callable[[Case], BaseChatModel] = perfect_fake
    if model != "fake":
        from inference.gateway import chat_model

        chat = chat_model(model, actor=f"eval:{SUITE}", record=False)
        chat_for = lambda _: chat  # noqa: E731 - one model for every case
    return evaluate(cases, chat_for, model=model, progress=progress, meta={"quick": quick, "limit": limit})
