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
from sqlalchemy import func, literal, union_all
from sqlalchemy.orm import Session

from agents.assistant.request_filters import stage_named
from agents.assistant.resolve import NAME_FIELD
from config.objects import ref
from crm.access import READABLE, Principal, model_for, readable

CALL_PREFIX = "crmind_"  # tool call ids of calls crmind made itself (the ledger says so)
NAMED_TYPES = ("opportunity", "account", "contact", "lead", "case")
MIN_NAME = 4  # shorter names ("Li", "ABC") appear inside ordinary words too often
MAX_NAMED = 2  # at most 4 calls (two accounts, two each): the per-reply call limit
_NAMED_MEMO = "crmind.named_records"  # session.info: (principal, message) -> named_records' answer


def named_records(session: Session, principal: Principal, message: str) -> list[tuple[str, Any]]:
    """Readable records whose whole name appears in ``message`` (case-insensitive), longest name first.

    A name inside a longer named one ("Acme" inside the deal "Acme battery retrofit") is dropped: the longer name
    is what the rep wrote. Kept for the session (one transaction): a turn's checks ask it more than once.
    """
    memo = session.info.setdefault(_NAMED_MEMO, {})
    if (principal, message) not in memo:
        memo[(principal, message)] = _named_records(session, principal, message)
    return list(memo[(principal, message)])


def _named_records(session: Session, principal: Principal, message: str) -> list[tuple[str, Any]]:
    text = message.lower()
    # One query over every readable kind (a UNION of the names only), then the kept records by id: two round
    # trips for a message naming one record, one for a message naming none (a query per kind before). An index on
    # the names' first characters was tried: at demo scale 1 it was 0.7 ms slower per call on PostgreSQL than this
    # scan, whose database time is about 1 ms (the rest is SQLAlchemy's), so it was taken out.
    names = []
    for obj in (o for o in NAMED_TYPES if o in READABLE[principal.role]):
        model: Any = model_for(obj)
        column = getattr(model, NAME_FIELD[obj])
        names.append(readable(principal, obj).with_only_columns(
            literal(obj).label("obj"), model.id.label("id"), func.lower(column).label("name"))
            # ``:text LIKE '%' || lower(name) || '%'``: one scan of the names, in SQL, on either engine.
            .where(func.length(column) >= MIN_NAME, literal(text).contains(func.lower(column))).limit(10))
    if not names:
        return []
    found = [(str(obj), int(ident), str(name))
             for obj, ident, name in session.execute(union_all(*(n.subquery().select() for n in names)))]
    # LIKE reads "_" and "%" in a name as wildcards: keep only names that really are in the message
    found = [f for f in found if f[2] in text]
    found.sort(key=lambda f: (-len(f[2]), NAMED_TYPES.index(f[0]), f[1]))  # longest first; ties in a fixed order
    kept: list[tuple[str, int, str]] = []
    for obj, ident, name in found:
        if not any(name in longer for _, _, longer in kept):
            kept.append((obj, ident, name))
    return [(obj, session.get_one(model_for(obj), ident)) for obj, ident, _ in kept[:MAX_NAMED]]


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
