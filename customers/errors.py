"""Errors of the customer scores, written for the person who reads them."""

from __future__ import annotations

from config.errors import CrmindError


class ScoringError(CrmindError):
    """A score can't be computed or explained (bad input, missing model, too little data)."""
