"""The rep's assistant: begin turn -> model <-> tools (-> approval interrupts) -> answer with checked citations.

```
START -> begin_turn -> agent -> tools -> agent ... -> finalize -> END
                         |        '-> approve (interrupt, once per proposal) -> agent
                         '-> give_up (step limit, failing tools, model unavailable) -> END
```
Export: ``graph`` (compiled, no checkpointer: for ``langgraph.json``) and ``build_graph(checkpointer=...)``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import httpx
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    AnyMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_chunk_to_message,
)
from langchain_core.runnables import Runnable
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import ValidationError

import ledger
from agents.assistant.addressed import flag_addressed
from agents.assistant.citations import Checked, check, link
from agents.assistant.clarify import (
    APPROVAL_DATA,
    asks,
    asks_back,
    choices,
    names_a_record,
    question,
    shown_refs,
    target_kind,
)
from agents.assistant.context import Context
from agents.assistant.fallback import (
    cite_named_records,
    cite_quoted_text,
    cite_stated_values,
    echoes,
    gives_up,
    looks_like_a_call,
    records_answer,
    tool_data,
)
from agents.assistant.figures import answer_problem
from agents.assistant.grounding import CALL_PREFIX, lookups, stage_change
from agents.assistant.intent import allowed_tools
from agents.assistant.language import LANGUAGE_NAMES, Language, answer_language
from agents.assistant.state import Decision, InputState, State, this_turn
from agents.assistant.state import message_text as text_of
from agents.assistant.tools import TOOL_SCHEMAS, TOOLS_BY_NAME, Refused, ToolEnv, ToolResult
from agents.errors import AgentError, ThreadNotFound, ToolInputError
from config.db import transaction
from config.errors import CrmindError
from config.objects import ref
from crm.access import Principal
from crm.errors import InvalidInput
from crm.proposals import approve as approve_proposal
from crm.proposals import get_proposal, proposal_view
from crm.proposals import reject as reject_proposal
from prompts.loader import load_prompt

SYSTEM = load_prompt("assistant_system")
TURN_NOTE = load_prompt("assistant_turn")
NOTE_START = TURN_NOTE.render(today="", weekday="", rep="", language="").split(":", 1)[0]  # "Note from crmind, ..."
# Built once: the same object, the same bytes, first in every model call (KV-cache reuse on llama.cpp).
SYSTEM_MESSAGE = SystemMessage(content=SYSTEM.render())

# A rep message this short with no request of its own answers the assistant's question ("the CNY one", "yes"), so
# it keeps the change the rep asked for in the turn before; it never adds one.
SHORT_REPLY_CHARS = 40
COULD_NOT = {
    "en": "I couldn't complete this: {reason}. I won't guess an answer; please rephrase or narrow the question.",
    "zh": "抱歉，这次没能完成：{reason}。我不会猜测答案，请换个说法或缩小问题范围。",
}
MAX_TURNS_SHOWN = 6
EARLIER_RESULT = "(result from an earlier turn, not shown again; call the tool again if you need it)"
NOTHING_CHANGED = {
    "en": "(No change was proposed in this turn, so nothing in the CRM has changed.)",
    "zh": "（本轮没有提出任何修改，CRM 中的数据没有变化。）",
}
APPLIED = {"en": "Applied: {refs}.", "zh": "已应用：{refs}。"}
REPEATED = "This exact call already ran in this turn; its result is above. Do not call it again."
ANSWER_NOW = {
    "en": SystemMessage(content="Answer the rep now from the tool results above, citing the records you use. "
                                "If they do not answer the question, say what is missing."),
    "zh": SystemMessage(content="现在请根据上面的工具结果回答销售代表，并引用所用的记录。"
                                "如果结果无法回答问题，请说明缺少什么。"),
}
REASONS = {
    "step_limit": {"en": "it needed more steps than a turn allows", "zh": "所需步骤超出了单轮上限"},
    "tool_failures": {"en": "too many of my lookups failed", "zh": "多次调用工具失败"},
    "model_error": {"en": "the language model is not available right now", "zh": "语言模型暂时不可用"},
    "empty_answer": {"en": "the model gave no answer", "zh": "模型没有给出回答"},
}


# ---------------------------------------------------------------- helpers
def _ctx(runtime: Runtime[Context]) -> Context:
    if runtime.context is None:
        raise AgentError("the assistant runs with a Context that names the caller's principal")
    return runtime.context


def rep_message(state: State) -> str:
    """The rep's latest message."""
    for message in reversed(state.messages):
        if isinstance(message, HumanMessage):
            return text_of(message)
    return ""


