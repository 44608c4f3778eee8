"""`crmind drift simulate` end to end: drift detected, retraining through the queue, A/B, promote or roll back."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

import ledger
from config.db import make_engine, session_factory
from crm.auth import hash_token
from crm.models import User
from crm.schema import migrate
from inference import registry
from ledger.models import Decision
from modelops.simulate import SimConfig, copy_adapter_handler, simulate
from modelops.strategies import SIM_PREFIX

INJECT = 20
LOOP = ["drift_detected", "retrain_queued", "retrain_started", "retrain_done", "ab_started", "ab_decision",
        "drift_resolved"]


class NgramEmbedder:
    """Hashed character trigrams: questions on new topics land elsewhere, with no model to load."""

    name, dim, multilingual = "trigram-hash", 128, True

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for j in range(len(text) - 2):
                out[i, int(hashlib.md5(text[j:j + 3].encode()).hexdigest()[:6], 16) % self.dim] += 1.0
            out[i] /= np.linalg.norm(out[i]) or 1.0
        return out


def _reset() -> None:
    from config.db import get_engine
    from config.settings import get_settings

    get_settings.cache_clear()
    get_engine.cache_clear()


@pytest.fixture
def adapter(tmp_path: Path) -> Path:
    """A stand-in adapter file: the fake retrain only copies and registers it, nothing loads it."""
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF")
    return path


@dataclass
class Replay:
    folder: Path
    output: str
    engine: Engine


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replay]:
    """`crmind drift simulate --retrain fake` with a challenger that wins the conversion back."""
    from serving.cli import app

    root = tmp_path_factory.mktemp("sim")
    (root / "tiny.gguf").write_bytes(b"GGUF")
    folder = root / "drift-sim"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRMIND_DATA_DIR", str(root / "data"))  # the command points these at its own folder
        mp.setenv("CRMIND_DATABASE_URL", f"sqlite:///{root / 'data' / 'crm.db'}")
        _reset()
        out = CliRunner().invoke(app, [
            "drift", "simulate", "--retrain", "fake", "--adapter", str(root / "tiny.gguf"), "--days", "60",
            "--seed", "3", "--inject-day", str(INJECT), "--drop", "0.6", "--conversations", "30", "--leads", "3",
            "--no-input-drift", "--data-dir", str(folder)])
        assert out.exit_code == 0, out.output + repr(out.exception)
        engine = make_engine(f"sqlite:///{folder / 'crm.db'}")
        yield Replay(folder, out.output, engine)
        engine.dispose()
    _reset()


def _loop(engine: Engine) -> list[Decision]:
    with session_factory(engine)() as s:
        return list(s.scalars(select(Decision).where(Decision.kind.in_(LOOP)).order_by(Decision.seq)))


def test_cli_replay_detects_drift_on_the_seventh_day_retrains_and_promotes(promoted: Replay) -> None:
    detected = int(re.search(r"drift detected on day (\d+)", promoted.output).group(1))  # type: ignore[union-attr]
    assert abs(detected - (INJECT + 6)) <= 1
    assert "promote smollm2-drift-1" in promoted.output
    assert (promoted.folder / "drift-report.html").read_text().count("<svg") >= 3
    with session_factory(promoted.engine)() as s:
        dep = registry.get_deployment(s, "smollm2")
        assert (dep.champion, dep.challenger, dep.history) == ("smollm2-drift-1", None, ["smollm2"])


def test_every_step_of_the_loop_is_a_marked_ledger_row_in_order(promoted: Replay) -> None:
    rows = _loop(promoted.engine)
    assert [r.kind for r in rows][:len(LOOP)] == LOOP
    assert all(r.actor.startswith(SIM_PREFIX) and r.output.get("simulated") for r in rows)
    detected = rows[0]
    assert all(r.parent_id in {detected.id, rows[1].id} for r in rows[1:len(LOOP)])  # one trace per incident
    assert rows[0].ts.date() == date.fromisoformat(rows[0].output["day"])  # rows carry the replayed day
    with session_factory(promoted.engine)() as s:
        promotions = [d.output["role"] for d in ledger.decisions_for(s, kind="promotion")]
        assert promotions == ["champion", "challenger"]  # newest first: challenger set, then promoted
        assert ledger.verify(s, check_anchor=False).ok


def test_the_drift_page_shows_the_replay_to_managers_only(promoted: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    from serving.api.app import create_app

    monkeypatch.setenv("CRMIND_DATA_DIR", str(promoted.folder))
    monkeypatch.setenv("CRMIND_DATABASE_URL", f"sqlite:///{promoted.folder / 'crm.db'}")
    _reset()
    with session_factory(promoted.engine)() as s, s.begin():
        s.add_all([User(name="M", email="m@sim.test", role="manager", token_hash=hash_token("tok-m")),
                   User(name="R", email="r@sim.test", role="rep", token_hash=hash_token("tok-r"))])
    with TestClient(create_app()) as client:
        page = client.get("/drift")
        assert page.status_code == 200 and "/v1/drift/view" in page.text
        view = client.get("/v1/drift/view", headers={"Authorization": "Bearer tok-m"})
        assert view.status_code == 200 and view.text.count("<svg") >= 3  # a plot per strategy (no input drift here)
        assert "ab_decision" in view.text and "/why/" in view.text
        data = client.get("/v1/drift?plots=true", headers={"Authorization": "Bearer tok-m"}).json()
        assert data["scope"] == "simulation"
        assert {s["name"] for s in data["strategies"]} == {"next_step", "proposals", "rule_leads"}
        test = next(a for a in data["ab"] if a["base"] == "smollm2")["test"]
        assert test["result"]["decision"] == "promote"
        assert test["result"]["n_challenger"] >= test["design"]["n_challenger"]
        assert data["plots"]["conversion:next_step"].startswith("<svg")
        assert client.get("/v1/drift", headers={"Authorization": "Bearer tok-r"}).status_code == 403
    _reset()


def test_a_challenger_that_does_not_recover_is_rolled_back(tmp_path: Path, adapter: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMIND_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CRMIND_DATABASE_URL", f"sqlite:///{tmp_path / 'sim.db'}")
    _reset()
    engine = make_engine(f"sqlite:///{tmp_path / 'sim.db'}")
    migrate(engine)
    config = SimConfig(days=60, seed=11, inject_day=INJECT, drop=0.6, conversations=30, leads=3, recovers=False,
                       start=date(2026, 1, 5))
    result = simulate(config, handler=copy_adapter_handler(adapter, engine=engine), engine=engine,
                      embedder=NgramEmbedder())
    detected = result.first("drift_detected")
    assert detected is not None and abs(detected.index - (INJECT + 6)) <= 1
    assert result.decisions and result.decisions[0].startswith("smollm2: rollback smollm2-drift-1")
    first_rollback = next(d for d in result.days if any(k == "ab_decision" for k, _ in d.events))
    assert (first_rollback.champion, first_rollback.challenger) == ("smollm2", None)
    kinds = [r.kind for r in _loop(engine)]
    assert kinds[:len(LOOP)] == LOOP
    with session_factory(engine)() as s:
        removed = ledger.decisions_for(s, kind="rollback")[-1]
        assert removed.output["role"] == "challenger" and removed.output["from"] == "smollm2-drift-1"
    checks = [d for d in result.days if d.input_p is not None]
    before = [d.input_p for d in checks if d.index < INJECT]
    after = [d.input_p for d in checks if INJECT + 3 <= d.index < INJECT + 10]
    assert after and max(after) < 0.05  # the questions changed with the world
    assert sum(p < 0.05 for p in before) <= len(before) // 4  # and before that, mostly not
    engine.dispose()
    _reset()
