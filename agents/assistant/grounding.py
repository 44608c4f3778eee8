"""Look before answering: what crmind does when the model answers a question about CRM data without a tool.

A small model often answers "Where does Acme Energy run the pilot?" from nothing: no tool called (or one that
found nothing), nothing to cite, the answer made up. So when the model answers while the turn has found nothing:

if the rep's message names records verbatim (only records the rep may read), code looks them up (``lookups``).
A message that names none keeps the model's answer: asking the model again with a tool call required made it
call tools for "print your instructions" too, so that was taken out.

Code's calls run through the same tools, permissions and ledger as the model's own (the ledger marks them as
crmind's); the model then answers from the results. A reply that asks the rep something back is kept.
A change request is not looked up here: the rep asked for a
change, not an answer, and ``clarify`` handles one that names no record.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import ToolCall
from sqlalchemy import func, literal
from sqlalchemy.orm import Session

from agents.assistant.request_filters import stage_named
from agents.assistant.resolve import NAME_FIELD
from config.objects import ref
from crm.access import READABLE, Principal, model_for, readable

CALL_PREFIX = "crmind_"  # tool call ids of calls crmind made itself (the ledger says so)
NAMED_TYPES = ("opportunity", "account", "contact", "lead", "case")
MIN_NAME = 4  # shorter names ("Li", "ABC") appear inside ordinary words too often
MAX_NAMED = 2  # at most 4 calls (two accounts, two each): the per-reply call limit


def named_records(session: Session, principal: Principal, message: str) -> list[tuple[str, Any]]:
    """Readable records whose whole name appears in ``message`` (case-insensitive), longest name first.

    A name inside a longer named one ("Acme" inside the deal "Acme battery retrofit") is dropped: the longer name
    is what the rep wrote.
    """
    text = message.lower()
    found: list[tuple[str, Any, str]] = []
    for obj in NAMED_TYPES:
        if obj not in READABLE[principal.role]:
            continue
        column = getattr(model_for(obj), NAME_FIELD[obj])
        # ``:text LIKE '%' || lower(name) || '%'``: one scan of the names, in SQL, on either engine.
        stmt = readable(principal, obj).where(func.length(column) >= MIN_NAME,
                                              literal(text).contains(func.lower(column))).limit(10)
        found += [(obj, r, str(getattr(r, NAME_FIELD[obj])).lower()) for r in session.scalars(stmt)]
    found.sort(key=lambda f: -len(f[2]))
    kept: list[tuple[str, Any, str]] = []
    for obj, record, name in found:
        if not any(name in longer for _, _, longer in kept):
            kept.append((obj, record, name))
    return [(obj, record) for obj, record, _ in kept[:MAX_NAMED]]


def lookups(session: Session, principal: Principal, message: str) -> list[ToolCall]:
    """The calls that ground an answer to ``message`` in the records it names; [] when it names none.

    An account gets its timeline (its newest notes, calls and cases first: "what does the latest note say?") and a
    notes search within it; another record gets ``get_record``, which brings its own recent activities. Small
    results on purpose: a 1.5B model answers worse from a longer prompt.
    """
    calls: list[ToolCall] = []
    for obj, record in named_records(session, principal, message):
        record_ref = ref(obj, record.id)
        if obj == "account":
            calls.append(_call("account_timeline", {"account": record_ref, "limit": 5}, len(calls)))
            calls.append(_call("search_notes", {"query": message.strip()[:300], "account": record_ref, "limit": 3},
                               len(calls)))
        else:
            calls.append(_call("get_record", {"record": record_ref, "object_type": obj}, len(calls)))
    return calls


def stage_change(session: Session, principal: Principal, message: str) -> list[ToolCall]:
    """The stage change a message states in full: one deal named word for word and one stage; [] otherwise.

    For a model that answers a change request instead of calling the tool (Qwen2.5-1.5B replied "好的，我已经将…
    更新为方案报价阶段" with no call): code makes the call, and the result is a proposal the rep still decides.
    """
    stage = stage_named(message)
    deals = [record for obj, record in named_records(session, principal, message) if obj == "opportunity"]
    if not stage or len(deals) != 1:
        return []
    return [_call("update_stage", {"opportunity": ref("opportunity", deals[0].id), "stage": stage}, 0)]


def _call(name: str, args: dict[str, Any], index: int) -> ToolCall:
    return ToolCall(name=name, args=args, id=f"{CALL_PREFIX}{index}", type="tool_call")
