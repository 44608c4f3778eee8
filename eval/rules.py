"""Rule compilation eval: hand-written texts (half Chinese) with expected Rules, scored by semantic equality.

Scores are per language and rule shape, for the grammar path, the model zero-shot and few-shot, and both.

    crmind eval rules --modes grammar,combined          # no model needed
    crmind eval rules --modes model,few_shot --limit 24  # the real small model through llama.cpp
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agents.rule_author import compile_rule
from agents.rule_author.context import Context
from rules.compliance import check
from rules.language import Rule, normalised

DATA = Path(__file__).resolve().parent / "data" / "rules_eval.yaml"
MODES = {
    "grammar": {"use_grammar": True, "use_model": False},
    "model": {"use_grammar": False, "use_model": True, "few_shot": False},
    "few_shot": {"use_grammar": False, "use_model": True, "few_shot": True},
    "combined": {"use_grammar": True, "use_model": True, "few_shot": True},
}


@dataclass(frozen=True)
class Item:
    """One eval text with what it must compile to."""

    text: str
    lang: str
    shape: str
    expect: dict[str, Any] | None = None
    question: str | None = None
    blocked: tuple[str, ...] = ()


def load_items(path: Path = DATA) -> list[Item]:
    """Every text of every group."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    items = []
    for group in data["groups"]:
        expect = normalised(Rule.model_validate(group["expect"])) if "expect" in group else None
        for text in group["texts"]:
            items.append(Item(text=text, lang="zh" if re.search(r"[\u4e00-\u9fff]", text) else "en",
                              shape=group["shape"], expect=expect, question=group.get("question"),
                              blocked=tuple(group.get("blocked", ()))))
    return items


def item_key(item: Item) -> str:
    """A stable id of an eval text (a hash of it: items keep their id when texts are added or reordered)."""
    return hashlib.sha256(item.text.encode("utf-8")).hexdigest()[:12]


def score(item: Item, rule: Rule | None, question_ids: list[str]) -> bool:
    """Right rule (normalised), right question, or blocked by exactly the expected clauses."""
    if item.question is not None:
        return rule is None and item.question in question_ids
    if rule is None:
        return False
    if item.blocked:
        return {f.clause for f in check(rule)} == set(item.blocked)
    return normalised(rule) == item.expect


@dataclass(frozen=True)
class Graded:
    """One text's grade in one mode."""

    key: str
    text: str
    lang: str
    shape: str
    ok: bool
    seconds: float


@dataclass
class ModeResult:
    """Scores of one mode."""

    mode: str
    n: int = 0
    ok: int = 0
    seconds: float = 0.0
    by: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    failures: list[str] = field(default_factory=list)
    items: list[Graded] = field(default_factory=list)


def run(modes: list[str], *, limit: int | None = None, chat_factory: Callable[[], Any] | None = None,
        progress: bool = True) -> list[ModeResult]:
    """Score each mode; ``limit`` takes an even spread of that many items (the model is slow on 2 cores)."""
    from tqdm import tqdm

    items = load_items()
    if limit and limit < len(items):
        step = len(items) / limit
        items = [items[int(i * step)] for i in range(limit)]
    results = []
    for mode in modes:
        cfg = dict(MODES[mode])
        out = ModeResult(mode)
        started = time.perf_counter()
        for item in tqdm(items, desc=mode, disable=not progress):
            ctx = Context(**cfg, chat=chat_factory() if chat_factory and cfg.get("use_model") else None)
            t0 = time.perf_counter()
            state = compile_rule(item.text, context=ctx)
            good = score(item, state.rule, [q.id for q in state.questions])
            out.items.append(Graded(key=item_key(item), text=item.text, lang=item.lang, shape=item.shape, ok=good,
                                    seconds=round(time.perf_counter() - t0, 3)))
            out.n += 1
            out.ok += good
            for key in (f"lang:{item.lang}", f"shape:{item.shape}"):
                out.by[key][0] += good
                out.by[key][1] += 1
            if not good:
                out.failures.append(item.text)
        out.seconds = time.perf_counter() - started
        results.append(out)
    return results


def table(results: list[ModeResult]) -> str:
    """A text table: rows are languages and shapes, columns are modes."""
    keys = sorted({k for r in results for k in r.by}, key=lambda k: (not k.startswith("lang"), k))
    head = f"{'slice':<28}" + "".join(f"{r.mode:>14}" for r in results)
    lines = [head, "-" * len(head)]
    lines.append(f"{'ALL':<28}" + "".join(f"{r.ok:>6}/{r.n:<3} {100 * r.ok / max(r.n, 1):3.0f}%" for r in results))
    for k in keys:
        cells = []
        for r in results:
            ok, n = r.by.get(k, [0, 0])
            cells.append(f"{ok:>6}/{n:<3} {100 * ok / max(n, 1):3.0f}%" if n else f"{'-':>14}")
        lines.append(f"{k:<28}" + "".join(cells))
    lines.append(f"{'seconds':<28}" + "".join(f"{r.seconds:>14.1f}" for r in results))
    return "\n".join(lines)
