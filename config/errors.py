"""The one base of every error crmind raises on purpose: a message for a person, an HTTP status, an exit code.

Each layer subclasses it (``crm.errors``, ``retrieval.errors``, ``inference.errors``, ...); the API turns any of
them into its status with one handler, and the CLI into one red line and its exit code.
"""

from __future__ import annotations


class CrmindError(Exception):
    """An error whose message is written for the person who will read it."""

    status: int = 400
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
