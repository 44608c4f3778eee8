"""Rule errors, each with a message written for the manager or engineer who reads it."""

from __future__ import annotations

from config.errors import CrmindError


class RuleError(CrmindError):
    """Base of every error the rules layer raises on purpose."""


class RuleInvalid(RuleError):
    """The rule (or its text) does not describe a rule crmind can run."""

    status = 422


class RuleNotFound(RuleError):
    """No such rule, or the caller may not see it."""

    status = 404


class RuleStateError(RuleError):
    """The rule is not in a state that allows this step (e.g. activating a draft)."""

    status = 409


class RuleForbidden(RuleError):
    """The caller may not take this step (e.g. an author approving their own rule)."""

    status = 403


class RuleBlocked(RuleError):
    """The compliance checker blocks the rule; the message names the clauses."""

    status = 422


class EventInvalid(RuleError):
    """An incoming event is malformed."""

    status = 422