def rep_label(principal: Principal) -> str:
    """How the turn note names the rep: ``Wang Fang (user:3)``."""
    return f"{principal.name or principal.actor} ({principal.actor})"


def turn_note(*, rep: str, now: datetime, language: Language) -> SystemMessage:
    """The note crmind adds after the rep's message: today's date, who the rep is, the language to answer in."""
    return SystemMessage(content=TURN_NOTE.render(today=now.date().isoformat(), weekday=now.strftime("%A"), rep=rep,
                                                  language=LANGUAGE_NAMES[language]))


def with_tools(model: Any) -> Runnable[Any, Any]:
    """The chat model with every assistant tool bound, as in each model call that may call tools."""
    bound: Runnable[Any, Any] = model.bind_tools(list(TOOL_SCHEMAS), tool_choice="auto")
    return bound


def warm_prefix(model: Any) -> None:
    """Send the fixed prefix (system prompt + tool schemas) once, as every tool-calling model call starts.

    llama.cpp keeps the tokens it evaluated last and reuses the longest common prefix of the next request, so
    after this the first question evaluates only its own tokens: about 5,600 tokens less, minutes on 2 cores.
    Give a model limited to one token; its reply is thrown away.
    """
    with_tools(model).invoke([SYSTEM_MESSAGE, HumanMessage(content="hi")])


