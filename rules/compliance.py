"""The compliance checker: clauses are data (``policy.yaml``); a finding names its clause and the rule part."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict

from rules.errors import RuleBlocked
from rules.explain import explain_action
from rules.language import FieldCondition, Rule

POLICY_FILE = Path(__file__).resolve().parent / "policy.yaml"


class Clause(BaseModel):
    """One policy clause."""

    model_config = ConfigDict(extra="forbid")
    id: str
    severity: Literal["block", "warn"] = "block"
    title: dict[str, str]
    match: dict[str, Any]
    require: dict[str, Any] | Literal["never"]
    explain: dict[str, str]


class Policy(BaseModel):
    """The policy file."""

    model_config = ConfigDict(extra="forbid")
    version: int
    internal_hosts: list[str] = []
    personal_fields: list[str] = []
    clauses: list[Clause]


class Finding(BaseModel):
    """A clause the rule breaks, and where."""

    clause: str
    severity: str
    title: str
    part: str
    """Which part of the rule: ``actions[0]``."""
    part_text: str
    """That part, as the explainer renders it."""
    message: str


@lru_cache(maxsize=4)
def load_policy(path: Path = POLICY_FILE) -> Policy:
    """Parse the policy file (strict: an unknown key is an error)."""
    return Policy.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def _matches(action: Any, match: dict[str, Any], policy: Policy) -> bool:
    for key, wanted in match.items():
        if key == "type" and action.type not in wanted:
            return False
        if key == "bulk" and bool(getattr(action, "bulk", False)) not in wanted:
            return False
        if key == "fields_any":
            fields = set(getattr(action, "fields", []) or [])
            if bool(fields & set(policy.personal_fields) or not fields) != wanted:  # no field list: everything
                return False
        if key == "destination_external":
            host = urlparse(getattr(action, "destination", "") or "").hostname
            if (host is not None and host not in policy.internal_hosts) != wanted:
                return False
    return True


def _satisfied(rule: Rule, require: dict[str, Any] | str) -> bool:
    if require == "never":
        return False
    assert isinstance(require, dict)
    ok = True
    if "condition" in require:
        spec = require["condition"]
        ok = ok and any(isinstance(c, FieldCondition) and c.field in spec["fields"] and c.op in spec["ops"]
                        and c.value in spec["values"] for c in rule.conditions)
    if "approval" in require:
        ok = ok and all(getattr(rule.approval, k) == v for k, v in require["approval"].items())
    return ok


def check(rule: Rule, *, lang: str | None = None, policy: Policy | None = None) -> list[Finding]:
    """Every clause ``rule`` breaks, each naming the offending action."""
    policy = policy or load_policy()
    lang = lang or rule.language
    findings = []
    for i, action in enumerate(rule.actions):
        for clause in policy.clauses:
            if _matches(action, clause.match, policy) and not _satisfied(rule, clause.require):
                title = clause.title.get(lang) or clause.title["en"]
                why = clause.explain.get(lang) or clause.explain["en"]
                text = explain_action(action, "zh" if lang == "zh" else "en")
                findings.append(Finding(clause=clause.id, severity=clause.severity, title=title, part=f"actions[{i}]",
                                        part_text=text, message=f"{clause.id} {title}: “{text}” {why}"))
    return findings


def ensure_compliant(rule: Rule) -> None:
    """Raise ``RuleBlocked`` naming every blocking clause."""
    blocking = [f for f in check(rule) if f.severity == "block"]
    if blocking:
        raise RuleBlocked("; ".join(f.message for f in blocking))
