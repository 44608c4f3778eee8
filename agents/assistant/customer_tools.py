"""Customer 360 tools: one customer across records, duplicates and merges, scores with their reasons, segments.

They read through ``customers.profile`` and the score table as the caller, like every other tool; the merge tool
returns a proposal the rep (or, across teams, a manager of each team) approves.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy import select

from agents.assistant.resolve import resolve
from agents.assistant.tools import Args, Owner, RecordText, ToolEnv, ToolResult, _owner_cond, _short, compact
from agents.errors import ToolInputError
from config.objects import ref
from crm.access import readable
from crm.customer_models import CustomerScore
from crm.errors import NotFound
from crm.merge import propose_merge
from crm.models import Account
from crm.proposals import proposal_view
from customers.profile import customer_view, duplicate_queue

PERSON_TYPES = ("contact", "lead", "account")
# The scores each record type carries ("why is this lead hot?" asks about its lead score).
SCORES_OF = {"lead": ("lead",), "opportunity": ("win",), "account": ("health", "rfm", "ltv")}
TIMELINE_SHOWN = 8
DUPLICATES_SHOWN = 5
SEGMENT_SHOWN = 10
REASONS_SHOWN = 3


def _zh(env: ToolEnv) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in env.message)


def _resolve_any(env: ToolEnv, text: str, types: tuple[str, ...]) -> tuple[str, Any]:
    """A reference (``lead:7``) or a name looked up across ``types``; a name found under several is an error."""
    kind = text.strip().lower().partition(":")[0]
    if ":" in text and kind in types:
        return kind, resolve(env.session, env.principal, kind, text)
    found: list[tuple[str, Any]] = []
    errors: list[str] = []
    for obj in types:
        try:
            found.append((obj, resolve(env.session, env.principal, obj, text)))
        except NotFound:
            continue
        except ToolInputError as exc:  # several of this type: the model must pick one
            errors.append(str(exc))
    if errors or len(found) > 1:
        named = [ref(o, r.id) for o, r in found]
        raise ToolInputError(f"'{text}' names several records ({', '.join(named + errors)}); use a reference")
    if not found:
        raise NotFound(f"no {' or '.join(types)} called '{text}'")
    return found[0]


def _reasons(env: ToolEnv, reasons: list[dict[str, Any]], limit: int) -> list[str]:
    lang = "zh" if _zh(env) else "en"
    out = []
    for r in reasons[:limit]:
        sign = "+" if float(r.get("contribution") or 0) >= 0 else "−"
        out.append(f"{sign} {r.get(lang) or r.get('en') or r.get('feature')}")
    return out


def _score(env: ToolEnv, s: CustomerScore, limit: int = REASONS_SHOWN) -> dict[str, Any]:
    return {"ref": f"{s.object_type}:{s.record_id}", "kind": s.kind, "value": round(s.value, 1), "label": s.label,
            "reasons": _reasons(env, list(s.reasons), limit), "model": s.model_version}


class Customer360Args(Args):
    """One customer across records: linked records and why they match, scores, timeline."""

    record: str = RecordText


def customer_360(env: ToolEnv, args: Customer360Args) -> ToolResult:
    """The customer view, compacted for a small model: identities, scores with top reasons, recent timeline."""
    obj, record = _resolve_any(env, args.record, PERSON_TYPES)
    data = customer_view(env.session, env.principal, ref(obj, record.id))
    identities = [{"ref": i["ref"], "name": (i["record"].get("name") if "name" in i["record"] else i["ref"]),
                   "match": f"{round(i['match_probability'] * 100)}%", "why": i["reasons"][:3]}
                  for i in data["identities"]]
    scores = [{"ref": s["ref"], "kind": s["kind"], "value": s["value"], "label": s["label"],
               "reasons": _reasons(env, s["reasons"], REASONS_SHOWN)} for s in data["scores"]]
    timeline = [{"ref": t["ref"], "when": t["at"][:10], "type": t["type"],
                 "what": _short(str(t["record"].get("subject") or t["record"].get("name") or
                                    t["record"].get("type") or ""))[:120]}
                for t in data["timeline"][:TIMELINE_SHOWN]]
    refs = list(dict.fromkeys([i["ref"] for i in identities if not i["ref"].startswith("visitor:")] +
                              [s["ref"] for s in scores] + [t["ref"] for t in timeline]))
    return ToolResult({"customer": data["customer_id"], "identities": identities, "scores": scores,
                       "timeline": timeline}, refs,
                      f"customer {data['customer_id']}: {len(identities)} linked records")


class ExplainScoreArgs(Args):
    """Why a lead, deal or account has its score, factor by factor."""

    record: str = RecordText


def explain_score(env: ToolEnv, args: ExplainScoreArgs) -> ToolResult:
    """The stored scores and all their reasons, in the rep's language."""
    obj, record = _resolve_any(env, args.record, ("lead", "opportunity", "account"))
    kinds = SCORES_OF[obj]
    rows = list(env.session.scalars(select(CustomerScore).where(
        CustomerScore.object_type == obj, CustomerScore.record_id == record.id, CustomerScore.kind.in_(kinds))
        .order_by(CustomerScore.kind)))
    if not rows:
        raise ToolInputError(f"{ref(obj, record.id)} has no {' or '.join(kinds)} score yet (scores are computed by "
                             "`crmind scores compute`)")
    scores = [_score(env, s, limit=6) for s in rows]
    return ToolResult({"record": compact(env.principal, obj, record), "scores": scores}, [ref(obj, record.id)],
                      f"{len(scores)} scores of {ref(obj, record.id)}")


