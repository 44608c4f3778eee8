"""Registry tables: the models we can serve, and per base which one is champion and which challenger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from config.db import Base


class RegisteredModel(Base):
    """A servable model: a base (GGUF from a package) or a LoRA adapter on a base, with its eval results."""

    __tablename__ = "llm_models"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    """The served model name; requests select the model by it."""
    base: Mapped[str] = mapped_column(String(60), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    """'base', 'adapter' or 'scorer' (a lead / win scoring model: ``peft_path`` holds its model file)."""
    peft_path: Mapped[str | None] = mapped_column(String(500))
    """Adapter in peft format (vLLM serves it, fine-tuning writes it); a scorer's model file."""
    gguf_lora_path: Mapped[str | None] = mapped_column(String(500))
    """The same adapter as GGUF-LoRA (llama.cpp serves it)."""
    eval_results: Mapped[dict[str, Any]]
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class Deployment(Base):
    """Per base: the champion, an optional challenger with its traffic share, and earlier champions."""

    __tablename__ = "llm_deployments"

    base: Mapped[str] = mapped_column(String(60), primary_key=True)
    champion: Mapped[str] = mapped_column(String(120))
    challenger: Mapped[str | None] = mapped_column(String(120))
    challenger_share: Mapped[float] = mapped_column(Float, default=0.0)
    history: Mapped[list[Any]]
    """Earlier champions, oldest first; rollback pops the last one."""
    updated_at: Mapped[datetime]
