"""The second-person rule: who may approve a delete, an owner change or a bulk change.

``CRMIND_APPROVAL_POLICY`` picks, per action, who the second person must be; the proposer alone and a rule's
auto-approval are never enough. Every refusal names the rule that refused it (``approval_policy.delete``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from config.settings import DEFAULT_APPROVAL_POLICY, HumanOnlyAction, SecondPerson, get_settings
from crm.access import Principal
from crm.errors import ApprovalRefused, NeedsHuman
from crm.models import Proposal, User

WHO: dict[SecondPerson, str] = {
    "team_manager": "a manager of the record's team (team {team}) or an admin",
    "admin": "an admin",
    "second_person": "another person who may change the record",
}


def human_only_action(proposal: Proposal) -> HumanOnlyAction | None:
    """Which second-person rule covers ``proposal`` (None: the proposer may approve it)."""
    if not proposal.requires_human:
        return None
    if proposal.action == "delete":
        return "delete"
    if proposal.action == "owner_change" or "owner_id" in (proposal.changes or {}):
        return "owner_change"
    return "bulk"


def rule_for(action: HumanOnlyAction) -> SecondPerson:
    """The configured second person for ``action`` (an action the setting leaves out keeps the default)."""
    return get_settings().approval_policy.get(action, DEFAULT_APPROVAL_POLICY[action])


def _record_team(session: Session, proposal: Proposal, record: Any | None) -> int | None:
    if record is not None and getattr(record, "team_id", None) is not None:
        return int(record.team_id)
    proposer = session.get(User, proposal.created_by)
    return proposer.team_id if proposer is not None else None


def check_approver(session: Session, principal: Principal, proposal: Proposal, record: Any | None, *,
                   by_policy: str | None = None) -> None:
    """Raise ``ApprovalRefused`` (``NeedsHuman`` for a rule) unless ``principal`` may approve ``proposal``.

    ``record`` is the record the proposal changes (None for a create); the caller already checked that
    ``principal`` may change it.
    """
    action = human_only_action(proposal)
    if action is None:
        return
    what = f"proposal {proposal.id} ({proposal.action} {proposal.object_type} {proposal.record_id or '(new)'})"
    if by_policy:
        raise NeedsHuman(f"{what} must be approved by a person, not by {by_policy}", rule="human_only_actions")
    setting = rule_for(action)
    rule = f"approval_policy.{action}={setting}"
    team = _record_team(session, proposal, record)
    who = WHO[setting].format(team=team)
    if principal.user_id == proposal.created_by:
        raise ApprovalRefused(f"{what} needs a second person: {who}, not its proposer", rule=rule)
    allowed = {
        "team_manager": principal.role == "admin" or (principal.role == "manager" and team in principal.team_ids),
        "admin": principal.role == "admin",
        "second_person": True,
    }[setting]
    if not allowed:
        raise ApprovalRefused(f"{what} needs {who}; {principal.actor} is a {principal.role}", rule=rule)
