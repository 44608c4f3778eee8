"""``crmind eval``'s one path: run suites for a model, save the results, record the run, write the report.

Every run becomes ``<data_dir>/eval/runs/<run_id>/{results.json,report.html}`` and one ``eval_run`` ledger row
carrying the model, adapter, prompt and data versions with the scores, so any score can be traced back to what
produced it. A registered model also gets the headline scores on its registry record (what the promotion gates
read), and a challenger's report shows it beside its champion's latest comparable run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.settings import get_settings
from eval.compare import SuiteDelta, compare_runs
from eval.results import EvalRun, SuiteResult, load_run
from eval.suites import FAKE, run_suite

log = logging.getLogger(__name__)
EVAL_DIR = Path(__file__).resolve().parent
DATA_FILES = ("agent/tasks.yaml", "data/rules_eval.yaml", "data/tool_requests.yaml", "data/safety_attacks.yaml")
PROMPTS = ("assistant_system", "assistant_turn", "rule_author")


def runs_dir() -> Path:
    """Where runs are saved."""
    return get_settings().data_dir / "eval" / "runs"


def versions(model: str) -> dict[str, Any]:
    """What the scores depend on besides the code: the model (and adapter), prompts, eval data and corpora."""
    from eval.corpora import WHEELS
    from prompts.loader import load_prompt

    out: dict[str, Any] = {"model": model, "prompts": {}, "data": {},
                           "corpora": {w.distribution: w.version for w in WHEELS.values()}}
    for name in PROMPTS:
        try:
            out["prompts"][name] = load_prompt(name).ref
        except Exception:  # a prompt missing from a trimmed checkout: recorded as such, never fatal
            out["prompts"][name] = None
    for rel in DATA_FILES:
        path = EVAL_DIR / rel
        out["data"][rel] = hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else None
    if model != FAKE:
        out.update(_registered(model))
    return out


def _registered(model: str) -> dict[str, Any]:
    """The model's registry record (base, adapter paths, role), if it is registered."""
    from config.db import transaction
    from inference.errors import LLMError
    from inference.registry import ensure_bases, get_deployment, get_model

    try:
        with transaction() as session:
            ensure_bases(session)  # a fresh database has no base rows until something asks for them
            row = get_model(session, model)
            dep = get_deployment(session, row.base)
            role = "champion" if dep.champion == model else "challenger" if dep.challenger == model else "registered"
            return {"registry": {"base": row.base, "kind": row.kind, "adapter": row.peft_path,
                                 "gguf_lora": row.gguf_lora_path, "role": role, "champion": dep.champion}}
    except LLMError:  # not registered (or no registry yet): the run just says so
        return {"registry": None}


@dataclass
class Outcome:
    """What ``run_eval`` produced."""

    run: EvalRun
    folder: Path
    report: Path
    failed: list[str]
    champion: EvalRun | None = None
    deltas: list[SuiteDelta] | None = None


def run_eval(suites: list[str], model: str, *, quick: bool = False, progress: bool = True,
             options: dict[str, dict[str, Any]] | None = None, root: Path | None = None,
             on_suite: Callable[[SuiteResult], None] | None = None) -> Outcome:
    """Run ``suites`` in order for ``model``; a suite that crashes is reported as failed and the rest still run."""
    from eval import report

    run = EvalRun(model=model, suites={}, quick=quick, versions=versions(model))
    failed = []
    for name in suites:
        started = time.perf_counter()
        try:
            result = run_suite(name, model, quick=quick, progress=progress, **(options or {}).get(name, {}))
        except Exception as exc:  # one broken suite must not cost the others' results
            log.exception("suite %s failed", name)
            failed.append(name)
            result = SuiteResult(name, model, {"score": None}, meta={
                "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=6)},
                seconds=time.perf_counter() - started)
        run.suites[name] = result
        if on_suite:
            on_suite(result)
    run.ledger_id = _record(run)
    folder = run.save(root or runs_dir())
    champion, deltas = _champion_comparison(run, root or runs_dir())
    path = report.write(run, folder, champion=champion, deltas=deltas)
    return Outcome(run=run, folder=folder, report=path, failed=failed, champion=champion, deltas=deltas)


def _record(run: EvalRun) -> str:
    """The run's ledger row (and the registry's eval results for a registered model)."""
    import ledger
    from config.db import transaction

    scores = {name: s.metrics for name, s in run.suites.items()}
    with transaction() as session:
        row = ledger.append(session, kind="eval_run", actor="eval", model_id=run.model,
                            input_summary=f"eval {', '.join(run.suites)} of {run.model}"
                                          + (" (quick)" if run.quick else ""),
                            output={"run_id": run.run_id, "quick": run.quick, "scores": scores,
                                    "versions": run.versions},
                            prompt=run.versions.get("prompts", {}).get("assistant_system"))
        if run.model != FAKE and run.versions.get("registry"):
            from inference.registry import record_eval

            record_eval(session, name=run.model, actor="eval", results={
                **{f"eval:{name}": s.metrics.get("score") for name, s in run.suites.items()},
                "eval_run": run.run_id, "eval_quick": run.quick})
        return str(row.id)


def saved_runs(root: Path | None = None) -> list[EvalRun]:
    """Every saved run, oldest first."""
    folder = root or runs_dir()
    runs = []
    for path in sorted(folder.glob("*/results.json")) if folder.exists() else []:
        try:
            runs.append(load_run(path))
        except (OSError, ValueError, KeyError) as exc:
            log.warning("skipping unreadable eval run %s: %s", path, exc)
    return sorted(runs, key=lambda r: r.started)


def find_run(ref: str, root: Path | None = None, *, quick: bool | None = None) -> EvalRun:
    """A run by folder path, run id, or model name (that model's latest run)."""
    from eval.errors import EvalNotFound

    path = Path(ref)
    if path.exists():
        return load_run(path)
    runs = saved_runs(root)
    for r in runs:
        if r.run_id == ref:
            return r
    mine = [r for r in runs if r.model == ref and (quick is None or r.quick == quick)]
    if not mine:
        raise EvalNotFound(f"no saved eval run matches {ref!r} (a run folder, a run id or a model name); "
                           f"run `crmind eval all --model {ref}` first")
    return mine[-1]


def _champion_comparison(run: EvalRun, root: Path) -> tuple[EvalRun | None, list[SuiteDelta] | None]:
    """A challenger's run beside its champion's latest run of the same kind (quick or full)."""
    reg = run.versions.get("registry") or {}
    if reg.get("role") != "challenger" or not reg.get("champion"):
        return None, None
    try:
        champion = find_run(reg["champion"], root, quick=run.quick)
    except Exception:  # no champion run yet: the report simply has no comparison
        return None, None
    return champion, compare_runs(champion, run)


def summary_line(result: SuiteResult) -> str:
    """One line per suite for the terminal."""
    if result.meta.get("error"):
        return f"{result.suite:<10} FAILED: {result.meta['error'][:160]}"
    extra = " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.metrics.items()
                     if k != "score" and v is not None and not k.startswith("asr:")
                     and not k.endswith(("_en", "_zh")))  # the per-language split is printed in brackets
    langs = " ".join(f"{k}={v['score']:.3f}(n={v['n']})" for k, v in result.by("lang").items())
    score = result.metrics.get("score")
    return (f"{result.suite:<10} score={'-' if score is None else f'{score:.3f}'} items={len(result.items)} "
            f"[{langs}] {extra} ({result.seconds:.0f}s)")


def dumps(data: Any) -> str:
    """JSON for files the CLI writes."""
    return json.dumps(data, ensure_ascii=False, indent=1, default=str)
