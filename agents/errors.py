"""Agent errors, each with a message written for the person (or the model) who will read it."""

from __future__ import annotations

from config.errors import CrmindError


class AgentError(CrmindError):
    """Base of every error the agents raise on purpose."""


class ThreadNotFound(AgentError):
    """No conversation with this id belongs to the caller (another user's thread looks the same)."""

    status = 404


class ApprovalPending(AgentError):
    """The conversation is waiting for the rep to approve, edit or reject a proposal."""

    status = 409


class NoPendingApproval(AgentError):
    """A decision was sent, but the conversation is not waiting for one."""

    status = 409


class InvalidRequest(AgentError):
    """A malformed request to the assistant (empty message, bad thread id)."""

    status = 422


class InvalidDecision(AgentError):
    """An approval decision that is malformed or names another proposal."""

    status = 422


class ToolInputError(AgentError):
    """A tool call the model can correct (unknown name, ambiguous name, unreadable date); it is told why."""

    status = 422
