"""``crmind models ...`` and ``crmind serve-model``: the model registry and the engines from the shell."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Annotated, Literal

import typer

from serving.cli.common import fail

models_app = typer.Typer(help="Model registry: bases, adapters, champion, challenger.", no_args_is_help=True)

Actor = Annotated[str, typer.Option(help="Who makes the change (recorded in the ledger).")]


def _base(base: str | None) -> str:
    """``base``, or the configured default model (CRMIND_LLM_MODEL)."""
    from config.settings import get_settings

    return base or get_settings().llm_model


@models_app.command("list")
def list_models() -> None:
    """Registered models, with the champion and challenger of each base."""
    from config.db import transaction
    from inference import registry

    with transaction() as session:
        registry.ensure_bases(session)
        for model in registry.list_models(session):
            dep = registry.get_deployment(session, model.base)
            role = ("champion" if dep.champion == model.name else
                    f"challenger {dep.challenger_share:.0%}" if dep.challenger == model.name else "")
            evals = ", ".join(f"{k}={v}" for k, v in model.eval_results.items())
            typer.echo(f"{model.name:<28} {model.kind:<8} base={model.base:<12} {role:<16} {evals}")


@models_app.command("show")
def show(name: str) -> None:
    """One model's record as JSON."""
    from config.db import transaction
    from inference import registry

    with transaction() as session:
        registry.ensure_bases(session)
        m = registry.get_model(session, name)
        dep = registry.get_deployment(session, m.base)
        typer.echo(json.dumps({
            "name": m.name, "base": m.base, "kind": m.kind, "peft_path": m.peft_path,
            "gguf_lora_path": m.gguf_lora_path, "eval_results": m.eval_results, "notes": m.notes,
            "deployment": {"champion": dep.champion, "challenger": dep.challenger,
                           "challenger_share": dep.challenger_share, "earlier_champions": dep.history},
        }, indent=2))


@models_app.command("register")
def register(
    name: str,
    base: Annotated[str | None, typer.Option(help="Base model name (default CRMIND_LLM_MODEL).")] = None,
    peft: Annotated[Path | None, typer.Option(help="peft adapter folder.")] = None,
    gguf_lora: Annotated[Path | None, typer.Option(help="GGUF-LoRA file (default: from --peft).")] = None,
    eval_json: Annotated[str, typer.Option("--eval", help='Eval results, e.g. {"tool_acc": 0.8}.')] = "{}",
    actor: Actor = "cli",
) -> None:
    """Register a LoRA adapter (a peft folder is converted to GGUF-LoRA for llama.cpp)."""
    from config.db import transaction
    from config.settings import get_settings
    from finetune.lora_gguf import convert_peft_to_gguf
    from inference import registry
    from inference.bases import get_base

    base = _base(base)
    if peft is not None and gguf_lora is None:
        out = Path(get_settings().data_dir) / "adapters" / f"{name}.gguf"
        out.parent.mkdir(parents=True, exist_ok=True)
        gguf_lora = convert_peft_to_gguf(peft, out, base_gguf=get_base(base).gguf_path())
    with transaction() as session:
        registry.register(session, name=name, base=base, peft_path=peft, gguf_lora_path=gguf_lora,
                          eval_results=json.loads(eval_json), actor=actor)
    typer.echo(f"registered {name} on {base}; restart the engine to serve it")


@models_app.command("challenge")
def challenge(
    name: str, share: Annotated[float, typer.Option(help="Share of conversations, 0..1.")] = 0.1,
    actor: Actor = "cli",
) -> None:
    """Make a model the challenger of its base for a share of conversations."""
    from config.db import transaction
    from inference import registry

    with transaction() as session:
        registry.set_challenger(session, name=name, share=share, actor=actor)
    typer.echo(f"{name} is challenger at {share:.0%}")


@models_app.command("promote")
def promote(
    base: Annotated[str | None, typer.Option(help="Base whose champion changes (default CRMIND_LLM_MODEL).")] = None,
    name: Annotated[str | None, typer.Option(help="Model to promote (default: the challenger).")] = None,
    reason: str = "", actor: Actor = "cli",
    margin: Annotated[float, typer.Option(min=0.0, max=1.0, help="Largest regression the gates tolerate per suite "
                                          "(lower end of the 95% interval)")] = 0.02,
    force: Annotated[bool, typer.Option("--force", help="Promote past failed gates (needs --reason; recorded)")
                     ] = False,
) -> None:
    """Make the challenger (or the named model) the champion of its base, if it passes the promotion gates.

    The gates compare the two models' latest eval runs (``eval.gates``): no suite may possibly regress beyond
    ``--margin`` and safety may not drop at all. A refusal says which suite and by how much.
    """
    from config.db import session_factory, transaction
    from config.errors import CrmindError
    from eval.gates import check_models
    from inference import registry

    base = _base(base)
    with session_factory()() as session:
        dep = registry.get_deployment(session, base)
        target = name or dep.challenger
        champion = dep.champion
    if target is not None and target != champion:
        try:
            verdict = check_models(champion, target, margin=margin)
            refusals = verdict.reasons
            evidence = f"gates on {verdict.champion_run} vs {verdict.challenger_run}"
        except CrmindError as exc:
            refusals, evidence = [exc.message], "no comparable eval runs"
        if refusals and not force:
            fail(f"{target} is not promoted over {champion}:\n  " + "\n  ".join(refusals)
                 + "\n(--force --reason '...' promotes anyway, and the ledger records it)")
        if refusals:
            if not reason:
                fail("--force needs a --reason, which the ledger keeps beside the failed gates")
            reason = f"{reason} (forced past failed gates: {'; '.join(refusals)})"
        else:
            reason = f"{reason} ({evidence}: passed)".strip()
    with transaction() as session:
        dep = registry.promote(session, base=base, name=name, actor=actor, reason=reason)
    typer.echo(f"{dep.champion} is champion of {base}")


