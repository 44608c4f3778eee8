"""Every domain error reaches a person as one red line and an exit code, never a traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serving.cli import app


def test_eval_without_demo_data_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMIND_DATA_DIR", str(tmp_path))
    out = CliRunner().invoke(app, ["eval", "retrieval"])
    assert out.exit_code == 1
    assert "no ground truth" in out.output and "crmind demo" in out.output
    assert "Traceback" not in out.output


def test_serve_on_a_busy_port_says_so_before_starting_anything(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMIND_DATA_DIR", str(tmp_path))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = CliRunner().invoke(app, ["serve", "--port", str(port), "--no-llm"])
    assert out.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in out.output and "--port" in out.output


def test_every_command_group_is_mounted() -> None:
    """A broken import must fail loudly, not make commands vanish."""
    names = {c.name or c.callback.__name__ for c in app.registered_commands if c.callback} | {
        g.name for g in app.registered_groups}
    assert {"serve", "demo", "index", "search", "chat", "serve-model", "eval", "models", "ledger"} <= names


def test_rules_tick_refuses_a_time_it_cannot_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMIND_DATA_DIR", str(tmp_path))
    out = CliRunner().invoke(app, ["rules", "tick", "--now", "yesterday"])
    assert out.exit_code == 1 and "ISO 8601" in out.output and "Traceback" not in out.output
