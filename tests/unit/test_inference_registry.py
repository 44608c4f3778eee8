"""Model registry on a migrated SQLite DB: champion/challenger/promote/rollback and their ledger rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect
from sqlalchemy.orm import Session

import ledger
from config.db import make_engine, session_factory
from crm.schema import migrate
from inference import registry
from inference.errors import RegistryError, UnknownModel
from inference.router import assign, config_for_base


@pytest.fixture
def llm_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'reg.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(llm_engine: Engine) -> Iterator[Session]:
    with session_factory(llm_engine)() as s:
        yield s


@pytest.fixture
def adapter_file(tmp_path: Path) -> Path:
    path = tmp_path / "crm.gguf"
    path.write_bytes(b"GGUF")
    return path


def _register(session: Session, name: str, path: Path) -> None:
    registry.register(session, name=name, base="smollm2", gguf_lora_path=path, actor="ml",
                      eval_results={"tool_acc": 0.8})


def test_migration_creates_the_registry_tables(llm_engine: Engine) -> None:
    tables = set(inspect(llm_engine).get_table_names())
    assert {"llm_models", "llm_deployments"} <= tables


def test_installed_base_is_its_own_first_champion(session: Session) -> None:
    registry.ensure_bases(session)
    registry.ensure_bases(session)  # idempotent
    dep = registry.get_deployment(session, "smollm2")
    assert (dep.champion, dep.challenger, dep.history) == ("smollm2", None, [])
    assert [m.name for m in registry.list_models(session)].count("smollm2") == 1


def test_challenger_then_promote_then_rollback(session: Session, adapter_file: Path) -> None:
    _register(session, "smollm2-crm", adapter_file)
    registry.set_challenger(session, name="smollm2-crm", share=0.1, actor="ml")
    cfg = config_for_base(session, "smollm2")
    assert (cfg.champion, cfg.challenger, cfg.share) == ("smollm2", "smollm2-crm", 0.1)

    dep = registry.promote(session, base="smollm2", actor="ml")
    assert (dep.champion, dep.challenger, dep.challenger_share, dep.history) == ("smollm2-crm", None, 0.0,
                                                                                ["smollm2"])
    assert assign(config_for_base(session, "smollm2"), "any").model == "smollm2-crm"

    dep = registry.rollback(session, base="smollm2", actor="ml", reason="tool accuracy dropped")
    assert (dep.champion, dep.history) == ("smollm2", [])
    session.commit()

    rows = ledger.decisions_for(session, record="model:smollm2-crm")
    kinds = [r.kind for r in reversed(rows)]
    assert kinds == ["model_register", "promotion", "promotion", "rollback"]
    promo = next(r for r in rows if r.kind == "promotion" and r.output["role"] == "champion")
    assert promo.output["from"] == "smollm2" and promo.output["eval"] == {"tool_acc": 0.8}
    back = rows[0]
    assert back.output["to"] == "smollm2" and back.input_summary == "tool accuracy dropped"
    assert ledger.verify(session).ok


def test_rollbacks_walk_back_through_every_earlier_champion(session: Session, adapter_file: Path) -> None:
    _register(session, "v1", adapter_file)
    _register(session, "v2", adapter_file)
    registry.promote(session, base="smollm2", name="v1", actor="ml")
    registry.promote(session, base="smollm2", name="v2", actor="ml")
    assert registry.rollback(session, base="smollm2", actor="ml").champion == "v1"
    assert registry.rollback(session, base="smollm2", actor="ml").champion == "smollm2"
    with pytest.raises(RegistryError, match="no earlier champion"):
        registry.rollback(session, base="smollm2", actor="ml")


def test_refused_transitions(session: Session, adapter_file: Path) -> None:
    registry.ensure_bases(session)
    with pytest.raises(RegistryError, match="no challenger"):
        registry.promote(session, base="smollm2", actor="ml")
    with pytest.raises(RegistryError, match="already the champion"):
        registry.set_challenger(session, name="smollm2", share=0.5, actor="ml")
    _register(session, "x", adapter_file)
    with pytest.raises(RegistryError, match="already registered"):
        _register(session, "x", adapter_file)
    with pytest.raises(RegistryError, match="between 0 and 1"):
        registry.set_challenger(session, name="x", share=2.0, actor="ml")
    with pytest.raises(RegistryError, match="does not exist"):
        registry.register(session, name="y", base="smollm2", gguf_lora_path=Path("/nope.gguf"), actor="ml")
    with pytest.raises(UnknownModel):
        registry.register(session, name="z", base="gpt-9", gguf_lora_path=adapter_file, actor="ml")
    with pytest.raises(UnknownModel):
        registry.get_model(session, "missing")


def test_eval_results_merge(session: Session, adapter_file: Path) -> None:
    _register(session, "m", adapter_file)
    row = registry.record_eval(session, name="m", results={"rag_f1": 0.6}, actor="eval")
    assert row.eval_results == {"tool_acc": 0.8, "rag_f1": 0.6}