@models_app.command("rollback")
def rollback(
    base: Annotated[str | None, typer.Option(help="Base whose champion goes back (default CRMIND_LLM_MODEL).")] = None,
    reason: str = "", actor: Actor = "cli",
) -> None:
    """Put the previous champion of a base back."""
    from config.db import transaction
    from inference import registry

    base = _base(base)
    with transaction() as session:
        dep = registry.rollback(session, base=base, actor=actor, reason=reason)
    typer.echo(f"{dep.champion} is champion of {base} again")


def serve_model(
    engine: Annotated[Literal["llamacpp", "vllm"], typer.Option(help="Which engine to run.")] = "llamacpp",
    port: Annotated[int | None, typer.Option(help="Port (default CRMIND_LLM_PORT).")] = None,
    base: Annotated[str | None, typer.Option(help="Base model (vLLM serves one; default CRMIND_LLM_MODEL).")] = None,
) -> None:
    """Run a model engine in the foreground (base + registered adapters) until Ctrl-C."""
    from config.settings import get_settings
    from inference.llamacpp import start_llamacpp

    if engine == "llamacpp":
        handle = start_llamacpp(port=port)
    else:
        handle = _start_vllm_from_registry(_base(base), port, Path(get_settings().data_dir))
    typer.echo(f"{engine} serves {', '.join(handle.models)} at {handle.base_url}")
    if not handle.owned:
        typer.echo("(an engine was already running there; reusing it)")
        return
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while handle.process is not None and handle.process.poll() is None:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()


def _start_vllm_from_registry(base: str, port: int | None, data_dir: Path):  # type: ignore[no-untyped-def]
    from config.db import session_factory
    from finetune.hf_base import build_hf_base
    from inference import registry
    from inference.bases import get_base
    from inference.vllm import start_vllm

    with session_factory()() as session:
        loras = {m.name: Path(m.peft_path) for m in registry.list_models(session, base=base)
                 if m.kind == "adapter" and m.peft_path}
    typer.echo(f"building the HF copy of {base} (first time: about a minute)")
    model_dir = build_hf_base(base, data_dir / "models" / f"{base}-hf")
    spec = get_base(base)
    return start_vllm(model_dir=model_dir, served_name=base, loras=loras, port=port,
                      tool_parser=spec.tool_parser, chat_template=spec.chat_template_path())


def chat(
    message: Annotated[str | None, typer.Argument(
        help="What to say. With --as and no message: an interactive session.")] = None,
    as_user: Annotated[str | None, typer.Option(
        "--as", help="Talk to the CRM assistant as this user (email or id): cited answers, approvals at the prompt. "
                     "Without it: one plain completion from the model.")] = None,
    thread: Annotated[str | None, typer.Option(help="Conversation id; the A/B router is sticky per thread.")] = None,
    base: Annotated[str | None, typer.Option(
        help="Base whose champion/challenger answer (default CRMIND_LLM_MODEL).")] = None,
    force: Annotated[Literal["champion", "challenger"] | None, typer.Option(
        help="Force a variant (evals and admins).")] = None,
    max_tokens: Annotated[int, typer.Option(min=1, max=4096, help="Token budget of the reply.")] = 256,
) -> None:
    """Chat with the assistant (``--as``), or check the model path with one plain completion.

    ``crmind chat --as rep@example.com`` is the rep's assistant in a terminal: it reads the CRM as that user,
    cites its sources and proposes changes that you approve, edit or reject at the prompt. Without ``--as``,
    one streamed completion goes through the gateway (A/B routed, budgeted, recorded in the ledger).
    """
    if as_user is not None:
        from serving.cli.assistant import chat_as

        chat_as(as_user, message, thread)
        return
    if message is None:
        fail("say something, or use --as <email> for an interactive session with the assistant")
    import uuid

    from config.db import transaction
    from inference.embedded import ensure_engine
    from inference.router import config_for_base, routed_chat_model

    thread = thread or f"cli-{uuid.uuid4().hex[:12]}"
    with transaction() as session:
        ab = config_for_base(session, _base(base))
    handle = ensure_engine()  # reuses the engine `crmind serve` started; else starts one for this call
    try:
        llm, chosen = routed_chat_model(ab, thread_id=thread, force=force, actor="cli", max_tokens=max_tokens)
        typer.secho(f"[{chosen.model} · {chosen.variant} · thread {thread}]", fg=typer.colors.BRIGHT_BLACK)
        for chunk in llm.stream(message):
            typer.echo(chunk.content, nl=False)
        typer.echo()
    except Exception as exc:  # noqa: BLE001 - the engine's errors reach a person as one line, not a traceback
        typer.secho(f"model call failed: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from None
    finally:
        if handle.owned:
            handle.stop()
