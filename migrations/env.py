"""Alembic environment: the same migrations run on SQLite and PostgreSQL."""

from alembic import context

import crm.customer_models  # noqa: F401  (registers the customer 360 tables)
import crm.models  # noqa: F401  (registers the CRM tables)
import inference.registry_models  # noqa: F401  (registers the model registry tables)
import ledger.models  # noqa: F401  (registers the ledger tables)
import modelops.job_models  # noqa: F401  (registers the background jobs table)
import rules.models  # noqa: F401  (registers the rule tables)
from config.db import Base, get_engine

connectable = context.config.attributes.get("connection")


def run() -> None:
    """Run migrations on the given connection, or on the configured engine."""
    if connectable is not None:
        context.configure(connection=connectable, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    with get_engine().connect() as conn:
        context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
