"""CRM tool-call accuracy: does the model's first call in a turn pick the right tool with the right arguments?

Held-out requests a sales rep might type (English and Chinese, terse, colloquial, with typos, mixed-language,
plus small talk where no tool fits) go to the model exactly as the assistant's first model call sends them:
the system prompt, the rep's message and crmind's turn note, with all twenty tools bound
(``agents.assistant.graph.opening_messages`` and ``with_tools``). Only that first reply is graded; the tools are
never run, so no CRM is needed.

    crmind eval tools --model qwen2.5-1.5b [--quick]
"""

from __future__ import annotations

import hashlib
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from agents.assistant.graph import SYSTEM, opening_messages, text_of, with_tools
from eval.results import Item, SuiteResult
from eval.tool_args import Expected, Setting, call_mismatch, concrete

SUITE = "tools"
DATA = Path(__file__).resolve().parent / "data" / "tool_requests.yaml"
NO_TOOL = "no_tool"
SEED = 11
QUICK_TOOL, QUICK_NO_TOOL = 4, 2  # per language
LANGS = ("en", "zh")


@dataclass(frozen=True)
class Request:
    """One held-out request: the rep's text and the calls that answer it (none: no tool fits)."""

    id: str
    lang: str
    text: str
    expected: Expected | None
    accept: tuple[Expected, ...] = ()

    @property
    def category(self) -> str:
        """The expected tool's name, or ``no_tool``."""
        return self.expected.tool if self.expected else NO_TOOL

    @property
    def right_calls(self) -> tuple[Expected, ...]:
        """The expected call and any alternative that is equally right."""
        return ((self.expected,) if self.expected else ()) + self.accept


@dataclass(frozen=True)
class Grade:
    """How one reply did: the right tool (or rightly none), and right in full."""

    score: float
    tool_ok: bool
    detail: dict[str, Any]


