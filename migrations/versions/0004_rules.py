"""rules: rules, versions, ingested event keys, firings

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 00:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('active_version', sa.Integer(), nullable=True),
    sa.Column('author_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=False),
    sa.Column('team_id', sa.Integer(), sa.ForeignKey('teams.id'), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_rules_status', 'rules', ['status'])
    op.create_index('ix_rules_team_id', 'rules', ['team_id'])
    op.create_table('rule_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule_id', sa.Integer(), sa.ForeignKey('rules.id', ondelete='CASCADE'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('definition', JSON, nullable=False),
    sa.Column('explanation', sa.Text(), nullable=False),
    sa.Column('findings', JSON, nullable=False),
    sa.Column('compiled_by', sa.String(length=20), nullable=False),
    sa.Column('created_by', sa.Integer(), sa.ForeignKey('users.id'), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('approved_by', sa.Integer(), sa.ForeignKey('users.id'), nullable=True),
    sa.Column('approved_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('rule_id', 'version'))
    op.create_index('ix_rule_versions_rule_id', 'rule_versions', ['rule_id'])
    op.create_table('rule_ingested_events',
    sa.Column('event_key', sa.String(length=120), nullable=False),
    sa.Column('event_id', sa.Integer(), sa.ForeignKey('events.id', ondelete='CASCADE'), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('event_key'))
    op.create_index('ix_rule_ingested_events_event_id', 'rule_ingested_events', ['event_id'])
    op.create_table('rule_firings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule_id', sa.Integer(), sa.ForeignKey('rules.id', ondelete='CASCADE'), nullable=False),
    sa.Column('rule_version', sa.Integer(), nullable=False),
    sa.Column('event_key', sa.String(length=120), nullable=False),
    sa.Column('customer_key', sa.String(length=120), nullable=False),
    sa.Column('depth', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('evidence', JSON, nullable=False),
    sa.Column('proposal_ids', JSON, nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('decision_id', sa.String(length=36), nullable=True),
    sa.Column('fired_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('rule_id', 'rule_version', 'event_key'))
    op.create_index('ix_rule_firings_rule_id', 'rule_firings', ['rule_id'])
    op.create_index('ix_rule_firings_customer_key', 'rule_firings', ['customer_key'])
    op.create_index('ix_rule_firings_fired_at', 'rule_firings', ['fired_at'])


def downgrade() -> None:
    op.drop_table('rule_firings')
    op.drop_table('rule_ingested_events')
    op.drop_table('rule_versions')
    op.drop_table('rules')
