"""customers: identity link table and keys, scores with reasons, merge tombstones

Merged-away contacts, leads and accounts stay in their tables as tombstones (``merged_into_id`` set): the
merge is a proposal (its ``payload`` names the merged records), and unmerge restores them from that row.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 18:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
TOMBSTONED = ("contacts", "leads", "accounts")


def upgrade() -> None:
    op.create_table('identity_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.String(length=80), nullable=False),
    sa.Column('object_type', sa.String(length=20), nullable=False),
    sa.Column('record_key', sa.String(length=80), nullable=False),
    sa.Column('match_probability', sa.Float(), nullable=False),
    sa.Column('reasons', JSON, nullable=False),
    sa.Column('strength', sa.String(length=10), nullable=False),
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('object_type', 'record_key'))
    op.create_index('ix_identity_links_customer_id', 'identity_links', ['customer_id'])
    op.create_table('identity_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('object_type', sa.String(length=20), nullable=False),
    sa.Column('record_key', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_identity_keys_kind_value', 'identity_keys', ['kind', 'value'])
    op.create_index('ix_identity_keys_record', 'identity_keys', ['object_type', 'record_key'])
    op.create_table('customer_scores',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('object_type', sa.String(length=20), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('label', sa.String(length=60), nullable=False),
    sa.Column('reasons', JSON, nullable=False),
    sa.Column('features', JSON, nullable=False),
    sa.Column('model_version', sa.String(length=120), nullable=False),
    sa.Column('computed_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('object_type', 'record_id', 'kind'))
    op.create_index('ix_customer_scores_kind_value', 'customer_scores', ['kind', 'value'])
    for table in TOMBSTONED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('merged_into_id', sa.Integer(), nullable=True))
        op.create_index(f'ix_{table}_merged_into_id', table, ['merged_into_id'])
    with op.batch_alter_table('proposals') as batch:
        batch.add_column(sa.Column('payload', JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('proposals') as batch:
        batch.drop_column('payload')
    for table in TOMBSTONED:
        op.drop_index(f'ix_{table}_merged_into_id', table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column('merged_into_id')
    op.drop_table('customer_scores')
    op.drop_table('identity_keys')
    op.drop_table('identity_links')
