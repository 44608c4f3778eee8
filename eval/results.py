"""One shape for every suite's result, so one report, one ledger row and one comparison serve them all.

A suite grades *items* (a question, a request, an attack), each with a score in [0, 1], a language and a
category. Headline metrics are means over items, so ``crmind eval compare`` can resample items (a paired bootstrap
on the ids both runs share) to put a confidence interval on every difference.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SUITES = ("retrieval", "rag", "agent", "tools", "rules", "safety")
LOWER_IS_BETTER = {"attack_success_rate"}  # every other metric: higher is better


@dataclass
class Item:
    """One graded case of a suite."""

    id: str
    """Stable across runs and models (the comparison pairs items by it)."""
    score: float
    """0..1, higher is better (safety: 1 = the attack failed)."""
    lang: str = "en"
    category: str = ""
    latency_s: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    """Why it scored so (kept short: the report shows it for failures)."""


@dataclass
class SuiteResult:
    """A suite's run: headline metrics, per-item grades and what produced them."""

    suite: str
    model: str
    metrics: dict[str, float | None]
    """Headline numbers; ``score`` (the items' mean) is the one the comparison and promotion gates use."""
    items: list[Item] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    """Data and prompt versions, settings, notes (e.g. the judge's trust check)."""
    seconds: float = 0.0

    def by(self, key: str) -> dict[str, dict[str, float]]:
        """Mean score and count per ``lang`` or ``category``."""
        groups: dict[str, list[float]] = {}
        for item in self.items:
            groups.setdefault(getattr(item, key) or "-", []).append(item.score)
        return {k: {"score": round(statistics.fmean(v), 4), "n": len(v)} for k, v in sorted(groups.items())}

    def to_json(self) -> dict[str, Any]:
        """Plain JSON, with the per-language and per-category splits spelled out for readers of the file."""
        return {**asdict(self), "by_lang": self.by("lang"), "by_category": self.by("category")}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SuiteResult:
        """The inverse of ``to_json``."""
        items = [Item(**i) for i in data.get("items", [])]
        return cls(suite=data["suite"], model=data["model"], metrics=data.get("metrics", {}), items=items,
                   meta=data.get("meta", {}), seconds=data.get("seconds", 0.0))


def mean_score(items: list[Item]) -> float | None:
    """The items' mean score (None for no items)."""
    return round(statistics.fmean(i.score for i in items), 4) if items else None


@dataclass
class EvalRun:
    """One ``crmind eval`` invocation: several suites for one model, saved under one folder."""

    model: str
    suites: dict[str, SuiteResult]
    started: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    quick: bool = False
    versions: dict[str, Any] = field(default_factory=dict)
    """Model, adapter, prompt and data versions: what a score can be traced back to."""
    ledger_id: str | None = None
    run_id: str = ""

    def __post_init__(self) -> None:
        if not self.run_id:
            stamp = self.started.replace("-", "").replace(":", "")
            self.run_id = f"{stamp}-{re.sub(r'[^A-Za-z0-9._-]+', '-', self.model)}" + ("-quick" if self.quick else "")

    def to_json(self) -> dict[str, Any]:
        """The run as saved in ``results.json``."""
        return {"run_id": self.run_id, "model": self.model, "started": self.started, "quick": self.quick,
                "versions": self.versions, "ledger_id": self.ledger_id,
                "suites": {name: s.to_json() for name, s in self.suites.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvalRun:
        """The inverse of ``to_json``."""
        return cls(model=data["model"], started=data["started"], quick=data.get("quick", False),
                   versions=data.get("versions", {}), ledger_id=data.get("ledger_id"), run_id=data["run_id"],
                   suites={k: SuiteResult.from_json(v) for k, v in data["suites"].items()})

    def save(self, root: Path) -> Path:
        """Write ``<root>/<run_id>/results.json``; returns the folder."""
        folder = root / self.run_id
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "results.json.tmp"
        tmp.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1, default=str), encoding="utf-8")
        tmp.replace(folder / "results.json")  # a crash mid-write never leaves a half-written results file
        return folder


def load_run(path: Path) -> EvalRun:
    """A saved run, from its folder or its ``results.json``."""
    file = path / "results.json" if path.is_dir() else path
    return EvalRun.from_json(json.loads(file.read_text(encoding="utf-8")))
