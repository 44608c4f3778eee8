"""an index on the first three characters of every record name the assistant matches in a rep's message

The assistant looks for records the rep names word for word (agents/assistant/grounding.py): which names occur
inside the message. No ordinary index answers "which of these 7,000 names is a substring of this text", so that
was a scan of five tables (~10 ms per turn on PostgreSQL at demo scale 1). A name inside the message starts at
one of the message's positions, so its first three characters are one of the message's three-character windows:
the query asks the index below for those heads first and checks containment on the few names left.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-21 00:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> its name column; the expression must stay exactly what grounding.name_head() renders
NAMES = {"accounts": "name", "contacts": "name", "leads": "name", "opportunities": "name", "cases": "subject"}


def upgrade() -> None:
    for table, column in NAMES.items():
        op.create_index(f"ix_{table}_{column}_head", table, [sa.text(f"substr(lower({column}), 1, 3)")])


def downgrade() -> None:
    for table, column in NAMES.items():
        op.drop_index(f"ix_{table}_{column}_head", table_name=table)
