"""Rules over HTTP: compile (text -> rule or questions), drafts and versions, backtest, lifecycle, events in."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from agents.rule_author import compile_rule
from crm.access import Principal
from rules import lifecycle
from rules.backtest import BacktestResult, backtest
from rules.compliance import Finding, check
from rules.errors import RuleForbidden, RuleInvalid
from rules.language import Rule, rule_json_schema
from rules.models import RuleFiring, RuleRecord
from rules.parser import Question
from rules.runner import EventIn, ingest, recent_firings
from serving.api.deps import CurrentPrincipal, SessionDep
from serving.api.errors import COMMON_RESPONSES
from serving.api.routing import StrictQueryRoute

router = APIRouter(route_class=StrictQueryRoute, tags=["rules"], responses=COMMON_RESPONSES)
RuleId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class CompileBody(BaseModel):
    """Rule text in Chinese or English, with answers to earlier questions."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=2000)
    clarifications: dict[str, Annotated[str, Field(max_length=100)]] = Field(default_factory=dict, max_length=10)


class Compiled(BaseModel):
    """A compiled rule with its explanation and compliance findings, or the questions to answer first."""

    rule: Rule | None
    questions: list[Question]
    explanation: str
    findings: list[Finding]
    path: str
    language: str


class RuleVersionPublic(BaseModel):
    """One version."""

    version: int
    status: str
    text: str
    definition: dict[str, Any]
    explanation: str
    findings: list[dict[str, Any]]
    compiled_by: str
    created_by: int
    approved_by: int | None


class RulePublic(BaseModel):
    """A rule and its versions."""

    id: int
    name: str
    language: str
    status: str
    version: int
    active_version: int | None
    author_id: int
    versions: list[RuleVersionPublic] = []


class FiringPublic(BaseModel):
    """One firing: which rule version, which event, what it proposed, and its ledger row (the "why")."""

    id: int
    rule_id: int
    rule_version: int
    event_key: str
    customer_key: str
    status: str
    proposal_ids: list[int]
    evidence: list[str]
    detail: str
    decision_id: str | None
    fired_at: str


class EventBatch(BaseModel):
    """Several events at once."""

    model_config = ConfigDict(extra="forbid")
    events: list[EventIn] = Field(min_length=1, max_length=1000)


class IngestPublic(BaseModel):
    """What an event post did."""

    accepted: int
    duplicates: int
    firings: list[FiringPublic]


def _compile(body: CompileBody) -> Compiled:
    state = compile_rule(body.text, clarifications=body.clarifications)
    rule = state.rule
    lang = "zh" if state.language == "zh" else "en"
    return Compiled(rule=rule, questions=state.questions, explanation=state.explanation,
                    findings=check(rule, lang=lang) if rule else [], path=state.path, language=lang)


def _public(session: SessionDep, rec: RuleRecord, with_versions: bool = True) -> RulePublic:
    from sqlalchemy import select

    from rules.models import RuleVersion

    versions = [] if not with_versions else [
        RuleVersionPublic(version=v.version, status=v.status, text=v.text, definition=v.definition,
                          explanation=v.explanation, findings=v.findings, compiled_by=v.compiled_by,
                          created_by=v.created_by, approved_by=v.approved_by)
        for v in session.scalars(select(RuleVersion).where(RuleVersion.rule_id == rec.id)
                                 .order_by(RuleVersion.version.desc()))]
    return RulePublic(id=rec.id, name=rec.name, language=rec.language, status=rec.status, version=rec.version,
                      active_version=rec.active_version, author_id=rec.author_id, versions=versions)


def _firing(f: RuleFiring) -> FiringPublic:
    return FiringPublic(id=f.id, rule_id=f.rule_id, rule_version=f.rule_version, event_key=f.event_key,
                        customer_key=f.customer_key, status=f.status, proposal_ids=list(f.proposal_ids),
                        evidence=[str(e) for e in f.evidence], detail=f.detail, decision_id=f.decision_id,
                        fired_at=f.fired_at.isoformat())


def _compiled_rule(body: CompileBody) -> tuple[Rule, str]:
    compiled = _compile(body)
    if compiled.rule is None:
        raise RuleInvalid("the rule needs answers first: " + " / ".join(q.text for q in compiled.questions))
    return compiled.rule, compiled.path


@router.get("/v1/rules/schema", summary="The Rule JSON schema (versioned)")
def schema() -> dict[str, Any]:
    """What constrained decoding and clients validate against."""
    return rule_json_schema()


