"""disturbance records (metadata, COMTRADE files, analysis, chunks of transfers still
receiving) and relay fault reports, both attachable to a protection ticket

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "disturbance_records",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("session", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("fault_number", sa.Integer(), nullable=False),
        sa.Column("trigger_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_sample_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sample_rate_hz", sa.Float(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("channels", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("cfg_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("received_chunks", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("analysis", sa.Text(), nullable=True),
        sa.Column("cfg", sa.LargeBinary(), nullable=True),
        sa.Column("dat", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_disturbance_records_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disturbance_records")),
        sa.UniqueConstraint(
            "gateway_id",
            "session",
            "seq",
            name=op.f("uq_disturbance_records_gateway_id_session_seq"),
        ),
    )
    with op.batch_alter_table("disturbance_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_disturbance_records_site_trigger_time"),
            ["site", "trigger_time"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_disturbance_records_status_updated_at"),
            ["status", "updated_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_disturbance_records_ticket_id"), ["ticket_id"], unique=False
        )

    op.create_table(
        "fault_reports",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("session", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("fault_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_fault_reports_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fault_reports")),
        sa.UniqueConstraint(
            "gateway_id", "session", "seq", name=op.f("uq_fault_reports_gateway_id_session_seq")
        ),
    )
    with op.batch_alter_table("fault_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fault_reports_site_fault_time"), ["site", "fault_time"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_fault_reports_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "disturbance_chunks",
        sa.Column(
            "record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("part", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["disturbance_records.id"],
            name=op.f("fk_disturbance_chunks_record_id_disturbance_records"),
        ),
        sa.PrimaryKeyConstraint("record_id", "part", name=op.f("pk_disturbance_chunks")),
    )


def downgrade() -> None:
    op.drop_table("disturbance_chunks")
    with op.batch_alter_table("fault_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fault_reports_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_fault_reports_site_fault_time"))

    op.drop_table("fault_reports")
    with op.batch_alter_table("disturbance_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disturbance_records_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_disturbance_records_status_updated_at"))
        batch_op.drop_index(batch_op.f("ix_disturbance_records_site_trigger_time"))

    op.drop_table("disturbance_records")
