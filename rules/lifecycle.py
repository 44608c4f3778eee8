"""Rule lifecycle: draft -> approved -> active -> paused | retired, versioned, a ledger row for every step.

An edit of a running rule is a new draft version; the approved active version keeps running until the
new one is approved and activated.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import ledger
from config.settings import get_settings
from crm.access import Principal
from crm.models import utcnow
from rules.compliance import check
from rules.errors import RuleBlocked, RuleForbidden, RuleNotFound, RuleStateError
from rules.explain import explain
from rules.language import Rule
from rules.models import RuleRecord, RuleVersion
from rules.records import check_runnable

MANAGERS = ("manager", "admin")


def _ref(rule_id: int) -> str:
    return f"rule:{rule_id}"


def rule_tag(rule_id: int, version: int) -> str:
    """How the ledger names a rule version (``rule_id`` column): ``rule:12@v3``."""
    return f"rule:{rule_id}@v{version}"


def _log(session: Session, principal: Principal, rec: RuleRecord, version: int, step: str,
         output: dict[str, Any] | None = None) -> str:
    row = ledger.append(session, kind=f"rule_{step}", actor=principal.actor,
                        input_summary=f"{step} rule {rec.id} v{version}: {rec.name[:160]}",
                        output={"rule_id": rec.id, "version": version, "status": rec.status, **(output or {})},
                        refs=[_ref(rec.id)], rule_id=rule_tag(rec.id, version))
    return row.id


def _require_manager(principal: Principal) -> None:
    if principal.role not in MANAGERS:
        raise RuleForbidden("only managers and admins write, approve and run rules")


def get_rule(session: Session, principal: Principal, rule_id: int) -> RuleRecord:
    """A rule the principal may see: their team's (admins: all)."""
    rec = session.get(RuleRecord, rule_id)
    if rec is None or (principal.role != "admin" and rec.team_id not in principal.team_ids
                       and rec.author_id != principal.user_id):
        raise RuleNotFound(f"rule {rule_id} not found")
    return rec


def get_version(session: Session, rule_id: int, version: int) -> RuleVersion:
    """One stored version."""
    row = session.scalar(select(RuleVersion).where(RuleVersion.rule_id == rule_id, RuleVersion.version == version))
    if row is None:
        raise RuleNotFound(f"rule {rule_id} has no version {version}")
    return row


def list_rules(session: Session, principal: Principal, *, status: str | None = None) -> list[RuleRecord]:
    """Rules the principal may see, newest first."""
    stmt = select(RuleRecord).order_by(RuleRecord.id.desc())
    if principal.role != "admin":
        mine = RuleRecord.author_id == principal.user_id
        stmt = stmt.where(RuleRecord.team_id.in_(list(principal.team_ids)) | mine)
    if status:
        stmt = stmt.where(RuleRecord.status == status)
    return list(session.scalars(stmt))


def _new_version(session: Session, principal: Principal, rec: RuleRecord, version: int, text: str, rule: Rule,
                 compiled_by: str) -> RuleVersion:
    check_runnable(rule)  # a rule the engine can't run is refused now, not left to never fire
    findings = [f.model_dump() for f in check(rule)]
    row = RuleVersion(rule_id=rec.id, version=version, status="draft", text=text,
                      definition=rule.model_dump(mode="json"), explanation=explain(rule), findings=findings,
                      compiled_by=compiled_by, created_by=principal.user_id)
    session.add(row)
    session.flush()
    return row


def create(session: Session, principal: Principal, *, text: str, rule: Rule, compiled_by: str = "grammar"
           ) -> RuleRecord:
    """A new rule as draft version 1 (compliance findings stored with it)."""
    _require_manager(principal)
    rec = RuleRecord(name=(rule.name or text)[:200], language=rule.language, status="draft", version=1,
                     author_id=principal.user_id, team_id=min(principal.team_ids, default=None))
    session.add(rec)
    session.flush()
    row = _new_version(session, principal, rec, 1, text, rule, compiled_by)
    _log(session, principal, rec, 1, "draft", {"definition": row.definition, "findings": row.findings,
                                                "compiled_by": compiled_by})
    return rec


