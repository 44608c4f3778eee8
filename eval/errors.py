"""Errors an eval raises for a person to read."""

from __future__ import annotations

from config.errors import CrmindError


class EvalNotFound(CrmindError):
    """No saved eval run matches what was asked for."""

    status = 404
