"""quarantine (records and messages set apart, content kept in full) and the full payload
of a rejected message

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("topic", sa.String(length=512), nullable=False),
        sa.Column("record_index", sa.Integer(), nullable=True),
        sa.Column("gateway_id", sa.String(length=64), nullable=True),
        sa.Column("session", sa.BigInteger(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
    )
    op.create_index(op.f("ix_quarantine_received_at"), "quarantine", ["received_at"], unique=False)
    op.create_index(
        op.f("ix_quarantine_gateway_id_session_seq"),
        "quarantine",
        ["gateway_id", "session", "seq"],
        unique=False,
    )
    with op.batch_alter_table("rejected_messages") as batch:
        batch.add_column(sa.Column("payload", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rejected_messages") as batch:
        batch.drop_column("payload")
    op.drop_index(op.f("ix_quarantine_gateway_id_session_seq"), table_name="quarantine")
    op.drop_index(op.f("ix_quarantine_received_at"), table_name="quarantine")
    op.drop_table("quarantine")