def revise(session: Session, principal: Principal, rule_id: int, *, text: str, rule: Rule,
           compiled_by: str = "grammar") -> RuleRecord:
    """A new draft version; a running version keeps running until the new one is activated."""
    _require_manager(principal)
    rec = get_rule(session, principal, rule_id)
    if rec.status == "retired":
        raise RuleStateError(f"rule {rule_id} is retired; write a new rule")
    rec.version += 1
    if rec.status != "active":
        rec.status = "draft"
    row = _new_version(session, principal, rec, rec.version, text, rule, compiled_by)
    _log(session, principal, rec, rec.version, "revise", {"definition": row.definition, "findings": row.findings})
    return rec


def approve(session: Session, principal: Principal, rule_id: int, version: int | None = None) -> RuleRecord:
    """Approve a draft version: a manager other than the author (where configured); compliance must pass."""
    _require_manager(principal)
    rec = get_rule(session, principal, rule_id)
    row = get_version(session, rule_id, version or rec.version)
    if row.status != "draft":
        raise RuleStateError(f"rule {rule_id} v{row.version} is {row.status}, not a draft")
    if get_settings().rules_separate_approver and row.created_by == principal.user_id:
        raise RuleForbidden("a rule must be approved by a manager other than its author")
    blocking = [f for f in row.findings if f.get("severity") == "block"]
    if blocking:
        raise RuleBlocked("compliance blocks this rule: " + "; ".join(f["message"] for f in blocking))
    row.status, row.approved_by, row.approved_at = "approved", principal.user_id, utcnow()
    if rec.status != "active":
        rec.status = "approved"
    _log(session, principal, rec, row.version, "approve")
    return rec


def activate(session: Session, principal: Principal, rule_id: int) -> RuleRecord:
    """Run the latest approved version (replacing the one that ran before, if any)."""
    _require_manager(principal)
    rec = get_rule(session, principal, rule_id)
    row = session.scalar(select(RuleVersion).where(RuleVersion.rule_id == rule_id, RuleVersion.status == "approved")
                         .order_by(RuleVersion.version.desc()).limit(1))
    if row is None:
        if rec.status == "paused" and rec.active_version is not None:
            rec.status = "active"
            _log(session, principal, rec, rec.active_version, "resume")
            return rec
        raise RuleStateError(f"rule {rule_id} has no approved version to activate")
    if rec.active_version is not None:
        get_version(session, rule_id, rec.active_version).status = "superseded"
    row.status = "active"
    rec.active_version, rec.status = row.version, "active"
    _log(session, principal, rec, row.version, "activate")
    return rec


def pause(session: Session, principal: Principal, rule_id: int) -> RuleRecord:
    """Stop running the rule for now (activate resumes it)."""
    _require_manager(principal)
    rec = get_rule(session, principal, rule_id)
    if rec.status != "active":
        raise RuleStateError(f"rule {rule_id} is {rec.status}, not active")
    rec.status = "paused"
    _log(session, principal, rec, rec.active_version or rec.version, "pause")
    return rec


def retire(session: Session, principal: Principal, rule_id: int) -> RuleRecord:
    """Stop the rule for good; its versions and firings stay for the record."""
    _require_manager(principal)
    rec = get_rule(session, principal, rule_id)
    rec.status = "retired"
    _log(session, principal, rec, rec.active_version or rec.version, "retire")
    return rec


def active_rules(session: Session) -> list[tuple[RuleRecord, Rule]]:
    """Every running rule with its active version's definition (what the engine loads)."""
    rows = session.execute(select(RuleRecord, RuleVersion).join(
        RuleVersion, (RuleVersion.rule_id == RuleRecord.id) & (RuleVersion.version == RuleRecord.active_version))
        .where(RuleRecord.status == "active"))
    return [(rec, Rule.model_validate(ver.definition)) for rec, ver in rows]
