"""``crmind models ...`` end to end on a temp SQLite DB: list, register, challenge, promote, rollback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eval.results import EvalRun, Item, SuiteResult
from serving.cli import app


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from config.db import get_engine, make_engine
    from config.settings import get_settings
    from crm.schema import migrate

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CRMIND_DATABASE_URL", url)
    monkeypatch.setenv("CRMIND_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CRMIND_LLM_MODEL", "smollm2")
    get_settings.cache_clear()
    get_engine.cache_clear()
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    yield tmp_path
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


def test_registry_lifecycle_through_the_cli(cli_db: Path) -> None:
    runner = CliRunner()
    adapter = cli_db / "a.gguf"
    adapter.write_bytes(b"GGUF")
    out = runner.invoke(app, ["models", "list"])
    assert out.exit_code == 0 and "smollm2" in out.output and "champion" in out.output
    out = runner.invoke(app, ["models", "register", "crm-v1", "--gguf-lora", str(adapter), "--eval", '{"acc": 0.9}'])
    assert out.exit_code == 0, out.output
    assert runner.invoke(app, ["models", "challenge", "crm-v1", "--share", "0.25"]).exit_code == 0
    shown = json.loads(runner.invoke(app, ["models", "show", "crm-v1"]).output)
    assert shown["deployment"]["challenger"] == "crm-v1" and shown["eval_results"] == {"acc": 0.9}
    refused = runner.invoke(app, ["models", "promote"])  # no eval runs: the gates have no evidence
    assert refused.exit_code == 1 and "needs an eval run of both 'smollm2' and 'crm-v1'" in refused.output
    assert runner.invoke(app, ["models", "promote", "--force"]).exit_code == 1  # forcing needs a reason
    out = runner.invoke(app, ["models", "promote", "--force", "--reason", "pilot approved by the team"])
    assert "crm-v1 is champion" in out.output
    assert "smollm2 is champion" in runner.invoke(app, ["models", "rollback", "--reason", "drift"]).output


def _run(model: str, day: int, suites: dict[str, list[float]]) -> EvalRun:
    return EvalRun(model=model, started=f"2026-01-0{day}T00:00:00Z", suites={
        name: SuiteResult(name, model, {"score": sum(v) / len(v)},
                          [Item(id=f"{name}{i}", score=s) for i, s in enumerate(v)]) for name, v in suites.items()})


def test_promotion_gates_read_the_latest_eval_runs(cli_db: Path) -> None:
    from config.db import transaction
    from inference import registry
    from ledger import Decision

    runner = CliRunner()
    adapter = cli_db / "a.gguf"
    adapter.write_bytes(b"GGUF")
    runner.invoke(app, ["models", "register", "crm-v1", "--gguf-lora", str(adapter)])
    runner.invoke(app, ["models", "challenge", "crm-v1"])
    root = cli_db / "data" / "eval" / "runs"
    _run("smollm2", 1, {"tools": [1.0] * 30 + [0.0] * 30, "safety": [1.0] * 20}).save(root)
    # Tools much worse, safety one attack worse: both named, with their numbers.
    _run("crm-v1", 2, {"tools": [0.0] * 60, "safety": [1.0] * 19 + [0.0]}).save(root)
    out = runner.invoke(app, ["models", "promote"])
    assert out.exit_code == 1, out.output
    assert "tools: may regress by up to" in out.output and "beyond the 0.020 margin" in out.output
    assert "safety: worse than the champion by 0.050" in out.output
    # A later run that is better on tools and as safe passes, and the ledger row names the evidence.
    _run("crm-v1", 3, {"tools": [1.0] * 60, "safety": [1.0] * 20}).save(root)
    out = runner.invoke(app, ["models", "promote"])
    assert out.exit_code == 0 and "crm-v1 is champion" in out.output, out.output
    with transaction() as session:
        row = session.query(Decision).filter(Decision.kind == "promotion").order_by(Decision.seq.desc()).first()
        assert row is not None and "passed" in row.input_summary and "crm-v1" in row.input_summary
        assert registry.get_deployment(session, "smollm2").champion == "crm-v1"


def test_errors_are_clean_exits_with_a_message(cli_db: Path) -> None:
    out = CliRunner().invoke(app, ["models", "rollback"])
    assert out.exit_code == 1 and "no earlier champion" in out.output
    out = CliRunner().invoke(app, ["models", "show", "nope"])
    assert out.exit_code == 1 and "No registered model" in out.output
