"""``crmind chat --as <email>``: the rep's assistant in a terminal, with approvals at the prompt."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import typer


def _render(events: Iterator[Any]) -> dict[str, Any] | None:
    """Print a run's events; return the proposal waiting for the rep, if the run stopped at one."""
    from agents.assistant.runner import as_dict

    waiting = None
    drafting = False
    for event in events:
        data = as_dict(event)
        kind = data["type"]
        if kind == "token":
            if not drafting:
                typer.secho("… ", fg=typer.colors.BRIGHT_BLACK, nl=False)
                drafting = True
        elif kind == "tool_step":
            mark = "✓" if data["ok"] else "✗"
            typer.secho(f"  {mark} {data['tool']}: {data['summary']}", fg=typer.colors.BRIGHT_BLACK)
        elif kind == "proposal":
            waiting = data["proposal"]
            target = (f"{waiting['object_type']}:{waiting['record_id']}" if waiting.get("record_id")
                      else f"new {waiting['object_type']}")
            typer.secho(f"\nProposed {waiting['action']} of {target}: {waiting.get('reason', '')}", bold=True)
            for field, change in (waiting.get("changes") or {}).items():
                typer.echo(f"    {field}: {change.get('before')!r} -> {change.get('after')!r}")
        elif kind == "answer":
            if drafting:
                typer.echo()
            typer.echo(data["text"])
            if data["citations"]:
                typer.secho("  sources: " + ", ".join(data["citations"]), fg=typer.colors.BRIGHT_BLACK)
            if not data["grounded"]:
                typer.secho("  (not grounded in CRM records)", fg=typer.colors.YELLOW)
        elif kind == "error":
            typer.secho(data["message"], fg=typer.colors.RED)
    return waiting


def _decide(proposal: dict[str, Any]) -> dict[str, Any]:
    """Ask the rep: approve, edit (field=value ...), or reject (with a reason)."""
    while True:
        answer = typer.prompt("approve / edit field=value ... / reject [reason]", default="approve").strip()
        verb, _, rest = answer.partition(" ")
        if verb in ("approve", "a", "y", "yes", "批准"):
            return {"action": "approve", "proposal_id": proposal["id"]}
        if verb in ("reject", "r", "n", "no", "拒绝"):
            return {"action": "reject", "reason": rest, "proposal_id": proposal["id"]}
        if verb in ("edit", "e"):
            pairs = [p.partition("=") for p in rest.split()]
            edits = {k: v for k, eq, v in pairs if eq}
            if edits:
                return {"action": "edit", "edits": edits, "proposal_id": proposal["id"]}
        typer.echo("answer 'approve', 'edit stage=negotiation' or 'reject too early'")


def chat_as(as_user: str, message: str | None, thread: str | None) -> None:
    """One message (or an interactive session when ``message`` is empty) as the given user."""
    from agents.assistant.runner import default_assistant
    from config.db import session_factory
    from crm.auth import principal_for_user
    from inference.embedded import ensure_engine

    with session_factory()() as session:
        principal = principal_for_user(session, as_user)
    thread = thread or f"cli-{uuid.uuid4().hex[:12]}"
    handle = ensure_engine()  # reuses the engine `crmind serve` started; else starts one for this session
    bot = default_assistant()
    typer.secho(f"[{principal.name} · {principal.role} · thread {thread}]", fg=typer.colors.BRIGHT_BLACK)
    try:
        while True:
            text = message if message is not None else typer.prompt("you", prompt_suffix="> ", default="",
                                                                   show_default=False)
            if not text.strip() or text.strip() in ("exit", "quit", "退出"):
                return
            waiting = _render(bot.start_turn(principal, thread, text))
            while waiting is not None:
                waiting = _render(bot.resume(principal, thread, _decide(waiting)))
            if message is not None:
                return
    except (KeyboardInterrupt, EOFError):
        typer.echo()
    finally:
        if handle.owned:
            handle.stop()

