"""The eval suite's common parts: results that round-trip, the paired bootstrap and its verdicts, the runner's
ledger row and crash isolation, the HTML report, and ``crmind eval compare``."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

import eval.suites
from eval.compare import compare_runs, compare_suite, paired_bootstrap
from eval.report import render
from eval.results import EvalRun, Item, SuiteResult, load_run, mean_score
from eval.runner import find_run, run_eval
from ledger import Decision


def _suite(name: str, scores: list[float], *, model: str = "m", prefix: str = "i") -> SuiteResult:
    items = [Item(id=f"{prefix}{n}", score=s, lang=("en", "zh")[n % 2], category=f"c{n % 3}", latency_s=0.1 * n,
                  detail={} if s == 1 else {"why": f"item {n} wrong"}) for n, s in enumerate(scores)]
    return SuiteResult(name, model, {"score": mean_score(items)}, items)


def test_a_run_round_trips_through_its_folder(tmp_path: Path) -> None:
    run = EvalRun(model="qwen/lora v2", suites={"tools": _suite("tools", [1, 0, 1, 1])}, quick=True,
                  versions={"prompts": {"assistant_system": "assistant_system@3"}})
    folder = run.save(tmp_path)
    assert folder.name == run.run_id and run.run_id.endswith("-qwen-lora-v2-quick")  # no path separators
    again = load_run(folder)
    assert again.to_json() == run.to_json()
    saved = json.loads((folder / "results.json").read_text())
    assert saved["suites"]["tools"]["by_lang"] == {"en": {"score": 1.0, "n": 2}, "zh": {"score": 0.5, "n": 2}}


def test_identical_runs_show_no_difference() -> None:
    a = _suite("tools", [1, 0] * 30)
    d = compare_suite(a, a)
    assert (d.delta, d.low, d.high, d.verdict, d.n) == (0.0, 0.0, 0.0, "no difference", 60)


def test_a_clearly_better_and_a_clearly_worse_challenger() -> None:
    rng = random.Random(3)
    base = [float(rng.random() < 0.5) for _ in range(200)]
    improved = [1.0 if s == 0 and rng.random() < 0.5 else s for s in base]  # fixes about half the failures
    d = compare_suite(_suite("tools", base), _suite("tools", improved))
    assert d.verdict == "better" and d.low > 0 and d.delta == pytest.approx(sum(improved) / 200 - sum(base) / 200)
    assert compare_suite(_suite("tools", improved), _suite("tools", base)).verdict == "worse"


def test_a_small_noisy_difference_is_no_difference() -> None:
    a = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    b = [1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0]
    d = compare_suite(_suite("rag", a), _suite("rag", b))
    assert d.verdict == "no difference" and d.low < 0 < d.high


def test_items_are_paired_by_id_and_unshared_ones_counted() -> None:
    a = _suite("agent", [1, 1, 1, 0])
    b = _suite("agent", [0, 0, 0, 0, 0, 0])  # two extra items only b graded
    d = compare_suite(a, b)
    assert (d.n, d.a_only, d.b_only, d.a, d.b) == (4, 0, 2, 0.75, 0.0)
    disjoint = compare_suite(a, _suite("agent", [1, 1], prefix="other"))
    assert disjoint.verdict == "not comparable" and disjoint.delta is None


def test_the_bootstrap_interval_is_seeded_and_covers_the_mean() -> None:
    import numpy as np

    a, b = np.array([0.0, 1.0, 0.5, 0.25] * 10), np.array([0.5, 1.0, 0.5, 0.75] * 10)
    first = paired_bootstrap(a, b)
    assert first == paired_bootstrap(a, b)
    assert first[1] <= first[0] <= first[2]


def test_the_report_is_one_self_contained_html_file() -> None:
    champion = EvalRun(model="base", suites={"tools": _suite("tools", [1, 0, 0, 1, 0, 1])})
    challenger = EvalRun(model="adapter", suites={"tools": _suite("tools", [1, 1, 1, 1, 0, 1], model="adapter"),
                                                  "safety": _suite("safety", [1, 1, 0], model="adapter")})
    page = render(challenger, champion=champion, deltas=compare_runs(champion, challenger))
    assert page.startswith("<!doctype html>") and "<script" not in page and "http://" not in page.split("<svg")[0]
    assert page.count("<svg") >= 5  # per suite: by language, by category, latency; plus the forest plot
    assert "Champion vs challenger" in page and "item 2 wrong" in page
    assert "id='tools'" in page and "id='safety'" in page


def _fake_runners(monkeypatch: pytest.MonkeyPatch) -> None:
    def good(model: str, **_: object) -> SuiteResult:
        return _suite("tools", [1, 1, 0, 1], model=model)

    def broken(model: str, **_: object) -> SuiteResult:
        raise ValueError("the corpus is unreadable")

    monkeypatch.setitem(eval.suites.RUNNERS, "tools", good)
    monkeypatch.setitem(eval.suites.RUNNERS, "safety", broken)


def test_a_run_is_saved_recorded_and_survives_a_broken_suite(sqlite_engine: Engine, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_runners(monkeypatch)
    outcome = run_eval(["tools", "safety"], "fake", quick=True, progress=False, root=tmp_path)
    assert outcome.failed == ["safety"]
    assert outcome.run.suites["tools"].metrics["score"] == 0.75
    assert "unreadable" in outcome.run.suites["safety"].meta["error"]
    assert (outcome.folder / "results.json").exists() and outcome.report.exists()
    with sqlite_engine.connect() as conn:
        row = conn.execute(select(Decision.kind, Decision.model_id, Decision.output).where(
            Decision.id == outcome.run.ledger_id)).one()
    assert row.kind == "eval_run" and row.model_id == "fake"
    assert row.output["scores"]["tools"]["score"] == 0.75 and row.output["run_id"] == outcome.run.run_id
    assert row.output["versions"]["data"]["agent/tasks.yaml"]  # the eval data's hash: what the score came from
    assert find_run("fake", tmp_path).run_id == outcome.run.run_id


def test_a_registered_model_gets_its_scores_on_its_record(sqlite_engine: Engine, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from config.db import session_factory
    from inference.registry import get_model

    _fake_runners(monkeypatch)
    name = "smollm2"  # a base: registered on first use, which this run is on a fresh database
    outcome = run_eval(["tools"], name, progress=False, root=tmp_path)
    with session_factory(sqlite_engine)() as session:
        assert get_model(session, name).eval_results["eval:tools"] == 0.75
    assert outcome.run.versions["registry"]["kind"] == "base"


def test_cli_compare_by_model_name(sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from serving.cli import app

    root = tmp_path / "data" / "eval" / "runs"  # the sqlite_engine fixture's data dir
    EvalRun(model="base", suites={"tools": _suite("tools", [0.0] * 40)}, started="2026-01-01T00:00:00Z").save(root)
    EvalRun(model="tuned", suites={"tools": _suite("tools", [1.0] * 40)}, started="2026-01-02T00:00:00Z").save(root)
    result = CliRunner().invoke(app, ["eval", "compare", "base", "tuned", "--out", str(tmp_path / "c.json")])
    assert result.exit_code == 0, result.output
    assert "better" in result.output
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["suites"][0]["verdict"] == "better" and data["suites"][0]["delta"] == 1.0
    missing = CliRunner().invoke(app, ["eval", "compare", "base", "nobody"])
    assert missing.exit_code != 0 and "no saved eval run matches 'nobody'" in missing.output


def test_the_gates_want_evidence_not_just_no_significant_regression() -> None:
    from eval.gates import check

    champion = EvalRun(model="base", suites={"tools": _suite("tools", [1, 0, 1, 1, 0, 1, 1, 0])})
    same_few = EvalRun(model="tuned", suites={"tools": _suite("tools", [1, 0, 1, 1, 0, 1, 1, 0])})
    assert check(champion, same_few).ok  # identical: the interval is [0, 0]
    noisy = EvalRun(model="tuned", suites={"tools": _suite("tools", [1, 1, 0, 1, 0, 1, 0, 1])})
    verdict = check(champion, noisy)  # not significantly worse, but a large regression isn't ruled out either
    assert not verdict.ok and verdict.reasons[0].startswith("tools: may regress by up to")
    assert check(champion, noisy, margin=0.6).ok
    missing = check(champion, EvalRun(model="tuned", suites={}))
    assert not missing.ok and "has no tools suite" in missing.reasons[0]
