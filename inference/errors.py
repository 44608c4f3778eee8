"""Errors of the model-serving layer, with messages written for the person who reads them."""

from __future__ import annotations

from config.errors import CrmindError


class LLMError(CrmindError):
    """Base of every error the model layer raises on purpose (the model can't serve: 503)."""

    status = 503


class EngineStartError(LLMError):
    """An engine server did not come up healthy in time (its log tail is in the message)."""


class PortInUse(LLMError):
    """The engine's port is taken by something that is not a healthy engine serving our models."""


class EngineUnavailable(LLMError):
    """The engine needs software that is not installed here (e.g. vLLM outside its own venv)."""


class UnknownModel(LLMError):
    """No registered model or base has this name."""

    status = 404


class RegistryError(LLMError):
    """A registry change that cannot be made (e.g. rollback with no previous champion)."""

    status = 409


class AdapterConversionError(LLMError):
    """A peft adapter could not be converted to GGUF-LoRA."""

    status = 422


class InvalidModelOutput(LLMError):
    """The model kept producing output that does not fit the schema, after every repair attempt.

    Callers decide what to do (ask the user, fall back); the raw last output is kept for the ledger.
    """

    status = 502

    def __init__(self, message: str, *, attempts: int, last_output: str, last_error: str) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last_output = last_output
        self.last_error = last_error


class ModelAssemblyError(LLMError):
    """A model shipped in part packages could not be assembled into its GGUF."""


class MissingModelPart(ModelAssemblyError):
    """A part package of a split model is not installed (the message names it and the pip command)."""


class CorruptModelPart(ModelAssemblyError):
    """A part file's size or SHA-256 is not the pinned one (the message names the part)."""
