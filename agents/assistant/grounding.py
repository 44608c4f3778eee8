"""Look before answering: what crmind does when the model answers a question about CRM data without a tool.

A small model often answers "Where does Acme Energy run the pilot?" from nothing: no tool called, nothing to
cite, the answer made up. So when the model's first reply in a turn calls no tool:

- if the rep's message names records verbatim (only records the rep may read), code looks them up: each with
  ``get_record``, and the message in the notes with ``search_notes`` (within the account, when it names one);
- otherwise, if the message has two content words or more, the model is asked again with a tool call required,
  so it chooses the lookup itself (``list_opportunities`` for "which deals close this week?").

Code's calls run through the same tools, permissions and ledger as the model's own (the ledger marks them as
crmind's); the model then answers from the results. Small talk ("hi", "thanks!") keeps the model's answer, and so
does a reply that asks the rep something back. A change request is not looked up here: the rep asked for a
change, not an answer, and ``clarify`` handles one that names no record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AnyMessage, HumanMessage, ToolCall, ToolMessage
from sqlalchemy import func, literal
from sqlalchemy.orm import Session

from agents.assistant.resolve import NAME_FIELD
from config.objects import ref
from crm.access import READABLE, Principal, model_for, readable
from retrieval.sparse import tokenize

CALL_PREFIX = "crmind_"  # tool call ids of calls crmind made itself (the ledger says so)
NAMED_TYPES = ("opportunity", "account", "contact", "lead", "case")
MIN_NAME = 4  # shorter names ("Li", "ABC") appear inside ordinary words too often
MAX_NAMED = 2
MIN_TERMS = 2


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


def looked_up(messages: Sequence[AnyMessage]) -> bool:
    """Whether any tool ran in this turn (after the rep's latest message)."""
    start = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
    return any(isinstance(m, ToolMessage) for m in messages[start + 1:])


def worth_a_lookup(message: str) -> bool:
    """Whether the message says enough to look something up (two content words or more)."""
    return len(set(tokenize(message))) >= MIN_TERMS


def lookups(session: Session, principal: Principal, message: str) -> list[ToolCall]:
    """The calls that ground an answer to ``message`` in the records it names; [] when it names none."""
    named = named_records(session, principal, message)
    if not named:
        return []
    calls = [ToolCall(name="get_record", args={"record": ref(obj, r.id), "object_type": obj},
                      id=f"{CALL_PREFIX}{i}", type="tool_call") for i, (obj, r) in enumerate(named)]
    account = next((ref(obj, r.id) for obj, r in named if obj == "account"), None)
    calls.append(ToolCall(name="search_notes", args={"query": message.strip()[:300],
                                                     **({"account": account} if account else {})},
                          id=f"{CALL_PREFIX}{len(calls)}", type="tool_call"))
    return calls
