"""Errors of identity resolution, with messages written for the person running it."""

from __future__ import annotations

from config.errors import CrmindError


class IdentityError(CrmindError):
    """A resolve or match that can't run as asked (bad input file, unknown engine, missing model)."""

    status = 422