class FindDuplicatesArgs(Args):
    """Likely duplicates of a contact, lead or account; without a record, the rep's review queue."""

    record: str | None = Field(None, description="A reference such as contact:12, or a name")


def find_duplicates(env: ToolEnv, args: FindDuplicatesArgs) -> ToolResult:
    """Groups of records identity resolution holds for one customer, with the match reasons."""
    queue = duplicate_queue(env.session, env.principal, limit=200)
    if args.record:
        obj, record = _resolve_any(env, args.record, PERSON_TYPES)
        queue = [q for q in queue if q["object_type"] == obj and
                 record.id in (q["survivor_id"], *q["duplicate_ids"])]
    groups = [{"records": [f"{q['object_type']}:{i}" for i in (q["survivor_id"], *q["duplicate_ids"])],
               "names": [r.get("name") for r in q["records"]], "match": f"{round(q['match_probability'] * 100)}%",
               "why": q["reasons"][:4], "pending_merge": q["pending_proposal"] and f"proposal:{q['pending_proposal']}"}
              for q in queue[:DUPLICATES_SHOWN]]
    refs = [r for g in groups for r in g["records"]]
    return ToolResult({"duplicates": groups, "count": len(groups)}, refs, f"{len(groups)} duplicate groups")


class ProposeMergeArgs(Args):
    """Propose merging duplicates into the record to keep (the rep approves; it can be undone)."""

    keep: str = Field(description="e.g. contact:12")
    duplicates: list[str] = Field(min_length=1, max_length=10, description="e.g. [\"contact:15\"]")


def propose_merge_tool(env: ToolEnv, args: ProposeMergeArgs) -> ToolResult:
    """A merge proposal: survivorship by the most recent values, children re-linked, duplicates kept as tombstones."""
    obj, keep = _resolve_any(env, args.keep, PERSON_TYPES)
    dups = [resolve(env.session, env.principal, obj, d).id for d in args.duplicates]
    target = f"merge:{obj}:{keep.id}:{','.join(map(str, sorted(dups)))}"
    env.check_not_rejected(target)
    proposal = propose_merge(env.session, env.principal, object_type=obj, survivor_id=keep.id, duplicate_ids=dups,
                             reason=env.message[:1000], evidence=list(env.evidence)[:20],
                             source="agent")
    shown = proposal_view(env.principal, proposal)
    refs = [f"proposal:{proposal.id}", ref(obj, keep.id), *(ref(obj, d) for d in dups)]
    return ToolResult({"proposal": shown, "status": "waiting for approval"}, refs,
                      f"proposal:{proposal.id} (merge {obj})", proposal_id=proposal.id, target=target)


class SegmentMembersArgs(Args):
    """Accounts in an RFM segment and/or health band, most valuable first."""

    segment: str | None = Field(None, description="champions, loyal, at_risk, hibernating, ...")
    health: str | None = Field(None, description="healthy, watch or at_risk")
    owner: str | None = Owner


def _labels(env: ToolEnv, kind: str) -> list[str]:
    return sorted(set(env.session.scalars(select(CustomerScore.label).where(CustomerScore.kind == kind))))


def _pick_label(env: ToolEnv, kind: str, text: str) -> str:
    labels = _labels(env, kind)
    wanted = text.strip().lower().replace(" ", "_").replace("-", "_")
    for label in labels:
        if label.lower() == wanted or wanted in label.lower():
            return label
    known = ", ".join(labels) or "none yet (run `crmind scores compute`)"
    raise ToolInputError(f"'{text}' is not a {kind} label; known: {known}")


def segment_members(env: ToolEnv, args: SegmentMembersArgs) -> ToolResult:
    """Readable accounts whose rfm label and/or health label match, ordered by lifetime value."""
    if not args.segment and not args.health:
        raise ToolInputError("name a segment (e.g. at_risk) or a health band (e.g. at_risk)")
    ids: set[int] | None = None
    for kind, text in (("rfm", args.segment), ("health", args.health)):
        if not text:
            continue
        label = _pick_label(env, kind, text)
        found = set(env.session.scalars(select(CustomerScore.record_id).where(
            CustomerScore.object_type == "account", CustomerScore.kind == kind, CustomerScore.label == label)))
        ids = found if ids is None else ids & found
    applied: dict[str, Any] = {}
    conds = [Account.id.in_(sorted(ids or set()))] + _owner_cond(env, Account, args.owner, applied)
    accounts = list(env.session.scalars(readable(env.principal, "account").where(*conds)))
    ltv = dict(env.session.execute(select(CustomerScore.record_id, CustomerScore.value).where(
        CustomerScore.object_type == "account", CustomerScore.kind == "ltv",
        CustomerScore.record_id.in_([a.id for a in accounts]))).all()) if accounts else {}
    accounts.sort(key=lambda a: -ltv.get(a.id, 0.0))
    items = [{**compact(env.principal, "account", a), "ltv": round(ltv[a.id], 2) if a.id in ltv else None}
             for a in accounts[:SEGMENT_SHOWN]]
    return ToolResult({"accounts": items, "count": len(accounts)}, [i["ref"] for i in items],
                      f"{len(accounts)} accounts")
