"""Retraining: fine-tune an adapter, register it as its base's challenger, and attach its eval report.

``retrain`` is what ``crmind finetune train`` and the drift monitor's retrain job both run:

1. ``finetune.train`` (LoRA SFT from the YAML config plus overrides) writes the peft adapter and its GGUF-LoRA;
2. the registry gets the adapter (``model_register``) and makes it the challenger with a traffic share
   (``promotion`` row, role challenger): the A/B router starts sending it conversations;
3. the eval suites run against it (``eval_run`` row; the scores land on its registry record, beside the
   champion's comparison in the report), which is what ``crmind models promote``'s gates read.

The eval runs in a child process with an engine of its own on a free port: that engine loads the registry's
adapters (the new one included) without touching an engine a running server owns, and the training process's
memory is gone before the engine starts.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from finetune.config import load_config
from finetune.train import TrainResult, finish, train

log = logging.getLogger(__name__)

DEFAULT_SUITES = ("tools", "agent", "rules", "bfcl", "safety")
"""The suites a new adapter is judged on (retrieval and rag don't depend on the generating model's weights
enough to be worth their time here; run them with ``crmind eval all`` before promoting)."""


@dataclass
class RetrainResult:
    """The new challenger and where its training and eval results are."""

    model: str
    base: str
    share: float
    train: dict[str, Any]
    eval_run: str | None = None
    eval_report: str | None = None
    eval_scores: dict[str, float | None] = field(default_factory=dict)
    eval_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A plain dict (job results, the CLI, the ledger)."""
        return asdict(self)


def register_challenger(result: TrainResult, *, share: float, reason: str, actor: str) -> None:
    """Register the trained adapter and give it ``share`` of its base's conversations."""
    from config.db import transaction
    from inference.registry import register, set_challenger

    with transaction() as session:
        register(session, name=result.name, base=result.base, actor=actor, peft_path=Path(result.adapter_dir),
                 gguf_lora_path=Path(result.gguf_path) if result.gguf_path else None, notes=reason,
                 eval_results={"finetune:validation_loss": result.validation_loss_after})
        set_challenger(session, name=result.name, share=share, actor=actor,
                       reason=f"{reason}: {result.name} becomes challenger of {result.base} at {share:.0%}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def evaluate(model: str, *, suites: Sequence[str], quick: bool, limit: int | None,
             echo: Callable[[str], None] = log.info) -> tuple[str | None, str | None, dict[str, float | None]]:
    """Run ``crmind eval all`` for ``model`` in a child process with its own engine; (run folder, report, scores)."""
    import json

    env = dict(os.environ, CRMIND_LLM_PORT=str(_free_port()))
    cmd = [sys.executable, "-m", "serving.cli", "eval", "all", "--model", model, "--suites", ",".join(suites)]
    if quick:
        cmd.append("--quick")
    if limit:
        cmd += ["--limit", str(limit)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        echo(line)
    results = re.search(r"^results:\s+(.+results\.json)\s*$", proc.stdout, flags=re.MULTILINE)
    report = re.search(r"^report:\s+(.+)\s*$", proc.stdout, flags=re.MULTILINE)
    if results is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"the eval of {model} produced no results (exit {proc.returncode}): {' | '.join(tail)}")
    path = Path(results.group(1))
    data = json.loads(path.read_text(encoding="utf-8"))
    scores = {name: suite.get("metrics", {}).get("score") for name, suite in data.get("suites", {}).items()}
    return str(path.parent), report.group(1) if report else None, scores


def retrain(*, reason: str, base: str | None = None, config: str | Path | None = None,
            overrides: Sequence[str] = (), share: float = 0.2, suites: Sequence[str] | None = DEFAULT_SUITES,
            quick: bool = True, limit: int | None = None, actor: str = "modelops", progress: bool = True,
            echo: Callable[[str], None] = log.info) -> RetrainResult:
    """Fine-tune, register as challenger at ``share``, evaluate (``suites=None`` or empty skips the eval)."""
    cfg = load_config(config, [*overrides, *([f"base={base}"] if base else [])])
    trained = train(cfg, progress=progress, say=echo)
    return _adopt(trained, reason=reason, share=share, suites=suites, quick=quick, limit=limit, actor=actor, echo=echo)


def import_run(folder: Path, *, share: float = 0.2, suites: Sequence[str] | None = DEFAULT_SUITES,
               quick: bool = True, limit: int | None = None, actor: str = "modelops",
               echo: Callable[[str], None] = log.info) -> RetrainResult:
    """Adopt a run trained elsewhere (``python -m finetune.fit`` on a GPU box): finish it, register, evaluate."""
    trained = finish(folder)
    return _adopt(trained, reason=f"trained on {trained.device}, imported from {folder}", share=share,
                  suites=suites, quick=quick, limit=limit, actor=actor, echo=echo)


def _adopt(trained: TrainResult, *, reason: str, share: float, suites: Sequence[str] | None, quick: bool,
           limit: int | None, actor: str, echo: Callable[[str], None]) -> RetrainResult:
    """Register ``trained`` as its base's challenger at ``share`` and attach its eval report."""
    echo(f"trained {trained.name}: {trained.steps} steps, {trained.seconds_per_step} s/step, "
         f"{trained.tokens_per_second} tokens/s; validation loss {trained.validation_loss_before} -> "
         f"{trained.validation_loss_after}")
    register_challenger(trained, share=share, reason=reason, actor=actor)
    out = RetrainResult(model=trained.name, base=trained.base, share=share, train=trained.to_json())
    if suites:
        try:
            out.eval_run, out.eval_report, out.eval_scores = evaluate(trained.name, suites=suites, quick=quick,
                                                                      limit=limit, echo=echo)
        except (RuntimeError, OSError) as exc:  # the adapter stays registered; its eval can be rerun by hand
            out.eval_error = str(exc)
            echo(f"eval failed: {exc}; run `crmind eval all --model {trained.name}` to attach a report")
    return out


def retrain_job(payload: dict[str, Any]) -> dict[str, Any]:
    """The ``retrain`` job kind: ``payload`` holds retrain's keyword arguments (JSON), the result is JSON.

    The drift monitor also sends the strategy and incident that asked for it; they become the reason.
    """
    kwargs = dict(payload)
    strategy, incident = kwargs.pop("strategy", None), kwargs.pop("incident", None)
    if "eval_suites" in kwargs:
        kwargs["suites"] = kwargs.pop("eval_suites")
    allowed = {"reason", "base", "config", "overrides", "share", "suites", "quick", "limit", "actor"}
    unknown = set(kwargs) - allowed
    if unknown:
        raise ValueError(f"unknown retrain job fields: {', '.join(sorted(unknown))}")
    if "reason" not in kwargs:
        kwargs["reason"] = (f"drift in {strategy} (incident {incident})" if strategy else "retrain job")
    return retrain(progress=False, **kwargs).to_json()
