"""Errors of Customer 360 (scores, identity resolution), written for the person who reads them."""

from __future__ import annotations

from config.errors import CrmindError


class ScoringError(CrmindError):
    """A score can't be computed or explained (bad input, missing model, too little data)."""


class IdentityError(CrmindError):
    """A resolve or match that can't run as asked (bad input file, unknown engine, missing model)."""

    status = 422
