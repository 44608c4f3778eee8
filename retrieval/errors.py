"""Retrieval errors, each with a message written for the person who will read it."""

from __future__ import annotations


class RetrievalError(Exception):
    """Base of every error retrieval raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class IndexBusy(RetrievalError):
    """Another process owns the embedded index folder."""


class IndexMissing(RetrievalError):
    """The index has not been built yet."""
