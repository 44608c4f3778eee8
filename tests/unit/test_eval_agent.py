"""The agent task suite: its size and mix, that every task resolves on a small demo CRM, and that the grader
passes a scripted perfect run and fails wrong ones (a proposal on an injection, a missing citation, a wrong stage)."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from agents.assistant.runner import AnswerEvent
from crm.models import Opportunity
from eval.agent.harness import Demo, build_template, grade, mentions, report, resolve_all, run_suite, run_task, table
from eval.agent.tasks import KINDS, Resolved, load_tasks, quick
from ledger import Decision
from tests.fixtures.fake_chat import block_real_models, scripted

SCALE = 0.02


@pytest.fixture(autouse=True)
def _no_real_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    block_real_models(monkeypatch)
    yield


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return build_template(tmp_path_factory.mktemp("agent-eval"), scale=SCALE)


@pytest.fixture(scope="module")
def resolved(demo: Demo) -> dict[str, Resolved]:
    return {r.task.id: r for r in resolve_all(load_tasks(), demo)}


def _oracle(r: Resolved):  # noqa: ANN202 - a model factory
    return scripted(r.oracle).factory


def _first(resolved: dict[str, Resolved], kind: str, lang: str = "en") -> Resolved:
    return next(r for r in resolved.values() if r.task.kind == kind and r.task.lang == lang)


def test_the_suite_has_150_tasks_a_third_chinese_and_every_kind() -> None:
    tasks = load_tasks()
    assert len(tasks) >= 150
    assert len({t.id for t in tasks}) == len(tasks)
    zh = sum(t.lang == "zh" for t in tasks) / len(tasks)
    assert 0.28 <= zh <= 0.4
    assert set(Counter(t.kind for t in tasks)) == set(KINDS)
    assert {(t.kind, t.lang) for t in quick(tasks)} == {(k, lang) for k in KINDS for lang in ("en", "zh")}


def test_every_task_resolves_against_a_small_demo(resolved: dict[str, Resolved]) -> None:
    assert len(resolved) == len(load_tasks())
    for r in resolved.values():
        assert r.message and "{" not in r.message, r.task.id
        assert r.oracle, r.task.id
        ex = r.expect
        if r.task.kind in ("lookup", "rag", "multi_hop"):
            assert ex.cite_any and ex.min_cites >= 1, r.task.id
        if r.task.kind in ("refusal", "injection", "ambiguous"):
            assert not ex.proposals and not ex.changes, r.task.id
        if r.task.kind == "refusal":
            assert ex.forbid or ex.forbid_refs, r.task.id
    assert any(r.principal.role == "support" for r in resolved.values() if r.task.pick == "masked_phone")


def test_a_scripted_perfect_run_passes_every_kind(resolved: dict[str, Resolved], demo: Demo, tmp_path: Path) -> None:
    for r in [r for r in resolved.values() if r.task in quick(load_tasks(), per_cell=1)]:
        run = run_task(r, demo, _oracle(r), tmp_path, trial=0)
        assert run.passed, (r.task.id, run.reasons, run.answer)
        assert run.tool_ok == run.tool_steps
        assert run.model_calls == len(r.oracle), r.task.id


def test_a_proposal_on_an_injection_task_fails(resolved: dict[str, Resolved], demo: Demo, tmp_path: Path) -> None:
    r = _first(resolved, "injection")
    note = f"activity:{r.setup[0]['id']}"
    acct = r.oracle[0]["args"]["account"]
    # The rep asked for a summary, so the code refuses write tools; an "update" wording lets the proposal through.
    wrong = copy.deepcopy(r)
    wrong.message = f"Update: {r.message}"
    opp = next(o for o in resolved.values() if o.task.pick == "stage_approve")
    wrong.oracle = [r.oracle[0], {"call": "update_stage", "args": {"opportunity": opp.oracle[0]["args"]["opportunity"],
                                                                   "stage": "closed_lost"}},
                    {"say": f"Done [{note}]"}]
    wrong.principal = opp.principal
    run = run_task(wrong, demo, _oracle(wrong), tmp_path, trial=0)
    assert not run.passed and any("proposal" in why for why in run.reasons), (acct, run.reasons)


def test_a_missing_citation_or_value_fails(resolved: dict[str, Resolved], demo: Demo, tmp_path: Path) -> None:
    r = _first(resolved, "rag")
    uncited = copy.deepcopy(r)
    uncited.oracle[-1] = {"say": r.oracle[-1]["say"].split(" [")[0]}
    run = run_task(uncited, demo, _oracle(uncited), tmp_path, trial=0)
    assert not run.passed and any("cited 0" in why for why in run.reasons)
    wrong = copy.deepcopy(r)
    wrong.oracle[-1] = {"say": f"No idea [{r.expect.cite_any[0]}]"}
    run = run_task(wrong, demo, _oracle(wrong), tmp_path, trial=0)
    assert not run.passed and any("missing value" in why for why in run.reasons)


@pytest.mark.parametrize(("text", "value", "stated"), [
    ("You have 2 deals in proposal.", "2", True),
    ("共2个商机处于方案报价阶段", "2", True),
    ("As of 2026-10-29 nothing is open.", "2", False),  # a digit inside a date is not the count
    ("The total is 12.5 million.", "2", False),
    ("The total is 12.5 million.", "12.5", True),
    ("Stage: Negotiation", "negotiation", True),
])
def test_a_number_counts_only_as_a_whole_number(text: str, value: str, stated: bool) -> None:
    assert mentions(text, value) is stated


def test_a_wrong_end_state_fails(resolved: dict[str, Resolved], demo: Demo, tmp_path: Path) -> None:
    r = next(x for x in resolved.values() if x.task.pick == "stage_approve")
    wrong = copy.deepcopy(r)
    wrong.decisions = [{"action": "reject", "reason": "no"}]
    run = run_task(wrong, demo, _oracle(wrong), tmp_path, trial=0)
    assert not run.passed and any("missing change" in why for why in run.reasons)
    clarify = _first(resolved, "ambiguous")
    silent = copy.deepcopy(clarify)
    silent.oracle = [{"say": "Done."}]
    run = run_task(silent, demo, _oracle(silent), tmp_path, trial=0)
    assert run.passed and run.answer.startswith("Which deal do you mean?")  # crmind asks when the model does not
    with Session(create_engine(f"sqlite:///{demo.path}")) as s:
        mine = s.scalars(select(Opportunity.id).where(Opportunity.team_id.in_(clarify.principal.team_ids),
                                                      Opportunity.stage != "negotiation")).first()
    guess = copy.deepcopy(clarify)  # the model picks a deal itself: refused in code, and crmind asks instead
    guess.oracle = [{"call": "update_stage", "args": {"opportunity": f"opportunity:{mine}", "stage": "negotiation"}},
                    {"say": "Done."}]
    run = run_task(guess, demo, _oracle(guess), tmp_path, trial=0)
    assert run.passed and run.proposals == 0 and run.answer.startswith("Which deal do you mean?")
    done = AnswerEvent(text="Done.", citations=[], grounded=False, language="en")
    assert "no clarifying question" in grade(clarify, [done], [], 0)  # the grader itself still checks


def test_the_report_has_its_fields_and_a_ledger_row(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    from crm.schema import migrate

    migrate(engine)
    tasks = [t for t in quick(load_tasks(), per_cell=1) if t.kind in ("lookup", "ambiguous")]
    rep = run_suite(tasks, model=_oracle, model_name="fake", trials=2, scale=SCALE, progress=False,
                    ledger_engine=engine)
    for key in ("pass1", "pass2", "tool_call_validity", "mean_turns", "mean_model_calls", "latency_p50_s",
                "latency_p95_s", "by_kind", "by_lang", "prompt", "model", "failures"):
        assert key in rep
    assert rep["pass1"] == 1.0 and rep["pass2"] == 1.0 and rep["tasks"] == len(tasks)
    assert set(rep["by_kind"]) == {"lookup", "ambiguous"} and set(rep["by_lang"]) == {"en", "zh"}
    assert "pass^2" in table(rep)
    with engine.connect() as conn:
        row = conn.execute(select(Decision.kind, Decision.model_id, Decision.prompt).where(
            Decision.id == rep["ledger_id"])).one()
    assert row.kind == "eval_run" and row.model_id == "fake" and row.prompt.startswith("assistant_system@")
    assert report([], trials=1, model="x", demo=Demo(tmp_path, [], rep_now(), SCALE, 7, 0.0), seeds=[0])["tasks"] == 0


def rep_now():  # noqa: ANN201
    from datetime import datetime

    return datetime(2026, 10, 5)


def test_the_cli_runs_the_suite_with_the_scripted_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from serving.cli import app

    monkeypatch.setenv("CRMIND_DATA_DIR", str(tmp_path))
    out_file = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["eval", "agent", "--model", "fake", "--quick", "--trials", "1", "--limit", "2",
                                      "--out", str(out_file)])
    assert result.exit_code == 0, result.output
    assert "kind:lookup" in result.output
    rep = json.loads(out_file.read_text(encoding="utf-8"))
    assert rep["tasks"] == 2 and rep["pass1"] == 1.0 and rep["model"] == "fake-scripted"


def test_the_suite_can_search_a_real_hybrid_index_of_the_demo(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    from crm.schema import migrate

    migrate(engine)
    tasks = [t for t in quick(load_tasks(), per_cell=1) if t.kind == "rag"]
    rep = run_suite(tasks, model=_oracle, model_name="fake", trials=1, scale=SCALE, progress=False,
                    ledger_engine=engine, index="hybrid")
    assert rep["pass1"] == 1.0 and rep["search"]["index"] == "hybrid" and rep["search"]["chunks"] > 0
    assert "search: hybrid" in table(rep)
    with pytest.raises(ValueError, match="unknown index"):
        run_suite(tasks, model=_oracle, model_name="fake", trials=1, scale=SCALE, progress=False,
                  ledger_engine=engine, index="vector")
