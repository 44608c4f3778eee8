"""Errors of fine-tuning, each with a message a user can act on."""

from __future__ import annotations

from config.errors import CrmindError


class FinetuneError(CrmindError):
    """A fine-tuning run could not start or finish."""


class ConfigError(FinetuneError):
    """The fine-tuning config or an override is invalid."""
