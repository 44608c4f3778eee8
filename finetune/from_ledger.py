"""Training data from what reps decided: approved and edited proposals, kept answers, and rejected proposals.

The ledger keeps, per assistant turn, the rep's message (``agent_turn``, personal values masked), each tool call
with its arguments in order (``tool_call``), the proposal a write call made (``proposal``, whose ``outcome`` the
rep's decision sets: accepted, edited or rejected), the approval with any edits, and the answer (``agent_answer``).
It does not keep the tool results the model read, so the prompt is rebuilt, not replayed:

- the opening is ``opening_messages`` from the stored message, the rep's label and the turn's time;
- each read call made before the target is run again, as the rep and at the turn's time, against the CRM as it is
  now, and its result stands in for the one the model saw (``as_data``); a call that failed then gets its stored
  error back (``as_error``);
- a turn whose target depends on something that cannot be rebuilt (an earlier proposal in the same turn, a record
  the re-run no longer returns) is skipped and counted.

Values stay as the ledger stores them (masked); nothing is unmasked. A ``proposal`` approved as proposed, or as
edited (the edited values replace the proposed ones in the call's arguments), is a ``tool_call`` example; a
rejected one, and the original of an edited one, become ``negatives.jsonl`` records (with the edited call as the
preferred output where there is one). An ``agent_answer`` whose outcome a rep set to accepted or edited is an
``answer`` example when every record it cites is in the rebuilt tool results.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from agents.assistant.citations import check
from agents.assistant.graph import as_data, as_error, model_messages, rep_label, turn_note
from agents.assistant.language import answer_language
from agents.assistant.tools import TOOLS_BY_NAME
from crm.auth import principal_for
from crm.models import User
from crm.privacy import ERASED
from finetune.erase import contacts_of
from finetune.examples import Example, Negative, call_target, openai_messages, refs_in, text_target
from finetune.synth import Call, Scene, run, valid_call
from ledger.models import Decision

KEPT = ("accepted", "edited")
# An edit names the proposal's field; these are the call arguments that carried it.
EDITED_ARG = {"update_stage": {"stage": "stage"}, "update_record": {"*": "value"},
              "log_activity": {"subject": "subject", "body": "body", "kind": "kind"},
              "schedule_follow_up": {"subject": "subject", "body": "notes"},
              "create_lead": {f: f for f in ("name", "company", "email", "phone", "source")},
              "create_contact": {f: f for f in ("name", "title", "email", "phone")}}


@dataclass
class FromLedger:
    """What the ledger gave, and why the rest was left out."""

    examples: list[Example] = field(default_factory=list)
    negatives: list[Negative] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass
class _Turn:
    row: Decision
    calls: list[Decision]
    scene: Scene


def _call_of(row: Decision) -> Call | None:
    """The call a ``tool_call`` row records (``name {json args}``), or None if the stored text was cut off."""
    name, _, raw = row.input_summary.partition(" ")
    try:
        args = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return None
    return Call(name, args) if name in TOOLS_BY_NAME and isinstance(args, dict) else None


def _turn(session: Session, engine: Engine, turn_id: str | None, cache: dict[str, _Turn | None]) -> _Turn | None:
    if turn_id is None:
        return None
    if turn_id in cache:
        return cache[turn_id]
    row = session.scalar(select(Decision).where(Decision.id == turn_id, Decision.kind == "agent_turn"))
    user = None
    if row is not None and row.actor.startswith("user:") and row.actor[5:].isdigit():
        user = session.get(User, int(row.actor[5:]))
    if row is None or user is None:
        cache[turn_id] = None
        return None
    calls = list(session.scalars(select(Decision).where(Decision.parent_id == turn_id, Decision.kind == "tool_call")
                                 .order_by(Decision.seq)))
    scene = Scene(session=session, engine=engine, principal=principal_for(user), now=row.ts,
                  rng=random.Random(turn_id), lang=answer_language(row.input_summary))
    cache[turn_id] = _Turn(row, calls, scene)
    return cache[turn_id]


def _context(turn: _Turn, upto: int) -> tuple[list[AnyMessage], list[str]] | None:
    """The model call before the turn's ``upto``-th tool call: the opening, then each earlier call and its result."""
    text = turn.row.input_summary
    scene = turn.scene
    note = turn_note(rep=rep_label(scene.principal), now=scene.now, language=answer_language(text))
    messages: list[AnyMessage] = [HumanMessage(content=text), note]
    evidence: list[str] = []
    for row in turn.calls[:upto]:
        call = _call_of(row)
        if call is None or TOOLS_BY_NAME[call.name].writes:
            return None  # a proposal earlier in the turn: its approval step cannot be rebuilt faithfully
        if row.output.get("ok"):
            ran = run(scene, call, text)
            if ran.result is None:
                return None
            reply = ToolMessage(content=as_data(call.name, ran.result.data), tool_call_id=call.id, name=call.name)
            evidence += [r for r in ran.result.refs if r not in evidence]
        else:
            reply = ToolMessage(content=as_error(call.name, str(row.output.get("error", "")), True),
                                tool_call_id=call.id, name=call.name, status="error")
        messages += [AIMessage(content="", tool_calls=[{"name": call.name, "args": call.args, "id": call.id,
                                                        "type": "tool_call"}]), reply]
    return model_messages(messages), evidence