@router.post("/v1/rules/compile", response_model=Compiled, summary="Compile rule text (nothing is saved)")
def compile_text(body: CompileBody, principal: CurrentPrincipal) -> Compiled:
    """A rule with its explanation and findings, or questions back to the manager."""
    _manager(principal)
    return _compile(body)


@router.post("/v1/rules", status_code=201, response_model=RulePublic, summary="Save a compiled rule as a draft")
def create(body: CompileBody, principal: CurrentPrincipal, session: SessionDep) -> RulePublic:
    """Draft version 1; a 422 lists the questions if the text leaves something open."""
    rule, path = _compiled_rule(body)
    rec = lifecycle.create(session, principal, text=body.text, rule=rule, compiled_by=path)
    session.commit()
    return _public(session, rec)


@router.get("/v1/rules", response_model=list[RulePublic], summary="Rules of my team")
def list_rules(principal: CurrentPrincipal, session: SessionDep,
               status: Annotated[str | None, Query(pattern="^(draft|approved|active|paused|retired)$")] = None
               ) -> list[RulePublic]:
    """Newest first."""
    return [_public(session, r, with_versions=False) for r in lifecycle.list_rules(session, principal, status=status)]


@router.get("/v1/rules/{rule_id}", response_model=RulePublic, summary="A rule and its versions")
def get(rule_id: RuleId, principal: CurrentPrincipal, session: SessionDep) -> RulePublic:
    """Every version, newest first."""
    return _public(session, lifecycle.get_rule(session, principal, rule_id))


@router.post("/v1/rules/{rule_id}/versions", response_model=RulePublic, summary="Edit: a new draft version")
def revise(rule_id: RuleId, body: CompileBody, principal: CurrentPrincipal, session: SessionDep) -> RulePublic:
    """The running version keeps running until the new one is approved and activated."""
    rule, path = _compiled_rule(body)
    rec = lifecycle.revise(session, principal, rule_id, text=body.text, rule=rule, compiled_by=path)
    session.commit()
    return _public(session, rec)


@router.post("/v1/rules/{rule_id}/backtest", response_model=BacktestResult, summary="Backtest the latest version")
def run_backtest(rule_id: RuleId, principal: CurrentPrincipal, session: SessionDep) -> BacktestResult:
    """Over all stored events; an edit of a running rule is compared with the running version."""
    rec = lifecycle.get_rule(session, principal, rule_id)
    latest = Rule.model_validate(lifecycle.get_version(session, rule_id, rec.version).definition)
    previous = None
    if rec.active_version and rec.active_version != rec.version:
        previous = Rule.model_validate(lifecycle.get_version(session, rule_id, rec.active_version).definition)
    others = [(r.id, r.name, rule) for r, rule in lifecycle.active_rules(session) if r.id != rule_id]
    return backtest(session, principal, latest, previous=previous, others=others)


def _step(name: str) -> Any:
    def step(rule_id: RuleId, principal: CurrentPrincipal, session: SessionDep) -> RulePublic:
        rec = getattr(lifecycle, name)(session, principal, rule_id)
        session.commit()
        return _public(session, rec)

    step.__doc__ = f"{name.capitalize()} the rule (a ledger row records it)."
    return step


for _name in ("approve", "activate", "pause", "retire"):
    router.post(f"/v1/rules/{{rule_id}}/{_name}", response_model=RulePublic, summary=f"{_name.capitalize()}",
                name=f"rule_{_name}")(_step(_name))


@router.get("/v1/rules/{rule_id}/firings", response_model=list[FiringPublic], summary="Recent firings")
def firings(rule_id: RuleId, principal: CurrentPrincipal, session: SessionDep,
            limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[FiringPublic]:
    """Newest first, each with the ledger row that explains it."""
    lifecycle.get_rule(session, principal, rule_id)
    return [_firing(f) for f in recent_firings(session, rule_id, limit)]


@router.post("/v1/events", response_model=IngestPublic, summary="Post web or app events (one or a batch)")
def post_events(principal: CurrentPrincipal, session: SessionDep,
                body: Annotated[EventIn | EventBatch, Body()]) -> IngestPublic:
    """Validated and idempotent by ``event_id``; matching active rules act through proposals."""
    _manager(principal)
    events = body.events if isinstance(body, EventBatch) else [body]
    result = ingest(session, events)
    session.commit()
    return IngestPublic(accepted=result.accepted, duplicates=result.duplicates,
                        firings=[_firing(f) for f in result.firings])


def _manager(principal: Principal) -> None:
    if principal.role not in ("manager", "admin"):
        raise RuleForbidden("only managers and admins work with rules and post events")