def load_requests(path: Path = DATA) -> tuple[list[Request], Setting]:
    """The requests and the time and rep they are made at."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    setting = Setting(now=datetime.fromisoformat(data["now"]), rep=data["rep"])
    requests = []
    for r in data["requests"]:
        expected = Expected(r["tool"], dict(r.get("args") or {})) if r.get("tool") else None
        accept = tuple(Expected(a["tool"], dict(a.get("args") or {})) for a in r.get("accept", ()))
        requests.append(Request(id=r["id"], lang=r["lang"], text=r["text"], expected=expected, accept=accept))
    return requests, setting


def select(requests: Sequence[Request], *, quick: bool = False, limit: int | None = None) -> list[Request]:
    """All requests, or a stratified, seeded slice per language: distinct tools first, and some no-tool requests.

    ``quick`` takes 4 tool requests (4 different tools) and 2 no-tool ones per language; ``limit`` takes that
    many per language, no-tool requests in their share of the set (at least one).
    """
    if not quick and limit is None:
        return list(requests)
    chosen: list[Request] = []
    for lang in LANGS:
        mine = [r for r in requests if r.lang == lang]
        random.Random(f"{SEED}:{lang}").shuffle(mine)
        no_tool = [r for r in mine if r.expected is None]
        if quick:
            n_tool, n_none = QUICK_TOOL, QUICK_NO_TOOL
        else:
            n = min(limit or 0, len(mine))
            n_none = min(len(no_tool), max(1, round(n * len(no_tool) / max(len(mine), 1)))) if n else 0
            n_tool = n - n_none
        chosen += no_tool[:n_none] + _spread([r for r in mine if r.expected], n_tool)
    order = {r.id: i for i, r in enumerate(requests)}
    return sorted(chosen, key=lambda r: order[r.id])


def _spread(requests: list[Request], n: int) -> list[Request]:
    """``n`` requests taken round-robin over their tools (in first-seen order), so a slice covers many tools."""
    by_tool: dict[str, list[Request]] = {}
    for r in requests:
        by_tool.setdefault(r.category, []).append(r)
    out: list[Request] = []
    while len(out) < min(n, len(requests)):
        for group in by_tool.values():
            if group and len(out) < n:
                out.append(group.pop(0))
    return out


def _calls(reply: AIMessage) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = [{"name": c["name"], "args": c.get("args") or {}} for c in reply.tool_calls]
    # Arguments that did not parse are a call too (the graph answers them with an error).
    calls += [{"name": c.get("name") or "?", "args": None, "raw": (c.get("args") or "")[:200]}
              for c in reply.invalid_tool_calls]
    return calls


def grade(request: Request, reply: AIMessage, setting: Setting) -> Grade:
    """Score one reply: 1 when some call is a right one (tool and arguments), or when none fits and none is made."""
    calls = _calls(reply)
    if request.expected is None:
        if not calls:
            return Grade(1.0, True, {})
        return Grade(0.0, False, {"reason": "called a tool where none fits", "called": calls})
    if not calls:
        return Grade(0.0, False, {"reason": "no tool call", "expected": _shown(request), "said": text_of(reply)[:200]})
    names = {e.tool for e in request.right_calls}
    tool_ok = any(c["name"] in names for c in calls)
    reasons: list[str] = []
    for call in calls:
        for expected in request.right_calls:
            if call["name"] != expected.tool:
                continue
            why = ("arguments are not valid JSON" if call["args"] is None
                   else call_mismatch(expected, call["name"], call["args"], setting))
            if why is None:
                return Grade(1.0, True, {})
            reasons.append(why)
    if not tool_ok:
        reasons.append(f"called {', '.join(c['name'] for c in calls)}, expected {request.category}")
    return Grade(0.0, tool_ok, {"reason": reasons[0], "called": calls, "expected": _shown(request)})


def _shown(request: Request) -> list[dict[str, Any]]:
    return [{"tool": e.tool, "args": e.args} for e in request.right_calls]


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def metrics(grades: list[tuple[Request, Grade]]) -> dict[str, float | None]:
    """``score`` (right tool and arguments, no call where none fits), tool choice and no-tool rates, per language."""
    out: dict[str, float | None] = {}
    for suffix, langs in (("", LANGS), *((f"_{lang}", (lang,)) for lang in LANGS)):
        mine = [(r, g) for r, g in grades if r.lang in langs]
        out[f"score{suffix}"] = _mean([g.score for _, g in mine])
        out[f"tool_accuracy{suffix}"] = _mean([float(g.tool_ok) for r, g in mine if r.expected is not None])
        out[f"no_tool_accuracy{suffix}"] = _mean([g.score for r, g in mine if r.expected is None])
    # Of the calls to a right tool, how many had right arguments: separates "which tool" from "how to call it".
    out["args_accuracy"] = _mean([g.score for r, g in grades if r.expected is not None and g.tool_ok])
    return out


def evaluate(requests: Sequence[Request], chat: BaseChatModel, *, setting: Setting, model: str,
             progress: bool = True, meta: dict[str, Any] | None = None) -> SuiteResult:
    """Send each request as the assistant's first model call with every tool bound, and grade the reply."""
    from tqdm import tqdm

    bound = with_tools(chat)
    started = time.perf_counter()
    grades: list[tuple[Request, Grade]] = []
    items: list[Item] = []
    for request in tqdm(requests, desc=SUITE, disable=not progress):
        messages = opening_messages(request.text, rep=setting.rep, now=setting.now)
        t0 = time.perf_counter()
        try:
            reply = bound.invoke(messages)
            result = grade(request, reply, setting)
        except Exception as exc:  # an engine error or timeout fails this item, not the run
            result = Grade(0.0, False, {"reason": f"model call failed: {type(exc).__name__}: {str(exc)[:200]}"})
        latency = round(time.perf_counter() - t0, 3)
        grades.append((request, result))
        items.append(Item(id=request.id, score=result.score, lang=request.lang, category=request.category,
                          latency_s=latency, detail=result.detail))
    info = {"data": f"{DATA.name}@{_digest()}", "prompt": SYSTEM.ref, "now": setting.now.isoformat(),
            "rep": setting.rep, "n": len(items), **(meta or {})}
    return SuiteResult(suite=SUITE, model=model, metrics=metrics(grades), items=items, meta=info,
                       seconds=round(time.perf_counter() - started, 2))


def _digest() -> str:
    return hashlib.sha256(DATA.read_bytes()).hexdigest()[:12]


def _rep_text(messages: list[BaseMessage]) -> str:
    return next(text_of(m) for m in reversed(messages) if isinstance(m, HumanMessage))


def perfect_fake(requests: Sequence[Request]) -> BaseChatModel:
    """The harness check's model: answers each request with its expected call, or in words where none fits."""
    from tests.fixtures.fake_chat import FakeChatModel, call, say

    by_text = {r.text: r for r in requests}

    def answer(messages: list[BaseMessage]) -> AIMessage:
        request = by_text[_rep_text(messages)]
        if request.expected is None:
            return say("Happy to help with your CRM.")
        return call(request.expected.tool, **concrete(request.expected, request.text))

    return FakeChatModel(script=[answer] * len(requests))


def run(model: str, *, quick: bool = False, progress: bool = True, limit: int | None = None) -> SuiteResult:
    """The tools suite for ``model`` (``"fake"``: the scripted harness check, which scores 1.0).

    Args:
        model: a model name the gateway serves, or ``"fake"``.
        quick: a stratified slice of 6 requests per language (4 tools, 2 no-tool).
        progress: show a progress bar.
        limit: requests per language (stratified); default all.
    """
    requests, setting = load_requests()
    chosen = select(requests, quick=quick, limit=limit)
    if model == "fake":
        chat = perfect_fake(chosen)
    else:
        from inference.gateway import chat_model

        chat = chat_model(model, actor=f"eval:{SUITE}", record=False)
    return evaluate(chosen, chat, setting=setting, model=model, progress=progress,
                    meta={"quick": quick, "limit": limit})
