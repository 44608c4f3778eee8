"""CRM errors, each with a message written for the person who will read it."""

from __future__ import annotations


class CRMError(Exception):
    """Base of every error the CRM layer raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(CRMError):
    """The record does not exist, or the caller may not see it (the two look the same on purpose)."""


class Forbidden(CRMError):
    """The caller may see the record but not do this to it."""


class InvalidInput(CRMError):
    """The request names unknown fields, bad values or an impossible change."""


class StaleRecord(CRMError):
    """The record changed after the proposal was made; propose again against the current values."""


class Conflict(CRMError):
    """The request cannot be done in the record's current state (e.g. rejecting an applied proposal)."""


class NeedsHuman(CRMError):
    """Bulk, destructive, export and owner-change actions can only be approved by a person."""
