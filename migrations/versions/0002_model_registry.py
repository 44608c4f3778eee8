"""model registry

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 09:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('llm_models',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('base', sa.String(length=60), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('peft_path', sa.String(length=500), nullable=True),
    sa.Column('gguf_lora_path', sa.String(length=500), nullable=True),
    sa.Column('eval_results', JSON, nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    with op.batch_alter_table('llm_models', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_llm_models_base'), ['base'], unique=False)
    op.create_table('llm_deployments',
    sa.Column('base', sa.String(length=60), nullable=False),
    sa.Column('champion', sa.String(length=120), nullable=False),
    sa.Column('challenger', sa.String(length=120), nullable=True),
    sa.Column('challenger_share', sa.Float(), nullable=False),
    sa.Column('history', JSON, nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('base')
    )


def downgrade() -> None:
    op.drop_table('llm_deployments')
    with op.batch_alter_table('llm_models', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_llm_models_base'))
    op.drop_table('llm_models')
