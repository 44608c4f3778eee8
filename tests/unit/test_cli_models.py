"""``crmind models ...`` end to end on a temp SQLite DB: list, register, challenge, promote, rollback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

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
    assert "crm-v1 is champion" in runner.invoke(app, ["models", "promote"]).output
    assert "smollm2 is champion" in runner.invoke(app, ["models", "rollback", "--reason", "drift"]).output


def test_errors_are_clean_exits_with_a_message(cli_db: Path) -> None:
    out = CliRunner().invoke(app, ["models", "rollback"])
    assert out.exit_code == 1 and "no earlier champion" in out.output
    out = CliRunner().invoke(app, ["models", "show", "nope"])
    assert out.exit_code == 1 and "No registered model" in out.output
