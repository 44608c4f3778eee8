"""The outbox names the proposal behind a change, so rules can trigger on CRM changes

A rule on "a field changed to a value" needs the field and its new value as they were when the change was
applied, not as the record reads later. The proposal holds both (``changes``: before/after per field) and its
source (a rule's change carries the rule's depth, which caps rules triggering rules). Undo and erase entries
leave it empty: they restore or remove, and trigger no rule.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 00:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("proposal_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("proposal_id")
