"""Synthetic assistant conversations from a CRM database: real records, real tool output, production prompts.

Every example is built the way the assistant's graph builds a model call (``agents.assistant.graph``):

- a first call: ``opening_messages(text, rep=..., now=...)`` (system prompt, the rep's message, crmind's turn note);
- a follow-up after a tool: ``model_messages([rep message, turn note, the model's call, the tool's reply])`` with
  the reply written by ``as_data`` (a result), ``as_error`` (a failed call) or the approval step's wrapper;

and each tool is really run, as the rep's ``Principal`` (so permission filtering is real: another team's record
is "not found"), in a session that is rolled back (write tools make proposals, which are never kept). The
scenarios themselves live in ``finetune.scenarios``.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from pydantic import ValidationError
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from agents.assistant.graph import as_data, as_error, model_messages, opening_messages, rep_label, turn_note
from agents.assistant.intent import allowed_tools
from agents.assistant.language import answer_language
from agents.assistant.resolve import resolve
from agents.assistant.tools import TOOLS_BY_NAME, Refused, ToolEnv, ToolResult
from config.errors import CrmindError
from config.objects import ref
from crm.access import Principal, readable
from crm.auth import principal_for
from crm.models import Activity, User
from crm.proposals import approve, get_proposal, proposal_view, reject
from finetune.erase import contacts_of
from finetune.examples import Example, Kind, call_target, openai_messages, refs_in, text_target
from finetune.notes_search import keyword_search

T = TypeVar("T")
THREAD = "finetune:synthetic"
LOGGED_KINDS = ("call", "email", "meeting", "note")


def base_clock(session: Session) -> datetime:
    """The morning after the last logged activity: "today" for the examples, so relative dates meet the data."""
    latest = session.scalar(select(func.max(Activity.occurred_at)).where(Activity.kind.in_(LOGGED_KINDS)))
    day = (latest or datetime(2026, 1, 1)).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, 9, 0)


@dataclass
class Call:
    """A tool call the model makes: name, arguments and the id the engine gave it."""

    name: str
    args: dict[str, Any]
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            body = json.dumps([self.name, self.args], sort_keys=True, ensure_ascii=False)
            self.id = "call_" + hashlib.sha256(body.encode()).hexdigest()[:10]

    def message(self) -> AIMessage:
        """The model's reply that makes this call."""
        return AIMessage(content="", tool_calls=[{"name": self.name, "args": self.args, "id": self.id,
                                                  "type": "tool_call"}])


@dataclass
class Ran:
    """What running a call gave: the result, or the error text the graph would send back."""

    result: ToolResult | None = None
    error: str | None = None
    retry: bool = True
    error_type: str = ""
    outcome: dict[str, Any] | None = None
    """For a write tool whose proposal was decided: the approval step's outcome."""


@dataclass
class Scene:
    """One example's setting: who asks, when, in which language, and the database to read."""

    session: Session
    engine: Engine
    principal: Principal
    now: datetime
    rng: random.Random
    lang: str
    cache: dict[tuple[int, str], list[Any]] = field(default_factory=dict)

    @property
    def rep(self) -> str:
        """How the turn note names the rep."""
        return rep_label(self.principal)

    def rows(self, obj: str) -> list[Any]:
        """The records of ``obj`` this rep may read (cached per rep)."""
        key = (self.principal.user_id, obj)
        if key not in self.cache:
            self.cache[key] = list(self.session.scalars(readable(self.principal, obj).order_by("id")))
        return self.cache[key]

    def pick(self, obj: str, where: Callable[[Any], bool] | None = None) -> Any | None:
        """A random readable record of ``obj`` (matching ``where``), or None."""
        rows = [r for r in self.rows(obj) if where is None or where(r)]
        return self.rng.choice(rows) if rows else None

    def one(self, options: Sequence[T]) -> T:
        """A random choice."""
        return self.rng.choice(list(options))

    def resolves_to(self, obj: str, text: str, record_id: int) -> bool:
        """Whether the assistant's resolver reads ``text`` as exactly this record, for this rep."""
        try:
            return int(resolve(self.session, self.principal, obj, text).id) == record_id
        except CrmindError:
            return False


def reps(session: Session) -> list[Principal]:
    """The people who chat with the assistant: reps, and their managers now and then."""
    users = session.scalars(select(User).where(User.role.in_(("rep", "manager")), User.active.is_(True))
                            .order_by(User.id))
    return [principal_for(u) for u in users]


