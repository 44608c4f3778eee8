"""Model registry: bases and adapters, champion/challenger per base; every change is a ledger row."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import ledger
from inference.bases import KNOWN_BASES, available_bases, get_base
from inference.errors import RegistryError, UnknownModel
from inference.registry_models import Deployment, RegisteredModel


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def ensure_bases(session: Session) -> list[RegisteredModel]:
    """Register every installed base (idempotent); a base with no deployment becomes its own champion."""
    out = []
    for base in available_bases():
        row = session.scalar(select(RegisteredModel).where(RegisteredModel.name == base.name))
        if row is None:
            row = RegisteredModel(name=base.name, base=base.name, kind="base", eval_results={},
                                  notes=base.description, created_at=_now())
            session.add(row)
        if session.get(Deployment, base.name) is None:
            session.add(Deployment(base=base.name, champion=base.name, challenger=None, challenger_share=0.0,
                                   history=[], updated_at=_now()))
        out.append(row)
    session.flush()
    return out


def get_model(session: Session, name: str) -> RegisteredModel:
    """The registered model called ``name``."""
    row = session.scalar(select(RegisteredModel).where(RegisteredModel.name == name))
    if row is None:
        raise UnknownModel(f"No registered model {name!r}; see `crmind models list`.")
    return row


def list_models(session: Session, *, base: str | None = None) -> list[RegisteredModel]:
    """Registered models, bases first, then adapters by name."""
    stmt = select(RegisteredModel)
    if base is not None:
        stmt = stmt.where(RegisteredModel.base == base)
    return sorted(session.scalars(stmt), key=lambda m: (m.kind != "base", m.name))


def get_deployment(session: Session, base: str) -> Deployment:
    """Champion/challenger state of ``base``."""
    dep = session.get(Deployment, base)
    if dep is None and base in {b.name for b in KNOWN_BASES}:
        get_base(base).require_installed()  # a default model whose packages are missing says which
        ensure_bases(session)
        dep = session.get(Deployment, base)
    if dep is None:
        raise UnknownModel(f"Base {base!r} has no deployment; register it first (`crmind models list`).")
    return dep


def register(
    session: Session,
    *,
    name: str,
    base: str,
    actor: str,
    peft_path: Path | None = None,
    gguf_lora_path: Path | None = None,
    eval_results: dict[str, Any] | None = None,
    notes: str = "",
) -> RegisteredModel:
    """Register a LoRA adapter on ``base``; it serves under ``name`` once the engine restarts."""
    get_base(base)
    ensure_bases(session)
    if session.scalar(select(RegisteredModel).where(RegisteredModel.name == name)) is not None:
        raise RegistryError(f"A model called {name!r} is already registered; pick another name.")
    if peft_path is None and gguf_lora_path is None:
        raise RegistryError("An adapter needs a peft folder or a GGUF-LoRA file (or both).")
    for path in (peft_path, gguf_lora_path):
        if path is not None and not Path(path).exists():
            raise RegistryError(f"Adapter path {path} does not exist.")
    row = RegisteredModel(
        name=name, base=base, kind="adapter",
        peft_path=None if peft_path is None else str(Path(peft_path).resolve()),
        gguf_lora_path=None if gguf_lora_path is None else str(Path(gguf_lora_path).resolve()),
        eval_results=dict(eval_results or {}), notes=notes, created_at=_now(),
    )
    session.add(row)
    session.flush()
    ledger.append(session, kind="model_register", actor=actor, model_id=name, refs=[f"model:{name}"],
                  input_summary=f"register adapter {name} on {base}",
                  output={"base": base, "peft_path": row.peft_path, "gguf_lora_path": row.gguf_lora_path})
    return row


def register_scorer(session: Session, *, name: str, base: str, path: Path, actor: str,
                    eval_results: dict[str, Any] | None = None, notes: str = "") -> RegisteredModel:
    """Register a trained scoring model (kind ``scorer``) under ``base`` (``lead-score``, ``win-score``).

    The first scorer of a base becomes its champion; later ones wait for ``promote``. Registering the same
    name again (a deterministic retrain of identical data) returns the existing row.
    """
    existing = session.scalar(select(RegisteredModel).where(RegisteredModel.name == name))
    if existing is not None:
        return existing
    if not Path(path).exists():
        raise RegistryError(f"Scoring model file {path} does not exist.")
    row = RegisteredModel(name=name, base=base, kind="scorer", peft_path=str(Path(path).resolve()),
                          gguf_lora_path=None, eval_results=dict(eval_results or {}), notes=notes, created_at=_now())
    session.add(row)
    if session.get(Deployment, base) is None:
        session.add(Deployment(base=base, champion=name, challenger=None, challenger_share=0.0, history=[],
                               updated_at=_now()))
    session.flush()
    ledger.append(session, kind="model_register", actor=actor, model_id=name, refs=[f"model:{name}"],
                  input_summary=f"register scorer {name} for {base}", output={"base": base, "path": row.peft_path})
    return row


def record_eval(session: Session, *, name: str, results: dict[str, Any], actor: str) -> RegisteredModel:
    """Merge eval results (metric -> value) into the model's record."""
    row = get_model(session, name)
    row.eval_results = {**row.eval_results, **results}
    ledger.append(session, kind="model_eval", actor=actor, model_id=name, refs=[f"model:{name}"],
                  input_summary=f"eval results for {name}", output={"results": results})
    return row


