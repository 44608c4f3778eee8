"""The jobs table: a background job's state lives in the database, so it outlives the process that ran it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from config.db import Base, JsonType


class Job(Base):
    """One background job (a retrain): queued -> running -> done | failed, with its attempts."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    """Looked up in ``modelops.jobs.HANDLERS``."""
    state: Mapped[str] = mapped_column(String(10), index=True)
    """queued, running, done or failed."""
    payload: Mapped[dict[str, Any]]
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Claims so far; a claim by a worker that then died counts."""
    max_attempts: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(80))
    """The worker running it (host:pid:random), while running."""
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    """Refreshed while the job runs; a stale one means its worker died."""
