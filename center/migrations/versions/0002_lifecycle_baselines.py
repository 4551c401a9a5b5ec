"""firmware approvals and settings baselines

Revision ID: 0002
Revises: 0001
Create Date: 2025-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "firmware_approvals",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("firmware_version", sa.String(length=128), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firmware_approvals")),
        sa.UniqueConstraint(
            "model", "firmware_version", name=op.f("uq_firmware_approvals_model_firmware_version")
        ),
    )
    op.create_table(
        "settings_baselines",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settings_baselines")),
    )
    with op.batch_alter_table("settings_baselines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settings_baselines_site_device_id_id"),
            ["site", "device_id", "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("settings_baselines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settings_baselines_site_device_id_id"))
    op.drop_table("settings_baselines")
    op.drop_table("firmware_approvals")