def _edited(call: Call, edits: dict[str, Any]) -> Call | None:
    """The call with the rep's edits in place of the proposed values; None when an edit maps to no argument."""
    fields = EDITED_ARG.get(call.name, {})
    args = dict(call.args)
    for name, change in edits.items():
        arg = fields.get(name) or fields.get("*")
        if arg is None or (call.name == "update_record" and args.get("field") != name):
            return None
        args[arg] = change.get("after") if isinstance(change, dict) else change
    return Call(call.name, args)


def _grounded(args: dict[str, Any], text: str, evidence: list[str]) -> bool:
    """Every record the call names by reference was named by the rep or returned by a call before it."""
    return all(r in evidence or r in text for r in refs_in([json.dumps(args, ensure_ascii=False)]))


def _people(session: Session, refs: Iterable[str]) -> list[int]:
    return contacts_of(session, refs)


def _proposals(session: Session, engine: Engine, erased: set[int], out: FromLedger,
               turns: dict[str, _Turn | None]) -> None:
    rows = session.scalars(select(Decision).where(Decision.kind == "proposal", Decision.actor == "agent",
                                                  Decision.outcome.in_((*KEPT, "rejected"))).order_by(Decision.seq))
    for proposal in rows:
        turn = _turn(session, engine, proposal.parent_id, turns)
        if turn is None:
            out.skipped["proposal_without_turn"] += 1
            continue
        pid = proposal.output.get("proposal_id")
        index = next((i for i, c in enumerate(turn.calls) if c.output.get("proposal_id") == pid), None)
        call = _call_of(turn.calls[index]) if index is not None else None
        if index is None or call is None or not valid_call(call):
            out.skipped["proposal_call_unreadable"] += 1
            continue
        built = _context(turn, index)
        text = turn.row.input_summary
        if built is None or not _grounded(call.args, text, built[1]):
            out.skipped["proposal_context_not_rebuilt"] += 1
            continue
        context, evidence = built
        refs = list(dict.fromkeys([*evidence, *refs_in([json.dumps(call.args)]), *proposal.evidence,
                                   f"proposal:{pid}"]))
        people = _people(session, refs)
        if set(people) & erased or ERASED in text or ERASED in json.dumps(call.args, ensure_ascii=False):
            out.skipped["erased_contact"] += 1
            continue
        messages = openai_messages(context)
        language = answer_language(text)
        original = call_target(call.name, call.args)
        if proposal.outcome == "rejected":
            reason = session.scalar(select(Decision.input_summary).where(
                Decision.parent_id == proposal.id, Decision.kind == "rejection")) or ""
            out.negatives.append(Negative(language=language, prompt="assistant", messages=messages, rejected=original,
                                          contact_ids=people, refs=refs, reason=reason))
            continue
        chosen = call
        if proposal.outcome == "edited":
            approval = session.scalar(select(Decision).where(Decision.parent_id == proposal.id,
                                                             Decision.kind == "approval"))
            edited = _edited(call, (approval.output.get("edits") or {}) if approval else {})
            if edited is None or not valid_call(edited):
                out.negatives.append(Negative(language=language, prompt="assistant", messages=messages,
                                              rejected=original, contact_ids=people, refs=refs, reason="edited"))
                out.skipped["edit_not_mappable"] += 1
                continue
            chosen = edited
            out.negatives.append(Negative(language=language, prompt="assistant", messages=messages, rejected=original,
                                          chosen=call_target(chosen.name, chosen.args), contact_ids=people, refs=refs,
                                          reason="edited"))
        out.examples.append(Example(source="ledger", kind="tool_call", language=language, prompt="assistant",
                                    messages=[*messages, call_target(chosen.name, chosen.args)], contact_ids=people,
                                    refs=refs))


def _answers(session: Session, engine: Engine, erased: set[int], out: FromLedger,
             turns: dict[str, _Turn | None]) -> None:
    rows = session.scalars(select(Decision).where(Decision.kind == "agent_answer", Decision.outcome.in_(KEPT))
                           .order_by(Decision.seq))
    for answer in rows:
        turn = _turn(session, engine, answer.parent_id, turns)
        text = str(answer.output.get("text") or "")
        if turn is None or not text or answer.output.get("stop_reason"):
            out.skipped["answer_without_turn"] += 1
            continue
        built = _context(turn, len(turn.calls))
        cited = list(answer.output.get("citations") or [])
        if built is None or not set(cited) <= set(built[1]) or check(text, built[1]).stripped:
            out.skipped["answer_context_not_rebuilt"] += 1
            continue
        context, evidence = built
        people = _people(session, [*evidence, *cited])
        if set(people) & erased or ERASED in text or ERASED in turn.row.input_summary:
            out.skipped["erased_contact"] += 1
            continue
        out.examples.append(Example(source="ledger", kind="answer", language=answer_language(turn.row.input_summary),
                                    prompt="assistant", messages=[*openai_messages(context), text_target(text)],
                                    contact_ids=people, refs=list(dict.fromkeys([*evidence, *cited]))))


def from_ledger(session: Session, engine: Engine, *, erased: set[int]) -> FromLedger:
    """Examples and negatives from every decided assistant proposal and every kept answer in the ledger."""
    out = FromLedger()
    turns: dict[str, _Turn | None] = {}
    _proposals(session, engine, erased, out, turns)
    _answers(session, engine, erased, out, turns)
    return out
