"""clock_quality.summer_time_events: how many of a relay's timed events were stamped local
summer time (CP56Time2a SU)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clock_quality") as batch:
        batch.add_column(
            sa.Column("summer_time_events", sa.BigInteger(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("clock_quality") as batch:
        batch.drop_column("summer_time_events")
