"""CRM errors, each with a message written for the person who will read it."""

from __future__ import annotations

from config.errors import CrmindError


class CRMError(CrmindError):
    """Base of every error the CRM layer raises on purpose."""


class NotFound(CRMError):
    """The record does not exist, or the caller may not see it (the two look the same on purpose)."""

    status = 404


class Forbidden(CRMError):
    """The caller may see the record but not do this to it."""

    status = 403


class InvalidInput(CRMError):
    """The request names unknown fields, bad values or an impossible change."""

    status = 422


class StaleRecord(CRMError):
    """The record changed after the proposal was made; propose again against the current values."""

    status = 409


class Conflict(CRMError):
    """The request cannot be done in the record's current state (e.g. rejecting an applied proposal)."""

    status = 409


class ApprovalRefused(CRMError):
    """The approval policy refused this approver; ``rule`` names the rule, and the message says who may approve."""

    status = 403

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(f"{message} [approval rule: {rule}]")
        self.rule = rule


class NeedsHuman(ApprovalRefused):
    """Bulk, destructive and owner-change actions can only be approved by a person, never by a rule."""
