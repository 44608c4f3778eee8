"""Retraining: the trained adapter is registered as its base's challenger, and the retrain job reads the monitor's
payload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from inference.registry_models import Deployment, RegisteredModel
from ledger.models import Decision
from modelops import retrain as retrain_module
from tests.fixtures.tiny_llama import (
    examples,
    tiny_model_dir,  # noqa: F401  (a fixture)
)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "train.jsonl").write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in examples(6)))
    return folder


def _overrides(model_dir: Path, dataset: Path, out: Path) -> list[str]:
    return [f"model_dir={model_dir}", f"data.dataset={dataset}", "export_gguf=false", f"output_dir={out}",
            "train.max_steps=2", "train.batch_size=3", "lora.target_modules=[q_proj, v_proj]",
            "data.validation_share=0"]


def test_retrain_registers_the_adapter_as_challenger(tiny_model_dir: Path, dataset: Path, tmp_path: Path,  # noqa: F811
                                                     sqlite_engine: Engine) -> None:
    result = retrain_module.retrain(reason="test", overrides=[*_overrides(tiny_model_dir, dataset, tmp_path / "r"),
                                                              "name=smollm2-crm-t"], share=0.3, suites=())
    assert (result.model, result.base, result.share, result.eval_run) == ("smollm2-crm-t", "smollm2", 0.3, None)
    with Session(sqlite_engine) as session:
        dep = session.get(Deployment, "smollm2")
        kinds = [d.kind for d in session.scalars(select(Decision).where(Decision.model_id == "smollm2-crm-t"))]
    assert dep is not None and (dep.challenger, dep.challenger_share) == ("smollm2-crm-t", 0.3)
    assert {"finetune_run", "model_register", "promotion"} <= set(kinds)


def test_the_retrain_job_takes_the_monitors_payload(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict = {}

    class Done:
        def to_json(self) -> dict:
            return {"model": "m"}

    def fake(**kwargs: object) -> Done:
        seen.update(kwargs)
        return Done()

    monkeypatch.setattr(retrain_module, "retrain", fake)
    out = retrain_module.retrain_job({"base": "smollm2", "strategy": "next_step", "incident": "abc", "share": 0.5,
                                      "eval_suites": ["tools"], "limit": 10, "overrides": ["train.max_steps=3"]})
    assert out == {"model": "m"}
    assert seen["suites"] == ["tools"] and "next_step" in str(seen["reason"]) and seen["progress"] is False
    with pytest.raises(ValueError, match="unknown retrain job fields: colour"):
        retrain_module.retrain_job({"colour": "red"})


def test_a_run_trained_elsewhere_is_imported_as_challenger(tiny_model_dir: Path, dataset: Path,  # noqa: F811
                                                           tmp_path: Path, sqlite_engine: Engine) -> None:
    from typer.testing import CliRunner

    from finetune.config import load_config
    from finetune.fit import Prepared, fit
    from finetune.train import prepare
    from serving.cli import app

    folder, hf_dir = prepare(load_config(None, [*_overrides(tiny_model_dir, dataset, tmp_path / "r"),
                                                "name=smollm2-crm-away"]))
    not_trained = CliRunner().invoke(app, ["finetune", "import", str(folder), "--suites", ""])
    assert not_trained.exit_code != 0 and "prepared but not trained" in not_trained.output

    fit(load_config(folder / "config.yaml"), folder, hf_dir, Prepared.load(folder), progress=False)
    out = CliRunner().invoke(app, ["finetune", "import", str(folder), "--suites", "", "--share", "0.25"])
    assert out.exit_code == 0, out.output
    assert "challenger: smollm2-crm-away on smollm2 at 25%" in out.output
    with Session(sqlite_engine) as session:
        dep = session.get(Deployment, "smollm2")
        registered = session.scalar(select(RegisteredModel).where(RegisteredModel.name == "smollm2-crm-away"))
        kinds = {d.kind for d in session.scalars(select(Decision).where(Decision.model_id == "smollm2-crm-away"))}
    assert dep is not None and (dep.challenger, dep.challenger_share) == ("smollm2-crm-away", 0.25)
    assert registered is not None and registered.notes.startswith("trained on cpu, imported from")
    assert {"finetune_run", "model_register", "promotion"} <= kinds
