"""Retrieval errors, each with a message written for the person who will read it."""

from __future__ import annotations

from config.errors import CrmindError


class RetrievalError(CrmindError):
    """Base of every error retrieval raises on purpose (the index can't serve: 503)."""

    status = 503


class IndexBusy(RetrievalError):
    """Another process owns the embedded index folder."""


class IndexMissing(RetrievalError):
    """The index has not been built yet."""
