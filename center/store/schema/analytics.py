"""The analytics jobs' state: clock quality per relay, ageing scores, and job runs."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from center.store.schema.meta import TS, metadata

# Clock quality per relay (center/analytics/clock.py): recent offsets of its spontaneous
# events against the gateway's receive time, its own time flags and the verdict.
clock_quality = Table(
    "clock_quality",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("device_id", String(64), primary_key=True),
    Column("gateway_id", String(64), nullable=False),
    Column("samples", Text, nullable=False),  # JSON [[gateway epoch s, offset ms], ...]
    Column("recent_flags", String(64), nullable=False),  # newest last: v valid, u SU, i, s
    Column("timed_events", BigInteger, nullable=False),
    Column("invalid_events", BigInteger, nullable=False),
    Column("substituted_events", BigInteger, nullable=False),
    Column("summer_time_events", BigInteger, nullable=False, server_default="0"),
    Column("last_event_at", TS),
    Column("last_sync_at", TS),
    Column("last_sync_valid", Boolean),
    Column("sample_count", Integer, nullable=False),
    Column("p50_ms", Float),
    Column("p95_abs_ms", Float),
    Column("drift_ms_per_day", Float),
    Column("verdict", String(16), nullable=False),
    Column("bad", Boolean, nullable=False),
    Column("summary", Text, nullable=False),
    Column("updated_at", TS, nullable=False),
)

# The daily ageing job's latest score per device (center/analytics/ageing.py).
ageing_scores = Table(
    "ageing_scores",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("device_id", String(64), primary_key=True),
    Column("model", String(160)),
    Column("scored_at", TS, nullable=False),
    Column("risk", Float, nullable=False),
    Column("age_years", Float, nullable=False),
    Column("design_life_years", Float, nullable=False),
    Column("commissioned_at", TS, nullable=False),
    Column("commissioned_from", String(16), nullable=False),  # config | first_seen
    Column("details", Text, nullable=False),  # JSON: rates, tests, wear
    Column("explanation", Text, nullable=False),
    Index(None, "risk"),
)

# When each periodic analytics job last ran, so restarts and several centers run it once.
analytics_runs = Table(
    "analytics_runs",
    metadata,
    Column("job", String(64), primary_key=True),
    Column("started_at", TS, nullable=False),
    Column("finished_at", TS),
    Column("summary", Text, nullable=False),
)
