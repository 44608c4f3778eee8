"""The assistant's tools: argument schemas (what the model sees and the grammar constrains) and their code.

Every tool runs as the caller's ``Principal`` from the run context, never from model arguments, through the one
permission point in ``crm.access``: a record the caller may not read is "not found", as in the API. Read tools
return data and the references it came from; write tools return proposals (``crm.proposals.propose``), which the
graph puts in front of the rep; nothing here writes to the CRM directly.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, TypeVar, get_args

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Boolean, Date, DateTime, Integer, Numeric, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from agents.assistant.dates import resolve_date, resolve_range
from agents.assistant.grounding import named_records
from agents.assistant.money import format_money, parse_amount
from agents.assistant.request_filters import activity_kind_named, amount_bounds, same_amount, says_mine, stage_named
from agents.assistant.resolve import NAME_FIELD, resolve, resolve_owner, similar
from agents.errors import AgentError, ToolInputError
from config.objects import ref
from config.settings import get_settings
from crm.access import READABLE, Principal, model_for, readable, row_filter, view, writable_fields
from crm.errors import NotFound
from crm.fields import CHOICES
from crm.models import Account, Activity, Case, Contact, Lead, Opportunity, User
from crm.proposals import CLOSE_FIELDS, CLOSED_VALUES, LINK_FIELDS, proposal_view, propose
from crm.queries import escape_like

Stage = Literal["prospecting", "qualification", "needs_analysis", "proposal", "negotiation", "closed_won",
                "closed_lost"]
LeadStatus = Literal["new", "working", "qualified", "converted", "disqualified"]
CaseStatus = Literal["new", "open", "pending", "escalated", "closed"]
CasePriority = Literal["low", "medium", "high", "urgent"]
ActivityKind = Literal["call", "email", "meeting", "note"]
AnyActivityKind = Literal["call", "email", "meeting", "note", "task"]
FindType = Literal["account", "contact", "lead", "opportunity", "case"]
# The grammar constrains the model to these sets; they must be the CRM's own.
assert get_args(Stage) == CHOICES[("opportunity", "stage")]
assert get_args(LeadStatus) == CHOICES[("lead", "status")]
assert get_args(CaseStatus) == CHOICES[("case", "status")]
assert get_args(CasePriority) == CHOICES[("case", "priority")]
assert set(get_args(ActivityKind)) < set(CHOICES[("activity", "kind")])
assert get_args(AnyActivityKind) == CHOICES[("activity", "kind")]

FOLLOW_UP_KIND = "task"
FOLLOW_UP_HOUR = time(9, 0)
KEYWORD_TERMS, KEYWORD_CANDIDATES = 12, 200  # the keyword fallback's query terms, and the rows it ranks
MAX_TEXT = 400  # characters of free text per item in tool output: small models, small prompts
SearchFn = Callable[..., tuple[list[Any], str]]


class Refused(AgentError):
    """A tool call refused by policy (no write request from the rep, a rejected change repeated)."""

    status = 403


@dataclass
class ToolEnv:
    """What one tool call runs with; ``principal`` comes from the run context."""

    session: Session
    principal: Principal
    now: datetime
    thread_id: str
    turn_id: str | None
    tool_call_id: str
    message: str
    evidence: Sequence[str] = ()
    rejected: frozenset[str] = frozenset()
    search: SearchFn | None = None
    model_id: str | None = None
    """The model whose call this is: its proposals and their "why?" name it."""
    targets: frozenset[str] | None = None
    """Records a change may go to; None: any the caller may change (the rep's message names one, or an MCP
    client or the API names the record itself). The assistant gives the records its conversation already showed
    when the rep's message names none, so "move the deal" never lands on a deal the model picked."""

    @property
    def today(self) -> date:
        """The run's date, for relative dates."""
        return self.now.date()

    def check_not_rejected(self, target: str) -> None:
        """Refuse a change the rep already rejected in this turn."""
        if target in self.rejected:
            raise Refused("the rep rejected this change in this turn; do not propose it again unless they ask")


@dataclass
class ToolResult:
    """A tool's data for the model, the references it came from, and a proposal awaiting the rep (if any)."""

    data: dict[str, Any]
    refs: list[str] = field(default_factory=list)
    summary: str = ""
    proposal_id: int | None = None
    target: str | None = None
    retrieval_decision: str | None = None


class Args(BaseModel):
    """Strict arguments: unknown keys are an error the model is told about."""

    model_config = ConfigDict(extra="forbid")


RecordText = Field(description="A reference from a tool such as account:12, or the record's name")
Period = Field(None, description="A period: 'this month', 'last 30 days', 'next week', '2026-10-01..2026-10-31', "
                                 "'本月', '最近30天'")
Owner = Field(None, description="'me' for the rep's own records, or a teammate's name")


# ---------------------------------------------------------------- helpers
_COMPACT: dict[str, tuple[str, ...]] = {
    "account": ("name", "industry", "country", "city", "tier"),
    "contact": ("name", "title", "account_id", "email", "phone"),
    "lead": ("name", "company", "status", "score", "source", "email", "phone"),
    "opportunity": ("name", "stage", "amount", "currency", "close_date", "probability", "account_id", "owner_id"),
    "activity": ("kind", "subject", "occurred_at", "account_id", "contact_id", "opportunity_id", "body"),
    "case": ("subject", "status", "priority", "account_id", "contact_id", "sla_due"),
    "article": ("title", "product"),
}


def _short(value: Any) -> Any:
    return value[:MAX_TEXT] + "…" if isinstance(value, str) and len(value) > MAX_TEXT else value