def model_messages(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """What a model call sends: the fixed system prompt, then the conversation as the model sees it."""
    return [SYSTEM_MESSAGE, *notes_first(for_model(list(messages)))]


def notes_first(messages: list[AnyMessage]) -> list[AnyMessage]:
    """Each turn note just before the rep's message it belongs to (the state keeps it after).

    With the note last, the model's reply followed a system turn, and Qwen2.5-1.5B answered 3 of 5 first calls by
    repeating the note; the rep's message last is the order chat models are trained on.
    """
    out = list(messages)
    for i in range(1, len(out)):
        note, before = out[i], out[i - 1]
        if isinstance(note, SystemMessage) and text_of(note).startswith(NOTE_START) and isinstance(before,
                                                                                                  HumanMessage):
            out[i - 1], out[i] = note, before
    return out


def opening_messages(text: str, *, rep: str, now: datetime, language: Language | None = None) -> list[AnyMessage]:
    """The first model call of a new conversation: system prompt, the turn note, then the rep's message.

    The tools eval sends exactly this (with ``with_tools``), so it grades the prompt the assistant really uses.

    Args:
        text: the rep's message.
        rep: the rep as the note names them (``rep_label``).
        now: the turn's time (relative dates resolve against it).
        language: the answer language; by default read from ``text`` as ``begin_turn`` does.
    """
    note = turn_note(rep=rep, now=now, language=language or answer_language(text))
    return model_messages([HumanMessage(content=text), note])


def as_data(source: str, payload: Any) -> str:
    """Tool output wrapped as data; ``<`` is escaped so record text cannot close the wrapper."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).replace("<", "\\u003c")
    return f'<data source="{source}">\n{body}\n</data>'


ERROR_HINTS = ("Correct the call or ask the rep.", "Do not call it again for this; tell the rep.")


def as_error(tool: str, message: str, retry: bool) -> str:
    """A tool error for the model: what went wrong, and whether correcting the call can help."""
    hint = ERROR_HINTS[0] if retry else ERROR_HINTS[1]
    return f'<error tool="{tool}">{message.replace("<", "‹")}</error>\n{hint}'


def _is_model_failure(exc: Exception) -> bool:
    """Errors a model call can fail with (engine down, timeout, unparsable output), not programming errors."""
    openai = sys.modules.get("openai")
    # An engine that fails mid-stream (e.g. the prompt outgrew its context) ends the stream with no chunks.
    empty_stream = isinstance(exc, ValueError) and "No generation chunks" in str(exc)
    return empty_stream or isinstance(exc, CrmindError | httpx.HTTPError | TimeoutError | OutputParserException) or (
        openai is not None and isinstance(exc, openai.OpenAIError))


def _answer_row(ctx: Context, state: State, text: str, *, citations: list[str], stripped: list[str],
                grounded: bool, stop_reason: str | None = None, replaced: str | None = None) -> str:
    """The answer's ledger row; ``replaced``: why the model's own answer was not shown, and what it said."""
    with transaction(ctx.engine, durable=False) as session:  # a record of what was said: see transaction()
        row = ledger.append(session, kind="agent_answer", actor="assistant", parent_id=state.turn_id,
                            thread_id=ctx.thread_id, input_summary=text[:2000],
                            output={"text": text, "citations": citations, "stripped": stripped, "grounded": grounded,
                                    "language": state.language, "stop_reason": stop_reason,
                                    **({"replaced": replaced} if replaced else {})},
                            evidence=citations, model_id=state.model_id, prompt=SYSTEM.ref)
    return row.id


# ---------------------------------------------------------------- nodes
def begin_turn(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Start a turn: check the owner, read the rep's language and write intent (in code), open the ledger turn."""
    ctx = _ctx(runtime)
    p = ctx.principal
    if not state.messages or not isinstance(state.messages[-1], HumanMessage):
        raise AgentError("a turn starts with the rep's message")
    if state.owner_id is not None and state.owner_id != p.user_id:
        raise ThreadNotFound("conversation not found")
    text = rep_message(state)
    language = answer_language(text)
    allowed = allowed_tools(text)
    if not allowed and len(text) <= SHORT_REPLY_CHARS:  # "the first one", "yes, do it": answering our question
        allowed = list(state.allowed_writes)
    now = ctx.now()
    with transaction(ctx.engine, durable=False) as session:
        row = ledger.append(session, kind="agent_turn", actor=p.actor, thread_id=ctx.thread_id,
                            input_summary=text, output={"language": language, "allowed_writes": allowed},
                            prompt=SYSTEM.ref)
    note = turn_note(rep=rep_label(p), now=now, language=language)
    return {"messages": [note], "owner_id": p.user_id, "turn_id": row.id, "language": language,
            "allowed_writes": allowed, "evidence": [], "pending": [], "rejected": [], "approval_error": None,
            "failures": 0, "model_calls": 0, "calls_done": [], "answer_now": False, "proposals_made": 0,
            "stop_reason": None, "grounded": None, "citations": [], "model_id": None}


def call_model(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """One model call: the fixed prefix (system prompt + tool schemas), then the conversation."""
    ctx = _ctx(runtime)
    if state.model_calls >= ctx.max_model_calls:
        return {"stop_reason": "step_limit"}
    model = ctx.chat_model(state.turn_id, SYSTEM.ref)
    model_id = getattr(model, "model_name", None) or type(model).__name__
    # Small models tend to call the same tool again instead of answering; the step before the limit, and
    # after a repeated call, the model sees no tools and answers from the results it has.
    last_chance = state.model_calls + 1 >= ctx.max_model_calls
    tool_free = state.answer_now or (last_chance and state.model_calls > 0)
    if tool_free:
        bound: Runnable[Any, Any] = model
        messages = [*model_messages(state.messages), ANSWER_NOW[state.language]]
    else:
        bound = with_tools(model)
        messages = model_messages(state.messages)
    try:
        reply = _streamed(bound, messages, runtime)
    except Exception as exc:
        if not _is_model_failure(exc):
            raise
        return {"stop_reason": "model_error", "model_calls": state.model_calls + 1, "model_id": model_id}
    if tool_free and (reply.tool_calls or reply.invalid_tool_calls):  # it still wants tools: stop honestly
        return {"stop_reason": "step_limit", "model_calls": state.model_calls + 1, "model_id": model_id}
    calls_made = state.model_calls + 1
    if not (tool_free or reply.tool_calls or reply.invalid_tool_calls or state.allowed_writes
            or asks_back(text_of(reply)) or state.evidence):  # an answer from nothing found: look first
        message = rep_message(state)
        with transaction(ctx.engine, durable=False) as session:
            calls = lookups(session, ctx.principal, message)
        if calls:
            reply = AIMessage(content="", tool_calls=calls)
    elif (not (tool_free or reply.tool_calls or reply.invalid_tool_calls or asks_back(text_of(reply)))
          and "update_stage" in state.allowed_writes and state.proposals_made == 0):
        # a stage change the rep stated in full, answered without a call ("I have moved it"): propose it
        with transaction(ctx.engine, durable=False) as session:
            calls = stage_change(session, ctx.principal, rep_message(state))
        if calls:
            reply = AIMessage(content="", tool_calls=calls)
    return {"messages": [reply], "model_calls": calls_made, "model_id": model_id, "answer_now": False}


def for_model(messages: list[AnyMessage], keep_turns: int = MAX_TURNS_SHOWN) -> list[AnyMessage]:
    """The conversation as the model sees it: the last ``keep_turns`` turns, earlier turns' tool results elided.

    Only this turn's results can be cited, and a long thread would otherwise outgrow the model's context (a
    list of deals is about a thousand tokens). The stored conversation keeps everything.
    """
    starts = [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
    if not starts:
        return list(messages)
    first = starts[-keep_turns] if len(starts) >= keep_turns else starts[0]
    current = starts[-1]
    return [m.model_copy(update={"content": EARLIER_RESULT}) if isinstance(m, ToolMessage) and i < current else m
            for i, m in enumerate(messages) if i >= first]


def _streamed(bound: Runnable[Any, Any], messages: list[AnyMessage], runtime: Runtime[Context]) -> AIMessage:
    """Call the model streaming: text pieces go out as ``token`` events (a draft), the whole reply is returned."""
    full: AIMessageChunk | None = None
    for chunk in bound.stream(messages):
        full = chunk if full is None else full + chunk
        piece = text_of(chunk)
        if piece and not full.tool_call_chunks:
            runtime.stream_writer({"type": "token", "text": piece})
    if full is None:
        raise AgentError("the model returned nothing")
    reply = message_chunk_to_message(full)
    if not isinstance(reply, AIMessage):
        raise AgentError(f"the model returned a {type(reply).__name__}")
    return reply


def run_tools(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Run the model's tool calls as the caller; write tools need the rep's request and leave proposals pending."""
    ctx = _ctx(runtime)
    last = state.messages[-1]
    if not isinstance(last, AIMessage) or not (last.tool_calls or last.invalid_tool_calls):
        raise AgentError("the tools step needs a model reply with tool calls")
    message = rep_message(state)
    evidence, pending = list(state.evidence), list(state.pending)
    failures, made = state.failures, state.proposals_made
    done, answer_now = list(state.calls_done), False
    replies: list[ToolMessage] = []
    for i, call in enumerate(last.tool_calls):
        name, call_id, raw = call["name"], call.get("id") or f"call_{i}", call.get("args") or {}
        key = f"{name} {json.dumps(raw, ensure_ascii=False, sort_keys=True, default=str)}"
        if key in done:  # a read whose result, or a call whose error, is already in the conversation
            answer_now = True
            replies.append(ToolMessage(content=REPEATED, tool_call_id=call_id, name=name))
            runtime.stream_writer({"type": "tool_step", "tool": name, "args": raw, "ok": True,
                                   "summary": "already done in this turn", "refs": []})
            continue
        if name in TOOLS_BY_NAME and not TOOLS_BY_NAME[name].writes:  # writes have their own guards
            done.append(key)
        started = time.perf_counter()
        try:
            result = _run_one(ctx, state, name, call_id, raw, i, message, evidence, made, started)
        except (ValidationError, CrmindError) as exc:
            failures += 1
            if key not in done:  # the same failing call again gets the same error: not run a third time
                done.append(key)
            error, retry = _explain(exc)
            _record_call(ctx, state, name, raw, started, ok=False, error=error)
            replies.append(ToolMessage(content=as_error(name, error, retry), tool_call_id=call_id, name=name,
                                       status="error"))
            runtime.stream_writer({"type": "tool_step", "tool": name, "args": raw, "ok": False, "summary": error,
                                   "refs": []})
            continue
        evidence += [r for r in result.refs if r not in evidence]
        runtime.stream_writer({"type": "tool_step", "tool": name, "args": raw, "ok": True,
                               "summary": result.summary, "refs": result.refs[:50]})
        if result.proposal_id is not None:
            made += 1
            pending.append({"proposal_id": result.proposal_id, "tool_call_id": call_id, "tool": name,
                            "target": result.target, "shown": result.data["proposal"]})
        else:
            content = as_data(name, flag_addressed(result.data))
            replies.append(ToolMessage(content=content, tool_call_id=call_id, name=name))
    for i, bad in enumerate(last.invalid_tool_calls):  # arguments that did not parse (e.g. cut off at max_tokens)
        failures += 1
        name = bad.get("name") or "unknown"
        error = f"the arguments are not valid JSON ({bad.get('error') or 'cut off?'})"
        _record_call(ctx, state, name, {"raw": bad.get("args")}, time.perf_counter(), ok=False, error=error)
        replies.append(ToolMessage(content=as_error(name, error, True), tool_call_id=bad.get("id") or f"invalid_{i}",
                                   name=name, status="error"))
    stop = "tool_failures" if failures > ctx.max_failed_calls else None
    return {"messages": replies, "evidence": evidence, "pending": pending, "failures": failures,
            "proposals_made": made, "stop_reason": stop, "calls_done": done, "answer_now": answer_now}


def _run_one(ctx: Context, state: State, name: str, call_id: str, raw: dict[str, Any], index: int, message: str,
             evidence: list[str], made: int, started: float) -> ToolResult:
    tool = TOOLS_BY_NAME.get(name)
    if index >= ctx.max_calls_per_step:
        raise Refused(f"at most {ctx.max_calls_per_step} tool calls per reply; call the rest after these results")
    if tool is None:
        raise ToolInputError(f"there is no tool '{name}'; the tools are {', '.join(TOOLS_BY_NAME)}")
    args = tool.args.model_validate(raw)
    if tool.writes and name not in state.allowed_writes:
        raise Refused("the rep's message did not ask for this change, so it is not proposed. Answer what the rep "
                      "asked; you may offer the change in words")
    if tool.writes and made >= ctx.max_proposals:
        raise Refused(f"at most {ctx.max_proposals} changes per turn; the assistant makes no bulk changes")
    # A read is only recorded; a write tool's proposal is a decision, committed durably.
    with transaction(ctx.engine, durable=tool.writes) as session:
        targets = None if not tool.writes or names_a_record(session, ctx.principal, message) else shown_refs(
            state.messages)
        env = ToolEnv(session=session, principal=ctx.principal, now=ctx.now(), thread_id=ctx.thread_id,
                      turn_id=state.turn_id, tool_call_id=call_id, message=message, evidence=evidence,
                      rejected=frozenset(state.rejected), search=ctx.search, model_id=state.model_id,
                      targets=targets)
        result = tool.run(env, args)
        ledger.append(session, kind="tool_call", actor="assistant", parent_id=state.turn_id, thread_id=ctx.thread_id,
                      input_summary=f"{name} {json.dumps(raw, ensure_ascii=False, default=str)}"[:2000],
                      output={"ok": True, "summary": result.summary, "proposal_id": result.proposal_id,
                              "retrieval_decision": result.retrieval_decision,
                              "called_by": "crmind" if call_id.startswith(CALL_PREFIX) else "model"},
                      evidence=result.refs[:200], latency_ms=(time.perf_counter() - started) * 1000,
                      model_id=state.model_id, prompt=SYSTEM.ref)
    return result


def _explain(exc: Exception) -> tuple[str, bool]:
    """A message the model can act on, and whether a corrected call can succeed."""
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(str(x) for x in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()[:5]]
        return "invalid arguments: " + "; ".join(parts), True
    message = getattr(exc, "message", str(exc))
    return message, not isinstance(exc, Refused)


def _record_call(ctx: Context, state: State, name: str, raw: dict[str, Any], started: float, *, ok: bool,
                 error: str) -> None:
    with transaction(ctx.engine, durable=False) as session:  # a failed call changed nothing
        ledger.append(session, kind="tool_call", actor="assistant", parent_id=state.turn_id, thread_id=ctx.thread_id,
                      input_summary=f"{name} {json.dumps(raw, ensure_ascii=False, default=str)}"[:2000],
                      output={"ok": ok, "error": error[:1000]}, latency_ms=(time.perf_counter() - started) * 1000,
                      model_id=state.model_id, prompt=SYSTEM.ref)


def approve(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Put the first pending proposal in front of the rep (``interrupt``), then apply or reject it.

    The node runs again from the top when resumed, so nothing before ``interrupt`` has side effects. The card
    shown is the proposal as the tools step made it; the decision's transaction reads it afresh, so a proposal
    decided elsewhere meanwhile (``/v1/proposals``, another tab) is reported as it stands, not decided again.
    """
    ctx = _ctx(runtime)
    p = ctx.principal
    item, rest = state.pending[0], state.pending[1:]
    shown = item.get("shown")
    if shown is None:  # a conversation checkpointed before the card rode along with the pending item
        with transaction(ctx.engine) as session:
            shown = proposal_view(p, get_proposal(session, p, item["proposal_id"]))
    status = shown["status"]
    decision: Decision | None = None
    error: str | None = None
    if status == "pending" and not shown["requires_human"]:
        raw = interrupt({"proposal": shown, "tool": item["tool"], "error": state.approval_error})
        try:
            decision = Decision.model_validate(raw)
        except ValidationError as exc:
            return {"approval_error": _explain(exc)[0]}
        if decision.proposal_id not in (None, item["proposal_id"]):
            return {"approval_error": f"proposal {decision.proposal_id} is not the one waiting; "
                                      f"decide on proposal {item['proposal_id']}"}
        try:
            with transaction(ctx.engine) as session:
                proposal = get_proposal(session, p, item["proposal_id"])
                if proposal.status == "pending":
                    if decision.action == "reject":
                        proposal = reject_proposal(session, p, item["proposal_id"], decision.reason)
                    else:
                        proposal = approve_proposal(session, p, item["proposal_id"],
                                                    edits=decision.edits if decision.action == "edit" else None)
                else:
                    decision = None  # decided elsewhere while the card waited: report that, decide nothing
                shown, status = proposal_view(p, proposal), proposal.status
        except InvalidInput as exc:  # an edit that does not validate: ask again, saying why
            return {"approval_error": exc.message}
        except CrmindError as exc:  # stale record, decided concurrently, not allowed
            error = exc.message
    outcome: dict[str, Any] = {"proposal": item["proposal_id"], "status": status}
    if shown["record_id"]:  # the record the rep saw on the proposal card (see clarify.shown_refs)
        outcome["record"] = ref(shown["object_type"], shown["record_id"])
    if error:
        outcome["status"], outcome["error"] = "not applied", error
    elif status == "applied":
        outcome["edited"] = bool(decision and decision.action == "edit")
        outcome["changes"] = shown["changes"]
    elif status == "rejected":
        outcome["reason"] = decision.reason if decision else ""
    elif status == "pending":
        outcome["status"] = "waiting for a manager's approval"
    note = {"applied": "Applied. Confirm it to the rep.",
            "rejected": "The rep rejected this change. Do not propose it again in this turn."}.get(status, "")
    content = as_data("approval", outcome) + (f"\n{note}" if note and not error else "")
    reply = ToolMessage(content=content, tool_call_id=item["tool_call_id"], name=item["tool"],
                        status="error" if error else "success")
    refs = [f"proposal:{item['proposal_id']}"] + (
        [outcome["record"]] if outcome.get("record") and shown["record_id"] else [])
    runtime.stream_writer({"type": "tool_step", "tool": item["tool"], "args": {}, "ok": not error,
                           "summary": f"proposal:{item['proposal_id']} {outcome['status']}", "refs": refs})
    rejected = state.rejected + ([item["target"]] if status == "rejected" and item.get("target") else [])
    return {"messages": [reply], "pending": rest, "rejected": rejected, "approval_error": None,
            "evidence": state.evidence + [r for r in refs if r not in state.evidence]}


def applied_records(messages: Sequence[AnyMessage]) -> list[str]:
    """The records changed by proposals the rep approved since their last message (from the approval step)."""
    done: list[str] = []
    for m in this_turn(messages):
        outcome = tool_data(m) if text_of(m).startswith(APPROVAL_DATA) else None
        if isinstance(outcome, dict) and outcome.get("status") == "applied" and outcome.get("record") \
                and outcome["record"] not in done:
            done.append(str(outcome["record"]))
    return done


def finalize(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Check the answer's citations against this turn's evidence, strip unknown ones, record the answer."""
    ctx = _ctx(runtime)
    last = state.messages[-1]
    if not isinstance(last, AIMessage):
        raise AgentError("finalize needs the model's answer")
    # A small model sometimes repeats crmind's turn note, or a tool error's hint, as its answer: not an answer.
    said = "\n".join(line for line in text_of(last).splitlines()
                     if not line.startswith(NOTE_START) and line.strip() not in ERROR_HINTS).strip()
    cited = cite_quoted_text(cite_named_records(said, state.messages), state.messages)
    checked = check(cite_stated_values(cited, state.messages), state.evidence)
    echoed = echoes(said, rep_message(state))
    if (not checked.grounded and looks_like_a_call(checked.text)) or echoed:
        # no answer (a call as text, or the rep's request said back): show the records
        shown = records_answer("" if echoed else checked.text, state.messages, state.language)
        if shown is not None:
            checked = check(shown, state.evidence)
    replaced = answer_problem(checked.text, state.messages)
    if replaced:  # a figure no tool returned (a currency swapped, a sum made up): the records, without the prose
        shown = records_answer("", state.messages, state.language)
        if shown is None:
            replaced = None
        else:
            checked = check(shown, state.evidence)
    if not replaced and not checked.citations and gives_up(checked.text):
        # "抱歉，我无法回答这个问题。" about a deal its lookup found: the apology stays, the records follow, cited
        shown = records_answer(checked.text, state.messages, state.language)
        if shown is not None:
            replaced, checked = "gave up with records found", check(shown, state.evidence)
    kind = target_kind(rep_message(state), state.allowed_writes) if state.proposals_made == 0 else None
    asked = False
    if kind and not asks(checked.text) and not checked.citations:  # a cited answer stands (a misread request)
        with transaction(ctx.engine, durable=False) as session:
            named = names_a_record(session, ctx.principal, rep_message(state))
            found = [] if named else choices(session, ctx.principal, kind)
        if not named:  # a change to no record the rep named: ask which, never guess (see clarify)
            replaced, asked = replaced or f"asked which {kind}", True
            checked = check(question(kind, state.language, found), [*state.evidence, *(r["ref"] for r in found)])
    if state.allowed_writes and state.proposals_made == 0 and checked.text and not asked:
        # The rep asked for a change and nothing was proposed: whatever the model wrote, say so plainly (the 1.5B
        # once answered "I have changed the stage" without calling any tool).
        checked = Checked(f"{checked.text}\n\n{NOTHING_CHANGED[state.language]}", checked.citations, checked.stripped)
    if (done := applied_records(state.messages)) and not checked.citations:
        # "好的，确认。" after the rep approved: the answer names nothing, so say what was applied, cited
        line = APPLIED[state.language].format(refs=", ".join(f"[{r}]" for r in done))
        checked = check(f"{checked.text}\n\n{line}".strip(), state.evidence)
    if not checked.text:  # nothing left once unknown citations are stripped
        checked = Checked(COULD_NOT[state.language].format(reason=REASONS["empty_answer"][state.language]), [],
                          checked.stripped)
    turn_answer = _answer_row(ctx, state, checked.text, citations=checked.citations, stripped=checked.stripped,
                              grounded=checked.grounded, replaced=replaced and f"{replaced}: {said[:1000]}")
    for cited in checked.citations:
        runtime.stream_writer({"type": "citation", "ref": cited, "link": link(cited)})
    runtime.stream_writer({"type": "answer", "text": checked.text, "citations": checked.citations,
                           "stripped": checked.stripped, "grounded": checked.grounded, "language": state.language,
                           "turn_id": state.turn_id, "decision_id": turn_answer})
    return {"messages": [last.model_copy(update={"content": checked.text})], "grounded": checked.grounded,
            "citations": checked.citations}


def give_up(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """An honest "I couldn't", in the rep's language; never a made-up answer."""
    ctx = _ctx(runtime)
    reason = state.stop_reason or "step_limit"
    text = COULD_NOT[state.language].format(reason=REASONS[reason][state.language])
    decision = _answer_row(ctx, state, text, citations=[], stripped=[], grounded=False, stop_reason=reason)
    runtime.stream_writer({"type": "answer", "text": text, "citations": [], "stripped": [], "grounded": False,
                           "language": state.language, "turn_id": state.turn_id, "decision_id": decision})
    return {"messages": [AIMessage(content=text)], "grounded": False, "citations": [], "stop_reason": reason}


# ---------------------------------------------------------------- routing
def route_model(state: State) -> Literal["tools", "finalize", "give_up"]:
    """After a model call: run its tool calls, or check its answer, or stop."""
    if state.stop_reason:
        return "give_up"
    last = state.messages[-1]
    if not isinstance(last, AIMessage):
        raise AgentError(f"expected the model's reply after the agent step, got {type(last).__name__}")
    return "tools" if last.tool_calls or last.invalid_tool_calls else "finalize"


def route_tools(state: State) -> Literal["approve", "agent", "give_up"]:
    """After tools (or an approval): ask about the next proposal, stop, or let the model continue."""
    if state.pending:
        return "approve"
    if state.stop_reason:
        return "give_up"
    last = state.messages[-1]
    if not isinstance(last, ToolMessage):
        raise AgentError(f"expected tool results before the next model call, got {type(last).__name__}")
    return "agent"


# ---------------------------------------------------------------- the graph
def build_graph(checkpointer: BaseCheckpointSaver[Any] | None = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the assistant; give a checkpointer to keep conversations (and pending approvals) across runs."""
    builder = StateGraph(State, input_schema=InputState, context_schema=Context)
    builder.add_node("begin_turn", begin_turn)
    builder.add_node("agent", call_model)
    builder.add_node("tools", run_tools)
    builder.add_node("approve", approve)
    builder.add_node("finalize", finalize)
    builder.add_node("give_up", give_up)
    builder.add_edge(START, "begin_turn")
    builder.add_edge("begin_turn", "agent")
    builder.add_conditional_edges("agent", route_model)
    builder.add_conditional_edges("tools", route_tools)
    builder.add_conditional_edges("approve", route_tools)
    builder.add_edge("finalize", END)
    builder.add_edge("give_up", END)
    return builder.compile(checkpointer=checkpointer, name="crmind-assistant")


graph = build_graph()
