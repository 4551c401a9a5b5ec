"""quarantine.digest and rejected_messages.digest: what the broker redelivers (a center
stopped or killed between its commit and its PUBACK) or a gateway resends is kept once

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TABLES = ("quarantine", "rejected_messages")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("digest", sa.String(length=64), nullable=True))
            batch.create_index(op.f(f"ix_{table}_digest"), ["digest"], unique=True)


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(op.f(f"ix_{table}_digest"))
            batch.drop_column("digest")