def snippet(text: str, terms: Sequence[str], width: int = MAX_TEXT) -> str:
    """The ``width`` characters of ``text`` holding the most distinct ``terms`` (its start if none is there).

    A note's answer is often past its first 400 characters; the passage around the query's words is what the
    model needs to read.
    """
    if len(text) <= width:
        return text
    low = text.lower()
    starts = sorted({max(0, i - width // 5) for t in terms for i in _find_all(low, t)})
    if not starts:
        return _short(text)
    best = max(starts, key=lambda s: (sum(t in low[s:s + width] for t in terms), -s))
    return ("…" if best else "") + text[best:best + width] + ("…" if best + width < len(text) else "")


def _find_all(text: str, term: str, limit: int = 20) -> list[int]:
    found, at = [], text.find(term)
    while at >= 0 and len(found) < limit:
        found.append(at)
        at = text.find(term, at + 1)
    return found


def compact(principal: Principal, obj: str, record: Any) -> dict[str, Any]:
    """A record's key fields as ``principal`` may see them (hidden fields absent, personal data masked).

    Amounts come formatted with their currency ("CNY 250,000.00"), so a small model copies rather than rounds.
    """
    seen = view(principal, obj, record)
    out = {"ref": ref(obj, record.id), **{k: _short(seen[k]) for k in _COMPACT[obj] if k in seen}}
    if obj == "opportunity" and out.get("amount") is not None and out.get("currency"):
        out["amount"] = format_money(out["amount"], out.pop("currency"))
    return out


def _visible(principal: Principal, obj: str, name: str) -> bool:
    return get_settings().visibility(obj, name, principal.role) == "visible"


def _need_visible(principal: Principal, obj: str, name: str) -> None:
    if not _visible(principal, obj, name):
        raise Refused(f"{obj} records cannot be filtered by {name} for your role")


def _rows(env: ToolEnv, obj: str, *conds: Any, order: Any = None, limit: int = 5) -> list[Any]:
    if obj not in READABLE[env.principal.role]:
        return []
    model: Any = model_for(obj)
    stmt = readable(env.principal, obj).where(*conds).order_by(order if order is not None else model.id.desc())
    return list(env.session.scalars(stmt.limit(limit)))


def _day_bounds(span: tuple[date, date]) -> tuple[datetime, datetime]:
    return datetime.combine(span[0], time.min), datetime.combine(span[1] + timedelta(days=1), time.min)


def _no_recent_activity(env: ToolEnv, link: Any, days: int) -> Any:
    """No activity the caller may read, linked through ``link``, in the last ``days`` days."""
    since = env.now - timedelta(days=days)
    return ~exists(select(Activity.id).where(link, Activity.occurred_at >= since,
                                             row_filter(env.principal, "activity")))


def _items(env: ToolEnv, obj: str, records: Sequence[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    items = [compact(env.principal, obj, r) for r in records]
    return items, [i["ref"] for i in items]


# ---------------------------------------------------------------- read tools
class FindRecordsArgs(Args):
    """Find records by name (fuzzy) across accounts, contacts, leads, opportunities and cases."""

    query: str = Field(min_length=1, max_length=200, description="A name or part of one")
    object_type: FindType | None = Field(None, description="Only this kind of record")


def find_records(env: ToolEnv, args: FindRecordsArgs) -> ToolResult:
    """Exact and substring matches on the name first, then close spellings."""
    found: list[dict[str, Any]] = []
    for obj in [args.object_type] if args.object_type else list(get_args(FindType)):
        model: Any = model_for(obj)
        column = getattr(model, NAME_FIELD[obj])
        rows = _rows(env, obj, column.ilike(f"%{escape_like(args.query.strip())}%", escape="\\"), limit=5)
        if not rows and obj in READABLE[env.principal.role]:
            rows = similar(env.session, env.principal, obj, args.query)
        found.extend({"type": obj, **compact(env.principal, obj, r)} for r in rows)
    refs = [f["ref"] for f in found]
    return ToolResult({"matches": found, "count": len(found)}, refs, f"{len(found)} matches")


class GetRecordArgs(Args):
    """Get one record with its related records (contacts, deals, cases, recent activities)."""

    record: str = RecordText
    object_type: FindType | Literal["activity"] | None = Field(
        None, description="The kind of record; needed when `record` is a name")


def _related(env: ToolEnv, obj: str, record: Any) -> dict[str, list[dict[str, Any]]]:
    rid = record.id
    out: dict[str, list[Any]] = {}
    recent = Activity.occurred_at.desc()
    if obj == "account":
        out["contacts"] = _rows(env, "contact", Contact.account_id == rid, limit=10)
        out["opportunities"] = _rows(env, "opportunity", Opportunity.account_id == rid,
                                     order=Opportunity.close_date, limit=10)
        out["open_cases"] = _rows(env, "case", Case.account_id == rid, Case.status != "closed", limit=5)
        out["recent_activities"] = _rows(env, "activity", Activity.account_id == rid, order=recent)
    elif obj == "opportunity":
        out["account"] = _rows(env, "account", Account.id == record.account_id)
        out["recent_activities"] = _rows(env, "activity", Activity.opportunity_id == rid, order=recent)
    elif obj == "contact":
        out["account"] = _rows(env, "account", Account.id == record.account_id)
        out["recent_activities"] = _rows(env, "activity", Activity.contact_id == rid, order=recent)
        out["cases"] = _rows(env, "case", Case.contact_id == rid)
    elif obj == "lead":
        out["recent_activities"] = _rows(env, "activity", Activity.lead_id == rid, order=recent)
    elif obj == "case":
        out["account"] = _rows(env, "account", Account.id == record.account_id)
        out["contact"] = _rows(env, "contact", Contact.id == record.contact_id)
        out["recent_activities"] = _rows(env, "activity", Activity.case_id == rid, order=recent)
    kinds = {"contacts": "contact", "opportunities": "opportunity", "open_cases": "case", "cases": "case",
             "recent_activities": "activity", "account": "account", "contact": "contact"}
    return {k: [compact(env.principal, kinds[k], r) for r in rows] for k, rows in out.items()}


def _record_type(args_record: str, object_type: str | None) -> str:
    if object_type:
        return object_type
    kind = args_record.strip().lower().partition(":")[0]
    if kind in NAME_FIELD and ":" in args_record:
        return kind
    raise ToolInputError("give object_type (account, contact, lead, opportunity, case) when `record` is a name")


def get_record(env: ToolEnv, args: GetRecordArgs) -> ToolResult:
    """The record as the caller may see it, plus readable related records."""
    obj = _record_type(args.record, args.object_type)
    record = resolve(env.session, env.principal, obj, args.record)
    data = {k: _short(v) for k, v in view(env.principal, obj, record).items()}
    related = _related(env, obj, record)
    refs = [ref(obj, record.id)] + [i["ref"] for items in related.values() for i in items]
    return ToolResult({"record": {"ref": ref(obj, record.id), **data}, "related": related}, refs,
                      f"{ref(obj, record.id)} with {len(refs) - 1} related")


class ListOpportunitiesArgs(Args):
    """List opportunities (deals) with filters."""

    stage: Stage | None = None
    owner: str | None = Owner
    account: str | None = Field(None, description="An account reference or name")
    amount_min: float | str | None = Field(None, description="e.g. 50000, 50k, 1.2M, 5万")
    amount_max: float | str | None = Field(None, description="e.g. 200k")
    close_date: str | None = Period
    no_activity_days: int | None = Field(None, ge=1, le=3650, description="Only deals with no activity in N days")
    include_closed: bool = Field(False, description="Include closed won/lost deals")
    sort: Literal["close_date", "amount", "recent"] = "close_date"
    limit: int = Field(10, ge=1, le=50)


def _list(env: ToolEnv, obj: str, conds: list[Any], applied: dict[str, Any], order: Any, limit: int,
          plural: str) -> ToolResult:
    model: Any = model_for(obj)
    stmt = readable(env.principal, obj).where(*conds)
    total = env.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = list(env.session.scalars(stmt.order_by(order, model.id).limit(limit)))
    items, refs = _items(env, obj, rows)
    return ToolResult({plural: items, "count": total, "shown": len(items), "filters": applied}, refs,
                      f"{total} {plural}")


def _owner_cond(env: ToolEnv, model: Any, owner: str | None, applied: dict[str, Any]) -> list[Any]:
    if not owner:
        return []
    uid = resolve_owner(env.session, env.principal, owner)
    applied["owner"] = f"user:{uid}" + (" (you)" if uid == env.principal.user_id else "")
    return [model.owner_id == uid]


ArgsT = TypeVar("ArgsT", bound=BaseModel)


def _from_request(env: ToolEnv, args: ArgsT, applied: dict[str, Any], *, amounts: bool = False,
                  stages: bool = False) -> ArgsT:
    """``args`` with the "my", amount bounds and stage the rep's words state, where the call lacks or misreads them."""
    added: dict[str, Any] = {}
    if getattr(args, "owner", None) is None and says_mine(env.message):
        added["owner"] = "me"
    if stages and (stage := stage_named(env.message)) and getattr(args, "stage", None) != stage:
        added["stage"] = stage
    if amounts:
        low, high = amount_bounds(env.message)
        given_min, given_max = getattr(args, "amount_min", None), getattr(args, "amount_max", None)
        if given_min is None and given_max is None:
            added.update({k: v for k, v in (("amount_min", low), ("amount_max", high)) if v})
        elif given_max is None and high and not low and same_amount(given_min, high):
            added.update(amount_min=None, amount_max=high)  # "低于20万" called as amount_min=200000: flipped
        elif given_min is None and low and not high and same_amount(given_max, low):
            added.update(amount_min=low, amount_max=None)
    if not added:
        return args
    applied["from_request"] = sorted(added)
    return args.model_copy(update=added)


def list_opportunities(env: ToolEnv, args: ListOpportunitiesArgs) -> ToolResult:
    """Filters resolved in code (owner "me", amounts in k/M/万, relative periods), then a permission-filtered query."""
    p = env.principal
    applied: dict[str, Any] = {}
    args = _from_request(env, args, applied, amounts=True, stages=True)
    conds: list[Any] = _owner_cond(env, Opportunity, args.owner, applied)
    if args.stage:
        conds.append(Opportunity.stage == args.stage)
        applied["stage"] = args.stage
    elif not args.include_closed:
        conds.append(Opportunity.stage.not_in(CLOSED_VALUES["opportunity"]))
        applied["open_only"] = True
    if args.account:
        account = resolve(env.session, p, "account", args.account)
        conds.append(Opportunity.account_id == account.id)
        applied["account"] = ref("account", account.id)
    for bound, value in (("amount_min", args.amount_min), ("amount_max", args.amount_max)):
        if value is None:
            continue
        _need_visible(p, "opportunity", "amount")
        amount, currency = parse_amount(value)
        conds.append(Opportunity.amount >= amount if bound == "amount_min" else Opportunity.amount <= amount)
        if currency:
            conds.append(Opportunity.currency == currency)
        applied[bound] = f"{currency or ''} {amount:f}".strip()
    if args.close_date:
        _need_visible(p, "opportunity", "close_date")
        first, last = resolve_range(args.close_date, env.today)
        conds.append(and_(Opportunity.close_date >= first, Opportunity.close_date <= last))
        applied["close_date"] = f"{first}..{last}"
    if args.no_activity_days:
        conds.append(_no_recent_activity(env, Activity.opportunity_id == Opportunity.id, args.no_activity_days))
        applied["no_activity_days"] = args.no_activity_days
    order = {"close_date": Opportunity.close_date, "amount": Opportunity.amount.desc(),
             "recent": Opportunity.updated_at.desc()}[args.sort]
    return _list(env, "opportunity", conds, applied, order, args.limit, "opportunities")


class ListLeadsArgs(Args):
    """List leads with filters."""

    status: LeadStatus | None = None
    owner: str | None = Owner
    source: str | None = Field(None, max_length=40)
    created: str | None = Period
    no_activity_days: int | None = Field(None, ge=1, le=3650)
    limit: int = Field(10, ge=1, le=50)


def list_leads(env: ToolEnv, args: ListLeadsArgs) -> ToolResult:
    """Leads the caller may read, filtered."""
    applied: dict[str, Any] = {}
    args = _from_request(env, args, applied)
    conds = _owner_cond(env, Lead, args.owner, applied)
    if args.status:
        conds.append(Lead.status == args.status)
        applied["status"] = args.status
    if args.source:
        conds.append(Lead.source == args.source)
        applied["source"] = args.source
    if args.created:
        first, last = _day_bounds(resolve_range(args.created, env.today))
        conds.append(and_(Lead.created_at >= first, Lead.created_at < last))
        applied["created"] = f"{first.date()}..{(last - timedelta(days=1)).date()}"
    if args.no_activity_days:
        conds.append(_no_recent_activity(env, Activity.lead_id == Lead.id, args.no_activity_days))
        applied["no_activity_days"] = args.no_activity_days
    return _list(env, "lead", conds, applied, Lead.created_at.desc(), args.limit, "leads")


class ListCasesArgs(Args):
    """List support cases with filters."""

    status: CaseStatus | None = None
    priority: CasePriority | None = None
    owner: str | None = Owner
    account: str | None = Field(None, description="An account reference or name")
    created: str | None = Period
    include_closed: bool = False
    limit: int = Field(10, ge=1, le=50)


def list_cases(env: ToolEnv, args: ListCasesArgs) -> ToolResult:
    """Cases the caller may read, filtered."""
    applied: dict[str, Any] = {}
    args = _from_request(env, args, applied)
    conds = _owner_cond(env, Case, args.owner, applied)
    if args.status:
        conds.append(Case.status == args.status)
        applied["status"] = args.status
    elif not args.include_closed:
        conds.append(Case.status != "closed")
        applied["open_only"] = True
    if args.priority:
        conds.append(Case.priority == args.priority)
        applied["priority"] = args.priority
    if args.account:
        account = resolve(env.session, env.principal, "account", args.account)
        conds.append(Case.account_id == account.id)
        applied["account"] = ref("account", account.id)
    if args.created:
        first, last = _day_bounds(resolve_range(args.created, env.today))
        conds.append(and_(Case.created_at >= first, Case.created_at < last))
        applied["created"] = f"{first.date()}..{(last - timedelta(days=1)).date()}"
    return _list(env, "case", conds, applied, Case.created_at.desc(), args.limit, "cases")


class AccountTimelineArgs(Args):
    """An account's history: activities, cases and deals, newest first."""

    account: str = RecordText
    kind: AnyActivityKind | None = Field(None, description="Only activities of this kind (no cases or deals)")
    period: str | None = Period
    limit: int = Field(20, ge=1, le=50)


def _kind_from_request(env: ToolEnv, kind: str | None, applied: dict[str, Any]) -> str | None:
    """The activity kind the call gives, or the one the rep's words name ("the latest note") when it gives none."""
    if kind is None and (kind := activity_kind_named(env.message)):
        applied["from_request"] = ["kind"]
    if kind:
        applied["kind"] = kind
    return kind


def account_timeline(env: ToolEnv, args: AccountTimelineArgs) -> ToolResult:
    """Activities, cases and opportunities of one account, merged by time (only activities of ``kind`` if given)."""
    account = resolve(env.session, env.principal, "account", args.account)
    applied: dict[str, Any] = {}
    kind = _kind_from_request(env, args.kind, applied)
    aid, conds_a, conds_c = account.id, [Activity.account_id == account.id], [Case.account_id == account.id]
    conds_o = [Opportunity.account_id == aid]
    if kind:
        conds_a.append(Activity.kind == kind)
    if args.period:
        first, last = _day_bounds(resolve_range(args.period, env.today))
        conds_a.append(and_(Activity.occurred_at >= first, Activity.occurred_at < last))
        conds_c.append(and_(Case.created_at >= first, Case.created_at < last))
        conds_o.append(and_(Opportunity.created_at >= first, Opportunity.created_at < last))
    events: list[tuple[str, dict[str, Any]]] = []
    for a in _rows(env, "activity", *conds_a, order=Activity.occurred_at.desc(), limit=args.limit):
        events.append((a.occurred_at.isoformat(), compact(env.principal, "activity", a)))
    if not kind:
        for c in _rows(env, "case", *conds_c, order=Case.created_at.desc(), limit=args.limit):
            events.append((c.created_at.isoformat(), {**compact(env.principal, "case", c),
                                                      "created_at": c.created_at.isoformat()}))
        for o in _rows(env, "opportunity", *conds_o, order=Opportunity.created_at.desc(), limit=args.limit):
            events.append((o.created_at.isoformat(), {**compact(env.principal, "opportunity", o),
                                                      "created_at": o.created_at.isoformat()}))
    events.sort(key=lambda e: e[0], reverse=True)
    timeline = [{"when": when, **item} for when, item in events[:args.limit]]
    refs = [ref("account", aid)] + [t["ref"] for t in timeline]
    data = {"account": compact(env.principal, "account", account), "timeline": timeline}
    return ToolResult({**data, "filters": applied} if applied else data, refs,
                      f"{len(timeline)} {kind + 's' if kind else 'events'}")


class SearchNotesArgs(Args):
    """Search notes, emails, call summaries, cases and articles by meaning and keywords."""

    query: str = Field(min_length=1, max_length=300)
    account: str | None = Field(None, description="Only this account (reference or name)")
    period: str | None = Period
    limit: int = Field(5, ge=1, le=10)


def search_notes(env: ToolEnv, args: SearchNotesArgs) -> ToolResult:
    """Hybrid retrieval as the caller (permission filter inside the index query); keyword fallback without an index."""
    from retrieval.errors import RetrievalError
    from retrieval.search import search_as

    options: dict[str, Any] = {"limit": args.limit}
    if args.account:
        options["account_id"] = resolve(env.session, env.principal, "account", args.account).id
    if args.period:
        options["date_from"], options["date_to"] = _day_bounds(resolve_range(args.period, env.today))
    if not _content_terms(env, args.query, options.get("account_id")):
        # The call's query names nothing to look for (a small model often passes the account's name): the rep's
        # own question, if it says what to look for; else "the latest note" is meant, and time order answers it.
        if not _content_terms(env, env.message, options.get("account_id")):
            return _newest(env, args, options)
        args = args.model_copy(update={"query": env.message.strip()[:300]})
    query = args.query
    if "account_id" in options:
        query = _without_name(query, env.session.get_one(Account, options["account_id"]).name)
    search = env.search or search_as
    try:
        hits, decision = search(env.session, env.principal, query, ledger_parent=env.turn_id,
                                thread_id=env.thread_id, **options)
    except RetrievalError as exc:
        return _keyword_notes(env, args, options, str(exc))
    terms = _query_terms(args.query)
    results = [{"chunk": f"chunk:{h.chunk_id}", "ref": h.record, "title": _short(h.title), "when": h.timestamp,
                "text": snippet(h.text, terms)} for h in hits]
    refs = list(dict.fromkeys([r["ref"] for r in results] + [r["chunk"] for r in results]))
    return ToolResult({"results": results, "count": len(results)}, refs, f"{len(results)} passages",
                      retrieval_decision=decision)


# Words that ask for notes rather than say what they are about ("the latest note", 最近的备注写了什么).
_NOT_A_TOPIC = ("latest newest recent most last note notes say says said tell show summary summarise summarize "
                "summarised update updates record records content what new 最新 最近 一条 一下 备注 笔记 纪要 记录 "
                "内容 总结 概括 写 说 什么 上次 最后")


def _without_name(query: str, name: str) -> str:
    """``query`` without the account's name, for a search within that account.

    There the name is in every passage and says nothing, while it pulls an embedded question towards "anything
    about Acme". On the agent suite's notes questions the answer's passage ranked higher without it.
    """
    rest = re.sub(re.escape(name) + r"(?:'s|’s)?", " ", query, flags=re.IGNORECASE)
    rest = re.sub(r"\s+", " ", rest).strip(" ,.;:?!，。；：？！")
    return rest if len(rest) >= 2 else query


def _name_terms(env: ToolEnv, account_id: int | None) -> set[str]:
    """The search terms of the account's name: within that account they are in every note and say nothing."""
    from retrieval.sparse import tokenize

    return set() if account_id is None else set(tokenize(env.session.get_one(Account, account_id).name))


def _content_terms(env: ToolEnv, query: str, account_id: int | None) -> list[str]:
    """The query's terms that say what to search for: not the searched account's name, not "latest note"."""
    from retrieval.sparse import tokenize

    skip = set(tokenize(_NOT_A_TOPIC)) | _name_terms(env, account_id)
    return [t for t in tokenize(query) if len(t) >= 2 and t not in skip]


def _newest(env: ToolEnv, args: SearchNotesArgs, options: dict[str, Any]) -> ToolResult:
    """A search with nothing to search for ("Acme's latest note"): the newest activities in scope, newest first.

    Ranking by relevance to "latest note" would put any note ahead of the newest one; the rep asked for time order.
    The kind the rep's words name ("note", 备注) narrows it.
    """
    applied: dict[str, Any] = {}
    conds: list[Any] = []
    if kind := _kind_from_request(env, None, applied):
        conds.append(Activity.kind == kind)
    if "account_id" in options:
        conds.append(Activity.account_id == options["account_id"])
    if "date_from" in options:
        conds.append(and_(Activity.occurred_at >= options["date_from"], Activity.occurred_at < options["date_to"]))
    rows = _rows(env, "activity", *conds, order=Activity.occurred_at.desc(), limit=args.limit)
    items, refs = _items(env, "activity", rows)
    return ToolResult({"results": items, "count": len(items), "filters": applied,
                       "note": "nothing to search for beyond the account and the kind: the newest first"}, refs,
                      f"{len(items)} newest {kind + 's' if kind else 'activities'}")


def _query_terms(query: str) -> list[str]:
    """The query's search terms (stemmed words, codes, Chinese words), at most ``KEYWORD_TERMS``."""
    from retrieval.sparse import tokenize

    return list(dict.fromkeys(t for t in tokenize(query) if len(t) >= 2))[:KEYWORD_TERMS] or [query.strip().lower()]


def _keyword_notes(env: ToolEnv, args: SearchNotesArgs, options: dict[str, Any], why: str) -> ToolResult:
    """Activities holding the query's terms, most distinct terms first, then newest (no index to rank by meaning)."""
    terms = _query_terms(args.query)
    name = _name_terms(env, options.get("account_id"))  # also in its contacts' e-mail addresses
    terms = [t for t in terms if t not in name] or terms
    match = [Activity.subject.ilike(f"%{escape_like(t)}%", escape="\\") |
             Activity.body.ilike(f"%{escape_like(t)}%", escape="\\") for t in terms]
    conds: list[Any] = [or_(*match)]
    if "account_id" in options:
        conds.append(Activity.account_id == options["account_id"])
    if "date_from" in options:
        conds.append(and_(Activity.occurred_at >= options["date_from"], Activity.occurred_at < options["date_to"]))
    rows = _rows(env, "activity", *conds, order=Activity.occurred_at.desc(), limit=KEYWORD_CANDIDATES)

    # Rarer terms weigh more (an IDF over the candidates): the account's own name, in every one of its notes,
    # must not outweigh "warranty".
    texts = [f"{a.subject} {a.body}".lower() for a in rows]
    weight = {t: math.log((len(texts) + 1) / (sum(t in x for x in texts) + 0.5)) for t in terms}
    scores = [sum(weight[t] for t in terms if t in x) for x in texts]
    order = sorted(range(len(rows)), key=lambda i: -scores[i])  # stable: newest first among equals
    best = [rows[i] for i in order[:args.limit]]
    items, refs = _items(env, "activity", best)
    for item, row in zip(items, best, strict=True):
        if "body" in item:  # the passage around the query's words, as the caller may see it
            item["body"] = snippet(str(view(env.principal, "activity", row).get("body") or ""), terms)
    return ToolResult({"results": items, "count": len(items),
                       "note": f"search index unavailable ({why}); these are keyword matches"}, refs,
                      f"{len(items)} keyword matches (index unavailable)")


class PipelineSummaryArgs(Args):
    """Pipeline totals: counts and amounts by stage, owner or close month."""

    group_by: Literal["stage", "owner", "month"] = "stage"
    owner: str | None = Owner
    close_date: str | None = Period
    include_closed: bool = False


def pipeline_summary(env: ToolEnv, args: PipelineSummaryArgs) -> ToolResult:
    """Sums per group and currency (currencies are never added together), with a few deals per group to cite."""
    p = env.principal
    applied: dict[str, Any] = {"group_by": args.group_by}
    if "opportunity" not in READABLE[p.role]:
        raise Refused("your role cannot read opportunities")
    conds: list[Any] = _owner_cond(env, Opportunity, args.owner, applied)
    if not args.include_closed:
        conds.append(Opportunity.stage.not_in(CLOSED_VALUES["opportunity"]))
    if args.close_date:
        _need_visible(p, "opportunity", "close_date")
        first, last = resolve_range(args.close_date, env.today)
        conds.append(and_(Opportunity.close_date >= first, Opportunity.close_date <= last))
        applied["close_date"] = f"{first}..{last}"
    show_amount = _visible(p, "opportunity", "amount")
    sub = readable(p, "opportunity").where(*conds).subquery()
    cols = {c.name: c for c in sub.c}
    if args.group_by == "month":
        postgres = env.session.get_bind().dialect.name == "postgresql"
        key_sub: Any = (func.to_char(cols["close_date"], "YYYY-MM") if postgres
                        else func.strftime("%Y-%m", cols["close_date"]))
    else:
        key_sub = cols["stage" if args.group_by == "stage" else "owner_id"]
    stmt = select(key_sub.label("k"), cols["currency"], func.count(), func.sum(cols["amount"])).group_by(
        key_sub, cols["currency"]).order_by(key_sub, cols["currency"])
    # A few deals per group to cite, in one query: the largest (or, with amounts hidden, the first) three.
    order = cols["amount"].desc() if show_amount else cols["id"]
    rank = func.row_number().over(partition_by=(key_sub, cols["currency"]), order_by=(order, cols["id"]))
    ranked = select(key_sub.label("k"), cols["currency"].label("cur"), cols["id"].label("id"),
                    rank.label("rank")).subquery()
    examples: dict[tuple[Any, str], list[str]] = {}
    for k, currency, ident in env.session.execute(select(ranked.c.k, ranked.c.cur, ranked.c.id).where(
            ranked.c.rank <= 3).order_by(ranked.c.k, ranked.c.cur, ranked.c.rank)):
        examples.setdefault((k, currency), []).append(ref("opportunity", ident))
    rows: list[dict[str, Any]] = []
    refs: list[str] = []
    names = {u.id: u.name for u in env.session.scalars(select(User))} if args.group_by == "owner" else {}
    for k, currency, count, total in env.session.execute(stmt):
        row: dict[str, Any] = {args.group_by: k, "currency": currency, "count": count}
        if args.group_by == "owner":
            row["owner"] = f"{names.get(k, '?')} [user:{k}]"
        if show_amount:
            row["total"] = format_money(total or 0, currency)
        row["largest" if show_amount else "examples"] = examples.get((k, currency), [])
        refs += examples.get((k, currency), [])
        rows.append(row)
    return ToolResult({"rows": rows, "filters": applied}, refs, f"{len(rows)} groups")


# ---------------------------------------------------------------- write tools (proposals)
ChangeType = Literal["account", "contact", "lead", "opportunity", "case"]
NOT_BY_ASSISTANT = frozenset({"owner_id", "team_id"})


def _propose(env: ToolEnv, tool: str, *, obj: str, action: str, changes: dict[str, Any], record_id: int | None,
             reason: str, target: str) -> ToolResult:
    env.check_not_rejected(target)
    touched = ([ref(obj, record_id)] if record_id else []) + [
        ref(kind, changes[name]) for name, kind in LINK_FIELDS.items() if changes.get(name)]
    unnamed = [r for r in touched if env.targets is not None and r not in env.targets]
    if unnamed:
        raise Refused(f"the rep's message names no record, and {unnamed[0]} is not one this conversation showed "
                      f"the rep; ask the rep which {unnamed[0].split(':')[0]} they mean")
    evidence = list(dict.fromkeys(([ref(obj, record_id)] if record_id else []) + list(env.evidence)))[:20]
    key = json.dumps([env.thread_id, env.turn_id, env.tool_call_id, obj, record_id, changes], sort_keys=True,
                     default=str)
    proposal = propose(env.session, env.principal, object_type=obj, action=action,  # type: ignore[arg-type]
                       changes=changes, record_id=record_id, reason=(reason or env.message)[:1000],
                       evidence=evidence, source="agent", parent_decision=env.turn_id,
                       idempotency_key=hashlib.sha256(key.encode()).hexdigest(), model_id=env.model_id)
    shown = proposal_view(env.principal, proposal)
    refs = [f"proposal:{proposal.id}"] + ([ref(obj, record_id)] if record_id else [])
    return ToolResult({"proposal": shown, "status": "waiting for the rep's approval"}, refs,
                      f"proposal:{proposal.id} ({action} {obj})", proposal_id=proposal.id, target=target)


class UpdateStageArgs(Args):
    """Propose moving an opportunity to another stage (the rep approves)."""

    opportunity: str = RecordText
    stage: Stage
    reason: str = Field("", max_length=500)


def _change_target(env: ToolEnv, obj: str, given: str) -> tuple[Any, str]:
    """The record a change applies to, and a note for its reason when that is not the record the call gave.

    When the rep's message names exactly one readable record of that kind, word for word, that record is the
    target: the 1.5B once passed 'account:1#ESS-100 备用电源（6台）' for a deal the rep had named in full, then gave
    up on the "Did you mean" error. Otherwise the call's reference or name is resolved as usual.
    """
    named = [r for o, r in named_records(env.session, env.principal, env.message) if o == obj]
    if len(named) != 1:
        return resolve(env.session, env.principal, obj, given), ""
    try:
        picked = resolve(env.session, env.principal, obj, given)
    except (ToolInputError, NotFound):  # unknown or ambiguous: the rep's own words settle it
        picked = None
    record = named[0]
    if picked is not None and picked.id == record.id:
        return record, ""
    return record, f"{ref(obj, record.id)} is the {obj} the rep named; the call gave '{given[:80]}'"


def _with_note(reason: str, note: str) -> str:
    return f"{reason} ({note})" if reason and note else reason or note


def update_stage(env: ToolEnv, args: UpdateStageArgs) -> ToolResult:
    """A stage change proposal; closing stages are a ``close`` action."""
    record, why = _change_target(env, "opportunity", args.opportunity)
    reason = _with_note(args.reason, why)
    if (asked := stage_named(env.message)) and asked != args.stage:  # the rep's own words name the stage
        reason = f"{reason} (stage as the rep wrote it: {asked}, not {args.stage})".strip()
        args = args.model_copy(update={"stage": asked})
    action = "close" if args.stage in CLOSED_VALUES["opportunity"] else "update"
    return _propose(env, "update_stage", obj="opportunity", action=action, changes={"stage": args.stage},
                    record_id=record.id, reason=reason, target=f"update_stage:opportunity:{record.id}")


class UpdateRecordArgs(Args):
    """Propose changing one field of a record (the rep approves)."""

    object_type: ChangeType
    record: str = RecordText
    field: str = Field(max_length=60, description="Field name, e.g. close_date, amount, probability, status, title")
    value: str = Field(max_length=2000, description="New value; dates may be relative ('next Friday')")
    reason: str = Field("", max_length=500)


def _convert(env: ToolEnv, obj: str, name: str, value: str) -> Any:
    """The model's text value as the column's type, with relative dates and amounts resolved here."""
    if value.strip().lower() in ("", "none", "null", "empty"):
        return None
    column = model_for(obj).__table__.columns.get(name)
    kind = column.type if column is not None else None
    if isinstance(kind, Numeric):
        return str(parse_amount(value)[0])
    if isinstance(kind, Boolean):
        low = value.strip().lower()
        if low in ("true", "yes", "y", "1", "是", "对"):
            return True
        if low in ("false", "no", "n", "0", "否", "不"):
            return False
        raise ToolInputError(f"{obj}.{name} takes yes or no")
    if isinstance(kind, Integer):
        try:
            return int(value.strip().rstrip("%"))
        except ValueError:
            raise ToolInputError(f"{obj}.{name} takes a whole number") from None
    if isinstance(kind, DateTime):
        return datetime.combine(resolve_date(value, env.today), FOLLOW_UP_HOUR).isoformat()
    if isinstance(kind, Date):
        return resolve_date(value, env.today).isoformat()
    return value


def update_record(env: ToolEnv, args: UpdateRecordArgs) -> ToolResult:
    """One field's change proposal, validated against the CRM's own field rules."""
    obj, name = args.object_type, args.field.strip()
    if name in NOT_BY_ASSISTANT:
        raise Refused(f"{name} changes need a manager; the assistant does not propose them")
    settable = writable_fields(obj) - NOT_BY_ASSISTANT - {"erased_at"}
    if name not in settable and not name.startswith("custom."):
        raise ToolInputError(f"{obj} has no field '{name}' that can be changed; fields: {', '.join(sorted(settable))}")
    if get_settings().visibility(obj, name, env.principal.role) == "hidden":
        raise ToolInputError(f"{obj} has no field '{name}' that can be changed")
    record, why = _change_target(env, obj, args.record)
    value = args.value if name.startswith("custom.") else _convert(env, obj, name, args.value)
    close_field = CLOSE_FIELDS.get(obj)
    action = "close" if close_field == name and value in CLOSED_VALUES[obj] else "update"
    return _propose(env, "update_record", obj=obj, action=action, changes={name: value}, record_id=record.id,
                    reason=_with_note(args.reason, why), target=f"update_record:{obj}:{record.id}:{name}")


class LinksArgs(Args):
    """Records an activity is about (at least one)."""

    account: str | None = Field(None, description="Account reference or name")
    contact: str | None = Field(None, description="Contact reference or name")
    opportunity: str | None = Field(None, description="Opportunity reference or name")


def _links(env: ToolEnv, args: LinksArgs) -> dict[str, int]:
    links: dict[str, int] = {}
    for obj in ("opportunity", "contact", "account"):
        text = getattr(args, obj)
        if text:
            links[f"{obj}_id"] = resolve(env.session, env.principal, obj, text).id
    if not links:
        # The call names no record (the 1.5B left the account out of every "Log a call with Acme: …" in the full
        # suite): the records the rep's message names word for word, one of each kind at most, are what it is about.
        for obj, record in named_records(env.session, env.principal, env.message):
            if obj in ("opportunity", "contact", "account") and f"{obj}_id" not in links:
                links[f"{obj}_id"] = record.id
    if not links:
        raise ToolInputError("name the account, contact or opportunity this is about")
    if "account_id" not in links:
        first = next(iter(links))
        record: Any = env.session.get(model_for(first.removesuffix("_id")), links[first])
        if getattr(record, "account_id", None):
            links["account_id"] = record.account_id
    return links


def _language(text: str) -> str:
    from agents.assistant.language import answer_language

    return answer_language(text)


class LogActivityArgs(LinksArgs):
    """Propose logging a call, email, meeting or note on a record (the rep approves)."""

    kind: ActivityKind
    subject: str = Field(min_length=1, max_length=300)
    body: str = Field("", max_length=4000)
    when: str | None = Field(None, description="When it happened: 'today', 'yesterday', '2026-10-05'")


def log_activity(env: ToolEnv, args: LogActivityArgs) -> ToolResult:
    """A create-activity proposal linked to readable records."""
    links = _links(env, args)
    when = (env.now if not args.when else datetime.combine(resolve_date(args.when, env.today), FOLLOW_UP_HOUR))
    changes = {"kind": args.kind, "subject": args.subject, "body": args.body, "occurred_at": when.isoformat(),
               "language": _language(f"{args.subject} {args.body}"), **links}
    first = next(iter(links))
    target = f"log_activity:{first.removesuffix('_id')}:{links[first]}:{args.kind}"
    return _propose(env, "log_activity", obj="activity", action="create", changes=changes, record_id=None,
                    reason="", target=target)


class ScheduleFollowUpArgs(LinksArgs):
    """Propose a follow-up task with a due date on a record (the rep approves)."""

    subject: str = Field(min_length=1, max_length=300)
    due: str = Field(description="Due date: 'next Monday', 'in 3 days', '2026-10-12', '下周一'")
    notes: str = Field("", max_length=2000)


def schedule_follow_up(env: ToolEnv, args: ScheduleFollowUpArgs) -> ToolResult:
    """A task activity whose ``occurred_at`` is the due time (09:00 on the due day)."""
    links = _links(env, args)
    due = datetime.combine(resolve_date(args.due, env.today), FOLLOW_UP_HOUR)
    changes = {"kind": FOLLOW_UP_KIND, "subject": args.subject, "body": args.notes, "occurred_at": due.isoformat(),
               "language": _language(f"{args.subject} {args.notes}"), **links}
    first = next(iter(links))
    target = f"schedule_follow_up:{first.removesuffix('_id')}:{links[first]}:{due.date()}"
    return _propose(env, "schedule_follow_up", obj="activity", action="create", changes=changes, record_id=None,
                    reason="", target=target)


class CreateLeadArgs(Args):
    """Propose creating a lead (the rep approves)."""

    name: str = Field(min_length=1, max_length=160)
    company: str = Field("", max_length=200)
    email: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=40)
    source: str | None = Field(None, max_length=40)


def create_lead(env: ToolEnv, args: CreateLeadArgs) -> ToolResult:
    """A create-lead proposal."""
    changes = {k: v for k, v in args.model_dump().items() if v not in (None, "")}
    return _propose(env, "create_lead", obj="lead", action="create", changes=changes, record_id=None, reason="",
                    target=f"create_lead:{args.name.strip().lower()}")


class CreateContactArgs(Args):
    """Propose creating a contact at an account (the rep approves)."""

    name: str = Field(min_length=1, max_length=160)
    account: str = RecordText
    title: str = Field("", max_length=120)
    email: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=40)


def create_contact(env: ToolEnv, args: CreateContactArgs) -> ToolResult:
    """A create-contact proposal linked to a readable account."""
    account = resolve(env.session, env.principal, "account", args.account)
    changes = {k: v for k, v in args.model_dump(exclude={"account"}).items() if v not in (None, "")}
    changes["account_id"] = account.id
    return _propose(env, "create_contact", obj="contact", action="create", changes=changes, record_id=None,
                    reason="", target=f"create_contact:account:{account.id}:{args.name.strip().lower()}")


class DraftEmailArgs(Args):
    """Draft an email to a contact for the rep to review and send themselves (the assistant never sends)."""

    to: str = Field(description="Contact reference or name")
    subject: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=6000)


def draft_email(env: ToolEnv, args: DraftEmailArgs) -> ToolResult:
    """A draft only: nothing is sent and nothing in the CRM changes."""
    contact = resolve(env.session, env.principal, "contact", args.to)
    to = compact(env.principal, "contact", contact)
    return ToolResult({"draft": {"to": to, "subject": args.subject, "body": args.body},
                       "status": "draft only; crmind never sends email"}, [to["ref"]], f"draft to {to['ref']}")


# ---------------------------------------------------------------- the catalogue
# The customer 360 tools build on the helpers above, so their module is imported here, after them.
from agents.assistant import customer_tools as _customer  # noqa: E402


@dataclass(frozen=True)
class Tool:
    """A tool: its name and description, argument model, code, and whether it writes (proposes)."""

    name: str
    args: type[Args]
    run: Callable[[ToolEnv, Any], ToolResult]
    writes: bool = False

    @property
    def description(self) -> str:
        """The argument model's docstring: one line the model reads."""
        return (self.args.__doc__ or "").strip()

    def schema(self) -> BaseTool:
        """A schema-only LangChain tool for ``bind_tools`` (the graph runs tools itself, as the caller)."""

        def not_called(**_: Any) -> str:
            raise RuntimeError("assistant tools run inside the graph's tools node, with the caller's principal")

        return StructuredTool.from_function(func=not_called, name=self.name, description=self.description,
                                            args_schema=self.args)


TOOLS: tuple[Tool, ...] = (
    Tool("find_records", FindRecordsArgs, find_records),
    Tool("get_record", GetRecordArgs, get_record),
    Tool("list_opportunities", ListOpportunitiesArgs, list_opportunities),
    Tool("list_leads", ListLeadsArgs, list_leads),
    Tool("list_cases", ListCasesArgs, list_cases),
    Tool("account_timeline", AccountTimelineArgs, account_timeline),
    Tool("search_notes", SearchNotesArgs, search_notes),
    Tool("pipeline_summary", PipelineSummaryArgs, pipeline_summary),
    Tool("update_stage", UpdateStageArgs, update_stage, writes=True),
    Tool("update_record", UpdateRecordArgs, update_record, writes=True),
    Tool("log_activity", LogActivityArgs, log_activity, writes=True),
    Tool("schedule_follow_up", ScheduleFollowUpArgs, schedule_follow_up, writes=True),
    Tool("create_lead", CreateLeadArgs, create_lead, writes=True),
    Tool("create_contact", CreateContactArgs, create_contact, writes=True),
    Tool("draft_email", DraftEmailArgs, draft_email, writes=True),
    Tool("customer_360", _customer.Customer360Args, _customer.customer_360),
    Tool("explain_score", _customer.ExplainScoreArgs, _customer.explain_score),
    Tool("find_duplicates", _customer.FindDuplicatesArgs, _customer.find_duplicates),
    Tool("segment_members", _customer.SegmentMembersArgs, _customer.segment_members),
    Tool("propose_merge", _customer.ProposeMergeArgs, _customer.propose_merge_tool, writes=True),
)
TOOLS_BY_NAME: dict[str, Tool] = {t.name: t for t in TOOLS}
# Built once, in one order: with the system prompt they are the byte-identical prefix of every model call.
TOOL_SCHEMAS: tuple[BaseTool, ...] = tuple(t.schema() for t in TOOLS)
