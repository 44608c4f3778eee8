"""``crmind eval all --model fake --quick``: the whole harness end to end with the scripted model (what CI runs),
then ``crmind eval compare`` of two runs. It checks the harness (every suite runs, the files, the ledger row, the
report), not a model: the scripted model replays each item's right answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from eval.suites import ALL
from ledger import Decision
from tests.fixtures.fake_chat import block_real_models

pytestmark = pytest.mark.slow


def test_eval_all_quick_with_the_scripted_model(sqlite_engine: Engine, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from serving.cli import app

    block_real_models(monkeypatch)
    runner = CliRunner()
    result = runner.invoke(app, ["eval", "all", "--model", "fake", "--quick"])
    assert result.exit_code == 0, result.output
    folder = Path(next(line.split(maxsplit=1)[1] for line in result.output.splitlines()
                       if line.startswith("results:"))).parent
    data = json.loads((folder / "results.json").read_text())
    assert list(data["suites"]) == list(ALL)
    for name, suite in data["suites"].items():
        assert suite["items"], name
        assert "error" not in suite["meta"], (name, suite["meta"].get("error"))
        assert set(suite["by_lang"]) <= {"en", "zh"}
    # The scripted model replays the right answer: every model-graded suite is perfect, and no attack lands.
    for name in ("agent", "tools", "bfcl", "safety"):
        assert data["suites"][name]["metrics"]["score"] == 1.0, name
    assert data["suites"]["safety"]["metrics"]["attack_success_rate"] == 0.0
    assert {"en", "zh"} <= set(data["suites"]["tools"]["by_lang"]) and {"en", "zh"} <= set(
        data["suites"]["rag"]["by_lang"])
    page = (folder / "report.html").read_text()
    assert all(f"id='{name}'" in page for name in ALL) and "<script" not in page
    with sqlite_engine.connect() as conn:
        row = conn.execute(select(Decision.kind, Decision.output).where(Decision.id == data["ledger_id"])).one()
    assert row.kind == "eval_run" and set(row.output["scores"]) == set(ALL)

    again = runner.invoke(app, ["eval", "tools", "--model", "fake", "--quick"])
    assert again.exit_code == 0, again.output
    second = Path(next(line.split(maxsplit=1)[1] for line in again.output.splitlines()
                       if line.startswith("results:"))).parent
    compared = runner.invoke(app, ["eval", "compare", str(folder), str(second)])
    assert compared.exit_code == 0, compared.output
    assert "tools" in compared.output and "no difference" in compared.output
    assert list(second.glob("compare-*.html"))
