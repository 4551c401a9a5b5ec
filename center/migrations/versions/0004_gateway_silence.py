"""gateway silence: when a gateway is due to be found silent, and since when it is

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("gateways", sa.Column("silent_due", sa.DateTime(timezone=True), nullable=True))
    op.add_column("gateways", sa.Column("silent_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gateways") as batch:
        batch.drop_column("silent_since")
        batch.drop_column("silent_due")
