"""Bringing a database to the current schema with Alembic (never ``create_all``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from config.db import get_engine

_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    """Alembic config pointing at the packaged migrations."""
    cfg = Config(str(_MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def migrate(engine: Engine | None = None) -> None:
    """Upgrade ``engine``'s database to the latest revision."""
    cfg = alembic_config()
    engine = engine or get_engine()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        # A migration may switch foreign keys off on its connection (0005 copies tables under them); pooled
        # connections are reopened so every one has the pragmas of config.db again.
        engine.dispose()
