"""analytics: clock quality per relay, ageing scores, analytics job runs

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "clock_quality",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("samples", sa.Text(), nullable=False),
        sa.Column("recent_flags", sa.String(length=64), nullable=False),
        sa.Column("timed_events", sa.BigInteger(), nullable=False),
        sa.Column("invalid_events", sa.BigInteger(), nullable=False),
        sa.Column("substituted_events", sa.BigInteger(), nullable=False),
        sa.Column("last_event_at", _TS, nullable=True),
        sa.Column("last_sync_at", _TS, nullable=True),
        sa.Column("last_sync_valid", sa.Boolean(), nullable=True),
        sa.Column("sample_count", sa.Integer(), nullable=False),
        sa.Column("p50_ms", sa.Float(), nullable=True),
        sa.Column("p95_abs_ms", sa.Float(), nullable=True),
        sa.Column("drift_ms_per_day", sa.Float(), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("bad", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("site", "device_id", name=op.f("pk_clock_quality")),
    )
    op.create_table(
        "ageing_scores",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=160), nullable=True),
        sa.Column("scored_at", _TS, nullable=False),
        sa.Column("risk", sa.Float(), nullable=False),
        sa.Column("age_years", sa.Float(), nullable=False),
        sa.Column("design_life_years", sa.Float(), nullable=False),
        sa.Column("commissioned_at", _TS, nullable=False),
        sa.Column("commissioned_from", sa.String(length=16), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("site", "device_id", name=op.f("pk_ageing_scores")),
    )
    with op.batch_alter_table("ageing_scores", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ageing_scores_risk"), ["risk"], unique=False)
    op.create_table(
        "analytics_runs",
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_analytics_runs")),
    )


def downgrade() -> None:
    op.drop_table("analytics_runs")
    with op.batch_alter_table("ageing_scores", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ageing_scores_risk"))
    op.drop_table("ageing_scores")
    op.drop_table("clock_quality")