def set_challenger(session: Session, *, name: str, share: float, actor: str, reason: str = "") -> Deployment:
    """Make ``name`` the challenger of its base with traffic ``share`` (0..1)."""
    if not 0.0 <= share <= 1.0:
        raise RegistryError(f"The challenger's traffic share must be between 0 and 1, not {share}.")
    model = get_model(session, name)
    dep = get_deployment(session, model.base)
    if dep.champion == name:
        raise RegistryError(f"{name!r} is already the champion of {model.base!r}.")
    previous = dep.challenger
    dep.challenger, dep.challenger_share, dep.updated_at = name, share, _now()
    ledger.append(session, kind="promotion", actor=actor, model_id=name, refs=[f"model:{name}"],
                  input_summary=reason or f"{name} becomes challenger of {model.base} at {share:.0%}",
                  output={"base": model.base, "role": "challenger", "to": name, "from": previous,
                          "share": share, "eval": model.eval_results})
    return dep


def clear_challenger(session: Session, *, base: str, actor: str, reason: str = "") -> Deployment:
    """Take ``base``'s challenger out of the A/B split (it stays registered); the champion gets all traffic."""
    dep = get_deployment(session, base)
    if dep.challenger is None:
        raise RegistryError(f"{base!r} has no challenger to remove.")
    old, share = dep.challenger, dep.challenger_share
    dep.challenger, dep.challenger_share, dep.updated_at = None, 0.0, _now()
    ledger.append(session, kind="rollback", actor=actor, model_id=old, refs=[f"model:{old}"],
                  input_summary=reason or f"remove challenger {old} from {base}",
                  output={"base": base, "role": "challenger", "to": None, "from": old, "share": share})
    return dep


def promote(
    session: Session, *, base: str, actor: str, name: str | None = None, reason: str = ""
) -> Deployment:
    """Make ``name`` (default: the challenger) the champion; the old champion can be rolled back to."""
    dep = get_deployment(session, base)
    target = name or dep.challenger
    if target is None:
        raise RegistryError(f"{base!r} has no challenger to promote; name a model.")
    model = get_model(session, target)
    if model.base != base:
        raise RegistryError(f"{target!r} runs on {model.base!r}, not on {base!r}.")
    if dep.champion == target:
        raise RegistryError(f"{target!r} is already the champion of {base!r}.")
    old = dep.champion
    dep.history = [*dep.history, old]
    dep.champion = target
    if dep.challenger == target:
        dep.challenger, dep.challenger_share = None, 0.0
    dep.updated_at = _now()
    ledger.append(session, kind="promotion", actor=actor, model_id=target,
                  refs=[f"model:{target}", f"model:{old}"],
                  input_summary=reason or f"promote {target} to champion of {base}",
                  output={"base": base, "role": "champion", "to": target, "from": old,
                          "eval": model.eval_results})
    return dep


def rollback(session: Session, *, base: str, actor: str, reason: str = "") -> Deployment:
    """Put the previous champion back; the current one leaves service (it stays registered)."""
    dep = get_deployment(session, base)
    if not dep.history:
        raise RegistryError(f"{base!r} has no earlier champion to roll back to.")
    *rest, previous = dep.history
    old = dep.champion
    dep.history, dep.champion, dep.updated_at = list(rest), previous, _now()
    ledger.append(session, kind="rollback", actor=actor, model_id=previous,
                  refs=[f"model:{previous}", f"model:{old}"],
                  input_summary=reason or f"roll back {base} from {old} to {previous}",
                  output={"base": base, "role": "champion", "to": previous, "from": old})
    return dep
