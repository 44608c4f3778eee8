"""SQLite: CRM record ids are never reused (AUTOINCREMENT)

Without AUTOINCREMENT, SQLite hands a deleted row's id (the highest one) to the next insert. Undoing the
creation of the newest account and then importing another gave the new account the old one's id, so the
ledger, the outbox and the search index named two different records "account:5" (found by the crash test).
PostgreSQL's sequences never reuse ids; nothing changes there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 00:00:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("accounts", "contacts", "leads", "opportunities", "cases", "activities")


def _recreate(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # Each table is copied, dropped and renamed under its child tables' foreign keys, which would refuse the
    # drop; they hold the same ids afterwards, and foreign_key_check proves it before we go on.
    op.execute("PRAGMA foreign_keys=OFF")
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass
    broken = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"foreign keys broken by the table copy: {broken[:5]}")
    op.execute("PRAGMA foreign_keys=ON")


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)