def run(scene: Scene, call: Call, message: str, *, decide: str | None = None) -> Ran:
    """Run ``call`` as the rep, exactly as the tools node does, in a session that is always rolled back.

    ``decide`` ("approve" or "reject") then decides the proposal a write tool made, as the rep would.
    """
    tool = TOOLS_BY_NAME[call.name]
    with Session(scene.engine) as session:
        try:
            args = tool.args.model_validate(call.args)
            env = ToolEnv(session=session, principal=scene.principal, now=scene.now, thread_id=THREAD, turn_id=None,
                          tool_call_id=call.id, message=message, search=keyword_search)
            result = tool.run(env, args)
            outcome = _decide(session, scene.principal, result, decide) if decide and result.proposal_id else None
            return Ran(result=result, outcome=outcome)
        except ValidationError as exc:
            parts = [f"{'.'.join(str(x) for x in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()[:5]]
            return Ran(error="invalid arguments: " + "; ".join(parts), retry=True, error_type="ValidationError")
        except CrmindError as exc:
            return Ran(error=exc.message, retry=not isinstance(exc, Refused), error_type=type(exc).__name__)
        finally:
            session.rollback()


def _decide(session: Session, p: Principal, result: ToolResult, decision: str) -> dict[str, Any]:
    """The approval step's outcome, as ``agents.assistant.graph.approve`` writes it."""
    proposal_id = int(result.proposal_id or 0)
    proposal = get_proposal(session, p, proposal_id)
    if proposal.status != "pending" or proposal.requires_human:
        return {"proposal": proposal_id, "status": "waiting for a manager's approval"}
    if decision == "reject":
        proposal = reject(session, p, proposal_id, "")
        return {"proposal": proposal_id, "status": "rejected", "reason": ""}
    proposal = approve(session, p, proposal_id)
    shown = proposal_view(p, proposal)
    return {"proposal": proposal_id, "status": proposal.status, "edited": False, "changes": shown["changes"],
            "record": ref(shown["object_type"], shown["record_id"])}


def approval_content(outcome: dict[str, Any]) -> str:
    """The tool message the approval step sends the model (the same wrapper and notes as the graph)."""
    notes = {"applied": "Applied. Confirm it to the rep.",
             "rejected": "The rep rejected this change. Do not propose it again in this turn."}
    note = notes.get(outcome["status"], "")
    return as_data("approval", outcome) + (f"\n{note}" if note else "")


def valid_call(call: Call) -> bool:
    """The call validates against its tool's argument model (what the graph and the tools eval both check)."""
    tool = TOOLS_BY_NAME.get(call.name)
    if tool is None:
        return False
    try:
        tool.args.model_validate(call.args)
    except ValidationError:
        return False
    return True


def asks_for_write(text: str, tool: str) -> bool:
    """The graph only lets a write tool run when the rep's own message asks for that kind of change."""
    return not TOOLS_BY_NAME[tool].writes or tool in allowed_tools(text)


# ---------------------------------------------------------------- examples from turns
def _example(scene: Scene, kind: Kind, text: str, context: list[AnyMessage], target: dict[str, Any],
             refs: list[str]) -> Example:
    messages = [*openai_messages(context), target]
    every = list(dict.fromkeys([*refs, *refs_in([json.dumps(messages, ensure_ascii=False)])]))
    return Example(source="synthetic", kind=kind, language=answer_language(text), prompt="assistant",
                   messages=messages, contact_ids=contacts_of(scene.session, every), refs=every)


def first_call(scene: Scene, text: str, call: Call, kind: Kind = "tool_call") -> Example:
    """The model's first reply to the rep's message is this call."""
    context = opening_messages(text, rep=scene.rep, now=scene.now)
    return _example(scene, kind, text, context, call_target(call.name, call.args), refs_in([json.dumps(call.args)]))


def first_reply(scene: Scene, text: str, reply: str, kind: Kind) -> Example:
    """The model's first reply to the rep's message is text (no tool fits, or it must ask or refuse)."""
    context = opening_messages(text, rep=scene.rep, now=scene.now)
    return _example(scene, kind, text, context, text_target(reply), [])


def follow_up(text: str, scene: Scene, call: Call, tool_reply: str, *, error: bool = False) -> list[AnyMessage]:
    """What the next model call sends after ``call`` got ``tool_reply`` (the graph's message list for it)."""
    note = turn_note(rep=scene.rep, now=scene.now, language=answer_language(text))
    reply = ToolMessage(content=tool_reply, tool_call_id=call.id, name=call.name,
                        status="error" if error else "success")
    return model_messages([HumanMessage(content=text), note, call.message(), reply])


def after_result(scene: Scene, text: str, call: Call, result: ToolResult, answer: str,
                 kind: Kind = "answer") -> Example:
    """The model answers from a tool result."""
    context = follow_up(text, scene, call, as_data(call.name, result.data))
    return _example(scene, kind, text, context, text_target(answer), list(result.refs))


def after_error(scene: Scene, text: str, call: Call, ran: Ran, reply: str | Call, kind: Kind) -> Example:
    """The model replies to a failed call: a question to the rep, a refusal, or a corrected call."""
    context = follow_up(text, scene, call, as_error(call.name, ran.error or "", ran.retry), error=True)
    target = call_target(reply.name, reply.args) if isinstance(reply, Call) else text_target(reply)
    return _example(scene, kind, text, context, target, [])


def after_approval(scene: Scene, text: str, call: Call, ran: Ran, answer: str) -> Example:
    """The model confirms (or acknowledges the rejection of) a change after the approval step."""
    assert ran.outcome is not None and ran.result is not None
    context = follow_up(text, scene, call, approval_content(ran.outcome))
    refs = [*ran.result.refs, *([ran.outcome["record"]] if ran.outcome.get("record") else [])]
    return _example(scene, "answer", text, context, text_target(answer), refs)


def after_step(scene: Scene, text: str, first: Call, result: ToolResult, then: Call) -> Example:
    """A second call, made after reading the first call's result (find the record, then open it)."""
    context = follow_up(text, scene, first, as_data(first.name, result.data))
    return _example(scene, "tool_call", text, context, call_target(then.name, then.args), list(result.refs))
