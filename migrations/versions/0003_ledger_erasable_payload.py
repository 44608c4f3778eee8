"""ledger: the chain commits to a salted hash of each payload, so erase can scrub the payload

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 00:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows written before this revision keep payload_hash NULL and verify as before (payload in the chain).
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payload_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('payload_salt', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('erased_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_column('erased_at')
        batch_op.drop_column('payload_salt')
        batch_op.drop_column('payload_hash')
